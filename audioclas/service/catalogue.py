"""The models the service offers: which exist, what they are, and deleting one.

A saved model is described from its ``model.json`` alone: listing and describing models never opens a weights
file, so a server with many models lists them at once. Weights are loaded only to predict
(``Predictor.custom_model``); a model whose weights are damaged is still listed, and predicting with it fails with
a ``ModelError`` naming the file. Errors are typed (``service/errors.py`` gives each its status), so the routes
only translate HTTP to these calls and back.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from audioclas.architecture import EMBEDDING_DIM
from audioclas.service.errors import ModelBusy, PretrainedModel
from audioclas.service.jobs import JobStore
from audioclas.service.predictor import AUDIOSET, Predictor
from audioclas.service.schemas import ModelInfo
from audioclas.training.store import (
    ModelError,
    ModelNotFound,
    delete_model,
    list_models,
    read_card,
    read_info,
    resolve_model,
)
from audioclas.weights import WEIGHTS_SHA256

AUDIOSET_METRICS = {"mAP": 0.432, "evaluated_on": "AudioSet evaluation set (published with the checkpoint)"}
AUDIOSET_METADATA = {
    "description": "EfficientAT mn04_as (MobileNetV3, width 0.4) trained on AudioSet: 527 sound classes, multi-label",
    "backbone": "EfficientAT mn04_as",
    "parameters": 980_000,
    "weights_sha256": WEIGHTS_SHA256,
    "sample_rate": 32000,
    "window_seconds": 10.0,
    "embedding_dim": EMBEDDING_DIM,
    "license": "MIT",
    "labels": "AudioSet ontology, class_labels_indices.csv (CC BY 4.0)",
    "ontology": "AudioSet ontology v1 by Google Inc., CC BY-SA 4.0 (audioclas/data/ONTOLOGY-NOTICE.md)",
}
# The parts of a saved model's model.json that its description shows (besides its classes and metrics).
METADATA_KEYS = ("created", "multilabel", "head", "window", "backbone", "dataset", "training", "thresholds", "finetune")


class Catalogue:
    """The pretrained AudioSet model and the saved classifiers of one server."""

    def __init__(self, predictor: Predictor, jobs: JobStore) -> None:
        self.predictor, self.jobs = predictor, jobs

    def models(self) -> list[ModelInfo]:
        """Every model, AudioSet first; a saved model that cannot be used is listed with its ``problem``."""
        models = [self._audioset()]
        for summary in list_models():
            if summary.name != AUDIOSET:
                problem = summary.problem
                models.append(_damaged(summary.name, summary.path, problem) if problem else self._custom(summary.name))
        return models

    def describe(self, name: str) -> ModelInfo:
        """The model ``name``, with its card if it is a trained one; raises ``ModelNotFound``."""
        if name == AUDIOSET:
            return self._audioset()
        model = self._custom(name)
        with contextlib.suppress(ModelError):  # a model.json that cannot be read: its problem says why
            model.card = read_card(_folder(name))
        return model

    def require(self, name: str) -> None:
        """Raise ``ModelNotFound`` unless ``name`` is a model (before reading a large request for it)."""
        if name != AUDIOSET:
            _folder(name)

    def delete(self, name: str) -> None:
        """Delete the saved model ``name``, unless a training job is writing it."""
        if name == AUDIOSET:
            raise PretrainedModel("the pretrained AudioSet model cannot be deleted")
        busy = [job.id for job in self.jobs.with_status("queued", "running") if job.target == name]
        if busy:
            raise ModelBusy(f"training job {busy[0]} is writing model {name!r}: cancel it first")
        try:
            delete_model(name)
        except ModelError:  # no such model, or a name no model can have
            raise ModelNotFound(f"no trained model named {name!r}") from None
        self.predictor.forget(name)

    def _audioset(self) -> ModelInfo:
        labels = self.predictor.tagger.labels
        metadata = {**AUDIOSET_METADATA, "class_ids": [label.id for label in labels]}
        classes = [label.name for label in labels]
        return ModelInfo(name=AUDIOSET, kind="audioset", classes=classes, metrics=AUDIOSET_METRICS, metadata=metadata)

    def _custom(self, name: str) -> ModelInfo:
        folder = _folder(name)
        try:
            info = read_info(folder)
            return ModelInfo(
                name=name,
                kind="custom",
                classes=info["classes"],
                metrics=info.get("metrics", {}),
                metadata={key: info.get(key) for key in METADATA_KEYS},
                problem=_missing_weights(folder, info),
            )
        except ModelError as error:
            return _damaged(name, folder, str(error))
        except (KeyError, TypeError, ValueError) as error:  # a model.json that lacks or mistypes its classes
            return _damaged(name, folder, f"saved model {folder} is damaged ({type(error).__name__} in model.json)")


def _folder(name: str) -> Path:
    try:
        return resolve_model(name)
    except ModelError:  # no such model, or a name no model can have
        raise ModelNotFound(f"no model named {name!r} (GET /v2/models/ lists them)") from None


def _damaged(name: str, folder: Path, problem: str) -> ModelInfo:
    return ModelInfo(name=name, kind="custom", classes=[], metrics={}, metadata={"path": str(folder)}, problem=problem)


def _missing_weights(folder: Path, info: dict[str, Any]) -> str | None:
    """Which weights files of a saved model are absent (checked without opening them), if any."""
    files = ["head.safetensors"] + (["backbone.safetensors"] if (info.get("backbone") or {}).get("finetuned") else [])
    absent = [file for file in files if not (folder / file).is_file()]
    return f"saved model {folder} is damaged: missing {', '.join(absent)}" if absent else None
