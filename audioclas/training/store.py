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

A model is written into a temporary folder beside its final place and renamed into it (``os.rename``), so a
crash never leaves a half model under its name, and a model saved meanwhile by another run is never replaced
unless overwriting was asked for.

A model is named (a ``str``: only ever a folder under ``home_dir()/models``, whatever the current directory
holds) or given as a folder (a ``Path``, which only the command line makes from what its user typed: see
``model_ref``). The service and the DEEPaaS adapter only ever pass names.

Using a model (the contract ``audioclas predict --model NAME`` relies on)::

    model = load_model("birds")          # a name under home_dir()/models; load_model(Path("dir")) for a folder
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

Writing a model (``model_info``, ``write_model_folder`` and ``save_model``, which ``training.run`` calls) and reading
it (``load_model``, ``list_models``) live together, with the names that place a model, so that the folder format
has one home: this is why the module is longer than the others.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from audioclas.errors import AudioclasError
from audioclas.fileio import now_iso
from audioclas.model import EMBEDDING_DIM, EfficientAT
from audioclas.settings import home_dir
from audioclas.training.heads import Head, build_head
from audioclas.training.metrics import split_summaries, write_confusion
from audioclas.windows import PadMode

if TYPE_CHECKING:
    from audioclas.training.config import TrainConfig
    from audioclas.training.dataset import Dataset
    from audioclas.training.trainer import FitResult
    from audioclas.windows import WindowSettings

BACKBONE_NAME = "EfficientAT mn04_as"
MODEL_FORMAT = "audioclas-classifier"
MODEL_VERSION = 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ModelError(AudioclasError):
    """A saved model is missing, unreadable, or its name is not allowed."""


class ModelNotFound(ModelError):
    """There is no saved model of that name."""


class ModelExists(ModelError):
    """A model of that name exists, and overwriting it was not asked for."""


def models_dir() -> Path:
    return home_dir() / "models"


def default_name() -> str:
    """A fresh name: the time, and a random suffix so that runs started in the same second differ."""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ModelError(
            f"model name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
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
    pad: PadMode
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
            window_logits, clip_logits = self.head(
                torch.from_numpy(windows)[None], torch.ones(1, len(windows), dtype=torch.bool)
            )
        activate = torch.sigmoid if self.multilabel else (lambda logits: logits.softmax(-1))
        return activate(window_logits[0]).numpy(), activate(clip_logits[0]).numpy()

    def decide(self, clip_scores: np.ndarray) -> list[str]:
        """The labels a clip gets: those at or above their threshold (multi-label), or the top class."""
        if self.multilabel:
            assert self.thresholds is not None, "a multi-label model has per-class thresholds"  # see model_info
            return [
                name for name, score, threshold in zip(self.classes, clip_scores, self.thresholds) if score >= threshold
            ]
        return [self.classes[int(np.argmax(clip_scores))]]

    def load_backbone(self) -> EfficientAT | None:
        """The fine-tuned backbone (eval mode, BatchNorm folded), or None for a head on the pretrained network."""
        if not self.finetuned:
            return None
        file = self.path / "backbone.safetensors"
        model = EfficientAT()
        try:
            model.load_state_dict(load_file(file))
        except (OSError, RuntimeError, ValueError, SafetensorError) as error:
            raise ModelError(
                f"saved model {self.path} is damaged: cannot load {file.name} ({type(error).__name__})"
            ) from None
        if state_sha256(model) != self.backbone_sha256:
            raise ModelError(
                f"saved model {self.path} is damaged: {file.name} does not match the backbone sha256 in model.json"
            )
        return model.eval().fuse_for_inference()


def state_sha256(module: torch.nn.Module) -> str:
    """Identity of a network's weights (a fine-tuned backbone's): sha256 of names and bytes in state_dict order."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_model(name: str, write: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Create model ``name`` atomically: ``write(folder)`` fills a temporary folder that is then renamed into place.

    Without ``overwrite``, a model of that name that exists by then (another run may have saved one since this
    one started) is kept, and this run's model is left in its temporary folder, which the error names.
    """
    target = model_path(name)
    if target.exists() and not overwrite:
        raise ModelExists(f"a model named {name!r} already exists at {target}: choose another name or overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=target.parent))
    try:
        write(staging)
        for file in staging.iterdir():  # make the content durable before the rename publishes it
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        _publish(staging, target, overwrite)
    except _NameTaken:
        raise ModelExists(
            f"a model named {name!r} was saved by another run meanwhile and is kept; this run's model "
            f"is in {staging}: move it to {target.parent}/OTHER_NAME to keep it"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


class _NameTaken(Exception):
    pass


def _publish(staging: Path, target: Path, overwrite: bool) -> None:
    """Rename ``staging`` to ``target``. ``rename`` fails on a non-empty folder (which a saved model is), so
    without ``overwrite`` an existing model is never replaced, with no gap between a check and the rename.
    With ``overwrite`` the old model is moved to a trash folder first (again if another writer got in between)."""
    trashes: list[Path] = []
    for _ in range(100):
        try:
            os.rename(staging, target)
            break
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if not overwrite:
            raise _NameTaken
        trashes.append(Path(tempfile.mkdtemp(prefix=f".trash-{target.name}-", dir=target.parent)))
        with contextlib.suppress(FileNotFoundError):  # another writer moved it first: try again
            os.rename(target, trashes[-1] / target.name)
    else:
        raise ModelError(f"could not replace {target}: other runs keep saving models under its name")
    for trash in trashes:
        shutil.rmtree(trash, ignore_errors=True)


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
            "sha256": state_sha256(backbone) if backbone is not None else pretrained_sha256,
            "pretrained_sha256": pretrained_sha256,
            "finetuned": backbone is not None,
            "file": "backbone.safetensors" if backbone is not None else None,
        },
        "thresholds": thresholds.tolist() if thresholds is not None else None,
        "dataset": {"path": str(dataset.root), "layout": dataset.layout, "counts": dataset.counts()},
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

    for file, module in (("head.safetensors", head), ("backbone.safetensors", backbone)):
        if module is not None:
            (folder / file).write_bytes(save({key: value.contiguous() for key, value in module.state_dict().items()}))
    write_json(folder / "model.json", info)
    write_json(folder / "config.json", config.to_dict())
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "history.json", history)
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
    return _read_info(resolve_model(model) if isinstance(model, str) else model_folder(model))


def _read_info(folder: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads((folder / "model.json").read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} is not a saved model (no model.json)") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {folder / 'model.json'} ({error})") from None
    if info.get("format") != MODEL_FORMAT or info.get("version") != MODEL_VERSION:
        raise ModelError(f"{folder} holds no audioclas classifier of version {MODEL_VERSION}")
    return info


def resolve_model(name: str) -> Path:
    """The folder of the saved model ``name``: only ever under ``models_dir()``, never a path."""
    folder = models_dir() / check_name(name)
    if not folder.is_dir():
        raise ModelNotFound(f"no saved model named {name!r} (see 'audioclas models list')")
    return folder


def model_folder(path: str | os.PathLike[str]) -> Path:
    """An explicitly given model folder (a path the command line's user typed): it must hold a model.json."""
    folder = Path(path)
    if not (folder / "model.json").is_file():
        raise ModelError(f"{folder} is not a saved model folder (no model.json)")
    return folder


def model_ref(text: str) -> str | Path:
    """How the command line reads a MODEL argument: a valid name is a saved model's name; anything else (a
    path with a '/', e.g. ``./birds``) is the folder of a model. A name never reaches into the current folder."""
    return text if NAME_PATTERN.fullmatch(text) else Path(text)


def load_model(model: str | os.PathLike[str]) -> SavedModel:
    """Load a saved model: a ``str`` is a name under ``home_dir()/models``, a ``Path`` a model folder."""
    folder = resolve_model(model) if isinstance(model, str) else model_folder(model)
    info = _read_info(folder)
    try:
        spec, window = info["head"], info["window"]
        classes = list(info["classes"])
        head = build_head(spec["type"], spec["input_dim"], len(classes), spec["hidden"], spec["dropout"])
        head.load_state_dict(load_file(folder / "head.safetensors"))
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
            head=head.eval(),
            info=info,
        )
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, SafetensorError) as error:
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
            summaries.append(
                ModelSummary(
                    folder.name,
                    folder,
                    info["created"],
                    len(info["classes"]),
                    info["multilabel"],
                    info["head"]["type"],
                    headline_text(info.get("metrics", {})),
                )
            )
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
        raise ModelNotFound(f"no saved model named {name!r} (see 'audioclas models list')")
    trash = Path(tempfile.mkdtemp(prefix=f".trash-{name}-", dir=folder.parent))
    os.replace(folder, trash / name)  # the model disappears at once; the files go after
    shutil.rmtree(trash, ignore_errors=True)
    return folder
