"""Routes that answer with and without their trailing slash, without redirects (a redirected POST loses its
body in many clients): each path is registered twice, the second form hidden from the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from audioclas.service.context import Service
from audioclas.service.errors import RequestError


class SlashRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        alternate = path[:-1] if path.endswith("/") else path + "/"
        if alternate and alternate != "/":
            super().add_api_route(alternate, endpoint, **{**kwargs, "include_in_schema": False})


def service(request: Request) -> Service:
    """The ``Service`` of the app handling ``request`` (a FastAPI dependency)."""
    svc: Service = request.app.state.service
    return svc


def require_token(request: Request) -> None:
    """Refuse with 401 unless the request carries the operator's bearer token (when one is set)."""
    import hmac

    token = request.app.state.service.settings.token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise RequestError(401, "this route needs the server's token: send 'Authorization: Bearer TOKEN'")
