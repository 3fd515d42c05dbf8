"""Resuming by content: audio already done under another name is not computed again, and retrying failed inputs.

A job's items are named by path (see ``tasks``), but the worker hashes each file before decoding it. When the same
bytes were already done by this job (a copy, a renamed file, an archive member that is also a file), the worker
copies that clip's rows under the new name instead of decoding and running the network again: the results are the
same, since every row depends only on the audio's bytes and the job's settings, which ``job.json`` fixes. Each input
still gets exactly one clips row (and its windows), so readers need no join; the clips file's metadata (``REUSED_KEY``)
says which rows were copied, and from which input.

``ContentIndex`` maps content to the table file holding it, compactly (12 bytes an entry: the first 8 bytes of the
sha256 in a sorted array, and the file's number), so that a million done clips cost 12 MB on each worker; a prefix
match is confirmed against the full sha256 in the file. It is built when a run starts, from the committed shards
and from ``_retry/`` (below): content done by other shards of the same run is computed again.

``--retry-failed``: a failure is otherwise final (its shard is committed, and a resumed job skips it). With it, every
committed shard that recorded a failure, and whose items are all among this run's inputs, is uncommitted: its clips
file (the commit marker) and then its windows file move to ``_retry/``, where the content index still finds its good
clips; its items are scheduled again, the good ones copied, the failed ones run. Once its items are committed again,
its ``_retry/`` files are deleted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audioclas.batch.job import ITEMS_KEY, OutputFolder
from audioclas.batch.tables import Row, clip_schema, window_schema

REUSED_KEY = b"audioclas.reused"  # clips file metadata: JSON {input: the input whose rows were copied}
RETRY = "_retry"


class ContentIndex:
    """Which clips file holds each content (sha256) a job has done; see the module doc."""

    def __init__(self, task: str, files: list[Path]) -> None:
        self.task = task
        self.files = [str(path) for path in files]
        keys, numbers = [], []
        for number, path in enumerate(files):
            for sha256 in pq.read_table(path, columns=["sha256"]).column("sha256").to_pylist():
                if sha256:
                    keys.append(_key(sha256))
                    numbers.append(number)
        order = np.argsort(np.array(keys, dtype=np.uint64), kind="stable")
        self.keys = np.array(keys, dtype=np.uint64)[order]
        self.numbers = np.array(numbers, dtype=np.int32)[order]
        self._cached: tuple[str, Any] | None = None  # the last clips file read: (path, table)

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, sha256: str) -> tuple[Row, list[Row]] | None:
        """(clips row, windows rows) of a clip with this content, or None if the job has none."""
        key = _key(sha256)
        start = int(np.searchsorted(self.keys, key))
        for number in self.numbers[start : int(np.searchsorted(self.keys, key, side="right"))]:
            path = Path(self.files[number])
            clips = self._clips(path)
            matches = clips.filter(pc.equal(clips.column("sha256"), sha256))
            if matches.num_rows:
                clip = matches.slice(0, 1).to_pylist()[0]
                return tuple(clip.values()), self._windows(path, clip["input"])
        return None

    def _clips(self, path: Path) -> Any:
        if self._cached is None or self._cached[0] != str(path):
            self._cached = (str(path), pq.read_table(path, schema=clip_schema(self.task)))
        return self._cached[1]

    def _windows(self, clips_path: Path, source: str) -> list[Row]:
        path = clips_path.parent.parent / "windows" / clips_path.name
        if not path.exists():
            return []
        table = pq.read_table(path, schema=window_schema(self.task), filters=[("input", "=", source)])
        return [tuple(row.values()) for row in table.to_pylist()]


def _key(sha256: str) -> int:
    return int(sha256[:16], 16)


def content_index(folder: OutputFolder, task: str, timeline: bool) -> ContentIndex:
    """The content of every committed shard and of the shards waiting in ``_retry/``.

    With a timeline, a clip's rows are complete only with its windows: files whose windows file is missing are left
    out (a retry interrupted between its two moves)."""
    files = sorted((folder.root / "clips").glob("*.parquet"))
    for path in sorted((folder.root / RETRY / "clips").glob("*.parquet")):
        if not timeline or (path.parent.parent / "windows" / path.name).exists():
            files.append(path)
    return ContentIndex(task, files)


def uncommit_failed(folder: OutputFolder, listed: set[str]) -> int:
    """Move every committed shard that recorded failures, and whose items are all in ``listed``, to ``_retry/``:
    clips file first (it uncommits the shard), then windows; the failures file is left to
    ``OutputFolder.remove_uncommitted``. Returns the number of failures to retry."""
    failed = 0
    for shard_id, items in folder.committed().items():
        failures = folder.table_path("failures", shard_id)
        if not failures.exists() or not set(items) <= listed:
            continue
        failed += pq.read_metadata(failures).num_rows
        for table in ("clips", "windows"):
            source = folder.table_path(table, shard_id)
            if source.exists():
                target = folder.root / RETRY / table / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source.replace(target)
    return failed


def remove_retried(folder: OutputFolder) -> None:
    """Delete the ``_retry/`` files of shards whose items are all committed again."""
    done = {item for items in folder.committed().values() for item in items}
    for path in (folder.root / RETRY / "clips").glob("*.parquet"):
        metadata = pq.read_schema(path).metadata or {}
        if set(json.loads(metadata[ITEMS_KEY])) <= done:
            (path.parent.parent / "windows" / path.name).unlink(missing_ok=True)
            path.unlink()
