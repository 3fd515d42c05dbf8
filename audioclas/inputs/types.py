"""What ``open_sources`` takes and gives: the ``Input`` kinds, the ``AudioSource`` it yields, ``HttpURL`` for input
that may only be downloaded, the ``InputLimits`` that bound what expanding inputs may cost, and the ``Workspace``
(temporary folder and limits) of one expansion."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy.typing as npt

from audioclas.errors import InputError, printable
from audioclas.inputs.rules import is_audio_name

MiB = 2**20
GiB = 2**30


@dataclass(frozen=True, eq=False)
class AudioSource:
    """One piece of audio to decode, and the name that results and errors show for it.

    ``name`` is the path as given, ``archive.zip!member/path.wav``, the URL, ``<bytes>`` or ``<array>``, made
    ``printable`` (it is only ever shown, never opened).
    Exactly one payload is set:

    - ``path``: a local file PyAV can open (for archives and URLs, a file in the temporary folder);
    - ``data``: the bytes of an encoded file;
    - ``array`` with ``sample_rate``: audio that is already decoded, shaped (N,) for mono, or 2-D as (N, C) or
      (C, N): the shorter axis is taken as channels. Integer samples are scaled to [-1, 1] (int16 / 32768, ...).
    """

    name: str
    path: Path | None = None
    array: npt.NDArray[Any] | None = None
    sample_rate: int | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", printable(self.name))
        if sum(payload is not None for payload in (self.path, self.array, self.data)) != 1:
            raise ValueError("an AudioSource holds exactly one of path, array and data")
        if (self.array is None) != (self.sample_rate is None):
            raise ValueError("sample_rate goes with array, and only with array")


@dataclass(frozen=True)
class HttpURL:
    """An input that can only be downloaded, never taken for a local path, folder or glob (a ``str`` that is not a
    URL is a path): what a service passes for a URL a stranger sent. Raises ``InputError`` unless ``url`` is an
    absolute http(s) URL with a host."""

    url: str

    def __post_init__(self) -> None:
        import httpx  # imported when a URL is given, not by every process (0.15 s)

        try:
            parsed = httpx.URL(self.url)
        except httpx.InvalidURL as error:
            raise InputError(self.url, f"invalid URL ({error})") from None
        if not parsed.scheme:
            raise InputError(self.url, "not a URL; only http and https URLs are supported")
        if parsed.scheme not in ("http", "https"):
            raise InputError(self.url, f"only http and https URLs are supported, not {parsed.scheme}")
        if not parsed.host:
            raise InputError(self.url, "the URL has no host; only http and https URLs with a host are supported")


# What a user may pass; an AudioSource is passed through unchanged.
Input = (
    str
    | os.PathLike[str]
    | bytes
    | bytearray
    | memoryview
    | BinaryIO
    | tuple[npt.NDArray[Any], int]
    | AudioSource
    | HttpURL
)


@dataclass(frozen=True)
class OpenedSources:
    """Sources a caller has already opened with ``open_sources`` (a batch worker watching each one as it is
    decoded): the ``Tagger`` consumes them lazily as they are, instead of opening its inputs itself."""

    items: Iterable[AudioSource | InputError]


@dataclass(frozen=True)
class InputLimits:
    """Bounds on what expanding inputs may cost. The defaults suit a desktop; a public service should lower them.

    The archive bounds count decompressed bytes as they are produced, never trusting headers (for a tar, headers
    and members that are skipped count too). An archive may expand to at most ``max_compression_ratio`` times its
    own size, checked only past ``ratio_check_bytes``, so that small, highly compressible files (silence) are not
    taken for bombs.
    """

    max_folder_files: int = 1_000_000  # audio files taken from one folder or glob pattern
    max_archive_members: int = 10_000  # entries in one archive, folders and skipped files included
    max_member_bytes: int = 2 * GiB  # one extracted member
    max_archive_bytes: int = 4 * GiB  # everything extracted from one archive
    max_compression_ratio: float = 200.0
    ratio_check_bytes: int = 64 * MiB
    max_download_bytes: int = 1 * GiB  # one URL download, or one read of a file-like object
    url_timeout: float = 30.0  # seconds to connect, and between two pieces of a download
    max_download_seconds: float = 600.0  # whole download, redirects included, so that a slow trickle cannot hold a
    # worker forever: checked on every piece received, and no read waits past it
    max_redirects: int = 5


class Workspace:
    """The private temporary folder that extracted and downloaded files go to, and the limits of one expansion."""

    def __init__(self, folder: Path, limits: InputLimits) -> None:
        self.folder, self.limits = folder, limits
        self.file_count = 0

    def wants(self, member: str) -> bool:
        """Whether an archive member named ``member`` is extracted (here: audio names; ``trees``: every file)."""
        return is_audio_name(member)

    def new_path(self, member: str = "", name: str = "") -> Path:
        """A fresh file in the temporary folder, named by a counter: no name from the input ever becomes a path
        (``member``, the member's path in its archive, and ``name``, as errors show it, are not used here)."""
        self.file_count += 1
        return self.folder / f"{self.file_count:06d}"
