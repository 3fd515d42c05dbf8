"""The FastAPI application: ``create_app(ServiceSettings(...))``; ``audioclas serve`` runs it with uvicorn.

The network is loaded once, when the app is created, and shared by every request; training jobs live in
``<home>/service/jobs.sqlite3`` and run in worker processes (``worker.py``). Every error is a JSON body
``{"error": "...", "status": N}`` with the matching status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from audioclas import __version__
from audioclas.errors import AudioclasError
from audioclas.service.context import Service
from audioclas.service.docs import add_docs
from audioclas.service.errors import RequestError, http_status
from audioclas.service.guards import RequestGuard
from audioclas.service.routes import datasets, health, models, train, web
from audioclas.service.settings import ServiceSettings

log = logging.getLogger("audioclas.service")

DESCRIPTION = """Tag audio with the 527 AudioSet classes or your own trained classifiers, and train new ones.

The layout follows DEEPaaS v2: `/v2/models/` lists the models, `/v2/models/{name}/predict/` tags uploaded
files, archives or URLs, `/v2/models/{name}/train/` starts and follows training jobs; `/v2/datasets/` takes
datasets uploaded as archives (into the server's data root) to train on. Routes that upload, train, cancel or
delete need `Authorization: Bearer TOKEN` when the server was started with a token.
"""


def _error(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse({"error": message, "status": status, **extra}, status_code=status, headers=headers)


def _named(field: str, problem: str) -> str:
    """``field: problem``, unless the problem already names its field (a training option's does)."""
    return problem if field and re.search(rf"\b{re.escape(field)}\b", problem) else f"{field}: {problem}"


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings.from_environment()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="audioclas",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )  # docs.py serves them without a CDN
    app.state.service = service
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        RequestGuard,
        hosts=settings.host_names(),
        read_timeout=settings.body_read_timeout,
        body_seconds=settings.max_body_seconds,
    )  # outermost: before CORS answers anything

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        return _error(error.status, error.message, **error.extra)

    @app.exception_handler(AudioclasError)
    async def typed_error(request: Request, error: AudioclasError) -> JSONResponse:
        return _error(http_status(error), str(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(part) for part in problem["loc"] if part != "body"), "problem": problem["msg"]}
            for problem in error.errors()
        ]
        message = "; ".join(_named(detail["field"], detail["problem"]) for detail in details)
        return _error(422, message or "invalid request", details=details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(error).__name__}); the server log has the details")

    for module in (models, train, datasets, health, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    add_docs(app)
    return app
