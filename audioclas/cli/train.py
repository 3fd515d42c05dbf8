"""``audioclas train``: a classifier on your own labelled audio, saved under a name."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from audioclas.cli import COMMANDS
from audioclas.cli.console import metrics_table, print_error, print_json, stderr
from audioclas.cli.progress import TrainProgress
from audioclas.extras import require_extra
from audioclas.training.config import TrainConfig, make_config

TRAIN_EXAMPLES = """
dataset layouts (DATA):
  a folder with classes.txt + train.txt [val.txt test.txt info.txt], lines 'relative/path label_number'
  a folder with one sub-folder of audio per class (or train/ val/ test/ folders, each with class folders)
  a .csv file with rows 'path,label[,split]'; a multi-label row separates its labels with ';'
  a folder of recordings with Raven selection tables (rec.selections.txt) or Audacity label tracks
    (rec.labels.txt or rec.txt), or a .csv with the header 'file,start,end,label[,split]': each annotation is
    an example cut from its recording; overlapping annotations make multi-label examples

examples:
  audioclas train birds/ --name birds                     train, validate on a 10 % hold-out, save as 'birds'
  audioclas train fsdd/ --head attention --epochs 60      a head that attends to the informative windows
  audioclas train sounds.csv --multilabel --class-weights balanced
  audioclas train recordings/ --background --label-column Species    Raven tables beside the recordings
  audioclas train data/ --config train.toml --lr 3e-4     a TOML config file; flags override its values
  audioclas train data/ --embeddings-only                 compute and cache the embeddings, train later
  audioclas train data/ --finetune --finetune-epochs 5    also fine-tune the network (slow on CPU)
  tensorboard --logdir "$(python -c 'import audioclas.settings as s; print(s.home_dir())')/runs"

Embeddings are cached (per audio content, network and window settings): a second run on the same audio
decodes nothing. Ctrl-C stops training and saves the best epoch so far.

exit status: 0 when a model was saved, 1 when the data has problems (all are listed), 2 for a usage error,
130 when interrupted before the first epoch finished.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "train",
        help=COMMANDS["train"],
        description="Train a classifier (a small head on EfficientAT mn04 embeddings) from labelled audio, and "
        "save it under a name for 'audioclas predict --model NAME'. The data is checked completely before any "
        "audio is decoded, and every problem is listed with its file and line.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", nargs="?", metavar="DATA", help="dataset folder or CSV (or 'data' in --config)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML file of training options; flags override it")
    parser.add_argument("--name", help="name of the saved model (default: a timestamp and a random suffix)")
    parser.add_argument("--overwrite", action="store_true", default=None, help="replace a saved model of the same name")
    task = parser.add_argument_group("task and head")
    task.add_argument(
        "--head",
        choices=("linear", "mlp", "attention"),
        help="attention (default: attention pooling over the windows of a clip), mlp (one hidden layer, mean over windows) or linear",
    )
    task.add_argument("--hidden", type=int, help="hidden units of the mlp and attention heads (default 256)")
    task.add_argument("--dropout", type=float, help="dropout (default 0 for linear, 0.2 otherwise)")
    task.add_argument(
        "--multilabel",
        action="store_true",
        default=None,
        help="several labels per clip: sigmoid outputs, per-class thresholds tuned on validation "
        "(default: on when a CSV row has several labels)",
    )
    task.add_argument("--class-weights", choices=("none", "balanced"), help="weigh the loss against class imbalance")
    optimisation = parser.add_argument_group("optimisation")
    optimisation.add_argument("--epochs", type=int, help="at most this many epochs (default 100)")
    optimisation.add_argument("--batch-size", type=int, help="clips per step (default 64)")
    optimisation.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    optimisation.add_argument("--lr-schedule", choices=("cosine", "step", "constant"), help="default cosine")
    optimisation.add_argument(
        "--lr-step-decay", type=float, help="step schedule: multiply the rate by this (default 0.1)"
    )
    optimisation.add_argument(
        "--lr-step-every", type=int, metavar="EPOCHS", help="step schedule: every this many epochs (default 30)"
    )
    optimisation.add_argument(
        "--l2", type=float, help="L2 regularisation: AdamW weight decay on weight matrices (default 1e-4)"
    )
    optimisation.add_argument("--seed", type=int, help="random seed: same data + options = same model (default 0)")
    validation = parser.add_argument_group("validation and checkpoints")
    validation.add_argument(
        "--val-fraction",
        type=float,
        help="stratified hold-out from train when DATA has no val split (default 0.1; 0: none)",
    )
    validation.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after this many epochs without a better validation score (default 10; 0: off)",
    )
    validation.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="EPOCHS",
        help="also keep a checkpoint every N epochs (default: only the best)",
    )
    validation.add_argument(
        "--no-tensorboard", dest="tensorboard", action="store_false", default=None, help="write no TensorBoard logs"
    )
    embeddings = parser.add_argument_group("embeddings")
    embeddings.add_argument(
        "--window", type=float, help="window length in seconds (default: 0.3 s for data of short clips, else 10 s)"
    )
    embeddings.add_argument(
        "--hop", type=float, help="seconds between windows (default: 0.1 s with 0.3 s windows, else the window)"
    )
    embeddings.add_argument(
        "--pad", choices=("loop", "zeros"), help="fill a clip shorter than a window by looping it or with silence"
    )
    embeddings.add_argument(
        "--embeddings-only", action="store_true", help="compute and cache the embeddings, do not train"
    )
    embeddings.add_argument(
        "--export-embeddings",
        type=Path,
        metavar="DIR",
        help="with --embeddings-only: also write DIR/<path>.npy per file",
    )
    embeddings.add_argument(
        "--from-embeddings", metavar="DIR", help="train on precomputed DIR/<path>.npy embeddings: no audio needed"
    )
    embeddings.add_argument(
        "--skip-bad-audio",
        action="store_true",
        default=None,
        help="leave out files that cannot be decoded instead of stopping",
    )
    annotated = parser.add_argument_group("annotated recordings (Raven, Audacity or file,start,end,label tables)")
    annotated.add_argument(
        "--label-column",
        metavar="NAME",
        help="Raven table column with the labels (default: the first of Annotation, Label, Species, Class, "
        "Common Name, Sound Type, Call Type, Type)",
    )
    annotated.add_argument(
        "--background",
        action="store_true",
        default=None,
        help="unannotated stretches become examples: of the class 'background', or with no label if multi-label",
    )
    finetune = parser.add_argument_group("fine-tuning the network")
    finetune.add_argument(
        "--finetune",
        action="store_true",
        default=None,
        help="after the head, fine-tune the whole network with augmentation",
    )
    finetune.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs (default 20)")
    finetune.add_argument("--finetune-batch-size", type=int, help="clips per fine-tuning step (default 32)")
    finetune.add_argument(
        "--backbone-lr", type=float, help="learning rate of the network when fine-tuning (default 2e-3)"
    )
    finetune.add_argument("--mixup", type=float, help="mixup Beta(a, a) parameter, 0 for none (default 0.3)")
    finetune.add_argument(
        "--speed", type=float, help="random speed change within ± this fraction, 0 for none (default 0.1)"
    )
    finetune.add_argument("--gain-db", type=float, help="random gain within ± this many dB (default 6)")
    finetune.add_argument(
        "--noise-snr", type=float, help="white noise at a random SNR from this to 20 dB more, 0 for none (default 10)"
    )
    finetune.add_argument(
        "--spec-masks", type=int, help="SpecAugment frequency and time masks per clip, 0 for none (default 2)"
    )
    finetune.add_argument(
        "--time-shift",
        type=float,
        help="random delay up to this fraction of the room left in the training segment (default 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress display")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(func=run)


OPTION_NAMES = [name for name in TrainConfig.model_fields if name != "data"]


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {name: getattr(args, name, None) for name in OPTION_NAMES}
    if args.data is not None:
        overrides["data"] = args.data
    return make_config(args.config, **overrides)


def run(args: argparse.Namespace) -> int:
    from audioclas.training.dataset import DatasetError

    require_extra("train", "training")
    try:
        return _train(args)
    except DatasetError as error:
        print_error(error)
        return 1


def _train(args: argparse.Namespace) -> int:
    from audioclas.training.finetune import NO_VALIDATION
    from audioclas.training.run import extract_embeddings, train
    from audioclas.training.summary import summary

    config = config_from_args(args)
    display = TrainProgress(stderr, enabled=not args.no_progress)

    def log(message: str) -> None:
        display.live.console.print(message, highlight=False, markup=False)

    with display.live:
        if args.embeddings_only:
            computed = extract_embeddings(
                args.data or config.data,
                config,
                export=args.export_embeddings,
                on_event=display,
                log=log,
            )
            log(f"{computed} embeddings computed; the rest were cached")
            return 0
        result = train(None, config, on_event=display, log=log)
    if args.json:
        print_json(
            {
                **summary(result),
                "path": str(result.model.path),
                "metrics": result.metrics,
                **({"finetune": result.finetune} if result.finetune else {}),
            }
        )
        return 0
    out = Console(highlight=False)
    if result.metrics:
        out.print(metrics_table(result.metrics))
    if result.finetune:  # both networks side by side: a fine-tuned network can be far worse than the frozen head
        rows = {
            f"{split} ({network})": values
            for network, key in (("frozen head", "frozen"), ("fine-tuned", "finetuned"))
            for split, values in (result.finetune[key] or {}).items()
        }
        if rows:
            out.print(metrics_table(rows, "frozen head and fine-tuned network"))
        unchecked = result.finetune["selection"] == NO_VALIDATION
        out.print(
            ("warning: " if unchecked else "") + result.finetune["selection"],
            style="yellow" if unchecked else None,
            markup=False,
        )
    out.print(
        f"model [bold]{result.model.name}[/] saved to {result.model.path} ({result.stopped}, best epoch "
        f"{result.best_epoch}; embeddings {result.timings['extract']:.1f} s, training {result.timings['train']:.1f} s)"
    )
    out.print(f"use it: audioclas predict FILE --model {result.model.name}")
    return 0
