"""Processing one shard: decode its inputs, run the network, write its tables, commit.

The same ``ShardWorker`` runs in the local engine (in-process) and in every Ray actor, so both engines compute the
same rows. It loads the network once and keeps it for every shard it is given. Within a shard, inputs stream
through ``Tagger`` as ``audioclas predict`` runs them (a decoding thread beside the network), one window per
network call (see ``JobSpec``).

An input whose bytes the job already did under another name is not decoded: its rows are copied (see ``reuse``).

A shard that is already committed is not redone, so a retried task is harmless. An input that kills the worker
process itself (a crash in a native decoder, memory exhausted) would kill every retry of its shard: a journal
records what each attempt was reading, and an input (or archive member) that was being read when two attempts died
is skipped and listed as a failure.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from audioclas.batch.job import ITEMS_KEY, PRODUCER_KEY, JobSpec, OutputFolder
from audioclas.batch.reuse import REUSED_KEY, ContentIndex
from audioclas.batch.tables import Row, ShardTables
from audioclas.batch.tasks import Item, Shard
from audioclas.errors import AudioclasError, InputError
from audioclas.fileio import file_sha256
from audioclas.inputs import AudioSource, OpenedSources, open_sources
from audioclas.pipeline import ClipOutput, Progress
from audioclas.predictions import Prediction
from audioclas.tagger import Tagger

CRASHES_BEFORE_SKIP = 2  # attempts that died reading an input before it is skipped as the cause
MAX_UNEXPLAINED_DEATHS = 3  # attempts that died with no input to blame before the shard gives up
FAULTS_ENV = "AUDIOCLAS_BATCH_TEST_FAULTS"  # tests only: see _injected_fault

JournalEntry = dict[str, Any]  # one line of a shard's journal: a JSON object, see _Journal


@dataclass(frozen=True)
class ShardResult:
    shard: str
    clips: int
    failures: int
    seconds: float  # audio in the clips
    reused: bool = False  # the shard was already committed (a retried task)
    copied: int = 0  # clips whose rows were copied from the same audio done before under another name


class ShardWorker:
    """Loads the network once; ``run(shard)`` writes and commits one shard and says what it held.

    ``threads`` is the network's thread count, the same in every engine, for identical results.
    """

    def __init__(self, spec: JobSpec, out_dir: str, threads: int, done: ContentIndex | None = None) -> None:
        self.spec, self.done = spec, done
        self.folder = OutputFolder(out_dir)
        self.tagger = Tagger(spec.weights, batch_size=spec.batch_size, threads=threads)
        self.model = spec.model.load() if spec.model else None  # a custom classifier (--model)
        # embed with a fine-tuned model: its own backbone, whose embeddings its head reads
        self.network = self.model.load_backbone(threads=threads) if self.model and spec.task == "embed" else None

    def run(self, shard: Shard, progress: Callable[[Progress], None] | None = None) -> ShardResult:
        if self.folder.is_committed(shard.id):
            return _committed_result(self.folder, shard.id)
        journal = _Journal(self.folder.journal_path(shard.id), shard.id)
        watch = _Watch(journal, journal.begin(), self.done)
        tables = ShardTables(self.spec.task, self.spec.timeline)
        with open_sources(watch.items(shard.items), self.tagger.limits) as sources:
            for result in self._results(watch.sources(sources), progress):
                sha256 = watch.hashes.popleft()
                if isinstance(result, InputError):
                    tables.add_failure(result)
                elif isinstance(result, ClipOutput):
                    tables.add_embedding(result, sha256)
                else:
                    tables.add_prediction(result, sha256)
        for error in watch.skipped:
            tables.add_failure(error)
        for name, (clip, windows) in watch.copied:
            tables.add_copy(name, clip, windows)
        journal.write({"writing": True})
        paths = {table: self.folder.table_path(table, shard.id) for table in ("clips", "windows", "failures")}
        producer = {PRODUCER_KEY: json.dumps(self.spec.producer()).encode()}
        metadata = {ITEMS_KEY: json.dumps([item.id for item in shard.items]).encode()}
        if watch.copied:
            metadata[REUSED_KEY] = json.dumps({name: clip[0] for name, (clip, _) in watch.copied}).encode()
        tables.write(paths, metadata, producer)
        journal.remove()
        return ShardResult(shard.id, len(tables.clips), len(tables.failures), tables.seconds, copied=len(watch.copied))

    def _results(
        self, sources: Iterable[AudioSource | InputError], progress: Callable[[Progress], None] | None
    ) -> Iterator[ClipOutput | Prediction | InputError]:
        spec = self.spec
        if spec.task == "embed":
            return self.tagger.outputs(OpenedSources(sources), spec.windows, progress, self.network)
        opened = OpenedSources(sources)
        return self.tagger.predict_many(opened, spec.query, spec.windows, model=self.model, progress=progress)


def _committed_result(folder: OutputFolder, shard_id: str) -> ShardResult:
    clips = pq.read_table(folder.table_path("clips", shard_id), columns=["duration"])
    failures = folder.table_path("failures", shard_id)
    failed = pq.read_metadata(failures).num_rows if failures.exists() else 0
    return ShardResult(shard_id, clips.num_rows, failed, float(sum(clips.column("duration").to_pylist())), reused=True)


class _Watch:
    """Journals what the decoding thread is doing, computes each source's sha256 (``hashes``, in order, None for an
    error), and leaves out what killed earlier attempts (an item: listed in ``skipped``; an archive member or other
    source: replaced by its ``InputError``) and what the job already did under another name (in ``copied``, with
    the rows to copy: ``done`` holds them).

    The decoding thread pulls items (through ``open_sources``, which expands them) and sources from these
    generators, so the journal's last line says what it was doing when the process died.
    """

    def __init__(self, journal: _Journal, blamed: dict[str, int], done: ContentIndex | None = None) -> None:
        self.journal, self.blamed, self.done = journal, blamed, done
        self.hashes: collections.deque[str | None] = collections.deque()
        self.skipped: list[InputError] = []
        self.copied: list[tuple[str, tuple[Row, list[Row]]]] = []

    def _skip_reason(self, name: str) -> str | None:
        deaths = self.blamed.get(name, 0)
        if deaths < CRASHES_BEFORE_SKIP:
            return None
        return f"the worker process died {deaths} times while reading it; skipped"

    def items(self, items: Iterable[Item]) -> Iterator[str | AudioSource]:
        for item in items:
            if problem := self._skip_reason(item.id):
                self.skipped.append(InputError(item.id, problem))
                continue
            self.journal.write({"item": item.id})
            yield item.as_input()

    def sources(self, sources: Iterator[AudioSource | InputError]) -> Iterator[AudioSource | InputError]:
        for source in sources:
            if isinstance(source, InputError):
                self.hashes.append(None)
                yield source
                continue
            if problem := self._skip_reason(source.name):
                self.hashes.append(None)
                yield InputError(source.name, problem)
                continue
            self.journal.write({"source": source.name})
            _injected_fault(source.name)
            sha256 = _sha256(source)
            if sha256 and self.done and (rows := self.done.rows(sha256)):
                self.copied.append((source.name, rows))
                self.journal.write({"idle": True})
                continue
            self.hashes.append(sha256)
            yield source
            self.journal.write({"idle": True})  # decoded: what follows is expanding the current item


def _sha256(source: AudioSource) -> str | None:
    if source.path is None:
        return hashlib.sha256(source.data).hexdigest() if source.data is not None else None
    try:
        return file_sha256(source.path)
    except OSError:
        return None  # the decoder reports the problem


class _Journal:
    """An append-only log of one shard's attempts: ``{"attempt": n}``, then ``{"item": id}`` as an input is opened
    (an archive extracted, a URL downloaded), ``{"source": name}`` as a file is decoded, ``{"idle": true}`` once it
    is, and ``{"writing": true}`` once the results are complete. Each line is one ``write`` to a file opened for
    appending, so a killed process leaves whole lines (a torn last line is ignored)."""

    def __init__(self, path: Path, shard_id: str) -> None:
        self.path, self.shard_id = path, shard_id

    def begin(self) -> dict[str, int]:
        """Start an attempt; return how many earlier attempts died while reading each input.

        Raises ``AudioclasError`` when attempts keep dying with no input to blame (out of memory while writing?),
        which Ray would otherwise retry for ever.
        """
        attempts: list[list[JournalEntry]] = []
        text = self.path.read_text("utf-8", errors="replace") if self.path.exists() else ""
        if text:
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if "attempt" in entry:
                    attempts.append([])
                elif attempts:
                    attempts[-1].append(entry)
        culprits = [_culprit(entries) for entries in attempts]
        if culprits.count(None) >= MAX_UNEXPLAINED_DEATHS:
            raise AudioclasError(
                f"shard {self.shard_id}: the worker died {culprits.count(None)} times, not while reading an input; "
                f"delete {self.path} to try again"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.write({"attempt": len(attempts) + 1}, after_torn_line=bool(text) and not text.endswith("\n"))
        return dict(collections.Counter(culprit for culprit in culprits if culprit is not None))

    def write(self, entry: JournalEntry, after_torn_line: bool = False) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, ("\n" * after_torn_line + json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _culprit(entries: list[JournalEntry]) -> str | None:
    """What a dead attempt was reading when it died: the file being decoded, else the input being opened."""
    if not entries or "writing" in entries[-1]:
        return None
    if "source" in entries[-1]:
        source: str = entries[-1]["source"]
        return source
    return next((entry["item"] for entry in reversed(entries) if "item" in entry), None)


def _injected_fault(name: str) -> None:
    """Test hook for the crash handling: ``$AUDIOCLAS_BATCH_TEST_FAULTS`` names a JSON file ``{input: n}``; the
    process kills itself (SIGKILL, as the kernel's OOM killer would) when it starts reading that input, n times.

    A real process killed at a known point is what the exactly-once tests need; killing a worker from outside at a
    random moment would make them depend on timing. Unset (always, outside the tests), this costs one lookup.
    """
    path = os.environ.get(FAULTS_ENV)
    if not path:
        return
    faults = json.loads(Path(path).read_text("utf-8"))
    if faults.get(name, 0) > 0:
        faults[name] -= 1
        Path(path).write_text(json.dumps(faults), "utf-8")
        os.kill(os.getpid(), signal.SIGKILL)
