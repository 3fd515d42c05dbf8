"""``audioclas embed``: 384-d embeddings of many files into Parquet, locally or on a Ray cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from audioclas.cli import COMMANDS
from audioclas.cli.batch import add_batch_arguments, run_batch
from audioclas.cli.window_options import add_window_arguments
from audioclas.windows import WindowRequest

EXAMPLES = """
examples:
  audioclas embed recordings/ --out emb/                    clip embeddings of every file below a folder
  audioclas embed corpus/ --out emb/ --timeline             and the embedding of every 10 s window
  audioclas embed corpus/ --out emb/ --model my-birds       the embeddings a trained classifier reads (its windows,
                                                            its fine-tuned network)
  audioclas embed 'field/**/*.flac' data.zip --out emb/ --engine ray --address auto
                                                            on the Ray cluster started on this machine

Run the same command again to resume after an interruption: inputs already done are skipped.
Read the output with pandas.read_parquet("emb/clips"), or audioclas.batch.read_embeddings("emb/").

exit status: 0 if every input was embedded, 1 if any input failed (listed in DIR/failures), 2 for a usage
or set-up error.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "embed",
        help=COMMANDS["embed"],
        description="Compute the network's 384-d embeddings for audio files, folders (recursive), glob patterns, "
        "archives and http(s) URLs, and write them as Parquet: one row per clip (the mean over its windows) and, "
        "with --timeline, one row per window. Training can use them without decoding the audio again.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="DATA", help="file, folder, glob, archive or URL")
    windows = add_window_arguments(parser)
    windows.add_argument(
        "--timeline", action="store_true", help="also write the embedding of every window (training needs them)"
    )
    add_batch_arguments(parser, out_required=True)
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="embed as a custom classifier trained with 'audioclas train' reads its input: on its windows, and "
        "with its own network if fine-tuned (its name, or a folder's path: ./dir)",
    )
    parser.add_argument(
        "--weights", type=Path, help="the mn04 checkpoint (default: $AUDIOCLAS_WEIGHTS or the cache, downloaded once)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress display")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_batch(args, args.inputs, "embed", WindowRequest(args.window, args.hop, args.pad))
