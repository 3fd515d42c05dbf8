"""Find, download and verify the EfficientAT mn04_as checkpoint.

Resolution order: an explicit path -> ``AUDIOCLAS_WEIGHTS`` (the file, or a folder holding it) -> the user
cache -> a download from the upstream GitHub release into the cache. Every file is checked against its
published sha256 before use.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from .errors import WeightsError
from .fileio import file_sha256
from .settings import cache_dir

if TYPE_CHECKING:
    import httpx

WEIGHTS_FILENAME = "mn04_as_mAP_432.pt"
WEIGHTS_URL = f"https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/{WEIGHTS_FILENAME}"
WEIGHTS_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
WEIGHTS_ENV = "AUDIOCLAS_WEIGHTS"
MAX_DOWNLOAD_BYTES = 64 * 2**20  # the real file is 4 MB; refuse anything absurd
DOWNLOAD_TIMEOUT_SECONDS = 30.0

_verified: set[tuple[str, int, int]] = set()  # (path, mtime_ns, size) of files whose hash matched


def cached_weights_path() -> Path:
    return cache_dir() / "weights" / WEIGHTS_FILENAME


def _where_to_put_it() -> str:
    return (
        f"put {WEIGHTS_FILENAME} (from {WEIGHTS_URL}) at {cached_weights_path()}, "
        f"or set {WEIGHTS_ENV} to the file or its folder"
    )


def _verified_file(path: Path, origin: str) -> Path:
    """``path`` if it is a file with the right sha256, else WeightsError naming ``origin``."""
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} ({origin})")
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in _verified:
            if file_sha256(path) != WEIGHTS_SHA256:
                raise WeightsError(
                    f"weights file {path} ({origin}) is corrupt or not {WEIGHTS_FILENAME}: "
                    f"its sha256 is not {WEIGHTS_SHA256}"
                )
            _verified.add(key)
    except OSError as error:
        raise WeightsError(f"cannot read weights file {path} ({origin}): {error.strerror or error}") from None
    return path


def _stream_download(client: httpx.Client, file: IO[bytes]) -> str:
    """Write WEIGHTS_URL into ``file`` with a progress bar on stderr; returns the sha256 of what came."""
    digest = hashlib.sha256()
    with client.stream("GET", WEIGHTS_URL, follow_redirects=True) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length") or 0) or None
        progress = Progress(
            TextColumn(f"downloading {WEIGHTS_FILENAME}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        with progress:
            task = progress.add_task("download", total=total)
            for chunk in response.iter_bytes(1 << 16):
                digest.update(chunk)
                file.write(chunk)
                progress.update(task, advance=len(chunk))
                if file.tell() > MAX_DOWNLOAD_BYTES:
                    raise WeightsError(f"refusing to download {WEIGHTS_URL}: more than {MAX_DOWNLOAD_BYTES} bytes")
    return digest.hexdigest()


def download_weights(destination: Path, client: httpx.Client | None = None) -> Path:
    """Download the checkpoint to ``destination``, atomically and only if its sha256 matches."""
    import httpx  # only a process that downloads pays for importing it (0.15 s)

    own_client = client is None
    client = client or httpx.Client(timeout=DOWNLOAD_TIMEOUT_SECONDS)
    temp: Path | None = None
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=destination.parent, prefix=f".{WEIGHTS_FILENAME}.", suffix=".part", delete=False
        ) as file:
            temp = Path(file.name)
            sha256 = _stream_download(client, file)
        if sha256 != WEIGHTS_SHA256:
            raise WeightsError(
                f"downloaded {WEIGHTS_URL} but its sha256 is {sha256}, not {WEIGHTS_SHA256}; "
                f"nothing was saved. {_where_to_put_it()}"
            )
        os.replace(temp, destination)
    except httpx.HTTPError as error:
        raise WeightsError(
            f"could not download the EfficientAT weights from {WEIGHTS_URL} "
            f"({type(error).__name__}: {error}); {_where_to_put_it()}"
        ) from None
    except OSError as error:
        raise WeightsError(
            f"could not save the EfficientAT weights to {destination} ({error}); {_where_to_put_it()}"
        ) from None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
        if own_client:
            client.close()
    stat = destination.stat()
    _verified.add((str(destination.resolve()), stat.st_mtime_ns, stat.st_size))
    return destination


def resolve_weights(path: str | Path | None = None, client: httpx.Client | None = None) -> Path:
    """Path of a verified checkpoint, downloading it into the cache if needed (``client`` is for tests)."""
    if path is not None:
        return _verified_file(Path(path).expanduser(), "given explicitly")
    if env := os.environ.get(WEIGHTS_ENV):
        candidate = Path(env).expanduser()
        if candidate.is_dir():
            candidate /= WEIGHTS_FILENAME
        return _verified_file(candidate, f"from {WEIGHTS_ENV}")
    cached = cached_weights_path()
    if cached.is_file():
        return _verified_file(cached, "in the cache")
    return download_weights(cached, client)
