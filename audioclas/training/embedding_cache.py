"""Window embeddings computed once per (audio content, backbone, window settings) and reused by every later run.

Layout: ``cache_dir()/embeddings/<backbone sha256[:16]>-<window settings>/<key[:2]>/<key>.npz``, the key being the
content sha256 of the audio file (with ``-<start>-<end>`` for a segment cut from it), one small file per clip
holding ``windows`` (n, 384) float32, ``starts`` (n,) seconds and ``duration``.
Each entry is written to a temporary file and renamed into place, so an interrupted extraction leaves only
complete entries and the next run computes just the missing ones. An entry that fails to load is recomputed.

Extraction runs through ``Tagger.embed_many``: a background thread decodes (PyAV + soxr release the GIL) while the
network runs on batches of windows from consecutive files.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from audioclas.architecture import EMBEDDING_DIM
from audioclas.errors import InputError
from audioclas.fileio import atomic_open
from audioclas.settings import cache_dir
from audioclas.training.cuts import Cut
from audioclas.windows import WindowSettings

if TYPE_CHECKING:
    from audioclas.tagger import ClipEmbedding

CACHE_FORMAT = 1
CHUNK_FILES = 256  # files handed to the network per call: bounds the memory of queued inputs
MANIFEST = "embeddings.json"  # written beside exported embeddings: backbone and window settings


@dataclass(frozen=True)
class ClipWindows:
    """The cached embeddings of one audio file."""

    windows: np.ndarray  # (n, 384) float32
    starts: np.ndarray  # (n,) seconds
    duration: float


def settings_tag(settings: WindowSettings) -> str:
    return f"w{settings.window:g}-h{settings.hop_seconds:g}-{settings.pad}"


def cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
    """True when a cancellation flag (an Event or a callable) says stop."""
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


class PathEmbedder(Protocol):
    """What ``extract`` computes embeddings with: ``Tagger.embed_many`` over audio files (or cuts of them), one
    result per item."""

    def embed_many(
        self, paths: list[Path | Cut], settings: WindowSettings
    ) -> Generator[ClipEmbedding | InputError, None, None]: ...


class EmbeddingCache:
    """The cache for one backbone and one window setting."""

    def __init__(self, model_id: str, settings: WindowSettings, root: Path | None = None) -> None:
        self.model_id = model_id
        self.settings = settings
        self.folder = (root or cache_dir() / "embeddings") / f"v{CACHE_FORMAT}-{model_id[:16]}-{settings_tag(settings)}"

    def path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / f"{sha256}.npz"

    def get(self, sha256: str) -> ClipWindows | None:
        """The entry, or None if it is absent or unreadable (a damaged entry is removed, to be recomputed)."""
        path = self.path(sha256)
        try:
            with np.load(path, allow_pickle=False) as entry:
                windows, starts, duration = entry["windows"], entry["starts"], float(entry["duration"])
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
            path.unlink(missing_ok=True)
            return None
        if windows.ndim != 2 or windows.shape[1] != EMBEDDING_DIM or not len(windows) or len(starts) != len(windows):
            path.unlink(missing_ok=True)
            return None
        return ClipWindows(windows.astype(np.float32, copy=False), starts, duration)

    def put(self, sha256: str, clip: ClipWindows) -> None:
        with atomic_open(self.path(sha256), "wb") as stream:
            np.savez(
                stream,
                windows=clip.windows.astype(np.float32),
                starts=clip.starts.astype(np.float64),
                duration=np.float64(clip.duration),
            )

    def __contains__(self, sha256: str) -> bool:
        return self.path(sha256).is_file()


@dataclass
class Extraction:
    """What ``extract`` found: embeddings and failures per content hash, and how many were computed."""

    clips: dict[str, ClipWindows]
    errors: dict[str, InputError]  # by key (content sha256[-segment]), each naming the path it was read from
    computed: int
    cancelled: bool = False


def extract(
    files: Sequence[tuple[Path | Cut, str]],
    cache: EmbeddingCache,
    tagger_factory: Callable[[], PathEmbedder],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> Extraction:
    """Embeddings of ``files`` ((path or cut, key) pairs), computing only those not cached yet. The key is the
    content sha256 of a file, with the segment for a cut (see ``Example.key``), so that each cut is cached apart.

    ``tagger_factory`` is called (once) only if something must be computed, so a fully cached run never loads the
    network. ``progress(done, total)`` counts files; ``cancel`` stops between files, keeping what was written.
    """
    unique: dict[str, Path | Cut] = {}
    for path, sha256 in files:
        unique.setdefault(sha256, path)
    clips: dict[str, ClipWindows] = {}
    missing: list[tuple[Path | Cut, str]] = []
    for sha256, path in unique.items():
        entry = cache.get(sha256)
        if entry is None:
            missing.append((path, sha256))
        else:
            clips[sha256] = entry
    done, total = len(clips), len(unique)
    if progress:
        progress(done, total)
    errors: dict[str, InputError] = {}
    computed = 0
    if missing:
        tagger = tagger_factory()
        for start in range(0, len(missing), CHUNK_FILES):
            chunk = missing[start : start + CHUNK_FILES]
            if cancelled(cancel):
                return Extraction(clips, errors, computed, cancelled=True)
            results = _embed(tagger, [path for path, _ in chunk], cache.settings)
            try:
                for (path, sha256), result in zip(chunk, results):
                    if isinstance(result, InputError):
                        errors[sha256] = result.renamed(str(path))
                    else:
                        clip = ClipWindows(result.windows, result.starts, result.duration)
                        cache.put(sha256, clip)
                        clips[sha256] = clip
                        computed += 1
                    done += 1
                    if progress:
                        progress(done, total)
                    if cancelled(cancel):
                        return Extraction(clips, errors, computed, cancelled=True)
            finally:
                results.close()
    return Extraction(clips, errors, computed)


def _embed(
    tagger: PathEmbedder, paths: list[Path | Cut], settings: WindowSettings
) -> Generator[ClipEmbedding | InputError, None, None]:
    return tagger.embed_many(paths, settings)


# ---------------------------------------------------------------- precomputed embeddings outside the cache


def export_embeddings(
    clips: Iterable[tuple[str, ClipWindows]], folder: Path, model_id: str, settings: WindowSettings
) -> int:
    """Write ``folder/<relative path>.npy`` ((n, 384) float32) for each (relative path, clip) and a manifest."""
    count = 0
    for relative, clip in clips:
        with atomic_open(folder / f"{relative}.npy", "wb") as stream:
            np.save(stream, clip.windows.astype(np.float32))
        count += 1
    manifest = {"backbone_sha256": model_id, "window": settings.window, "hop": settings.hop, "pad": settings.pad}
    with atomic_open(folder / MANIFEST, "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2)
    return count


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest written by ``export_embeddings``, or None when the folder has none."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return manifest


def load_precomputed(path: Path) -> ClipWindows | str:
    """One precomputed embedding file ((n, 384) or (384,) float32 .npy), or the problem with it."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        return f"not a readable .npy file ({error})"
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != EMBEDDING_DIM or not len(array):
        return f"expected an array of shape (windows, {EMBEDDING_DIM}), got {array.shape}"
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        return "embeddings must be finite floating-point numbers"
    return ClipWindows(array.astype(np.float32), np.zeros(len(array)), 0.0)
