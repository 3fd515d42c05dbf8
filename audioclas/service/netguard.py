"""Fetching URLs that strangers give us without letting them reach the server's own network (SSRF).

Two checks, both on the resolved addresses:

- ``NetGuard.check_url`` is the ``url_guard`` of ``inputs.open_sources``: it sees the URL and every redirect
  target before any connection, refuses schemes other than http/https, resolves the host and refuses it if any
  of its addresses is not public. It gives a clear error early.
- ``NetGuard.client()`` is an ``httpx.Client`` whose connections go through ``_PinnedBackend``: it resolves the
  host once more, checks those addresses, and connects to the very address it checked. A DNS answer that
  changes between the two lookups (DNS rebinding) therefore cannot smuggle a private address past the check;
  TLS still verifies the certificate against the host name. Proxies from the environment are ignored, since a
  proxy would make the connection on our behalf to wherever it resolves.

Refused: loopback, private (RFC 1918, unique-local), link-local, shared (CGNAT), reserved, multicast and
unspecified addresses, including IPv4 addresses wrapped in IPv6 (``::ffff:127.0.0.1``, 6to4).
``allow_private=True`` lets an operator fetch from their own network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class UnsafeURL(Exception):
    """The URL may not be fetched; ``str()`` says why in one line."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the order the system prefers."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeURL(f"cannot resolve {host!r} ({error})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is."""
    ip: IPAddress = ipaddress.ip_address(address.split("%")[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"a {kind} address"
    return None if ip.is_global else "not a public address"


class NetGuard:
    """The URL policy of one server: public addresses only, unless ``allow_private``."""

    def __init__(self, allow_private: bool = False, resolver: Resolver = system_resolver) -> None:
        self.allow_private, self.resolver = allow_private, resolver

    def vetted_addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` we may connect to; raises ``UnsafeURL`` if any of them is not allowed
        (a name that mixes public and private addresses is refused whole)."""
        host = host.strip("[]")
        addresses = self.resolver(host, port)
        if not addresses:
            raise UnsafeURL(f"{host!r} resolves to no address")
        if not self.allow_private:
            for address in addresses:
                if problem := address_problem(address):
                    where = f"{host} is" if host == address else f"{host} resolves to {address},"
                    raise UnsafeURL(f"{where} {problem}; this server only fetches from public addresses")
        return addresses

    def check_url(self, url: str) -> None:
        """The ``url_guard`` for ``open_sources``: raise ``UnsafeURL`` for a URL we must not fetch."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise UnsafeURL(f"invalid URL ({error})") from None
        if parsed.scheme not in ("http", "https"):
            raise UnsafeURL(f"only http and https URLs are allowed, not {parsed.scheme or 'none'}")
        if not parsed.host:
            raise UnsafeURL("the URL has no host")
        self.vetted_addresses(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))

    def client(self) -> httpx.Client:
        """An ``httpx.Client`` that connects only to addresses this guard allows (pinned, see the module doc)."""
        return httpx.Client(transport=_PinnedTransport(self), trust_env=False, follow_redirects=False)


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, guard: NetGuard) -> None:
        super().__init__(trust_env=False)
        # httpx offers no argument for httpcore's network backend: the pool it built is replaced by the same
        # pool with our backend, which does the resolving and connecting.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_PinnedBackend(guard)
        )


class _PinnedBackend(httpcore.SyncBackend):
    def __init__(self, guard: NetGuard) -> None:
        self.guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.guard.vetted_addresses(host, port)
        except UnsafeURL as error:
            raise httpcore.ConnectError(f"refused: {error}") from None
        last_error: Exception | None = None
        for address in addresses:  # each of them checked above; connect to the checked one, never re-resolve
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        raise last_error or httpcore.ConnectError(f"no address to connect to for {host}")
