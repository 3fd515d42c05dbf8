"""What the route modules share: routes that answer with and without their trailing slash, without redirects (a
redirected POST loses its body in many clients): each path is registered twice, the second form hidden from the
OpenAPI schema; the service and token dependencies; and the OpenAPI pieces their decorators repeat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request

from audioclas.service.context import Service
from audioclas.service.errors import RequestError
from audioclas.service.schemas import ErrorResponse


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


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses``: each of ``statuses`` answered with an ``ErrorResponse`` (in this order)."""
    return {status: {"model": ErrorResponse} for status in statuses}


def multipart_body(
    properties: dict[str, Any], required: Sequence[str] = (), also: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A route's ``openapi_extra`` when it reads its multipart form itself (``uploads.read_form``: FastAPI does not
    see the fields): a required multipart/form-data body of these ``properties``, ``required`` fields among them,
    and ``also`` other content types it takes."""
    schema: dict[str, Any] = {"type": "object"}
    if required:
        schema["required"] = list(required)
    schema["properties"] = properties
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}, **(also or {})}}}
