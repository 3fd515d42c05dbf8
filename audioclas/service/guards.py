"""Checks on every HTTP request before any route runs: the ``Host`` header, and a deadline on the body.

**Host.** A DNS-rebinding page (a name of the attacker's that first resolves to the attacker, then to
127.0.0.1) lets a browser send requests to a server on loopback as if they came from the server's own origin.
Such requests carry the attacker's name in ``Host``, so only the configured names are accepted: the loopback
names, the ``--host`` name and ``--allowed-hosts``. An IP address in ``Host`` is always accepted: rebinding
needs a name, and a browser that went to an address is where its user sent it.

**Body.** Uvicorn waits for a request body as long as its client likes: a client that sends the headers and
then nothing (or a byte a minute) would hold a connection and a request forever. Every read of the body
must arrive within ``read_timeout`` seconds, and the whole body within ``body_seconds``; otherwise the route
sees an HTTP 408 (and the connection is closed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header without its port, lowercase (IPv6 without brackets); None if malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        name, bracket, rest = header[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, colon, port = header.partition(":")
    if colon and not port.isdigit():
        return None
    return name.rstrip(".") or None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class RequestGuard:
    """ASGI middleware: refuse requests to other host names (400), and time out slow bodies (408)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None, read_timeout: float, body_seconds: float) -> None:
        self.app, self.hosts = app, hosts
        self.read_timeout, self.body_seconds = read_timeout, body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"host", b"").decode("latin-1")
        name = host_name(header)
        if self.hosts is not None and (name is None or not (name in self.hosts or _is_address(name))):
            await _refuse(
                send,
                400,
                f"this server does not answer to the host name {header[:100]!r} (see the "
                "server's --allowed-hosts option)",
            )
            return
        await self.app(scope, self._timed(receive), send)

    def _timed(self, receive: Receive) -> Receive:
        loop = asyncio.get_running_loop()
        state: dict[str, Any] = {"deadline": None, "done": False}

        async def timed_receive() -> Message:
            if state["done"]:  # after the body: waiting for a disconnect is the server's business
                return await receive()
            if state["deadline"] is None:
                state["deadline"] = loop.time() + self.body_seconds
            wait = min(self.read_timeout, state["deadline"] - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except TimeoutError:
                if state["deadline"] - loop.time() <= 0:
                    problem = f"the whole request body must arrive within {self.body_seconds:g} s"
                else:
                    problem = f"the request body stalled: nothing came for {self.read_timeout:g} s"
                raise HTTPException(408, problem, headers={"Connection": "close"}) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["done"] = True
            return message

        return timed_receive


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
