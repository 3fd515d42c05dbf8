"""Reading a batch job's output: only committed shards, so a folder whose job is still running or was killed reads
as the complete rows of its finished shards, never as partial or duplicated ones.

Any Parquet reader can read the folders too (``pandas.read_parquet("out/clips")``, DuckDB, Spark, Ray Data); the
``clips`` folder is always exact, while ``windows`` and ``failures`` may hold a killed shard's files until the job
is resumed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audioclas.architecture import EMBEDDING_DIM
from audioclas.batch.job import LISTING, OutputFolder
from audioclas.batch.tables import FAILURES, clip_schema, window_schema
from audioclas.errors import AudioclasError


@dataclass(frozen=True)
class EmbeddedClip:
    """One clip of an ``embed`` job."""

    input: str
    sha256: str | None  # of the file's bytes: the key of the training embedding cache
    duration: float
    embedding: np.ndarray  # (384,) float32, the mean over windows
    windows: np.ndarray | None  # (n, 384) float32, with --timeline
    starts: np.ndarray | None  # (n,) seconds, with --timeline


def read_job(out_dir: str | Path) -> dict[str, Any]:
    """The job's manifest (``job.json``): task, backbone_sha256, window, hop, pad, timeline, label options, and
    with ``--model`` the model (``{"name", "sha256", "backbone_sha256"}``)."""
    return OutputFolder(out_dir).manifest()


def read_table(out_dir: str | Path, table: str = "clips") -> pa.Table:
    """All rows of ``clips``, ``windows`` or ``failures`` from the committed shards (failures: and the listing's),
    sorted by input (and window)."""
    folder = OutputFolder(out_dir)
    task = folder.manifest()["task"]
    schema = {"clips": clip_schema(task), "windows": window_schema(task), "failures": FAILURES}[table]
    shard_ids = sorted(folder.committed())
    if table == "failures":
        shard_ids.append(LISTING)
    paths = [path for path in (folder.table_path(table, shard_id) for shard_id in shard_ids) if path.exists()]
    rows = pa.concat_tables([pq.read_table(path, schema=schema) for path in paths] or [schema.empty_table()])
    return rows.sort_by([("input", "ascending")] + ([("window", "ascending")] if table == "windows" else []))


def read_embeddings(out_dir: str | Path) -> Iterator[EmbeddedClip]:
    """Every clip of an ``embed`` job, one shard in memory at a time (window embeddings if it ran with --timeline)."""
    folder = OutputFolder(out_dir)
    manifest = folder.manifest()
    if manifest["task"] != "embed":
        raise AudioclasError(f"{folder.root} holds a {manifest['task']} job, not embeddings")
    for shard_id in sorted(folder.committed()):
        clips = pq.read_table(folder.table_path("clips", shard_id), schema=clip_schema("embed"))
        windows = _windows_by_input(folder.table_path("windows", shard_id)) if manifest["timeline"] else {}
        columns = [clips.column(name).to_pylist() for name in ("input", "sha256", "duration")]
        for embedding, source, sha256, duration in zip(_matrix(clips.column("embedding")), *columns):
            window_rows, starts = windows.get(source, (None, None))
            yield EmbeddedClip(source, sha256, duration, embedding, window_rows, starts)


def _windows_by_input(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not path.exists():
        return {}
    table = pq.read_table(path, schema=window_schema("embed"))
    matrix, starts = _matrix(table.column("embedding")), table.column("start").to_numpy()
    result, row = {}, 0
    for source, rows in itertools.groupby(table.column("input").to_pylist()):  # an input's windows are consecutive
        count = len(list(rows))
        result[source] = (matrix[row : row + count], starts[row : row + count])
        row += count
    return result


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed_size_list<float32>[384] column as an (n, 384) float32 array."""
    if not column.num_chunks:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    flat = pa.concat_arrays([chunk.flatten() for chunk in column.chunks])
    matrix: np.ndarray = flat.to_numpy(zero_copy_only=False).reshape(len(column), -1)
    return matrix
