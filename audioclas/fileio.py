"""File helpers: writing so that a crash never leaves a half-written file (temporary file, then rename), opening
only regular files, hashing, and the timestamps written into files."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class NotRegularFileError(OSError):
    """The path names a FIFO, device or socket: reading it could block forever or never end."""


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` (following symlinks) for reading in binary mode, only if it is a regular file.

    A FIFO or device is refused without blocking: the kind is checked with ``stat`` before opening (so that no
    device is ever opened), and again on the open descriptor, which ``O_NONBLOCK`` keeps from waiting for a
    FIFO's writer, so that swapping the file between the two checks gains nothing. Raises
    ``NotRegularFileError`` ("not a regular file (a FIFO)"), ``IsADirectoryError`` or another ``OSError``.
    """
    _check_regular(os.stat(path).st_mode, path)
    return open(path, "rb", opener=_open_regular_fd)  # keeps the name: FFmpeg's format probing looks at it


def _open_regular_fd(path: str, flags: int) -> int:
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        _check_regular(os.fstat(fd).st_mode, path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_regular(mode: int, path: str | os.PathLike[str]) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", os.fspath(path))
    if not stat.S_ISREG(mode):
        kind = FILE_KINDS.get(stat.S_IFMT(mode), "a special file")
        raise NotRegularFileError(errno.EINVAL, f"not a regular file ({kind})", os.fspath(path))


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block ends normally.

    An ``OSError`` that names no file (a write to a full disk) is raised again naming ``path``, so that the one
    line the user sees says where. An existing ``path`` that is not a regular file (``/dev/stdout``, ``/dev/null``,
    a FIFO) is written directly instead: replacing it would destroy the device or the link, not write into it.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder", str(path))
        with open(path, mode, **kwargs) as stream:
            yield stream
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        if error.filename is None and error.errno is not None and not isinstance(error, BrokenPipeError):
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks; raises OSError."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def now_iso(timespec: str = "seconds") -> str:
    """The current UTC time in ISO 8601, e.g. ``2025-01-31T12:00:00+00:00`` (``timespec`` as for ``isoformat``)."""
    return datetime.now(UTC).isoformat(timespec=timespec)
