"""Where the checkpoint comes from, and that nothing unverified is ever used or left behind."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from audioclas.errors import WeightsError
from audioclas.weights import WEIGHTS_FILENAME, WEIGHTS_SHA256, WEIGHTS_URL, file_sha256, resolve_weights

RELEASE_ASSET = "https://objects.githubusercontent.com/release-asset/mn04_as_mAP_432.pt"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache and no AUDIOCLAS_WEIGHTS: resolution falls through to the cache and the download."""
    monkeypatch.setenv("AUDIOCLAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("AUDIOCLAS_WEIGHTS", raising=False)
    return tmp_path / "cache"


def corrupt_copy(source: Path, target: Path) -> Path:
    """Same size as the real checkpoint, one byte changed."""
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(data))
    return target


def github(body: bytes, status: int = 200) -> httpx.Client:
    """The internet is not reachable from tests: this mock stands in for GitHub's release download
    (a redirect to the asset host, then the bytes)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == WEIGHTS_URL:
            return httpx.Response(302, headers={"location": RELEASE_ASSET})
        assert str(request.url) == RELEASE_ASSET
        return httpx.Response(status, content=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_checkpoint_hash(weights_path):
    assert file_sha256(weights_path) == WEIGHTS_SHA256


def test_explicit_path_wins(weights_path, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCLAS_WEIGHTS", str(corrupt_copy(weights_path, tmp_path / "bad.pt")))
    assert resolve_weights(weights_path) == weights_path
    assert resolve_weights(str(weights_path)) == weights_path


def test_env_file_then_folder(weights_path, monkeypatch):
    monkeypatch.setenv("AUDIOCLAS_WEIGHTS", str(weights_path))
    assert resolve_weights() == weights_path
    monkeypatch.setenv("AUDIOCLAS_WEIGHTS", str(weights_path.parent))
    assert resolve_weights() == weights_path


def test_env_beats_cache(weights_path, cache, monkeypatch):
    corrupt_copy(weights_path, cache / "weights" / WEIGHTS_FILENAME)
    monkeypatch.setenv("AUDIOCLAS_WEIGHTS", str(weights_path.parent))
    assert resolve_weights() == weights_path


@pytest.mark.unit
def test_env_folder_without_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCLAS_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"not found.*AUDIOCLAS_WEIGHTS"):
        resolve_weights()


def test_cache(weights_path, cache):
    cached = cache / "weights" / WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    shutil.copyfile(weights_path, cached)
    assert resolve_weights(client=github(b"", status=500)) == cached


def test_wrong_hash_names_the_file(weights_path, tmp_path):
    bad = corrupt_copy(weights_path, tmp_path / WEIGHTS_FILENAME)
    with pytest.raises(WeightsError, match=re.escape(str(bad))):
        resolve_weights(bad)


def test_file_changed_after_verification_is_rechecked(weights_path, tmp_path):
    copy = tmp_path / WEIGHTS_FILENAME
    shutil.copyfile(weights_path, copy)
    assert resolve_weights(copy) == copy
    corrupt_copy(weights_path, copy)
    os.utime(copy, ns=(0, 10**9))  # a different mtime, as any rewrite gives; the size stays the same
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights(copy)


def test_download_into_cache(weights_path, cache):
    resolved = resolve_weights(client=github(weights_path.read_bytes()))
    assert resolved == cache / "weights" / WEIGHTS_FILENAME
    assert file_sha256(resolved) == WEIGHTS_SHA256
    assert os.listdir(resolved.parent) == [WEIGHTS_FILENAME]  # no temp file left behind


def test_corrupt_download_leaves_nothing(weights_path, cache):
    body = corrupt_copy(weights_path, cache.parent / "bad.pt").read_bytes()
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights(client=github(body))
    assert os.listdir(cache / "weights") == []


def offline() -> httpx.Client:
    """No network at all (mocked: tests must not depend on the internet)."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("network unreachable", request=request)

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.unit
@pytest.mark.parametrize("make_client", [lambda: github(b"Not Found", status=404), offline], ids=["404", "offline"])
def test_no_weights_anywhere_says_where_to_put_them(cache, make_client):
    with pytest.raises(WeightsError) as error:
        resolve_weights(client=make_client())
    message = str(error.value)
    assert str(cache / "weights" / WEIGHTS_FILENAME) in message and "AUDIOCLAS_WEIGHTS" in message
    assert os.listdir(cache / "weights") == []
