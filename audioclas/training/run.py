"""Training end to end: dataset → cached embeddings → head (→ fine-tune) → metrics → saved model.

``train``, ``extract_embeddings`` and ``evaluate`` (in ``evaluation``) take three optional hooks, so that a CLI, a
notebook or a service worker can drive them:

- ``on_event(TrainEvent)``: progress — ``stage`` "extract" (files done/total), "train" (epoch/epochs with the
  epoch's metrics) or "finetune" (batch/batches of the current fine-tuning epoch);
- ``cancel``: a ``threading.Event`` or a callable returning True to stop. Extraction stops between files (what
  was computed stays cached) and raises ``Cancelled``; training stops after the current batch and the best epoch
  so far is saved, as on Ctrl-C, with ``stopped`` saying why;
- ``log(message)``: one line per notable step; by default the ``audioclas.training`` logger.

This module only orchestrates: embeddings come from ``embeddings``, the loop is ``trainer.fit`` (and
``finetune``), the model folder is written by ``store``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from audioclas.architecture import EMBEDDING_DIM
from audioclas.engine.torch_engine import TorchEngine, module_sha256, torch_threads
from audioclas.errors import AudioclasError
from audioclas.pipeline import network_threads
from audioclas.settings import home_dir
from audioclas.training import store
from audioclas.training.config import TrainConfig
from audioclas.training.dataset import Dataset, embedding_name, load_dataset, with_holdout
from audioclas.training.embedding_cache import export_embeddings
from audioclas.training.embeddings import (
    Cancel,
    Cancelled,
    Embedder,
    Log,
    OnEvent,
    embed_splits,
    embedded_split,
    embedder_for,
)
from audioclas.training.heads import Head, build_head
from audioclas.training.metrics import confusion_image, display_score, split_summaries, tune_thresholds
from audioclas.training.tensorboard_log import TensorBoard
from audioclas.training.trainer import EmbeddedSplit, FitResult, TrainEvent, fit, predict_scores, split_metrics

logger = logging.getLogger("audioclas.training")


@dataclass
class TrainResult:
    model: store.SavedModel
    metrics: dict[str, Any]  # {"val": {...}, "test": {...}} for the splits the data has
    history: list[dict[str, float]]
    stopped: str  # "completed", "early stopping", "interrupted" or "cancelled"
    best_epoch: int
    timings: dict[str, float]  # seconds: "extract", "train", "total"
    embeddings_computed: int  # files whose embeddings were not cached yet
    # with finetune: {"kept": "finetuned" | "frozen", "selection": why, "frozen": {split: metrics},
    # "finetuned": {split: metrics}}: both networks' val/test metrics side by side (summaries, no per-class rows)
    finetune: dict[str, Any] | None = None


def _as_dataset(data: str | Path | Dataset | None, config: TrainConfig) -> Dataset:
    if isinstance(data, Dataset):
        return data
    path = data if data is not None else config.data
    if path is None:
        raise AudioclasError("no dataset given: pass a path, or set 'data' in the config")
    embeddings = Path(config.from_embeddings) if config.from_embeddings else None
    return load_dataset(
        path,
        multilabel=config.multilabel,
        embeddings=embeddings,
        label_column=config.label_column,
        background=config.background,
    )


def train(
    data: str | Path | Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    on_event: Callable[[TrainEvent], None] | None = None,
    cancel: Cancel = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a classifier on ``data`` (a dataset path, or a loaded ``Dataset``) and save it; see the module doc."""
    started = time.perf_counter()
    config = config or TrainConfig()
    log = log or logger.info
    name = store.check_name(config.name or store.default_name())
    if store.model_path(name).exists() and not config.overwrite:
        raise store.ModelExists(f"a model named {name!r} already exists: choose another name or overwrite it")
    dataset = with_holdout(_as_dataset(data, config), config.val_fraction, config.seed)
    multilabel = dataset.multilabel if config.multilabel is None else config.multilabel
    log(
        f"dataset {dataset.root} ({dataset.layout}): {len(dataset.classes)} classes, "
        + ", ".join(f"{len(items)} {split}" for split, items in dataset.splits.items() if items)
        + (", multi-label" if multilabel else "")
    )
    embedder = embedder_for(config, dataset, log)
    settings = embedder.settings
    config = config.model_copy(update={"window": settings.window, "hop": settings.hop, "pad": settings.pad})  # as used
    dataset, clips, computed = embed_splits(dataset, embedder, config.skip_bad_audio, on_event, cancel, log)
    extracted = time.perf_counter()
    log(f"embeddings: {computed} computed, {len(clips) - computed} from the cache ({extracted - started:.1f} s)")

    classes, count = dataset.classes, len(dataset.classes)
    splits = {
        split: embedded_split(items, clips, count, multilabel) for split, items in dataset.splits.items() if items
    }
    run_dir = home_dir() / "runs" / name
    tensorboard = TensorBoard(run_dir / "tensorboard" if config.tensorboard else None)
    torch.manual_seed(config.seed)
    head = build_head(config.head, EMBEDDING_DIM, count, config.hidden, config.head_dropout)
    try:
        with torch_threads(1):  # small matrices: one thread is fastest (see torch_threads)
            result = fit(
                head,
                splits["train"],
                splits.get("val"),
                config,
                classes,
                multilabel,
                run_dir=run_dir,
                tensorboard=tensorboard,
                on_event=on_event,
                cancel=cancel,
            )
        if result.best_epoch == 0:
            raise Cancelled(f"training {result.stopped} before the first epoch finished: nothing to save")
        backbone, comparison = None, None
        if config.finetune and result.stopped in ("completed", "early stopping"):
            backbone, comparison, result, dataset, splits = _finetune(
                head, dataset, splits, embedder, config, classes, multilabel, result, tensorboard, on_event, cancel, log
            )
        trained = time.perf_counter()
        with torch_threads(1):
            metrics, thresholds = _final_metrics(head, splits, classes, multilabel)
        for split, values in metrics.items():
            if "confusion_matrix" in values:
                tensorboard.image(f"confusion_matrix/{split}", _confusion_png(values, classes), result.best_epoch)
    finally:
        tensorboard.close()
    log(
        f"training {result.stopped} after {result.epochs_run} epochs (best: {result.best_epoch}) in "
        f"{trained - extracted:.1f} s; " + ", ".join(f"{split} {display_score(v)}" for split, v in metrics.items())
    )
    info = store.model_info(
        name,
        dataset,
        config,
        settings,
        embedder.model_id,
        multilabel,
        thresholds,
        result,
        metrics,
        backbone,
        {"extract": extracted - started, "train": trained - extracted},
        comparison,
    )
    path = store.save_model(
        name,
        lambda folder: store.write_model_folder(folder, head, backbone, info, config, dataset, metrics, result.history),
        overwrite=config.overwrite,
    )
    log(f"saved model {name!r} to {path}")
    timings = {"extract": extracted - started, "train": trained - extracted, "total": time.perf_counter() - started}
    return TrainResult(
        store.load_model(path),
        metrics,
        result.history,
        result.stopped,
        result.best_epoch,
        timings,
        computed,
        comparison,
    )


def _finetune(
    head: Head,
    dataset: Dataset,
    splits: dict[str, EmbeddedSplit],
    embedder: Embedder,
    config: TrainConfig,
    classes: list[str],
    multilabel: bool,
    frozen: FitResult,
    tensorboard: TensorBoard,
    on_event: OnEvent,
    cancel: Cancel,
    log: Log,
) -> tuple[torch.nn.Module | None, dict[str, Any], FitResult, Dataset, dict[str, EmbeddedSplit]]:
    """Fine-tune, and measure the frozen head and the fine-tuned network on val and test side by side.

    Returns (the kept backbone or None, the comparison, the kept run, and the dataset and splits the kept head
    reads). A fine-tuned network can be much worse than the frozen head (one epoch without validation: 10 % where
    the frozen head scored 97 %), so both are always measured, whichever is kept.
    """
    from audioclas.training.finetune import finetune

    with torch_threads(1):
        frozen_metrics, _ = _final_metrics(head, splits, classes, multilabel)
    with torch_threads(network_threads()):
        tuned = finetune(
            head,
            dataset,
            config,
            embedder.settings,
            classes,
            multilabel,
            frozen,
            tensorboard=tensorboard,
            on_event=on_event,
            cancel=cancel,
            log=log,
        )
    comparison = {
        "kept": "finetuned" if tuned.kept else "frozen",
        "selection": tuned.selection,
        "frozen": split_summaries(frozen_metrics),
        "finetuned": None,
    }
    if tuned.backbone is None or tuned.head_state is None:  # both None when no epoch finished
        return None, comparison, tuned.result, dataset, splits
    # The fine-tuned head reads the fine-tuned network's embeddings: re-embed val/test with it.
    engine = TorchEngine(tuned.backbone, module_sha256(tuned.backbone), network_threads())
    tuned_embedder = Embedder(embedder.settings, model_id=engine.identity, engine=engine)
    tuned_dataset, tuned_clips, _ = embed_splits(dataset, tuned_embedder, True, None, None, log)
    tuned_splits = {
        split: embedded_split(items, tuned_clips, len(classes), multilabel)
        for split, items in tuned_dataset.splits.items()
        if items
    }
    tuned_head = head
    if not tuned.kept:
        tuned_head = copy.deepcopy(head)
        tuned_head.load_state_dict(tuned.head_state)
    with torch_threads(1):
        tuned_metrics, _ = _final_metrics(tuned_head, tuned_splits, classes, multilabel)
    comparison["finetuned"] = split_summaries(tuned_metrics)
    for split in ("val", "test"):
        if split in frozen_metrics and split in tuned_metrics:
            log(
                f"{split}: frozen head {display_score(frozen_metrics[split])}, fine-tuned network "
                f"{display_score(tuned_metrics[split])}"
            )
    if tuned.kept:
        return tuned.backbone, comparison, tuned.result, tuned_dataset, tuned_splits
    return None, comparison, tuned.result, dataset, splits


def _final_metrics(
    head: Head, splits: dict[str, EmbeddedSplit], classes: list[str], multilabel: bool
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Metrics of the final head on val and test; for multi-label, thresholds are tuned on val (else 0.5)."""
    scores = {split: predict_scores(head, splits[split], multilabel)[0] for split in ("val", "test") if split in splits}
    thresholds = None
    if multilabel:
        thresholds = (
            tune_thresholds(splits["val"].targets.numpy(), scores["val"])
            if "val" in scores
            else np.full(len(classes), 0.5)
        )
    return {
        split: split_metrics(values, splits[split], classes, multilabel, thresholds) for split, values in scores.items()
    }, thresholds


def _confusion_png(metrics: dict[str, Any], classes: list[str]) -> Image.Image:
    return confusion_image(np.asarray(metrics["confusion_matrix"]), classes)


def extract_embeddings(
    data: str | Path | Dataset | None,
    config: TrainConfig | None = None,
    *,
    export: Path | None = None,
    on_event: OnEvent = None,
    cancel: Cancel = None,
    log: Log | None = None,
) -> int:
    """Compute (and cache) the embeddings of every file of ``data``; optionally export them as ``.npy`` files.

    Returns the number of files whose embeddings were computed (not already cached).
    """
    config = config or TrainConfig()
    log = log or logger.info
    dataset = _as_dataset(data, config)
    embedder = embedder_for(config, dataset, log)
    dataset, clips, computed = embed_splits(dataset, embedder, config.skip_bad_audio, on_event, cancel, log)
    if export is not None:
        pairs = ((embedding_name(example, dataset.root), clips[example.key]) for example in dataset.examples())
        written = export_embeddings(pairs, Path(export), embedder.model_id, embedder.settings)
        log(f"exported {written} embeddings to {export}")
    return computed
