"""Turn what the user gave (paths, folders, globs, archives, URLs, buffers, arrays) into audio sources, safely.

Everything that arrives from outside is treated as hostile: archives cannot write outside a private temporary
folder, every size and count is bounded (``InputLimits``), and every problem becomes an ``InputError`` that is
yielded in place of the source, so that one bad input never stops the others.

    with open_sources(["a.wav", "clips/", "more.zip", "https://example.org/b.mp3"]) as sources:
        for source in sources:
            if isinstance(source, InputError):
                print(source)  # one line: "<input>: <problem>"
            else:
                waveform = load_audio(source)
"""

from __future__ import annotations

import bz2
import glob
import gzip
import itertools
import lzma
import os
import re
import stat
import struct
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

import httpx
import numpy as np

from audioclas.errors import InputError, printable
from audioclas.fileio import NotRegularFileError, open_regular
from audioclas.safetar import BoundedTarFile, TarHeaderError

MiB = 2**20
GiB = 2**30

AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .mp3 .ogg .oga .opus .m4a .aac .wma .aiff .aif .webm .mp4 .mkv .mov .avi .3gp .amr .caf .au .snd"
    " .mka".split()
)
COMPRESSORS: dict[str, Callable[[IO[bytes], str], IO[bytes]]] = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}
MAX_ZIP_ENTRY_BYTES = 1024  # zip directory bytes allowed per member (name, timestamps, zip64 sizes): bounds what
# zipfile loads into memory before we can count the members
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
GLOB_CHARS = re.compile(r"[*?[]")
COPY_BLOCK = MiB
ARCHIVE_ERRORS = (
    tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError, OSError
)


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
    array: np.ndarray | None = None
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
Input = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | tuple[np.ndarray, int] | AudioSource | HttpURL


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


@contextmanager
def open_sources(
    inputs: Input | Iterable[Input],
    limits: InputLimits = InputLimits(),
    *,
    url_guard: Callable[[str], None] | None = None,
    http_client: httpx.Client | None = None,
) -> Iterator[Iterator[AudioSource | InputError]]:
    """Expand ``inputs`` lazily into sources, or an ``InputError`` per input (or archive member) that cannot be used.

    A file given explicitly is always tried, whatever its extension; folders (recursively, sorted, files of a folder
    before its subfolders) and glob patterns (``**`` recursive) give only files with an audio extension, skipping
    hidden files and folders (``.*``, ``__MACOSX``). Zip and tar archives (also gz, bz2, xz compressed) give their
    audio members, named ``archive!member``; a single gz/bz2/xz-compressed file gives the file inside. Archives are
    recognised by their first bytes, not their names; nested archives are not opened, and bytes and file objects
    are always taken as one encoded file.
    URLs must be http(s) (a ``str`` that is not a URL is a path; pass ``HttpURL`` for input that must only ever be
    downloaded); ``url_guard(url)`` is called before connecting to the URL and to every redirect target,
    and refuses one by raising (for instance to block private addresses). ``http_client`` replaces the default
    ``httpx.Client``. Extracted and downloaded files live in a temporary folder that is deleted on exit, so decode
    the sources inside the ``with`` block.
    """
    if _is_single_input(inputs):
        inputs = [inputs]
    with tempfile.TemporaryDirectory(prefix="audioclas-") as temp_dir:
        expander = _Expander(Path(temp_dir), limits, url_guard, http_client)
        try:
            yield expander.expand_all(inputs)
        finally:
            expander.close()


def _is_single_input(value: Any) -> bool:
    return (
        isinstance(value, (str, bytes, bytearray, memoryview, os.PathLike, AudioSource, HttpURL))
        or hasattr(value, "read")
        or (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], np.ndarray))
    )


class _Expander:
    def __init__(self, temp_dir: Path, limits: InputLimits, url_guard, http_client: httpx.Client | None) -> None:
        self.temp_dir, self.limits, self.url_guard = temp_dir, limits, url_guard
        self.client, self.owns_client = http_client, http_client is None
        self.file_count = 0

    def close(self) -> None:
        if self.owns_client and self.client is not None:
            self.client.close()

    def new_temp_path(self) -> Path:
        """A fresh file in the temporary folder, named by a counter: no name from the input ever becomes a path."""
        self.file_count += 1
        return self.temp_dir / f"{self.file_count:06d}"

    def expand_all(self, inputs: Iterable[Input]) -> Iterator[AudioSource | InputError]:
        for item in inputs:
            try:
                yield from self.expand(item)
            except InputError as error:
                yield error

    def expand(self, item: Input) -> Iterator[AudioSource | InputError]:
        if isinstance(item, AudioSource):
            yield item
        elif isinstance(item, (bytes, bytearray, memoryview)):
            yield AudioSource("<bytes>", data=bytes(item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], np.ndarray):
            yield AudioSource("<array>", array=item[0], sample_rate=item[1])
        elif hasattr(item, "read"):
            yield self.read_file_object(item)
        elif isinstance(item, HttpURL):
            yield from self.expand_file(self.download(item.url), item.url)
        elif isinstance(item, str) and URL_PATTERN.match(item):
            yield from self.expand_file(self.download(item), item)
        elif isinstance(item, (str, os.PathLike)):
            yield from self.expand_path(os.fspath(item))
        else:
            raise InputError(repr(item)[:60], f"unsupported input type {type(item).__name__}")

    def expand_path(self, name: str) -> Iterator[AudioSource | InputError]:
        path = Path(name)
        try:
            is_dir, exists = path.is_dir(), path.exists() or path.is_symlink()
        except OSError as error:
            raise InputError(name, f"cannot read ({error.strerror or error})") from None
        if is_dir:
            yield from self.expand_files(_walk_audio(path), name, "no audio files in this folder")
        elif exists:
            yield from self.expand_file(path, name)
        elif GLOB_CHARS.search(name):
            matches = (Path(match) for match in glob.iglob(name, recursive=True))
            audio = (match for match in matches if _is_audio_name(match) and match.is_file())
            first = sorted(itertools.islice(audio, self.limits.max_folder_files + 1))
            yield from self.expand_files(first, name, "no audio files match this pattern")
        else:
            raise InputError(name, "no such file or directory")

    def expand_files(self, paths: Iterable[Path], name: str, none_found: str) -> Iterator[AudioSource | InputError]:
        count = 0
        for count, path in enumerate(paths, start=1):
            if count > self.limits.max_folder_files:
                raise InputError(name, f"more than {self.limits.max_folder_files} audio files; the rest were skipped")
            yield AudioSource(str(path), path=path)
        if count == 0:
            raise InputError(name, none_found)

    def expand_file(self, path: Path, name: str) -> Iterator[AudioSource | InputError]:
        """A local file: an archive is expanded, anything else is a source to try, whatever its extension."""
        kind = _archive_kind(path, name)
        if kind == "zip":
            yield from self.expand_zip(path, name)
        elif kind == "tar" or (kind is not None and _is_tar(path, name, kind)):
            yield from self.expand_tar(path, name, kind)
        elif kind is not None:
            yield self.decompress_single(path, name, kind)
        else:
            yield AudioSource(name, path=path)

    # Archives ------------------------------------------------------------------------------------------------------

    def expand_zip(self, path: Path, name: str) -> Iterator[AudioSource | InputError]:
        limit = self.limits.max_archive_members
        with open_input_file(path, name) as file:
            try:
                # zipfile builds an object for every entry of the central directory at once: bound it before that.
                directory_bytes = _zip_directory_bytes(file)
                if directory_bytes > limit * MAX_ZIP_ENTRY_BYTES:
                    problem = f"archive directory of {directory_bytes} bytes is too large for {limit} members"
                    raise InputError(name, problem)
                budget = _Budget(self.limits, os.fstat(file.fileno()).st_size)
                with zipfile.ZipFile(file) as archive:
                    members = archive.infolist()
                    if len(members) > limit:
                        raise InputError(name, f"archive has {len(members)} members, more than the limit of {limit}")
                    for info in members:
                        member_name = f"{name}!{info.filename}"
                        if info.is_dir() or not _is_audio_name(info.filename) or _is_hidden(info.filename):
                            continue
                        if problem := _zip_member_problem(info):
                            yield InputError(member_name, problem)
                            continue
                        try:
                            with archive.open(info) as member:
                                source = self.extract(budget.metered(member, member_name), info.file_size, member_name)
                        except InputError as error:
                            if budget.exhausted:
                                raise
                            source = error
                        except (*ARCHIVE_ERRORS, NotImplementedError) as error:
                            source = InputError(member_name, f"corrupt archive member ({error})")
                        yield source
            except ARCHIVE_ERRORS as error:
                raise InputError(name, f"corrupt zip archive ({error})") from None

    def expand_tar(self, path: Path, name: str, kind: str) -> Iterator[AudioSource | InputError]:
        """Read the tar once, start to end ("r|"), through a meter: decompressing headers and skipped members
        counts against the archive's budget too, so a bomb in a member we skip cannot run for hours."""
        limit = self.limits.max_archive_members
        try:
            budget = _Budget(self.limits, path.stat().st_size)
            with (
                _decompressed(path, name, kind) as raw,
                BoundedTarFile.open(fileobj=budget.metered(raw, name), mode="r|") as archive,
            ):
                for count, info in enumerate(archive, start=1):
                    if count > limit:
                        raise InputError(name, f"archive has more than {limit} members; the rest were skipped")
                    member_name = f"{name}!{info.name}"
                    if info.isdir() or not _is_audio_name(info.name) or _is_hidden(info.name):
                        continue
                    if problem := _tar_member_problem(info):
                        yield InputError(member_name, problem)
                        continue
                    try:
                        source = self.extract(archive.extractfile(info), info.size, member_name)
                    except InputError as error:
                        if budget.exhausted:
                            raise
                        source = error
                    yield source
        except TarHeaderError as error:
            raise InputError(name, str(error)) from None
        except ARCHIVE_ERRORS as error:
            raise InputError(name, f"corrupt tar archive ({error})") from None

    def decompress_single(self, path: Path, name: str, kind: str) -> AudioSource:
        inner = PurePosixPath(name.rstrip("/")).name
        inner = inner[: -len(kind) - 1] if inner.lower().endswith(f".{kind}") else inner
        member_name = f"{name}!{inner}"
        try:
            budget = _Budget(self.limits, path.stat().st_size)
            with _decompressed(path, name, kind) as member:
                return self.extract(budget.metered(member, member_name), None, member_name)
        except ARCHIVE_ERRORS as error:
            raise InputError(member_name, f"corrupt {kind} data ({error})") from None

    def extract(self, member: IO[bytes], declared_size: int | None, name: str) -> AudioSource:
        """Copy one member into the temporary folder, counting the bytes actually written, not trusting headers."""
        limit = self.limits.max_member_bytes
        if declared_size is not None and declared_size > limit:
            raise InputError(name, f"member is {declared_size} bytes, more than the limit of {limit}")
        target, written = self.new_temp_path(), 0
        try:
            with open(target, "wb") as out:
                while block := member.read(COPY_BLOCK):
                    written += len(block)
                    if written > limit:
                        raise InputError(name, f"member is larger than the limit of {limit} bytes")
                    out.write(block)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return AudioSource(name, path=target)

    # URLs and buffers ----------------------------------------------------------------------------------------------

    def download(self, url: str) -> Path:
        """GET ``url`` into the temporary folder, following redirects by hand so that the guard sees every hop."""
        limits, current = self.limits, url
        deadline = time.monotonic() + limits.max_download_seconds
        if self.client is None:
            self.client = httpx.Client()
        for _ in range(limits.max_redirects + 1):
            try:
                scheme = httpx.URL(current).scheme
                if scheme not in ("http", "https"):
                    raise InputError(url, f"only http and https URLs are supported, not {current.split(':')[0]}")
                self.check_url(url, current)
                self.check_deadline(url, deadline)
                timeout = min(limits.url_timeout, deadline - time.monotonic())  # no wait may end past the deadline
                with self.client.stream("GET", current, follow_redirects=False, timeout=timeout) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    if not response.is_success:
                        raise InputError(url, f"download failed: HTTP {response.status_code} {response.reason_phrase}")
                    return self.save_response(response, url, deadline)
            except httpx.TimeoutException:
                self.check_deadline(url, deadline)
                raise InputError(url, f"download timed out (no answer within {limits.url_timeout:g} s)") from None
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as error:
                raise InputError(url, f"download failed ({error})") from None
        raise InputError(url, f"more than {limits.max_redirects} redirects")

    def check_url(self, url: str, current: str) -> None:
        """Let the caller's guard refuse ``current`` (``url`` itself or a redirect target) before we connect."""
        if self.url_guard is None:
            return
        try:
            self.url_guard(current)
        except InputError:
            raise
        except Exception as error:
            raise InputError(url, f"refused to fetch {current} ({error})") from None

    def save_response(self, response: httpx.Response, url: str, deadline: float) -> Path:
        limit = self.limits.max_download_bytes
        too_big = f"download is larger than the limit of {limit} bytes"
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise InputError(url, too_big)
        target, received = self.new_temp_path(), 0
        with open(target, "wb") as out:
            for block in response.iter_bytes():  # each piece as it arrives, however small
                received += len(block)
                if received > limit:
                    raise InputError(url, too_big)
                self.check_deadline(url, deadline)
                out.write(block)
        return target

    def check_deadline(self, url: str, deadline: float) -> None:
        if time.monotonic() >= deadline:
            raise InputError(url, f"download took longer than {self.limits.max_download_seconds:g} s")

    def read_file_object(self, file: BinaryIO) -> AudioSource:
        name = file.name if isinstance(getattr(file, "name", None), str) else "<file>"
        limit = self.limits.max_download_bytes
        try:
            data = file.read(limit + 1)
        except (OSError, ValueError) as error:
            raise InputError(name, f"cannot read ({error})") from None
        if isinstance(data, str):
            raise InputError(name, "is a text stream; open the file in binary mode ('rb')")
        if len(data) > limit:
            raise InputError(name, f"larger than the limit of {limit} bytes")
        return AudioSource(name, data=bytes(data))


class _Budget:
    """Decompressed bytes one archive may still produce: the bound on its total and on its compression ratio."""

    def __init__(self, limits: InputLimits, archive_bytes: int) -> None:
        self.limits, self.archive_bytes = limits, max(archive_bytes, 1)
        self.produced = 0
        self.exhausted = False

    def metered(self, file: IO[bytes], name: str) -> _MeteredReader:
        return _MeteredReader(file, self, name)

    def spend(self, count: int, name: str) -> None:
        self.produced += count
        limits = self.limits
        if self.produced > limits.max_archive_bytes:
            problem = f"archive expands to more than {limits.max_archive_bytes} bytes; stopped here"
        elif self.produced > max(limits.ratio_check_bytes, limits.max_compression_ratio * self.archive_bytes):
            ratio = f"{limits.max_compression_ratio:g}"
            problem = f"archive expands to more than {ratio} times its size (a zip bomb?); stopped here"
        else:
            return
        self.exhausted = True
        raise InputError(name, problem)


class _MeteredReader:
    """A read-only file that charges every byte it returns to a budget; errors name ``name``."""

    def __init__(self, file: IO[bytes], budget: _Budget, name: str) -> None:
        self.file, self.budget, self.name = file, budget, name

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size if size >= 0 else COPY_BLOCK)
        self.budget.spend(len(data), self.name)
        return data


def _walk_audio(folder: Path) -> Iterator[Path]:
    """Audio files under ``folder`` in sorted order, without following symlinked folders (no loops)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
        for file in sorted(files):
            if _is_audio_name(file) and not _is_hidden(file):
                yield Path(root, file)


def _is_audio_name(name: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(name))[1].lower() in AUDIO_EXTENSIONS


def _is_hidden(name: str) -> bool:
    parts = re.split(r"[/\\]", name)
    return any((part.startswith(".") and part not in (".", "..")) or part == "__MACOSX" for part in parts)


def _unsafe_name(name: str) -> str | None:
    """Why a member name could escape the extraction folder (we never use it as a path, but refuse it anyway)."""
    parts = PurePosixPath(name.replace("\\", "/"))
    if parts.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "unsafe member path (absolute)"
    if ".." in parts.parts:
        return "unsafe member path (contains '..')"
    return None


def _zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    file_type = stat.S_IFMT(info.external_attr >> 16)  # from the Unix mode bits; 0 when the zip has none
    if problem := _unsafe_name(info.filename):
        return problem
    if file_type not in (0, stat.S_IFREG):
        return "is a symbolic link or special file, not a regular file"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def _tar_member_problem(info: tarfile.TarInfo) -> str | None:
    if problem := _unsafe_name(info.name):
        return problem
    if info.isreg():
        return None
    if info.issym():
        return "is a symbolic link, not a regular file"
    if info.islnk():
        return "is a hard link, not a regular file"
    return "is a device or special file, not a regular file"


def open_input_file(path: Path, name: str) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (a FIFO or device could block a reader forever or never
    end); otherwise an ``InputError`` naming ``name``."""
    try:
        return open_regular(path)
    except IsADirectoryError:
        raise InputError(name, "is a folder, not a file") from None
    except FileNotFoundError:
        raise InputError(name, "no such file or directory") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except NotRegularFileError as error:
        raise InputError(name, error.strerror) from None
    except OSError as error:
        raise InputError(name, f"cannot read ({error.strerror or error})") from None


@contextmanager
def _decompressed(path: Path, name: str, kind: str) -> Iterator[IO[bytes]]:
    """The bytes of the file at ``path``, decompressed when ``kind`` is 'gz', 'bz2' or 'xz'."""
    with open_input_file(path, name) as file:
        if kind not in COMPRESSORS:
            yield file
            return
        with COMPRESSORS[kind](file, "rb") as inner:
            yield inner


def _archive_kind(path: Path, name: str) -> str | None:
    """'zip', 'tar', 'gz', 'bz2', 'xz' from the file's first bytes (not its name), or None for anything else."""
    with open_input_file(path, name) as file:
        try:
            head = file.read(512)
        except OSError as error:
            raise InputError(name, f"cannot read ({error.strerror or error})") from None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def _is_tar(path: Path, name: str, kind: str) -> bool:
    """Whether a compressed file holds a tar archive rather than a single file."""
    try:
        with _decompressed(path, name, kind) as raw, BoundedTarFile.open(fileobj=raw, mode="r|") as archive:
            return archive.next() is not None
    except TarHeaderError:
        return True  # expand_tar says what is wrong with it
    except ARCHIVE_ERRORS:
        return False


def _zip_directory_bytes(file: BinaryIO) -> int:
    """Size of the central directory, as the zip's end record announces it; 0 when there is no end record
    (``zipfile`` then reports the archive as corrupt)."""
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - (22 + 65535)))  # the end record, then at most a 64 KiB comment
    tail = file.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return 0
    directory_bytes = struct.unpack_from("<I", tail, end + 12)[0]
    locator = end - 20  # zip64 keeps the real size in a record that this locator points to
    if directory_bytes == 0xFFFFFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        file.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
        record = file.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            directory_bytes = struct.unpack_from("<Q", record, 40)[0]
    return directory_bytes


__all__ = ["AUDIO_EXTENSIONS", "AudioSource", "HttpURL", "InputLimits", "open_input_file", "open_sources"]
