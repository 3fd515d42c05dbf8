"""``audioclas evaluate``: a saved classifier's metrics on a dataset in any training layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from audioclas.cli import COMMANDS
from audioclas.cli.console import metrics_table, per_class_table, print_error, print_json, stderr
from audioclas.cli.progress import TrainProgress
from audioclas.extras import require_extra

EXAMPLES = """
examples:
  audioclas evaluate birds birds/                  the test split (or all of DATA when it has no splits)
  audioclas evaluate birds new_recordings/ --split train --output report/   metrics.json + confusion matrix
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"],
        description="Accuracy, balanced accuracy, macro-F1, per-class precision and recall and the confusion matrix "
        "(mAP and F1 at the model's thresholds for multi-label models) of a saved model on a dataset in any "
        "training layout. Classes are matched by name.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("model", metavar="MODEL", help="saved model name, or a folder's path (./dir)")
    evaluate.add_argument("data", metavar="DATA", help="dataset folder or CSV")
    evaluate.add_argument(
        "--split", choices=("train", "val", "test"), help="default: test if DATA has it, else everything"
    )
    evaluate.add_argument(
        "--output", type=Path, metavar="DIR", help="write metrics.json and the confusion matrix (PNG, JSON) here"
    )
    evaluate.add_argument("--skip-bad-audio", action="store_true", help="leave out files that cannot be decoded")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress display")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")
    evaluate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_extra("train", "evaluation")
    from audioclas.training.dataset import DatasetError
    from audioclas.training.evaluation import evaluate
    from audioclas.training.store import model_ref

    display = TrainProgress(stderr, enabled=not args.no_progress)
    try:
        with display.live:
            result = evaluate(
                model_ref(args.model),
                args.data,
                args.split,
                output=args.output,
                skip_bad_audio=args.skip_bad_audio,
                on_event=display,
                log=lambda message: None,
            )
    except DatasetError as error:
        print_error(error)
        return 1
    if args.json:
        print_json(result.metrics)
        return 0
    out = Console(highlight=False)
    out.print(metrics_table({args.split or "evaluated": result.metrics}))
    out.print(per_class_table(result.metrics["per_class"]))
    for path in result.skipped:
        stderr.print(f"skipped {path}: could not be decoded", highlight=False, markup=False)
    if args.output:
        out.print(f"report written to {args.output}")
    return 0
