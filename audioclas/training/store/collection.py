"""The models folder as a whole: saving a model into it atomically (a temporary folder renamed into place, never
over a model saved meanwhile unless overwriting was asked for), listing and deleting.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioclas.training.store.folder import read_folder_info
from audioclas.training.store.names import ModelError, ModelExists, ModelNotFound, model_path, models_dir


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
            info = read_folder_info(folder)
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
