"""Saved custom classifiers: one folder per model under ``settings.home_dir()/models/NAME/``.

A model folder holds:

| file | what |
|---|---|
| ``model.json`` | classes, task (single/multi-label), head spec, window settings, backbone identity and sha256 (and the pretrained network's), per-class thresholds (multi-label), dataset summary, training summary, headline metrics; after ``--finetune``, the frozen head's and the fine-tuned network's metrics (``metrics.frozen``, ``metrics.finetuned``) and which was kept and why (``finetune``) |
| ``head.safetensors`` | the head's weights (including the input standardisation) |
| ``backbone.safetensors`` | only after ``--finetune``: the fine-tuned EfficientAT weights |
| ``classes.txt``, ``info.txt`` | class names (line N is class N) and the dataset's ``info.txt`` |
| ``config.json`` | the full training configuration |
| ``metrics.json``, ``history.json`` | validation/test metrics, and one row per epoch |
| ``confusion_matrix_<split>.png/.json`` | single-label only |

A model is written into a temporary folder beside its final place and renamed into it (``os.replace``), so a
crash never leaves a half model under its name.

Using a model (the contract ``audioclas predict --model NAME`` relies on)::

    model = load_model("birds")          # a name under home_dir()/models, or a model folder's path
    model.classes                        # list[str]
    model.multilabel                     # bool: sigmoid scores and per-class ``model.thresholds``, else softmax
    model.window, model.hop, model.pad   # window settings the embeddings must be computed with
    model.backbone_sha256                # the network whose embeddings the head reads: the pretrained one
                                         # (``Tagger.model_id``), or the fine-tuned weights' ``state_sha256``
    model.pretrained_sha256              # the pretrained network it derives from (the same, unless fine-tuned)
    window_scores, clip_scores = model.classify(windows)   # windows: (n, 384) float32 embeddings of one clip
    # -> (n, C) and (C,) scores in [0, 1]

For a fine-tuned model (``model.finetuned``) the embeddings must come from ``model.load_backbone()`` rather
than the pretrained network; it checks the weights against ``backbone_sha256``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from audioclas.errors import AudioclasError
from audioclas.model import EMBEDDING_DIM, EfficientAT
from audioclas.settings import home_dir
from audioclas.training.heads import Head, build_head

MODEL_FORMAT = "audioclas-classifier"
MODEL_VERSION = 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ModelError(AudioclasError):
    """A saved model is missing, unreadable, or its name is not allowed."""


def models_dir() -> Path:
    return home_dir() / "models"


def default_name() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ModelError(f"model name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def model_path(name: str) -> Path:
    return models_dir() / check_name(name)


@dataclass
class SavedModel:
    """A trained classifier loaded for use: see the module docstring."""

    name: str
    path: Path
    classes: list[str]
    multilabel: bool
    window: float
    hop: float | None
    pad: str
    thresholds: np.ndarray | None  # (C,) per-class decision thresholds, multi-label only
    backbone_sha256: str
    pretrained_sha256: str
    finetuned: bool
    head: Head
    info: dict[str, Any]  # the whole model.json

    def classify(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window scores (n, C), clip scores (C,)) for one clip's window embeddings (n, 384)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != EMBEDDING_DIM or not len(windows):
            raise ValueError(f"expected window embeddings of shape (n >= 1, {EMBEDDING_DIM}), got {windows.shape}")
        with torch.no_grad():
            window_logits, clip_logits = self.head(torch.from_numpy(windows)[None], torch.ones(1, len(windows), dtype=torch.bool))
        activate = torch.sigmoid if self.multilabel else (lambda logits: logits.softmax(-1))
        return activate(window_logits[0]).numpy(), activate(clip_logits[0]).numpy()

    def decide(self, clip_scores: np.ndarray) -> list[str]:
        """The labels a clip gets: those at or above their threshold (multi-label), or the top class."""
        if self.multilabel:
            return [name for name, score, threshold in zip(self.classes, clip_scores, self.thresholds) if score >= threshold]
        return [self.classes[int(np.argmax(clip_scores))]]

    def load_backbone(self) -> EfficientAT | None:
        """The fine-tuned backbone (eval mode, BatchNorm folded), or None for a head on the pretrained network."""
        if not self.finetuned:
            return None
        file = self.path / "backbone.safetensors"
        model = EfficientAT()
        try:
            model.load_state_dict(load_file(file))
        except (OSError, RuntimeError, ValueError) as error:
            raise ModelError(f"saved model {self.path} is damaged: cannot load {file.name} ({type(error).__name__})") from None
        if state_sha256(model) != self.backbone_sha256:
            raise ModelError(f"saved model {self.path} is damaged: {file.name} does not match the backbone sha256 "
                             "in model.json")
        return model.eval().fuse_for_inference()


def state_sha256(module: torch.nn.Module) -> str:
    """Identity of a network's weights (a fine-tuned backbone's): sha256 of names and bytes in state_dict order."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_model(name: str, write: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Create model ``name`` atomically: ``write(folder)`` fills a temporary folder that is then renamed into place."""
    target = model_path(name)
    if target.exists() and not overwrite:
        raise ModelError(f"a model named {name!r} already exists at {target}: choose another name or overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=target.parent))
    try:
        write(staging)
        for file in staging.iterdir():  # make the content durable before the rename publishes it
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".trash-{name}-", dir=target.parent))
            os.replace(target, trash / name)
            os.replace(staging, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", "utf-8")


def _read_info(folder: Path) -> dict[str, Any]:
    try:
        info = json.loads((folder / "model.json").read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} is not a saved model (no model.json)") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {folder / 'model.json'} ({error})") from None
    if info.get("format") != MODEL_FORMAT or info.get("version") != MODEL_VERSION:
        raise ModelError(f"{folder} holds no audioclas classifier of version {MODEL_VERSION}")
    return info


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A model folder: a saved model's name, or the path of a model folder."""
    candidate = Path(name_or_path)
    if (candidate / "model.json").is_file():
        return candidate
    if isinstance(name_or_path, str) and NAME_PATTERN.fullmatch(name_or_path):
        folder = models_dir() / name_or_path
        if folder.is_dir():
            return folder
    raise ModelError(f"no saved model named {str(name_or_path)!r} (see 'audioclas models list')")


def load_model(name_or_path: str | os.PathLike) -> SavedModel:
    """Load a saved model by name (under ``home_dir()/models``) or by folder path."""
    folder = resolve_model(name_or_path)
    info = _read_info(folder)
    try:
        spec, window = info["head"], info["window"]
        classes = list(info["classes"])
        head = build_head(spec["type"], spec["input_dim"], len(classes), spec["hidden"], spec["dropout"])
        head.load_state_dict(load_file(folder / "head.safetensors"))
        thresholds = np.asarray(info["thresholds"], dtype=np.float64) if info.get("thresholds") else None
        return SavedModel(
            name=info["name"], path=folder, classes=classes, multilabel=bool(info["multilabel"]),
            window=float(window["window"]), hop=window["hop"], pad=window["pad"], thresholds=thresholds,
            backbone_sha256=info["backbone"]["sha256"], finetuned=bool(info["backbone"]["finetuned"]),
            pretrained_sha256=info["backbone"].get("pretrained_sha256") or info["backbone"]["sha256"],
            head=head.eval(), info=info,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as error:
        raise ModelError(f"saved model {folder} is damaged ({type(error).__name__}: {error})") from None


@dataclass(frozen=True)
class ModelSummary:
    name: str
    path: Path
    created: str
    classes: int
    multilabel: bool
    head: str
    score: str  # e.g. "test accuracy 0.983"
    problem: str = ""  # why the model cannot be read, if it cannot


def list_models() -> list[ModelSummary]:
    """Every saved model, by name; damaged ones are listed with their problem."""
    root = models_dir()
    summaries = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            info = _read_info(folder)
            summaries.append(ModelSummary(folder.name, folder, info["created"], len(info["classes"]), info["multilabel"],
                                          info["head"]["type"], headline_text(info.get("metrics", {}))))
        except (ModelError, KeyError, TypeError) as error:
            summaries.append(ModelSummary(folder.name, folder, "", 0, False, "", "", problem=str(error)))
    return summaries


def headline_text(metrics: dict[str, Any]) -> str:
    """The one-line score of a model: accuracy (single-label) or mAP (multi-label), on test if it was tested."""
    for split in ("test", "val"):
        values = metrics.get(split) or {}
        for name in ("accuracy", "mAP"):
            if name in values:
                return f"{split} {name} {values[name]:.3f}"
    return ""


def delete_model(name: str) -> Path:
    folder = model_path(name)
    if not (folder / "model.json").is_file():
        raise ModelError(f"no saved model named {name!r} (see 'audioclas models list')")
    trash = Path(tempfile.mkdtemp(prefix=f".trash-{name}-", dir=folder.parent))
    os.replace(folder, trash / name)  # the model disappears at once; the files go after
    shutil.rmtree(trash, ignore_errors=True)
    return folder


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
