"""URL inputs (``audioclas.inputs.urls``). There is no internet in tests: URLs are served by
``httpx.MockTransport``, which stands in for the network only; everything after the HTTP response (size bounds,
redirects, the guard, saving, decoding) is the real code.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import httpx
import pytest
from expand import expand

from audioclas.errors import InputError
from audioclas.inputs import HttpURL, InputLimits

pytestmark = pytest.mark.unit


def serve(routes: dict[str, httpx.Response | Exception]) -> httpx.Client:
    """An httpx client whose transport answers from ``routes`` (URL -> response, or exception to raise)."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = routes.get(str(request.url), httpx.Response(404))
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_url_download(robin_bytes: bytes) -> None:
    client = serve({"https://example.org/robin.ogg": httpx.Response(200, content=robin_bytes)})
    assert expand(["https://example.org/robin.ogg", "https://example.org/gone.ogg"], http_client=client) == [
        ("https://example.org/robin.ogg", "ok"),
        ("https://example.org/gone.ogg", "download failed: HTTP 404 Not Found"),
    ]


def test_url_archive_is_expanded(robin_bytes: bytes) -> None:
    client = serve({"http://example.org/get?id=7": httpx.Response(200, content=gzip.compress(robin_bytes))})
    results = expand(["http://example.org/get?id=7"], http_client=client)
    assert results == [("http://example.org/get?id=7!get?id=7", "ok")]


def test_url_size_bound_from_header_and_while_streaming(robin_bytes: bytes) -> None:
    limit = len(robin_bytes) - 1
    streamed = (robin_bytes[i : i + 1000] for i in range(0, len(robin_bytes), 1000))  # no Content-Length
    client = serve(
        {
            "https://example.org/declared.ogg": httpx.Response(200, content=robin_bytes),
            "https://example.org/streamed.ogg": httpx.Response(200, content=streamed),
        }
    )
    too_big = f"download is larger than the limit of {limit} bytes"
    results = expand(
        ["https://example.org/declared.ogg", "https://example.org/streamed.ogg"],
        InputLimits(max_download_bytes=limit),
        http_client=client,
    )
    assert results == [("https://example.org/declared.ogg", too_big), ("https://example.org/streamed.ogg", too_big)]


def test_only_http_and_https() -> None:
    client = serve({})  # answers 404 to anything; the schemes below must never reach it
    results = expand(["file:///etc/passwd", "ftp://example.org/a.wav", "gopher://x/a.wav"], http_client=client)
    assert [problem for _, problem in results] == [
        "only http and https URLs are supported, not file",
        "only http and https URLs are supported, not ftp",
        "only http and https URLs are supported, not gopher",
    ]


def test_http_url_inputs_are_never_paths(tmp_path: Path, robin_bytes: bytes) -> None:
    """``HttpURL`` is what a service passes for a stranger's URL: it is downloaded or refused, never opened,
    walked or globbed, even when a file of that name exists."""
    (tmp_path / "robin.ogg").write_bytes(robin_bytes)
    for text in [str(tmp_path / "robin.ogg"), str(tmp_path), f"{tmp_path}/*.ogg", "robin.ogg", f"file://{tmp_path}"]:
        with pytest.raises(InputError, match="only http and https URLs are supported"):
            HttpURL(text)
    with pytest.raises(InputError, match="the URL has no host"):
        HttpURL(f"http:{tmp_path}/robin.ogg")
    client = serve({"https://example.org/robin.ogg": httpx.Response(200, content=robin_bytes)})
    assert expand(HttpURL("https://example.org/robin.ogg"), http_client=client) == [
        ("https://example.org/robin.ogg", "ok")
    ]


def test_redirects_are_followed_by_hand_and_guarded(robin_bytes: bytes) -> None:
    client = serve(
        {
            "https://example.org/a": httpx.Response(302, headers={"location": "/b"}),
            "https://example.org/b": httpx.Response(301, headers={"location": "https://cdn.example.net/robin.ogg"}),
            "https://cdn.example.net/robin.ogg": httpx.Response(200, content=robin_bytes),
            "https://example.org/internal": httpx.Response(302, headers={"location": "http://10.0.0.1/secret.wav"}),
            "https://example.org/local": httpx.Response(302, headers={"location": "file:///etc/passwd"}),
            "https://example.org/loop": httpx.Response(302, headers={"location": "/loop"}),
        }
    )
    seen = []

    def guard(url: str) -> None:
        seen.append(url)
        if url.startswith("http://10."):
            raise ValueError("private address")

    inputs = [f"https://example.org/{path}" for path in ["a", "internal", "local", "loop"]]
    results = expand(inputs, url_guard=guard, http_client=client)
    assert results == [
        ("https://example.org/a", "ok"),
        ("https://example.org/internal", "refused to fetch http://10.0.0.1/secret.wav (private address)"),
        ("https://example.org/local", "only http and https URLs are supported, not file"),
        ("https://example.org/loop", "more than 5 redirects"),
    ]
    hops = [inputs[0], "https://example.org/b", "https://cdn.example.net/robin.ogg"]
    assert seen[:5] == [*hops, inputs[1], "http://10.0.0.1/secret.wav"]


def test_url_timeout_and_connection_errors(robin_bytes: bytes) -> None:
    client = serve(
        {
            "https://slow.example.org/a.ogg": httpx.ReadTimeout("timed out"),
            "https://down.example.org/a.ogg": httpx.ConnectError("connection refused"),
        }
    )
    inputs = ["https://slow.example.org/a.ogg", "https://down.example.org/a.ogg"]
    results = expand(inputs, InputLimits(url_timeout=5), http_client=client)
    assert results == [
        ("https://slow.example.org/a.ogg", "download timed out (no answer within 5 s)"),
        ("https://down.example.org/a.ogg", "download failed (connection refused)"),
    ]


def test_a_trickling_download_stops_at_the_deadline(robin_bytes: bytes) -> None:
    """A server that sends 100 bytes every 50 ms (the mock transport stands in for it) would take 45 s for the
    robin clip: the deadline of the whole download is checked on every piece, not once per MiB."""

    def trickle():
        for start in range(0, len(robin_bytes), 100):
            time.sleep(0.05)
            yield robin_bytes[start : start + 100]

    client = serve({"https://trickle.example.org/a.ogg": httpx.Response(200, content=trickle())})
    started = time.monotonic()
    results = expand(["https://trickle.example.org/a.ogg"], InputLimits(max_download_seconds=0.5), http_client=client)
    assert results == [("https://trickle.example.org/a.ogg", "download took longer than 0.5 s")]
    assert time.monotonic() - started < 0.5 + 1.0
