"""``/docs`` (Swagger UI) with its script and style served by this server, not a CDN: the API documentation
works on a machine without internet access. The files come from the ``fastapi-offline`` package (Swagger UI 5,
as FastAPI itself would load it from the CDN). There is no ``/redoc``: ReDoc fetches its logo from its own CDN
whatever the page says, so each visit would still reach out."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = "/docs-assets"


def add_docs(app: FastAPI) -> None:
    """Serve the API docs page of ``app`` (created with ``docs_url=None, redoc_url=None``) and its assets."""
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '').rstrip('/')}{ASSETS}/{name}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=request.scope.get("root_path", "").rstrip("/") + openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
        )
