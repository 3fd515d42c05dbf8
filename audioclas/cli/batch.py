"""Options and running of batch jobs (``--out DIR``, ``--engine local|ray``), shared by ``embed`` and ``predict``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from audioclas.cli.console import print_error, stderr
from audioclas.cli.progress import AudioProgress
from audioclas.errors import AudioclasError
from audioclas.options import prediction_windows
from audioclas.predictions import LabelQuery
from audioclas.windows import WindowRequest

if TYPE_CHECKING:
    from audioclas.batch.job import Task
    from audioclas.training.store import SavedModel

MAX_FAILURES_SHOWN = 20


def add_batch_arguments(parser: argparse.ArgumentParser, *, out_required: bool) -> None:
    group = parser.add_argument_group(
        "batch jobs",
        "Write Parquet tables to a folder, locally or on a Ray cluster. Run the same command\n"
        "again to resume: inputs already done are skipped, and so is audio already done under another\n"
        "name (the same bytes: its rows are copied). Each worker runs one PyTorch thread\n"
        "and one window per network call, so both engines give identical results.",
    )
    group.add_argument(
        "--out",
        type=Path,
        required=out_required,
        metavar="DIR",
        help="output folder: clips/, windows/ (with --timeline), failures/ and job.json",
    )
    group.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: in this process (default); ray: actors on a Ray cluster, one per free CPU",
    )
    group.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster (host:port, or 'auto' for one started here with 'ray start'); default: "
        "$RAY_ADDRESS, else a private Ray on this machine for the job",
    )
    group.add_argument("--workers", type=int, metavar="N", help="Ray actors (default: one per free CPU)")
    group.add_argument(
        "--retry-failed",
        action="store_true",
        help="on resume, run again the inputs that failed (otherwise a failure is final: a resumed job skips it)",
    )
    group.add_argument(
        "--shard-size",
        type=int,
        default=16,
        metavar="N",
        help="inputs per shard, the unit of scheduling, retry and commit (default 16)",
    )


def run_predict_job(args: argparse.Namespace, query: LabelQuery, windows: WindowRequest) -> int:
    """``audioclas predict ... --out DIR [--engine ray] [--model NAME]``: the labels of every clip (and window),
    AudioSet's or a custom model's classes, into Parquet."""
    if args.out is None:
        raise AudioclasError("--engine ray writes Parquet tables: give the folder with --out DIR")
    if args.output or args.with_audioset:
        raise AudioclasError("--output and --with-audioset are not available for batch jobs (--out)")
    return run_batch(args, args.inputs, "predict", windows, query)


def run_batch(
    args: argparse.Namespace, inputs: list[str], task: Task, windows: WindowRequest, query: LabelQuery = LabelQuery()
) -> int:
    """Run the job the arguments describe; print failures and a summary. Exit status 1 if any input failed."""
    from audioclas.batch import JobSpec, read_table, run_job
    from audioclas.batch.models import JobModel

    if args.workers is not None and args.workers < 1:
        raise AudioclasError("--workers must be at least 1")
    if args.engine == "local" and (args.address or args.workers):
        raise AudioclasError("--address and --workers are for --engine ray")
    model = _job_model(args.model)
    spec = JobSpec(
        task,
        prediction_windows(model, windows),
        query,
        args.timeline,
        shard_size=args.shard_size,
        weights=str(args.weights) if args.weights else None,
        model=JobModel.of(model) if model else None,
    )
    show_progress = not args.no_progress
    if args.engine == "ray" and not show_progress:
        _hide_ray_progress()
    display = AudioProgress(show_progress and args.engine == "local", "listing inputs", per_file=False)
    with display.live:
        summary = run_job(
            inputs,
            args.out,
            spec,
            retry_failed=args.retry_failed,
            engine=args.engine,
            address=args.address,
            workers=args.workers,
            on_plan=lambda plan: display.restart("shards", plan.shards),
            on_shard=lambda shard: display.advance(),
            on_progress=display.update,
        )
    for line in summary.failures[:MAX_FAILURES_SHOWN]:
        print_error(line)
    if len(summary.failures) > MAX_FAILURES_SHOWN:
        print_error(f"… and {len(summary.failures) - MAX_FAILURES_SHOWN} more: see {summary.out_dir / 'failures'}")
    stderr.print(summary.text(), soft_wrap=True, highlight=False)
    return 1 if read_table(args.out, "failures").num_rows else 0


def _job_model(name: str | None) -> SavedModel | None:
    """The saved model ``--model`` names (PyTorch loads only with one)."""
    if not name:
        return None
    from audioclas.training.store import load_model, model_ref

    return load_model(model_ref(name))


def _hide_ray_progress() -> None:
    try:
        import ray.data
    except ImportError:
        return  # the engine says that Ray is missing
    ray.data.DataContext.get_current().enable_progress_bars = False
