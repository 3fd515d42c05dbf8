"""The sha256 of dataset files, remembered by path and file status so that later runs need not read them again.

The embedding cache is keyed by the sha256 of a file's bytes (a renamed or copied file still hits the cache). Hashing
reads every byte, about a minute per 50 GB, on every training run. A small SQLite table beside the embedding cache
remembers each file's digest with its size, modification time and inode; while all three are unchanged the file is
not read again. The table is only a shortcut: when it cannot be opened or written, files are simply hashed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from audioclas.settings import cache_dir

logger = logging.getLogger(__name__)


def _key(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_size, status.st_mtime_ns, status.st_ino


class HashMemo:
    """Remembered digests, keyed by absolute path and checked against (size, mtime, inode)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "content-hashes.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)"
        )
        return connection

    def known(self, statuses: dict[Path, os.stat_result]) -> dict[Path, str]:
        """The remembered digest of every file whose status still matches."""
        try:
            rows = {}
            with closing(self._connect()) as connection:
                for path, status in statuses.items():
                    row = connection.execute(
                        "SELECT size, mtime_ns, inode, sha256 FROM hashes WHERE path = ?", (str(path),)
                    ).fetchone()
                    if row and tuple(row[:3]) == _key(status):
                        rows[path] = row[3]
            return rows
        except (sqlite3.Error, OSError) as error:
            logger.debug("content hash memo %s unreadable (%s): hashing every file", self.path, error)
            return {}

    def remember(self, entries: Iterable[tuple[Path, os.stat_result, str]]) -> None:
        rows = [(str(path), *_key(status), digest) for path, status, digest in entries]
        if not rows:
            return
        try:
            with closing(self._connect()) as connection, connection:  # closed even on error; committed if not
                connection.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", rows)
        except (sqlite3.Error, OSError) as error:
            logger.debug("content hash memo %s not written (%s)", self.path, error)
