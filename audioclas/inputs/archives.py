"""Archives from strangers: zip and tar (also gz, bz2, xz compressed) give their audio members, a single gz, bz2
or xz file gives the file inside. Archives are recognised by their first bytes, not their names; nested archives
are not opened.

Nothing is trusted: member names are never used as paths (members are copied into the temporary folder under a
counter), links and special files are refused, and every byte decompressed, headers and skipped members
included, counts against the archive's budget (``InputLimits``: members, bytes, compression ratio). The bounds
on what ``tarfile`` itself would read into memory live in ``tarheaders``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from audioclas.errors import BytesOverLimit, InputError, InputTooLarge
from audioclas.inputs.rules import is_hidden, open_input_file, unsafe_relative_path
from audioclas.inputs.tarheaders import BoundedTarFile, TarHeaderError, TarHeadersTooLarge
from audioclas.inputs.types import AudioSource, InputLimits, MiB, Workspace

COMPRESSORS: dict[str, Callable[[BinaryIO], io.BufferedIOBase]] = {
    "gz": lambda file: gzip.GzipFile(fileobj=file, mode="rb"),
    "bz2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
}
MAX_ZIP_ENTRY_BYTES = 1024  # zip directory bytes allowed per member (name, timestamps, zip64 sizes): bounds what
# zipfile loads into memory before we can count the members
COPY_BLOCK = MiB
ARCHIVE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
)


def expand_file(path: Path, name: str, workspace: Workspace) -> Iterator[AudioSource | InputError]:
    """A local file: an archive is expanded, anything else is a source to try, whatever its extension."""
    kind = _archive_kind(path, name)
    if kind == "zip":
        yield from _expand_zip(path, name, workspace)
    elif kind == "tar" or (kind is not None and _is_tar(path, name, kind)):
        yield from _expand_tar(path, name, kind, workspace)
    elif kind is not None:
        yield _decompress_single(path, name, kind, workspace)
    else:
        yield AudioSource(name, path=path)


def expand_archive(path: Path, name: str, workspace: Workspace) -> Iterator[AudioSource | InputError]:
    """The members of a zip or tar archive (tar also gz, bz2 or xz compressed) that ``workspace`` wants; an
    ``InputError`` for any other file. Used for whole datasets (``inputs.trees``)."""
    kind = _archive_kind(path, name)
    if kind == "zip":
        yield from _expand_zip(path, name, workspace)
    elif kind == "tar" or (kind is not None and _is_tar(path, name, kind)):
        yield from _expand_tar(path, name, kind, workspace)
    else:
        raise InputError(name, "is not a zip or tar archive")


def _expand_zip(path: Path, name: str, workspace: Workspace) -> Iterator[AudioSource | InputError]:
    limit = workspace.limits.max_archive_members
    with open_input_file(path, name) as file:
        try:
            # zipfile builds an object for every entry of the central directory at once: bound it before that.
            directory_bytes = _zip_directory_bytes(file)
            if directory_bytes > limit * MAX_ZIP_ENTRY_BYTES:
                problem = f"archive directory of {directory_bytes} bytes is too large for {limit} members"
                raise InputTooLarge(name, problem)
            budget = _Budget(workspace.limits, os.fstat(file.fileno()).st_size)
            with zipfile.ZipFile(file) as archive:
                members = archive.infolist()
                if len(members) > limit:
                    raise InputTooLarge(name, f"archive has {len(members)} members, more than the limit of {limit}")
                for info in members:
                    member_name = f"{name}!{info.filename}"
                    if info.is_dir() or not workspace.wants(info.filename) or is_hidden(info.filename):
                        continue
                    if member_problem := _zip_member_problem(info):
                        yield InputError(member_name, member_problem)
                        continue
                    source: AudioSource | InputError
                    try:
                        with archive.open(info) as member:
                            source = _extract(
                                budget.metered(member, member_name),
                                info.file_size,
                                member_name,
                                workspace,
                                info.filename,
                            )
                    except InputError as error:
                        if budget.exhausted:
                            raise
                        source = error
                    except (*ARCHIVE_ERRORS, NotImplementedError) as error:
                        source = InputError(member_name, f"corrupt archive member ({error})")
                    yield source
        except ARCHIVE_ERRORS as error:
            raise InputError(name, f"corrupt zip archive ({error})") from None


def _expand_tar(path: Path, name: str, kind: str, workspace: Workspace) -> Iterator[AudioSource | InputError]:
    """Read the tar once, start to end ("r|"), through a meter: decompressing headers and skipped members
    counts against the archive's budget too, so a bomb in a member we skip cannot run for hours."""
    limit = workspace.limits.max_archive_members
    try:
        budget = _Budget(workspace.limits, path.stat().st_size)
        with (
            _decompressed(path, name, kind) as raw,
            BoundedTarFile.open(fileobj=budget.metered(raw, name), mode="r|") as archive,
        ):
            for count, info in enumerate(archive, start=1):
                if count > limit:
                    raise InputTooLarge(name, f"archive has more than {limit} members; the rest were skipped")
                member_name = f"{name}!{info.name}"
                if info.isdir() or not workspace.wants(info.name) or is_hidden(info.name):
                    continue
                if problem := _tar_member_problem(info):
                    yield InputError(member_name, problem)
                    continue
                source: AudioSource | InputError
                member = archive.extractfile(info)
                assert member is not None  # tarfile gives a file for every regular member, and only those get here
                try:
                    source = _extract(member, info.size, member_name, workspace, info.name)
                except InputError as error:
                    if budget.exhausted:
                        raise
                    source = error
                yield source
    except TarHeadersTooLarge as error:
        raise InputTooLarge(name, str(error)) from None
    except TarHeaderError as error:
        raise InputError(name, str(error)) from None
    except ARCHIVE_ERRORS as error:
        raise InputError(name, f"corrupt tar archive ({error})") from None


def _decompress_single(path: Path, name: str, kind: str, workspace: Workspace) -> AudioSource:
    inner = PurePosixPath(name.rstrip("/")).name
    inner = inner[: -len(kind) - 1] if inner.lower().endswith(f".{kind}") else inner
    member_name = f"{name}!{inner}"
    try:
        budget = _Budget(workspace.limits, path.stat().st_size)
        with _decompressed(path, name, kind) as member:
            return _extract(budget.metered(member, member_name), None, member_name, workspace)
    except ARCHIVE_ERRORS as error:
        raise InputError(member_name, f"corrupt {kind} data ({error})") from None


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _extract(
    member: _Readable, declared_size: int | None, name: str, workspace: Workspace, member_path: str = ""
) -> AudioSource:
    """Copy one member into the temporary folder, counting the bytes actually written, not trusting headers."""
    limit = workspace.limits.max_member_bytes
    if declared_size is not None and declared_size > limit:
        raise BytesOverLimit(name, f"member is {declared_size} bytes, more than the limit of {limit}")
    target, written = workspace.new_path(member_path, name), 0
    try:
        with open(target, "wb") as out:
            while block := member.read(COPY_BLOCK):
                written += len(block)
                if written > limit:
                    raise BytesOverLimit(name, f"member is larger than the limit of {limit} bytes")
                out.write(block)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return AudioSource(name, path=target)


class _Budget:
    """Decompressed bytes one archive may still produce: the bound on its total and on its compression ratio."""

    def __init__(self, limits: InputLimits, archive_bytes: int) -> None:
        self.limits, self.archive_bytes = limits, max(archive_bytes, 1)
        self.produced = 0
        self.exhausted = False

    def metered(self, file: _Readable, name: str) -> _MeteredReader:
        return _MeteredReader(file, self, name)

    def spend(self, count: int, name: str) -> None:
        self.produced += count
        limits = self.limits
        if self.produced > limits.max_archive_bytes:
            self.exhausted = True
            raise BytesOverLimit(name, f"archive expands to more than {limits.max_archive_bytes} bytes; stopped here")
        if self.produced > max(limits.ratio_check_bytes, limits.max_compression_ratio * self.archive_bytes):
            self.exhausted = True
            ratio = f"{limits.max_compression_ratio:g}"
            raise InputTooLarge(
                name, f"archive expands to more than {ratio} times its size (a zip bomb?); stopped here"
            )


class _MeteredReader(io.BufferedIOBase):
    """A read-only file that charges every byte it returns to a budget; errors name ``name``."""

    def __init__(self, file: _Readable, budget: _Budget, name: str) -> None:
        super().__init__()
        self.file, self.budget, self.name = file, budget, name

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        data = self.file.read(size if size is not None and size >= 0 else COPY_BLOCK)
        self.budget.spend(len(data), self.name)
        return data


def _zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    file_type = stat.S_IFMT(info.external_attr >> 16)  # from the Unix mode bits; 0 when the zip has none
    if unsafe := unsafe_relative_path(info.filename):  # never used as a path, but refused anyway
        return f"unsafe member path ({unsafe})"
    if file_type not in (0, stat.S_IFREG):
        return "is a symbolic link or special file, not a regular file"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def _tar_member_problem(info: tarfile.TarInfo) -> str | None:
    if unsafe := unsafe_relative_path(info.name):
        return f"unsafe member path ({unsafe})"
    if info.isreg():
        return None
    if info.issym():
        return "is a symbolic link, not a regular file"
    if info.islnk():
        return "is a hard link, not a regular file"
    return "is a device or special file, not a regular file"


@contextmanager
def _decompressed(path: Path, name: str, kind: str) -> Iterator[BinaryIO | io.BufferedIOBase]:
    """The bytes of the file at ``path``, decompressed when ``kind`` is 'gz', 'bz2' or 'xz'."""
    with open_input_file(path, name) as file:
        if kind not in COMPRESSORS:
            yield file
            return
        with COMPRESSORS[kind](file) as inner:
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
        return True  # _expand_tar says what is wrong with it
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
    directory_bytes: int = struct.unpack_from("<I", tail, end + 12)[0]
    locator = end - 20  # zip64 keeps the real size in a record that this locator points to
    if directory_bytes == 0xFFFFFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        file.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
        record = file.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            directory_bytes = struct.unpack_from("<Q", record, 40)[0]
    return directory_bytes
