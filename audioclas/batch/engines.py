"""Running a job: list the inputs, skip what is done, and run the pending shards locally or on Ray.

    summary = run_job(["recordings/", "more.zip"], "out/", JobSpec("embed", timeline=True), engine="ray")

Both engines run the same ``ShardWorker`` on the same shards, so they write the same rows. The local engine runs
the shards one after another in this process. The Ray engine maps them with Ray Data over a pool of actors, each
loading the network once (as many actors as the cluster has free CPUs, one CPU each by default); Ray restarts an actor
that dies and retries its task (Ray Data's default for actors), which rewrites the same shard files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq

from audioclas.batch.job import LISTING, JobSpec, OutputFolder
from audioclas.batch.reuse import ContentIndex, content_index, remove_retried, uncommit_failed
from audioclas.batch.tables import FAILURES, failures_table, write_table
from audioclas.batch.tasks import Shard, list_inputs, make_shards
from audioclas.batch.worker import ShardResult, ShardWorker
from audioclas.errors import AudioclasError, InputError
from audioclas.inputs import InputLimits
from audioclas.pipeline import Progress

Engine = Literal["local", "ray"]

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What a run did. ``failed`` counts failures recorded by this run, listing included."""

    out_dir: Path
    engine: str
    inputs: int = 0  # items listed
    already_done: int = 0  # items of shards committed before this run
    retried: int = 0  # failures recorded before this run and run again (--retry-failed)
    copied: int = 0  # clips whose rows were copied from the same audio done before under another name
    shards: int = 0  # shards run now
    clips: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # "input: reason" for this run's failures

    @property
    def speed(self) -> float:
        """Seconds of audio per second of wall time (= hours of audio per hour)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def text(self) -> str:
        done = f"{self.inputs} inputs ({self.inputs - self.already_done} run now, {self.already_done} already done)"
        if self.retried:
            done += f", {self.retried} failed before and retried"
        if self.copied:
            done += f", {self.copied} clips copied from the same audio done before"
        audio = f"{self.audio_seconds / 3600:.2f} h of audio in {self.wall_seconds:.1f} s"
        speed = f"{self.speed:,.0f}x real time" if self.audio_seconds else "nothing new to run"
        return (
            f"{done}: {self.clips} clips written, {self.failed} failed; {audio} ({speed}, engine {self.engine}); "
            f"output in {self.out_dir}"
        )


def run_job(
    inputs: list[str],
    out_dir: str | Path,
    spec: JobSpec,
    *,
    engine: Engine = "local",
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    limits: InputLimits = InputLimits(),
    retry_failed: bool = False,
    on_plan: Callable[[Summary], None] | None = None,
    on_shard: Callable[[ShardResult], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Summary:
    """Run (or resume) ``spec`` over ``inputs`` into ``out_dir``; see the module doc.

    ``on_plan`` gets the summary once the inputs are listed (inputs, already done, shards to run); ``on_shard`` is
    called as each shard is done; ``on_progress`` (local engine only) as files are decoded. Inputs that failed in
    an earlier run are skipped as done unless ``retry_failed``; audio done under another name is copied (``reuse``).
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', not {engine!r}")
    threads = max(1, round(cpus_per_worker))  # network threads per worker, in both engines
    started = time.perf_counter()
    folder = OutputFolder(out_dir)
    summary = Summary(folder.root, engine)
    with folder.lock():
        folder.prepare(spec)
        folder.remove_uncommitted()
        items, listing_errors = list_inputs(inputs, limits)
        _record_listing_errors(folder, listing_errors)
        if retry_failed:
            summary.retried = uncommit_failed(folder, {item.id for item in items})
            folder.remove_uncommitted()  # the failures files of the shards moved to _retry/
        done = {item for items_of_shard in folder.committed().values() for item in items_of_shard}
        pending = [item for item in items if item.id not in done]
        shards = make_shards(pending, spec.shard_size)
        summary.inputs, summary.already_done, summary.shards = len(items), len(items) - len(pending), len(shards)
        summary.failed = len(listing_errors)
        summary.failures = [str(error) for error in listing_errors]
        if on_plan is not None:
            on_plan(summary)
        if shards:
            index = content_index(folder, spec.task, spec.timeline)
            if engine == "local":
                run = _run_local(shards, spec, folder, threads, on_progress, index)
            else:
                run = _run_ray(shards, spec, folder, address, workers, cpus_per_worker, threads, index)
            for result in run:
                summary.clips += result.clips
                summary.copied += result.copied
                summary.failed += result.failures
                summary.audio_seconds += result.seconds
                if on_shard is not None:
                    on_shard(result)
        summary.failures += _failures_of(folder, [shard.id for shard in shards])
        remove_retried(folder)
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _record_listing_errors(folder: OutputFolder, errors: list[InputError]) -> None:
    """Replace the listing failures of the previous run with this run's."""
    path = folder.table_path("failures", LISTING)
    if errors:
        write_table(failures_table(errors), path)
    else:
        path.unlink(missing_ok=True)


def _failures_of(folder: OutputFolder, shard_ids: list[str]) -> list[str]:
    """Each failure these shards recorded, as "input: reason"."""
    lines = []
    for shard_id in shard_ids:
        path = folder.table_path("failures", shard_id)
        if path.exists():
            table = pq.read_table(path, schema=FAILURES)
            lines += [f"{source}: {reason}" for source, reason in zip(*table.to_pydict().values())]
    return lines


def _run_local(
    shards: list[Shard],
    spec: JobSpec,
    folder: OutputFolder,
    threads: int,
    on_progress: Callable[[Progress], None] | None,
    done: ContentIndex,
) -> Iterator[ShardResult]:
    worker = ShardWorker(spec, str(folder.root), threads, done)  # its engine runs on ``threads`` threads
    for shard in shards:
        yield worker.run(shard, on_progress)


class _RayShardWorker:
    """The Ray Data callable: one actor holds one ``ShardWorker``; each batch is one shard."""

    def __init__(self, spec: JobSpec, out_dir: str, threads: int, done: ContentIndex) -> None:
        self.worker = ShardWorker(spec, out_dir, threads, done)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        results = [self.worker.run(Shard.from_json(text)) for text in batch["shard"]]
        return {
            "shard": [r.shard for r in results],
            "clips": [r.clips for r in results],
            "failures": [r.failures for r in results],
            "seconds": [r.seconds for r in results],
            "reused": [r.reused for r in results],
            "copied": [r.copied for r in results],
        }


def _run_ray(
    shards: list[Shard],
    spec: JobSpec,
    folder: OutputFolder,
    address: str | None,
    workers: int | None,
    cpus_per_worker: float,
    threads: int,
    done: ContentIndex,
) -> Iterator[ShardResult]:
    try:
        import ray
        import ray.data
    except ImportError:
        raise AudioclasError("the Ray engine needs Ray: pip install 'audioclas[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise AudioclasError(f"cannot start or join Ray (address {address or 'not given'}): {error}") from None
    try:
        if workers is None:
            free = ray.available_resources().get("CPU", 0)  # type: ignore[no-untyped-call]  # unannotated in Ray
            workers = max(1, int(free // cpus_per_worker))
        dataset = ray.data.from_items([{"shard": shard.to_json()} for shard in shards], override_num_blocks=len(shards))
        results = dataset.map_batches(
            _RayShardWorker,
            fn_constructor_kwargs={"spec": spec, "out_dir": str(folder.root), "threads": threads, "done": done},
            batch_size=1,
            # One shard at a time per actor: a shard is seconds of work, and queueing several on the first actor
            # that is ready would leave the others idle.
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(shards)), max_tasks_in_flight_per_actor=1),
            num_cpus=cpus_per_worker,
        )  # Ray Data's defaults restart a dead actor and retry its task; the worker skips an input that kills it
        for row in results.iter_rows():
            counts = int(row["clips"]), int(row["failures"]), float(row["seconds"]), bool(row["reused"])
            yield ShardResult(row["shard"], *counts, copied=int(row["copied"]))
    finally:
        if started_here:
            ray.shutdown()
