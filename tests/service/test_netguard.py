"""The URL policy: which addresses are refused, and that connections go to the address that was checked.

DNS is the one thing replaced here: a resolver function stands in for answers a hostile name server could
give (a rebinding name), since the test cannot own a real domain. Connections are real, to a loopback server.
"""

from __future__ import annotations

import http.server
import re
import threading

import httpx
import pytest

from audioclas.service.netguard import NetGuard, UnsafeURL, address_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("100.64.0.1", "not a public address"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("192.0.2.7", "private"),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_policy(address: str, problem: str | None) -> None:
    found = address_problem(address)
    assert (found is None) if problem is None else (problem in found)


@pytest.fixture(scope="module")
def local_site():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"host header: {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield site.server_address[1]
    site.shutdown()


def test_connections_go_to_the_checked_address(local_site: int) -> None:
    """A name only our resolver knows still reaches the server: the client connects to the vetted address,
    never resolving again, and keeps the name in the Host header."""
    guard = NetGuard(allow_private=True, resolver=lambda host, port: ["127.0.0.1"])
    with guard.client() as client:
        response = client.get(f"http://audio.rebind.test:{local_site}/clip.ogg")
    assert response.text == f"host header: audio.rebind.test:{local_site}"


def test_dns_rebinding_is_refused_at_connect(local_site: int) -> None:
    """The first lookup (the URL check) says public, the second (at connect) says loopback: refused."""
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    guard = NetGuard(resolver=lambda host, port: next(answers))
    url = f"http://audio.rebind.test:{local_site}/clip.ogg"
    guard.check_url(url)  # passes: the name looks public
    with (
        guard.client() as client,
        pytest.raises(httpx.ConnectError, match=re.escape("resolves to 127.0.0.1, a loopback")),
    ):
        client.get(url)


def test_a_name_with_any_private_address_is_refused() -> None:
    guard = NetGuard(resolver=lambda host, port: ["93.184.215.14", "10.0.0.7"])
    with pytest.raises(UnsafeURL, match=re.escape("resolves to 10.0.0.7, a private address")):
        guard.check_url("https://mixed.example/a.ogg")


def test_environment_proxies_are_ignored(local_site: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy would connect on our behalf to wherever it resolves: the guarded client never uses one."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    guard = NetGuard(allow_private=True, resolver=lambda host, port: ["127.0.0.1"])
    with guard.client() as client:
        assert client.get(f"http://site.test:{local_site}/").status_code == 200


def test_unresolvable_names_and_bad_urls() -> None:
    guard = NetGuard()
    with pytest.raises(UnsafeURL, match="cannot resolve"):
        guard.check_url("http://no-such-host.invalid/a.ogg")
    with pytest.raises(UnsafeURL, match="only http and https"):
        guard.check_url("gopher://example.org/")
    with pytest.raises(UnsafeURL, match="no host"):
        guard.check_url("http:///a.ogg")
