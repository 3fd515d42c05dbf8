"""``audioclas export``: the tagger, or a trained classifier, as one ONNX file to run on an edge device."""

from __future__ import annotations

import argparse
from pathlib import Path

from audioclas.cli import COMMANDS

EXAMPLES = """
examples:
  audioclas export -o audioset.onnx                   the AudioSet tagger (527 classes)
  audioclas export --model my-birds -o birds.onnx     a classifier trained with 'audioclas train'
  audioclas export --model my-birds -o birds.onnx --force   replace an existing file

The file takes 'waveform' [batch, samples]: 32 kHz mono float32 windows (the window in its metadata, 10 s
unless the model says otherwise; a shorter clip looped to fill one). It returns 'scores' [batch, classes] per
window, 'clip_scores' [1, classes] with the batch pooled as one clip's windows, and 'embedding' [batch, 384].
Class names, window settings and the backbone's sha256 are in its metadata. Needs no PyTorch, here or there.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help=COMMANDS["export"],
        description="Write the network, its log-mel front end and the AudioSet head (or a trained classifier's "
        "head, on its fine-tuned network if it has one) as one ONNX file for ONNX Runtime on any device.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the .onnx file to write")
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="a custom classifier trained with 'audioclas train': its name, or a folder's path (./dir)",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.add_argument(
        "--weights", type=Path, help="the mn04 checkpoint (default: $AUDIOCLAS_WEIGHTS or the cache, downloaded once)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audioclas.engine.export import export_onnx  # here: onnx loads only for a command that exports

    model = None
    if args.model:
        from audioclas.training.store import load_model, model_ref

        model = load_model(model_ref(args.model))
    exported = export_onnx(args.output, model, args.weights, args.force)
    what = f"model {model.name!r}" if model is not None else "the AudioSet tagger"
    print(
        f"wrote {exported.path} ({exported.size / 2**20:.1f} MiB): {what}, {exported.classes} classes, "
        f"{exported.metadata['window_seconds']} s windows at {exported.metadata['sample_rate']} Hz"
    )
    return 0
