"""The Parquet tables of a batch job: their schemas, and building a shard's rows.

``clips``: input (string), sha256 (string, of the bytes decoded), duration (float64 s), windows (int32), and
labels (predict: list<struct<index int32, id string, name string, score float32>>, best first) or embedding
(embed: fixed_size_list<float32>[384], the mean of the window embeddings).
``windows`` (with --timeline): input, window (int32, 0-based), start and end (float64 s), labels or embedding.
``failures``: input, reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audioclas.architecture import EMBEDDING_DIM
from audioclas.errors import InputError
from audioclas.fileio import atomic_open
from audioclas.pipeline import ClipOutput
from audioclas.predictions import LabelScore, Prediction

LABEL = pa.struct([("index", pa.int32()), ("id", pa.string()), ("name", pa.string()), ("score", pa.float32())])
LABELS = pa.list_(LABEL)
EMBEDDING = pa.list_(pa.float32(), EMBEDDING_DIM)
FAILURES = pa.schema([("input", pa.string()), ("reason", pa.string())])

LabelRows = list[dict[str, int | str | float | None]]  # a LABELS value
Row = tuple[Any, ...]  # one table row, in schema order


def clip_schema(task: str) -> pa.Schema:
    result = ("labels", LABELS) if task == "predict" else ("embedding", EMBEDDING)
    fields = [("input", pa.string()), ("sha256", pa.string()), ("duration", pa.float64()), ("windows", pa.int32())]
    return pa.schema([*fields, result])


def window_schema(task: str) -> pa.Schema:
    result = ("labels", LABELS) if task == "predict" else ("embedding", EMBEDDING)
    fields = [("input", pa.string()), ("window", pa.int32()), ("start", pa.float64()), ("end", pa.float64())]
    return pa.schema([*fields, result])


def _labels(scores: list[LabelScore]) -> LabelRows:
    return [{"index": x.index, "id": x.id, "name": x.name, "score": x.score} for x in scores]


def _embeddings(vectors: Sequence[np.ndarray]) -> pa.FixedSizeListArray:
    flat = np.stack(vectors).astype(np.float32, copy=False).reshape(-1) if len(vectors) else np.zeros(0, np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), EMBEDDING_DIM)


class ShardTables:
    """Collects one shard's rows: ``add_*`` each result in turn, then ``write``."""

    def __init__(self, task: str, timeline: bool) -> None:
        self.task, self.timeline = task, timeline
        self.clips: list[Row] = []
        self.windows: list[Row] = []
        self.failures: list[Row] = []
        self.seconds = 0.0  # audio in the clips

    def add_failure(self, error: InputError) -> None:
        self.failures.append((error.source, error.problem))

    def _add_clip(
        self,
        source: str,
        sha256: str | None,
        duration: float,
        starts: Sequence[float] | np.ndarray,
        ends: Sequence[float] | np.ndarray,
        clip_value: LabelRows | np.ndarray,
        window_values: list[LabelRows] | list[np.ndarray],
    ) -> None:
        self.seconds += duration
        self.clips.append((source, sha256, duration, len(starts), clip_value))
        if self.timeline:
            rows = enumerate(zip(starts, ends, window_values))
            self.windows += [(source, index, float(start), float(end), value) for index, (start, end, value) in rows]

    def add_copy(self, source: str, clip: Row, windows: list[Row]) -> None:
        """The rows of a clip with the same audio (read back from a table), under the name ``source``."""
        self.seconds += clip[2]
        self.clips.append((source, *clip[1:]))
        if self.timeline:
            self.windows += [(source, *row[1:]) for row in windows]

    def add_prediction(self, prediction: Prediction, sha256: str | None) -> None:
        windows = prediction.windows
        self._add_clip(
            prediction.source,
            sha256,
            prediction.duration,
            [w.start for w in windows],
            [w.end for w in windows],
            _labels(prediction.labels),
            [_labels(w.labels) for w in windows],
        )

    def add_embedding(self, output: ClipOutput, sha256: str | None) -> None:
        """Window embeddings as computed; the clip's is their mean, as ``Tagger.embed`` gives it."""
        self._add_clip(
            output.source,
            sha256,
            output.duration,
            output.starts,
            output.ends,
            output.embeddings.mean(axis=0),
            list(output.embeddings),
        )

    def write(self, paths: dict[str, Path], metadata: dict[bytes, bytes], shared: dict[bytes, bytes]) -> None:
        """Windows and failures first, the clips file (the shard's commit marker, with ``metadata``) last; every
        file carries ``shared`` in its metadata (what produced the rows).

        An empty windows or failures table is not written, and removes what an earlier attempt at the shard left
        under that name (an input that failed then may have succeeded now).
        """
        parts = ((self.windows, window_schema(self.task), "windows"), (self.failures, FAILURES, "failures"))
        for rows, schema, table in parts:
            if rows:
                write_table(_table(rows, schema).replace_schema_metadata(shared), paths[table])
            else:
                paths[table].unlink(missing_ok=True)
        clips = _table(self.clips, clip_schema(self.task)).replace_schema_metadata({**shared, **metadata})
        write_table(clips, paths["clips"])


def failures_table(errors: list[InputError]) -> pa.Table:
    return _table([(error.source, error.problem) for error in errors], FAILURES)


def _table(rows: list[Row], schema: pa.Schema) -> pa.Table:
    columns: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in schema]
    arrays = [
        _embeddings(column) if field.name == "embedding" else pa.array(column, type=field.type)
        for field, column in zip(schema, columns)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` as Parquet at ``path`` atomically: the file is complete or absent, never half-written."""
    with atomic_open(path, "wb") as stream:
        pq.write_table(table, stream)
