"""One model folder, its format read and written in one place: ``model_info`` and ``write_model_folder`` (which
``training.run`` calls), ``load_model`` and ``read_info``. The files are listed in ``audioclas.training.store``.

Loading a model and classifying with it needs no PyTorch (the head runs in NumPy: ``numpy_head``), so that a plain
install predicts with custom models; writing one (training) and ``load_backbone`` (a fine-tuned network) import it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError

from audioclas.architecture import EMBEDDING_DIM
from audioclas.engine import Backend, Engine
from audioclas.engine.loading import BackboneError, load_backbone_engine
from audioclas.fileio import now_iso
from audioclas.training.store.names import ModelError, model_folder, resolve_model
from audioclas.training.store.numpy_head import NumpyHead, sigmoid, softmax
from audioclas.windows import PadMode

if TYPE_CHECKING:
    import torch

    from audioclas.training.config import TrainConfig
    from audioclas.training.dataset import Dataset
    from audioclas.training.heads import Head
    from audioclas.training.trainer import FitResult
    from audioclas.windows import WindowSettings


BACKBONE_NAME = "EfficientAT mn04_as"
MODEL_FORMAT = "audioclas-classifier"
MODEL_VERSION = 1


@dataclass
class SavedModel:
    """A trained classifier loaded for use: see the module docstring."""

    name: str
    path: Path
    classes: list[str]
    multilabel: bool
    window: float
    hop: float | None
    pad: PadMode
    thresholds: np.ndarray | None  # (C,) per-class decision thresholds, multi-label only
    backbone_sha256: str
    pretrained_sha256: str
    finetuned: bool
    head: NumpyHead
    info: dict[str, Any]  # the whole model.json

    def classify(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window scores (n, C), clip scores (C,)) for one clip's window embeddings (n, 384)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != EMBEDDING_DIM or not len(windows):
            raise ValueError(f"expected window embeddings of shape (n >= 1, {EMBEDDING_DIM}), got {windows.shape}")
        window_logits, clip_logits = self.head.forward(windows[None], np.ones((1, len(windows)), dtype=bool))
        activate = sigmoid if self.multilabel else softmax
        return activate(window_logits[0]), activate(clip_logits[0])

    def torch_head(self) -> Head:
        """The head as the PyTorch module that trained it (eval mode), for batched scoring in evaluation."""
        import torch

        from audioclas.training.heads import build_head

        spec = self.info["head"]
        head = build_head(spec["type"], spec["input_dim"], len(self.classes), spec["hidden"], spec["dropout"])
        head.load_state_dict({key: torch.from_numpy(value) for key, value in self.head.tensors.items()})
        return head.eval()

    def decide(self, clip_scores: np.ndarray) -> list[str]:
        """The labels a clip gets: those at or above their threshold (multi-label), or the top class."""
        if self.multilabel:
            assert self.thresholds is not None, "a multi-label model has per-class thresholds"  # see model_info
            return [
                name for name, score, threshold in zip(self.classes, clip_scores, self.thresholds) if score >= threshold
            ]
        return [self.classes[int(np.argmax(clip_scores))]]

    def load_backbone(self, backend: Backend = "auto", threads: int | None = None) -> Engine | None:
        """The fine-tuned backbone's engine on ``backend`` (checked against ``backbone_sha256``), or None for a head
        on the pretrained network."""
        if not self.finetuned:
            return None
        try:
            return load_backbone_engine(self.path / "backbone.safetensors", self.backbone_sha256, backend, threads)
        except BackboneError as error:
            raise ModelError(f"saved model {self.path} is damaged: {error}") from None


def model_info(
    name: str,
    dataset: Dataset,
    config: TrainConfig,
    settings: WindowSettings,
    pretrained_sha256: str,
    multilabel: bool,
    thresholds: np.ndarray | None,
    result: FitResult,
    metrics: dict[str, Any],
    backbone: torch.nn.Module | None,
    timings: dict[str, float],
    comparison: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``model.json`` of a model just trained: ``pretrained_sha256`` names the network its embeddings came
    from, ``backbone`` is the fine-tuned one (or None), ``comparison`` the fine-tuning report (or None)."""
    from audioclas.engine.torch_engine import module_sha256
    from audioclas.training.metrics import split_summaries

    summary = split_summaries(metrics)
    if comparison is not None:  # both networks' metrics, whichever was kept
        summary.update(frozen=comparison["frozen"], finetuned=comparison["finetuned"])
    info = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "name": name,
        "created": now_iso(),
        "classes": dataset.classes,
        "multilabel": multilabel,
        "head": {
            "type": config.head,
            "input_dim": EMBEDDING_DIM,
            "hidden": config.hidden,
            "dropout": config.head_dropout,
        },
        "window": {"window": settings.window, "hop": settings.hop, "pad": settings.pad},
        "backbone": {
            "name": BACKBONE_NAME,
            "sha256": module_sha256(backbone) if backbone is not None else pretrained_sha256,
            "pretrained_sha256": pretrained_sha256,
            "finetuned": backbone is not None,
            "file": "backbone.safetensors" if backbone is not None else None,
        },
        "thresholds": thresholds.tolist() if thresholds is not None else None,
        "dataset": {
            "path": str(dataset.root),
            "layout": dataset.layout,
            "counts": dataset.counts(),
            "examples": {split: len(items) for split, items in dataset.splits.items()},
            "files": {split: len({example.recording for example in items}) for split, items in dataset.splits.items()},
        },
        "training": {
            "stopped": result.stopped,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "seconds": {key: round(value, 3) for key, value in timings.items()},
        },
        "metrics": summary,
    }
    if comparison is not None:
        info["finetune"] = {"kept": comparison["kept"], "selection": comparison["selection"]}
    return info


def write_model_folder(
    folder: Path,
    head: Head,
    backbone: torch.nn.Module | None,
    info: dict[str, Any],
    config: TrainConfig,
    dataset: Dataset,
    metrics: dict[str, Any],
    history: list[dict[str, float]],
) -> None:
    """Write every file of a model (the table above) into ``folder``, the temporary one ``save_model`` gives."""
    from safetensors.torch import save  # to bytes: safetensors' own file writing hides a full disk in its error

    from audioclas.training.metrics import write_confusion
    from audioclas.training.store.card import CARD_FILE, model_card

    for file, module in (("head.safetensors", head), ("backbone.safetensors", backbone)):
        if module is not None:
            (folder / file).write_bytes(save({key: value.contiguous() for key, value in module.state_dict().items()}))
    write_json(folder / "model.json", info)
    write_json(folder / "config.json", config.to_dict())
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "history.json", history)
    (folder / CARD_FILE).write_text(model_card(info, config.to_dict()), "utf-8")
    (folder / "classes.txt").write_text("\n".join(dataset.classes) + "\n", "utf-8")
    if dataset.info:
        (folder / "info.txt").write_text(dataset.info + "\n", "utf-8")
    for split, values in metrics.items():
        if "confusion_matrix" in values:
            write_confusion(
                np.asarray(values["confusion_matrix"]), dataset.classes, folder, f"confusion_matrix_{split}"
            )


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", "utf-8")


def read_info(model: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model.json`` of a saved model (a name, or a folder as for ``load_model``), without loading any weights."""
    return read_folder_info(resolve_model(model) if isinstance(model, str) else model_folder(model))


def read_folder_info(folder: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads((folder / "model.json").read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} is not a saved model (no model.json)") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {folder / 'model.json'} ({error})") from None
    if info.get("format") != MODEL_FORMAT or info.get("version") != MODEL_VERSION:
        raise ModelError(f"{folder} holds no audioclas classifier of version {MODEL_VERSION}")
    return info


def load_model(model: str | os.PathLike[str]) -> SavedModel:
    """Load a saved model: a ``str`` is a name under ``home_dir()/models``, a ``Path`` a model folder."""
    folder = resolve_model(model) if isinstance(model, str) else model_folder(model)
    info = read_folder_info(folder)
    try:
        spec, window = info["head"], info["window"]
        classes = list(info["classes"])
        head = NumpyHead.load(
            folder / "head.safetensors", spec["type"], spec["input_dim"], len(classes), spec["hidden"]
        )
        thresholds = np.asarray(info["thresholds"], dtype=np.float64) if info.get("thresholds") else None
        return SavedModel(
            name=info["name"],
            path=folder,
            classes=classes,
            multilabel=bool(info["multilabel"]),
            window=float(window["window"]),
            hop=window["hop"],
            pad=window["pad"],
            thresholds=thresholds,
            backbone_sha256=info["backbone"]["sha256"],
            finetuned=bool(info["backbone"]["finetuned"]),
            pretrained_sha256=info["backbone"].get("pretrained_sha256") or info["backbone"]["sha256"],
            head=head,
            info=info,
        )
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, SafetensorError) as error:
        raise ModelError(f"saved model {folder} is damaged ({type(error).__name__}: {error})") from None
