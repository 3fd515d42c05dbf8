"""Training benchmark on the Free Spoken Digit Dataset (../shared/datasets/fsdd, 3,000 clips, 6 speakers).

    .venv/bin/python benchmarks/train_fsdd.py [--threads 2] [--head attention] [--finetune | --finetune-only]
                         [--compare-windows] [--skip-official] [--skip-loso] [--speakers george,nicolas]

1. raw audio -> saved model with an empty embedding cache: wall time of embedding extraction and of head training
   separately, and test accuracy on the official split (recordings 0-4 of every speaker and digit);
2. the same training again on the cached embeddings (what every later experiment costs);
3. leave-one-speaker-out: train on five speakers, test on the sixth, for each of the six (mean ± std);
4. with --finetune: the same with the whole network fine-tuned (``--finetune``, about 7 minutes per model);
5. with --compare-windows: the same for other window settings (10 s looped / zero-padded, 1 s, 0.3 s every 0.1 s).

Everything runs in a temporary cache and home, so nothing of the user's is read or written. Targets (2 CPU cores):
official split >= 97 %, speaker-independent mean >= 90 %, raw audio -> saved model < 90 s, head training on cached
embeddings < 10 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
FSDD = SHARED / "datasets" / "fsdd"
os.environ.setdefault("AUDIOCLAS_WEIGHTS", str(SHARED / "weights" / "efficientat"))

from audioclas.training import Dataset, TrainConfig, load_dataset, train  # noqa: E402

WINDOW_SETTINGS = [  # (window, hop, pad)
    (10.0, None, "loop"),
    (10.0, None, "zeros"),
    (1.0, None, "loop"),
    (1.0, None, "zeros"),
    (0.3, 0.1, "loop"),
    (0.3, 0.1, "zeros"),
]


def speaker(example) -> str:
    return example.path.name.split("_")[1]


def leave_one_speaker_out(
    dataset: Dataset, config: TrainConfig, label: str, speakers: list[str] | None
) -> tuple[dict[str, float], float]:
    """Test accuracy per held-out speaker, and the seconds spent training the models."""
    examples = dataset.examples()
    accuracies, seconds = {}, 0.0
    for held_out in speakers or sorted({speaker(e) for e in examples}):
        fold = Dataset(
            dataset.root,
            dataset.layout,
            dataset.classes,
            {
                "train": [e for e in examples if speaker(e) != held_out],
                "test": [e for e in examples if speaker(e) == held_out],
            },
        )
        options = {**config.to_dict(), "name": f"loso-{label}-{held_out}", "tensorboard": False}
        if config.finetune:  # a hold-out from the training speakers is speaker-dependent: it prefers the frozen
            options["val_fraction"] = 0  # network (98 %), so train on the fixed schedule and keep the last epoch
        result = train(fold, TrainConfig(**options), log=lambda message: None)
        accuracies[held_out] = result.metrics["test"]["accuracy"]
        seconds += result.timings["train"]
        print(
            f"  held out {held_out}: test accuracy {accuracies[held_out]:.3f} ({result.timings['train']:.0f} s)",
            flush=True,
        )
    return accuracies, seconds


def run(
    config: TrainConfig,
    dataset: Dataset,
    loso: bool,
    label: str,
    speakers: list[str] | None = None,
    official: bool = True,
) -> None:
    if official:
        official_split(config, label)
    if loso:
        accuracies, seconds = leave_one_speaker_out(dataset, config, label, speakers)
        values = np.array(list(accuracies.values()))
        print(
            f"leave-one-speaker-out ({label}): mean {values.mean():.4f} ± {values.std():.4f} ("
            + ", ".join(f"{name} {value:.3f}" for name, value in accuracies.items())
            + f"); {len(values)} models trained in {seconds:.1f} s"
        )
    sys.stdout.flush()


def official_split(config: TrainConfig, label: str) -> None:
    started = time.perf_counter()
    cold = train(FSDD, TrainConfig(**{**config.to_dict(), "name": f"fsdd-{label}"}), log=lambda message: None)
    wall = time.perf_counter() - started
    model = cold.model
    print(
        f"\n## {label}: head {config.head}, windows {model.window:g} s every {model.hop or model.window:g} s, "
        f"pad {model.pad}"
    )
    print(
        f"raw audio -> saved model: {wall:.1f} s (embedding extraction {cold.timings['extract']:.1f} s for "
        f"{cold.embeddings_computed} files, head training {cold.timings['train']:.1f} s; best epoch "
        f"{cold.best_epoch} of {len(cold.history)}, {cold.stopped})"
    )
    if not config.finetune:  # fine-tuning reads the audio again: the cache does not make it faster
        warm = train(FSDD, TrainConfig(**{**config.to_dict(), "name": f"fsdd-{label}-again"}), log=lambda message: None)
        print(
            f"again on cached embeddings: {warm.timings['total']:.1f} s (cache read {warm.timings['extract']:.1f} s, "
            f"head training {warm.timings['train']:.1f} s)"
        )
    test = cold.metrics["test"]
    print(
        f"official split: test accuracy {test['accuracy']:.4f}, balanced {test['balanced_accuracy']:.4f}, "
        f"macro-F1 {test['macro_f1']:.4f} (validation accuracy {cold.metrics['val']['accuracy']:.4f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the target machine)")
    parser.add_argument("--head", default="attention", choices=("linear", "mlp", "attention"))
    parser.add_argument("--compare-windows", action="store_true", help="also try the other window settings")
    parser.add_argument("--finetune", action="store_true", help="also fine-tune the network (slow)")
    parser.add_argument("--finetune-only", action="store_true", help="only the fine-tuned runs")
    parser.add_argument("--skip-official", action="store_true", help="skip the official split")
    parser.add_argument("--skip-loso", action="store_true", help="skip the leave-one-speaker-out folds")
    parser.add_argument("--speakers", help="held-out speakers of the leave-one-speaker-out folds (default: all six)")
    args = parser.parse_args()
    speakers = args.speakers.split(",") if args.speakers else None
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="audioclas-train-bench-") as scratch:
        os.environ["AUDIOCLAS_CACHE"] = str(Path(scratch) / "cache")
        os.environ["AUDIOCLAS_HOME"] = str(Path(scratch) / "home")
        print(f"FSDD at {FSDD}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs visible")
        dataset = load_dataset(FSDD)
        official = not args.skip_official
        if not args.finetune_only:
            run(TrainConfig(head=args.head), dataset, not args.skip_loso, "default", speakers, official)
        if args.finetune or args.finetune_only:
            run(TrainConfig(head=args.head, finetune=True), dataset, not args.skip_loso, "finetune", speakers, official)
        if args.compare_windows:
            for window, hop, pad in WINDOW_SETTINGS:
                config = TrainConfig(head=args.head, window=window, hop=hop, pad=pad)
                run(config, dataset, not args.skip_loso, f"{window:g}s-{hop or window:g}-{pad}", speakers, official)


if __name__ == "__main__":
    main()
