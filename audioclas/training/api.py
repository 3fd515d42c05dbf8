"""Training and evaluation end to end: dataset → cached embeddings → head (→ fine-tune) → metrics → saved model.

``train`` and ``evaluate`` take three optional hooks, so that a CLI, a notebook or a service worker can drive them:

- ``on_event(TrainEvent)``: progress — ``stage`` "extract" (files done/total), "train" (epoch/epochs with the
  epoch's metrics) or "finetune" (batch/batches of the current fine-tuning epoch);
- ``cancel``: a ``threading.Event`` or a callable returning True to stop. Extraction stops between files (what
  was computed stays cached) and raises ``Cancelled``; training stops after the current batch and the best epoch
  so far is saved, as on Ctrl-C, with ``stopped`` saying why;
- ``log(message)``: one line per notable step; by default the ``audioclas.training`` logger.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audioclas.audio import probe
from audioclas.errors import AudioclasError, InputError, printable
from audioclas.fileio import atomic_open
from audioclas.model import EMBEDDING_DIM
from audioclas.pipeline import network_threads, torch_threads
from audioclas.settings import home_dir
from audioclas.sources import AudioSource
from audioclas.training import store
from audioclas.training.config import TrainConfig
from audioclas.training.dataset import Dataset, DatasetError, Example, Problem, load_dataset, with_holdout
from audioclas.training.embedding_cache import (ClipWindows, EmbeddingCache, export_embeddings, extract,
                                                load_precomputed, read_manifest)
from audioclas.training.heads import build_head
from audioclas.training.metrics import confusion_image, tune_thresholds, write_confusion
from audioclas.training.trainer import (EmbeddedSplit, FitResult, TensorBoard, TrainEvent, fit, predict_scores,
                                        split_metrics)
from audioclas.weights import WEIGHTS_SHA256
from audioclas.windows import WindowSettings

logger = logging.getLogger("audioclas.training")
Cancel = threading.Event | Callable[[], bool] | None
BACKBONE_NAME = "EfficientAT mn04_as"
SHORT_CLIP_SECONDS = 2.0  # training data whose median clip is this short gets short windows
SHORT_WINDOW, SHORT_HOP = 0.3, 0.1
FINETUNE_SHORT_WINDOW = 1.0  # fine-tuning short clips: one window holds a whole clip, 2.4x less compute than 0.3 s


class Cancelled(AudioclasError):
    """The run was cancelled before there was anything to save."""


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


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    examples: list[Example]
    scores: np.ndarray  # (n, C) clip scores
    classes: list[str]
    skipped: list[str] = field(default_factory=list)  # files that could not be decoded


# ---------------------------------------------------------------- embeddings


@dataclass
class Embedder:
    """Where embeddings come from: the cache (computing what is missing) or a folder of precomputed ones."""

    settings: WindowSettings
    model_id: str = WEIGHTS_SHA256
    backbone: torch.nn.Module | None = None  # a fine-tuned network replacing the pretrained one
    precomputed: Path | None = None

    def __call__(self, examples: list[Example], *, on_event=None, cancel: Cancel = None
                 ) -> tuple[dict[str, ClipWindows], list[tuple[Example, str]], int]:
        """(embeddings by content sha256, [(example, problem)] for files that failed, number computed)."""
        if self.precomputed is not None:
            clips, failed = {}, []
            for example in examples:
                result = load_precomputed(example.path)
                if isinstance(result, str):
                    failed.append((example, result))
                else:
                    clips[example.sha256] = result
            return clips, failed, 0
        cache = EmbeddingCache(self.model_id, self.settings)
        progress = (lambda done, total: on_event(TrainEvent("extract", done, total))) if on_event else None
        with torch_threads(network_threads()):
            result = extract([(example.path, example.sha256) for example in examples], cache, self._tagger,
                             progress=progress, cancel=cancel)
        if result.cancelled:
            raise Cancelled(f"cancelled during embedding extraction ({result.computed} files were computed and cached)")
        sha256_of = {printable(str(example.path)): example.sha256 for example in examples}  # as errors name them
        problems = {sha256_of[error.source]: error.problem for error in result.errors}
        failed = [(example, problems.get(example.sha256, "could not be embedded")) for example in examples
                  if example.sha256 not in result.clips]  # every copy of an undecodable file
        return result.clips, failed, result.computed

    def _tagger(self):
        from audioclas.tagger import Tagger

        tagger = Tagger()
        if self.backbone is not None:
            tagger.model = self.backbone
        return _SourceTagger(tagger)


class _SourceTagger:
    """Hands dataset files to the tagger as single sources, so that no path is read as a folder, glob or archive."""

    def __init__(self, tagger) -> None:
        self.tagger = tagger

    def embed_many(self, paths: list[Path], **options):
        return self.tagger.embed_many([AudioSource(str(path), path=path) for path in paths], **options)


def _embed_splits(dataset: Dataset, embedder: Embedder, skip_bad: bool, on_event, cancel: Cancel, log
                  ) -> tuple[Dataset, dict[str, ClipWindows], int]:
    examples = dataset.examples()
    clips, failed, computed = embedder(examples, on_event=on_event, cancel=cancel)
    if failed:
        problems = [Problem(example.where, f"{printable(str(example.path))}: {problem}") for example, problem in failed]
        if not skip_bad:
            raise DatasetError(dataset.root, problems + [Problem(str(dataset.root), "fix or remove these files, or "
                                                         "skip them (--skip-bad-audio); the rest is cached")])
        for problem in problems:
            log(f"skipped {problem}")
        bad = {example.path for example, _ in failed}
        dataset = replace(dataset, splits={split: [e for e in items if e.path not in bad]
                                           for split, items in dataset.splits.items()})
    return dataset, clips, computed


def _split(examples: list[Example], clips: dict[str, ClipWindows], classes: int, multilabel: bool) -> EmbeddedSplit:
    return EmbeddedSplit.build([clips[e.sha256].windows for e in examples], [e.labels for e in examples],
                               classes, multilabel)


# ---------------------------------------------------------------- train


def _as_dataset(data: str | Path | Dataset | None, config: TrainConfig) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if data is None and config.data is None:
        raise AudioclasError("no dataset given: pass a path, or set 'data' in the config")
    embeddings = Path(config.from_embeddings) if config.from_embeddings else None
    return load_dataset(data if data is not None else config.data, multilabel=config.multilabel, embeddings=embeddings)


def choose_windows(config: TrainConfig, dataset: Dataset, log: Callable[[str], None]) -> WindowSettings:
    """The window settings: as configured, or chosen from the median length of (up to 200) training clips.

    Short clips (median at most ``SHORT_CLIP_SECONDS``: spoken words, calls, clicks) get 0.3 s windows every 0.1 s,
    zero-padded; on FSDD this gives 97-99 % test accuracy where one 10 s window of the looped clip gives 92-95 %
    (see the README). When the network is fine-tuned, short clips get one zero-padded 1 s window instead: the
    network then learns what short windows bought the frozen one, for less than half the compute. Longer clips
    get the network's native 10 s windows, looped, as for tagging.
    """
    if config.window is not None:
        return WindowSettings(config.window, config.hop, config.pad or "loop")
    examples = sorted(dataset.splits["train"], key=lambda example: example.sha256)[:200]  # a fixed, order-free sample
    durations = []
    for example in examples:
        try:
            duration = probe(AudioSource(str(example.path), path=example.path)).duration_seconds
        except InputError:
            continue
        if duration:
            durations.append(duration)
    median = float(np.median(durations)) if durations else math.inf
    if median <= SHORT_CLIP_SECONDS and config.finetune:
        settings = WindowSettings(FINETUNE_SHORT_WINDOW, config.hop, config.pad or "zeros")
    elif median <= SHORT_CLIP_SECONDS:
        settings = WindowSettings(SHORT_WINDOW, config.hop or SHORT_HOP, config.pad or "zeros")
    else:
        settings = WindowSettings(10.0, config.hop, config.pad or "loop")
    log(f"median clip length {median:.2f} s: windows of {settings.window:g} s every {settings.hop_seconds:g} s, "
        f"short clips padded by {settings.pad} (set --window/--hop/--pad to choose)")
    return settings


def _embedder(config: TrainConfig, dataset: Dataset, log) -> Embedder:
    if not config.from_embeddings:
        return Embedder(choose_windows(config, dataset, log))
    folder = Path(config.from_embeddings)
    manifest = read_manifest(folder)
    if manifest is None:
        settings = WindowSettings(config.window or 10.0, config.hop, config.pad or "loop")
        log(f"{folder} has no embeddings.json: assuming {BACKBONE_NAME} embeddings with window {settings.window:g} s, "
            f"hop {settings.hop_seconds:g} s, pad {settings.pad}")
        return Embedder(settings, precomputed=folder)
    settings = WindowSettings(manifest["window"], manifest["hop"], manifest["pad"])
    return Embedder(settings, model_id=manifest["backbone_sha256"], precomputed=folder)


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
        raise store.ModelError(f"a model named {name!r} already exists: choose another name or overwrite it")
    dataset = with_holdout(_as_dataset(data, config), config.val_fraction, config.seed)
    multilabel = dataset.multilabel if config.multilabel is None else config.multilabel
    log(f"dataset {dataset.root} ({dataset.layout}): {len(dataset.classes)} classes, "
        + ", ".join(f"{len(items)} {split}" for split, items in dataset.splits.items() if items)
        + (", multi-label" if multilabel else ""))
    embedder = _embedder(config, dataset, log)
    settings = embedder.settings
    config = config.model_copy(update={"window": settings.window, "hop": settings.hop, "pad": settings.pad})  # as used
    dataset, clips, computed = _embed_splits(dataset, embedder, config.skip_bad_audio, on_event, cancel, log)
    extracted = time.perf_counter()
    log(f"embeddings: {computed} computed, {len(clips) - computed} from the cache ({extracted - started:.1f} s)")

    classes, count = dataset.classes, len(dataset.classes)
    splits = {split: _split(items, clips, count, multilabel) for split, items in dataset.splits.items() if items}
    run_dir = home_dir() / "runs" / name
    tensorboard = TensorBoard(run_dir / "tensorboard" if config.tensorboard else None)
    torch.manual_seed(config.seed)
    head = build_head(config.head, EMBEDDING_DIM, count, config.hidden, config.head_dropout)
    try:
        with torch_threads(1):  # small matrices: one thread is fastest (see torch_threads)
            result = fit(head, splits["train"], splits.get("val"), config, classes, multilabel, run_dir=run_dir,
                         tensorboard=tensorboard, on_event=on_event, cancel=cancel)
        if result.best_epoch == 0:
            raise Cancelled(f"training {result.stopped} before the first epoch finished: nothing to save")
        backbone, comparison = None, None
        if config.finetune and result.stopped in ("completed", "early stopping"):
            backbone, comparison, result, dataset, splits = _finetune(head, dataset, splits, embedder, config, classes,
                                                                      multilabel, result, tensorboard, on_event,
                                                                      cancel, log)
        trained = time.perf_counter()
        with torch_threads(1):
            metrics, thresholds = _final_metrics(head, splits, classes, multilabel)
        for split, values in metrics.items():
            if "confusion_matrix" in values:
                tensorboard.image(f"confusion_matrix/{split}", _confusion_png(values, classes), result.best_epoch)
    finally:
        tensorboard.close()
    log(f"training {result.stopped} after {result.epochs_run} epochs (best: {result.best_epoch}) in "
        f"{trained - extracted:.1f} s; " + ", ".join(f"{split} {_display_score(v)}" for split, v in metrics.items()))
    info = _model_info(name, dataset, config, embedder, multilabel, thresholds, result, metrics, backbone,
                       {"extract": extracted - started, "train": trained - extracted}, comparison)
    path = store.save_model(name, lambda folder: _write_model(folder, head, backbone, info, config, dataset,
                                                              metrics, result), overwrite=config.overwrite)
    log(f"saved model {name!r} to {path}")
    timings = {"extract": extracted - started, "train": trained - extracted, "total": time.perf_counter() - started}
    return TrainResult(store.load_model(path), metrics, result.history, result.stopped, result.best_epoch, timings,
                       computed, comparison)


def _finetune(head, dataset: Dataset, splits: dict[str, EmbeddedSplit], embedder: Embedder, config: TrainConfig,
              classes: list[str], multilabel: bool, frozen: FitResult, tensorboard, on_event, cancel: Cancel, log
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
        tuned = finetune(head, dataset, config, embedder.settings, classes, multilabel, frozen,
                         tensorboard=tensorboard, on_event=on_event, cancel=cancel, log=log)
    comparison = {"kept": "finetuned" if tuned.kept else "frozen", "selection": tuned.selection,
                  "frozen": _summary(frozen_metrics), "finetuned": None}
    if tuned.backbone is None:
        return None, comparison, tuned.result, dataset, splits
    # The fine-tuned head reads the fine-tuned network's embeddings: re-embed val/test with it.
    tuned_embedder = Embedder(embedder.settings, model_id=store.state_sha256(tuned.backbone), backbone=tuned.backbone)
    tuned_dataset, tuned_clips, _ = _embed_splits(dataset, tuned_embedder, True, None, None, log)
    tuned_splits = {split: _split(items, tuned_clips, len(classes), multilabel)
                    for split, items in tuned_dataset.splits.items() if items}
    tuned_head = head
    if not tuned.kept:
        tuned_head = copy.deepcopy(head)
        tuned_head.load_state_dict(tuned.head_state)
    with torch_threads(1):
        tuned_metrics, _ = _final_metrics(tuned_head, tuned_splits, classes, multilabel)
    comparison["finetuned"] = _summary(tuned_metrics)
    for split in ("val", "test"):
        if split in frozen_metrics and split in tuned_metrics:
            log(f"{split}: frozen head {_display_score(frozen_metrics[split])}, fine-tuned network "
                f"{_display_score(tuned_metrics[split])}")
    if tuned.kept:
        return tuned.backbone, comparison, tuned.result, tuned_dataset, tuned_splits
    return None, comparison, tuned.result, dataset, splits


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics by split without the per-class rows and the confusion matrix."""
    return {split: {k: v for k, v in values.items() if k not in ("per_class", "confusion_matrix")}
            for split, values in metrics.items()}


def _display_score(metrics: dict[str, Any]) -> str:
    return f"mAP {metrics['mAP']:.4f}" if "mAP" in metrics else f"accuracy {metrics['accuracy']:.4f}"


def _final_metrics(head, splits: dict[str, EmbeddedSplit], classes: list[str], multilabel: bool
                   ) -> tuple[dict[str, Any], np.ndarray | None]:
    """Metrics of the final head on val and test; for multi-label, thresholds are tuned on val (else 0.5)."""
    scores = {split: predict_scores(head, splits[split], multilabel)[0] for split in ("val", "test") if split in splits}
    thresholds = None
    if multilabel:
        thresholds = (tune_thresholds(splits["val"].targets.numpy(), scores["val"]) if "val" in scores
                      else np.full(len(classes), 0.5))
    return {split: split_metrics(values, splits[split], classes, multilabel, thresholds)
            for split, values in scores.items()}, thresholds


def _confusion_png(metrics: dict[str, Any], classes: list[str]):
    return confusion_image(np.asarray(metrics["confusion_matrix"]), classes)


def _model_info(name, dataset: Dataset, config: TrainConfig, embedder: Embedder, multilabel: bool,
                thresholds, result: FitResult, metrics: dict[str, Any], backbone, timings,
                comparison: dict[str, Any] | None) -> dict[str, Any]:
    settings = embedder.settings
    summary = _summary(metrics)
    if comparison is not None:  # both networks' metrics, whichever was kept
        summary.update(frozen=comparison["frozen"], finetuned=comparison["finetuned"])
    info = {
        "format": store.MODEL_FORMAT, "version": store.MODEL_VERSION, "name": name, "created": store.now_iso(),
        "classes": dataset.classes, "multilabel": multilabel,
        "head": {"type": config.head, "input_dim": EMBEDDING_DIM, "hidden": config.hidden, "dropout": config.head_dropout},
        "window": {"window": settings.window, "hop": settings.hop, "pad": settings.pad},
        "backbone": {"name": BACKBONE_NAME, "sha256": store.state_sha256(backbone) if backbone is not None else embedder.model_id,
                     "pretrained_sha256": embedder.model_id, "finetuned": backbone is not None,
                     "file": "backbone.safetensors" if backbone is not None else None},
        "thresholds": thresholds.tolist() if thresholds is not None else None,
        "dataset": {"path": str(dataset.root), "layout": dataset.layout, "counts": dataset.counts()},
        "training": {"stopped": result.stopped, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                     "seconds": {key: round(value, 3) for key, value in timings.items()}},
        "metrics": summary,
    }  # fmt: skip
    if comparison is not None:
        info["finetune"] = {"kept": comparison["kept"], "selection": comparison["selection"]}
    return info


def _write_model(folder: Path, head, backbone, info, config: TrainConfig, dataset: Dataset, metrics, result) -> None:
    from safetensors.torch import save  # to bytes: safetensors' own file writing hides a full disk in its error

    for file, module in (("head.safetensors", head), ("backbone.safetensors", backbone)):
        if module is not None:
            (folder / file).write_bytes(save({key: value.contiguous() for key, value in module.state_dict().items()}))
    store.write_json(folder / "model.json", info)
    store.write_json(folder / "config.json", config.to_dict())
    store.write_json(folder / "metrics.json", metrics)
    store.write_json(folder / "history.json", result.history)
    (folder / "classes.txt").write_text("\n".join(dataset.classes) + "\n", "utf-8")
    if dataset.info:
        (folder / "info.txt").write_text(dataset.info + "\n", "utf-8")
    for split, values in metrics.items():
        if "confusion_matrix" in values:
            write_confusion(np.asarray(values["confusion_matrix"]), dataset.classes, folder, f"confusion_matrix_{split}")


# ---------------------------------------------------------------- embeddings only / evaluate


def extract_embeddings(data: str | Path | Dataset, config: TrainConfig | None = None, *, export: Path | None = None,
                       on_event=None, cancel: Cancel = None, log=None) -> int:
    """Compute (and cache) the embeddings of every file of ``data``; optionally export them as ``.npy`` files.

    Returns the number of files whose embeddings were computed (not already cached).
    """
    config = config or TrainConfig()
    log = log or logger.info
    dataset = _as_dataset(data, config)
    embedder = _embedder(config, dataset, log)
    dataset, clips, computed = _embed_splits(dataset, embedder, config.skip_bad_audio, on_event, cancel, log)
    if export is not None:
        pairs = ((example.path.relative_to(dataset.root).as_posix(), clips[example.sha256])
                 for example in dataset.examples())
        written = export_embeddings(pairs, Path(export), embedder.model_id, embedder.settings)
        log(f"exported {written} embeddings to {export}")
    return computed


def evaluate(
    model: str | Path | store.SavedModel,
    data: str | Path | Dataset,
    split: str | None = None,
    *,
    output: Path | None = None,
    skip_bad_audio: bool = False,
    on_event: Callable[[TrainEvent], None] | None = None,
    cancel: Cancel = None,
    log: Callable[[str], None] | None = None,
) -> EvalResult:
    """Metrics of a saved model on a dataset's split (default: test if the data has one, else all of it).

    Classes are matched by name, so the data may hold a subset of the model's classes in any order. With
    ``output``, writes ``metrics.json`` and (single-label) ``confusion_matrix.png/.json`` there.
    """
    log = log or logger.info
    model = model if isinstance(model, store.SavedModel) else store.load_model(model)
    dataset = data if isinstance(data, Dataset) else load_dataset(data, multilabel=model.multilabel)
    if split is None:
        split = "test" if dataset.splits.get("test") else None
        examples = dataset.examples(split)
    elif split not in dataset.splits or not dataset.splits[split]:
        raise AudioclasError(f"{dataset.root} has no {split!r} split (it has: "
                             f"{', '.join(s for s, e in dataset.splits.items() if e)})")
    else:
        examples = dataset.examples(split)
    index = {name: number for number, name in enumerate(model.classes)}
    unknown = [name for name in dataset.classes if name not in index]
    if unknown:
        raise DatasetError(dataset.root, [Problem(str(dataset.root), f"class {name!r} is not one of the model's "
                                                  f"classes ({', '.join(model.classes)})") for name in unknown])
    remap = [index[name] for name in dataset.classes]
    examples = [Example(e.path, tuple(remap[label] for label in e.labels), e.where, e.sha256) for e in examples]
    backbone = model.load_backbone()
    embedder = Embedder(WindowSettings(model.window, model.hop, model.pad), model_id=model.backbone_sha256,
                        backbone=backbone)
    clips, failed, _ = embedder(examples, on_event=on_event, cancel=cancel)
    if failed and not skip_bad_audio:
        raise DatasetError(dataset.root, [Problem(e.where, f"{e.path}: {p}") for e, p in failed])
    bad = {example.path for example, _ in failed}
    examples = [example for example in examples if example.path not in bad]
    evaluated = _split(examples, clips, len(model.classes), model.multilabel)
    with torch_threads(1):
        scores, _ = predict_scores(model.head, evaluated, model.multilabel)
    metrics = split_metrics(scores, evaluated, model.classes, model.multilabel, model.thresholds)
    log(f"{model.name} on {dataset.root} ({split or 'all'}, {len(examples)} files): {_display_score(metrics)}")
    if output is not None:
        output = Path(output)
        with atomic_open(output / "metrics.json", "w", encoding="utf-8") as stream:
            json.dump(metrics, stream, indent=2)
        if "confusion_matrix" in metrics:
            write_confusion(np.asarray(metrics["confusion_matrix"]), model.classes, output)
    return EvalResult(metrics, examples, scores, model.classes, [str(e.path) for e, _ in failed])
