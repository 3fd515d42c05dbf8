"""``audioclas predict``: tag files, folders, archives and URLs."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack, closing
from pathlib import Path
from typing import BinaryIO

from audioclas.cli import COMMANDS
from audioclas.cli.batch import add_batch_arguments, run_predict_job
from audioclas.cli.console import print_error
from audioclas.cli.progress import AudioProgress
from audioclas.cli.window_options import add_window_arguments
from audioclas.errors import AudioclasError, InputError
from audioclas.events import EventOptions
from audioclas.options import Classifier
from audioclas.output import EVENT_FORMATS, FORMATS, ResultWriter, TableFolder, open_output, output_format
from audioclas.predictions import LabelQuery
from audioclas.windows import WindowRequest

EXAMPLES = """
examples:
  audioclas predict birds.mp3                       top 5 AudioSet labels as a table
  audioclas predict recordings/ --timeline          every file below a folder, with a label per 10 s window
  audioclas predict 'field/**/*.flac' -k 10 -t 0.2  a glob; up to 10 labels scoring at least 0.2
  audioclas predict data.zip -o tags.jsonl          members of an archive, one JSON line per file (format from .jsonl)
  curl -s https://example.org/a.ogg | audioclas predict -   audio from standard input
  audioclas predict https://example.org/a.ogg -f json
  audioclas predict night.wav --labels Bird --labels "Bird vocalization, bird call, bird song"
  audioclas predict walk.wav --labels Dog --specific   Dog and the classes below it, the most specific first
  audioclas predict clip.wav --model my-birds       a classifier trained with 'audioclas train'
  audioclas predict recordings/ --out tags/ --engine ray   a resumable batch job on Ray, Parquet tables in tags/
  audioclas predict recordings/ --out tags/ --model my-birds   the same with a custom classifier's classes
  audioclas predict night.flac --events            when each sound is heard (2 s windows every 0.5 s), as a table
  audioclas predict night.flac -o night.selections.txt   the events as a Raven selection table
  audioclas predict field/ --tables tables/ -f audacity  one Audacity label file per recording
  audioclas predict night.flac --events --thresholds thresholds.csv --merge-gap 2 --min-duration 1 -f csv

exit status: 0 if every input was tagged, 1 if any input failed (each failure is one line on stderr),
2 for a usage or set-up error.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "predict",
        help=COMMANDS["predict"],
        description="Tag audio files, folders (recursive), glob patterns, archives (zip, tar, tar.gz/bz2/xz, .gz) and "
        "http(s) URLs. Any format FFmpeg reads works, including the audio track of videos. Audio is cut into "
        "windows (10 s by default); a clip shorter than a window is looped to fill it. Clip-level scores are "
        "the maximum over windows by default: a sound heard anywhere in the clip is reported.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="file, folder, glob, archive or URL; - for standard input"
    )
    labels = parser.add_argument_group("which labels")
    labels.add_argument(
        "-k", "--top-k", type=int, default=5, help="labels per clip (and per window); 0 for all (default 5)"
    )
    labels.add_argument(
        "-t",
        "--threshold",
        type=float,
        default=None,
        help="only labels scoring at least this (0-1); with events, also the score an event needs (default 0.5)",
    )
    labels.add_argument("--labels", action="append", metavar="NAME", help="report only this label (repeat for several)")
    labels.add_argument(
        "--exclude", action="append", default=[], metavar="NAME", help="never report this label (repeatable)"
    )
    labels.add_argument(
        "--exact",
        action="store_true",
        help="--labels/--exclude name AudioSet classes alone; by default a class brings the classes below it in the "
        "ontology ('--labels Dog' also reports Bark, Howl …; see 'audioclas labels')",
    )
    labels.add_argument(
        "--specific",
        action="store_true",
        help="rank a specific AudioSet class above its ancestors when it is confident (Guitar above Music, Dog above "
        "Animal): when it scores at least 0.2 and at least half its ancestor's score",
    )
    windows = add_window_arguments(parser)
    windows.add_argument(
        "--aggregate", choices=("max", "mean"), default="max", help="clip score from window scores (default max)"
    )
    events = parser.add_argument_group(
        "events",
        "when each label is heard: runs of windows scoring at least the threshold. Without --window, AudioSet "
        "events use 2 s windows every 0.5 s (measured: benchmarks/events.py), and the clip labels come from them "
        "too; -f raven, -f audacity and any option here turn events on",
    )
    events.add_argument("--events", action="store_true", help="give the events of each input")
    events.add_argument(
        "--thresholds", type=Path, metavar="FILE", help="per-label thresholds: a label,threshold CSV or TSV file"
    )
    events.add_argument("--min-duration", type=float, metavar="S", help="drop events shorter than this (default 0)")
    events.add_argument(
        "--merge-gap", type=float, metavar="S", help="merge events of a label this close (seconds, default 2)"
    )
    events.add_argument(
        "--tables",
        type=Path,
        metavar="DIR",
        help="write each input's events as its own table in DIR (-f raven, the default, or audacity); "
        "nothing on standard output, -o still writes the combined table",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--timeline", action="store_true", help="also give the labels of every window")
    out.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        help="table for people (default); json, jsonl or csv for scripts; raven (selection table) or audacity "
        "(label track) for events; with -o, the output file's extension chooses it (.csv, .json, .jsonl/.ndjson, "
        ".selections.txt for raven, .labels.txt for audacity, other .txt for the table)",
    )
    out.add_argument("-o", "--output", type=Path, help="write results to this file (written completely or not at all)")
    out.add_argument("--no-progress", action="store_true", help="hide the progress display")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        metavar="NAME",
        help="a custom classifier trained with 'audioclas train': its name, or a folder's path (./dir)",
    )
    model.add_argument(
        "--with-audioset",
        action="store_true",
        help="with --model: show the AudioSet labels as well (on the network's own 10 s windows)",
    )
    model.add_argument(
        "--weights", type=Path, help="the mn04 checkpoint (default: $AUDIOCLAS_WEIGHTS or the cache, downloaded once)"
    )
    model.add_argument("--batch-size", type=int, default=16, help="windows per network call (default 16)")
    add_batch_arguments(parser, out_required=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    threshold = 0.0 if args.threshold is None else args.threshold
    query = LabelQuery(args.top_k, threshold, args.labels, args.exclude, args.aggregate, args.exact, args.specific)
    windows = WindowRequest(args.window, args.hop, args.pad)
    fmt = "raven" if args.tables and not args.format and not args.output else output_format(args.format, args.output)
    events = _event_options(args, fmt)
    if args.out is not None or args.engine == "ray":  # a batch job: Parquet tables, resumable, local or on Ray
        if events is not None:
            raise AudioclasError("events are not available for batch jobs (--out): give -o FILE or --tables DIR")
        return run_predict_job(args, query, windows)
    tables = TableFolder(args.tables, fmt) if args.tables else None
    one_input = args.inputs == ["-"] or _known_file_count(args.inputs) == 1  # standard input is one input
    if fmt == "audacity" and (tables is None or args.output) and not one_input:
        raise AudioclasError("an Audacity label file holds one input's events: give one file, or --tables DIR")
    from audioclas.tagger import Tagger  # here: PyTorch loads only for a command that runs the network

    inputs = _with_stdin(args.inputs)
    tagger = Tagger(args.weights, batch_size=args.batch_size)
    custom: Classifier | None = None
    if args.model:
        from audioclas.training.store import load_model, model_ref

        custom = load_model(model_ref(args.model))
    failures = 0
    with ExitStack() as stack:
        writer = None
        if tables is None or args.output:  # --tables alone writes nothing on standard output
            writer = ResultWriter(
                stack.enter_context(open_output(args.output)), fmt, args.timeline, events=bool(events)
            )
        display = AudioProgress(not args.no_progress, total=_known_file_count(args.inputs))
        stack.enter_context(display.live)
        results = closing(
            tagger.predict_many(
                inputs,
                query,
                windows,
                model=custom,
                with_audioset=args.with_audioset,
                progress=display.update,
                events=events or False,
            )
        )
        for result in stack.enter_context(results):  # closed first: the decoder thread stops before we exit
            if isinstance(result, InputError):
                failures += 1
                print_error(result, display.live.console)
            if tables is not None:
                tables.write(result)
            if writer is not None:
                writer.write(result)
        if writer is not None:
            writer.close()
    return 1 if failures else 0


def _event_options(args: argparse.Namespace, fmt: str) -> EventOptions | None:
    """The events asked for, or None: ``--events``, an events format, or any event option turns them on."""
    given = [args.thresholds, args.min_duration, args.merge_gap, args.tables]
    if not (args.events or fmt in EVENT_FORMATS or any(value is not None for value in given)):
        return None
    return EventOptions.given(args.threshold, args.thresholds, args.min_duration, args.merge_gap)


def _with_stdin(inputs: list[str]) -> list[str | BinaryIO]:
    """``-`` is the audio on standard input (read whole, within the inputs' size bound)."""
    if "-" in inputs and sys.stdin.isatty():
        raise AudioclasError("- reads audio from standard input, which is a terminal: pipe or redirect a file into it")
    return [sys.stdin.buffer if name == "-" else name for name in inputs]


def _known_file_count(inputs: list[str]) -> int | None:
    """The number of inputs when each is a plain file (so the bar can show a total), else None."""
    return len(inputs) if all(Path(x).is_file() and not _is_archive(x) for x in inputs) else None


def _is_archive(name: str) -> bool:
    return name.lower().endswith((".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".tbz2", ".txz"))
