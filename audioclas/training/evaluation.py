"""A saved model's metrics on a dataset: ``evaluate`` (hooks as for ``train``, see ``run``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from audioclas.engine.torch_engine import torch_threads
from audioclas.errors import AudioclasError
from audioclas.fileio import atomic_open
from audioclas.training import store
from audioclas.training.dataset import Dataset, DatasetError, Example, Problem, load_dataset
from audioclas.training.embeddings import Cancel, Embedder, embedded_split
from audioclas.training.metrics import display_score, write_confusion
from audioclas.training.trainer import TrainEvent, predict_scores, split_metrics
from audioclas.windows import WindowSettings

logger = logging.getLogger("audioclas.training")


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    examples: list[Example]
    scores: np.ndarray  # (n, C) clip scores
    classes: list[str]
    skipped: list[str] = field(default_factory=list)  # files that could not be decoded


def _read_as_trained(model: store.SavedModel) -> dict[str, Any]:
    """``load_dataset`` options from the model's saved training config: its task and how it read annotations."""
    try:
        config = json.loads((model.path / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    column = config.get("label_column")
    return {
        "multilabel": model.multilabel,
        "label_column": column if isinstance(column, str) else None,
        "background": config.get("background") is True,
    }


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

    Classes are matched by name, so the data may hold a subset of the model's classes in any order. Annotated
    recordings are read as the model's training read them (its label column, its background examples). With
    ``output``, writes ``metrics.json`` and (single-label) ``confusion_matrix.png/.json`` there.
    """
    log = log or logger.info
    model = model if isinstance(model, store.SavedModel) else store.load_model(model)
    dataset = data if isinstance(data, Dataset) else load_dataset(data, **_read_as_trained(model))
    if split is None:
        split = "test" if dataset.splits.get("test") else None
        examples = dataset.examples(split)
    elif split not in dataset.splits or not dataset.splits[split]:
        raise AudioclasError(
            f"{dataset.root} has no {split!r} split (it has: {', '.join(s for s, e in dataset.splits.items() if e)})"
        )
    else:
        examples = dataset.examples(split)
    index = {name: number for number, name in enumerate(model.classes)}
    unknown = [name for name in dataset.classes if name not in index]
    if unknown:
        raise DatasetError(
            dataset.root,
            [
                Problem(
                    str(dataset.root), f"class {name!r} is not one of the model's classes ({', '.join(model.classes)})"
                )
                for name in unknown
            ],
        )
    remap = [index[name] for name in dataset.classes]
    examples = [replace(e, labels=tuple(remap[label] for label in e.labels)) for e in examples]
    embedder = Embedder(
        WindowSettings(model.window, model.hop, model.pad), model_id=model.backbone_sha256, engine=model.load_backbone()
    )
    clips, failed, _ = embedder(examples, on_event=on_event, cancel=cancel)
    if failed and not skip_bad_audio:
        raise DatasetError(dataset.root, [Problem(e.where, f"{e.name}: {p}") for e, p in failed])
    bad = {example.key for example, _ in failed}
    examples = [example for example in examples if example.key not in bad]
    evaluated = embedded_split(examples, clips, len(model.classes), model.multilabel)
    with torch_threads(1):
        scores, _ = predict_scores(model.torch_head(), evaluated, model.multilabel)
    metrics = split_metrics(scores, evaluated, model.classes, model.multilabel, model.thresholds)
    log(f"{model.name} on {dataset.root} ({split or 'all'}, {len(examples)} files): {display_score(metrics)}")
    if output is not None:
        output = Path(output)
        with atomic_open(output / "metrics.json", "w", encoding="utf-8") as stream:
            json.dump(metrics, stream, indent=2)
        if "confusion_matrix" in metrics:
            write_confusion(np.asarray(metrics["confusion_matrix"]), model.classes, output)
    return EvalResult(metrics, examples, scores, model.classes, [e.name for e, _ in failed])
