"""The custom model a batch job runs (``--model NAME``): what identifies it, and loading it on every worker.

A job's results depend on the whole model, not only its name: a model retrained under the same name has another
head (and, fine-tuned, another backbone). ``JobModel`` records the name, the sha256 of the network whose embeddings
the head reads (``backbone_sha256``), and a digest of the saved model's files (``sha256``); ``job.json`` and every
table file carry them, a resumed job must name the same model, and a worker refuses a model folder that changed
since the job was planned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioclas.errors import AudioclasError
from audioclas.windows import PadMode, WindowSettings

if TYPE_CHECKING:
    from audioclas.training.store import SavedModel

IDENTITY_FILES = ("model.json", "head.safetensors")  # the fine-tuned backbone is covered by its sha256 in model.json


@dataclass(frozen=True)
class JobModel:
    """A saved classifier as a job refers to it: small and picklable (Ray sends it to every actor)."""

    name: str
    path: str  # the model folder, absolute: every worker loads it from there
    sha256: str  # of IDENTITY_FILES
    backbone_sha256: str  # the network whose embeddings the head reads (the pretrained one, or fine-tuned)
    finetuned: bool
    classes: tuple[str, ...]
    window: float
    pad: PadMode

    @classmethod
    def of(cls, model: SavedModel) -> JobModel:
        path = model.path.absolute()
        return cls(
            model.name,
            str(path),
            model_digest(path),
            model.backbone_sha256,
            model.finetuned,
            tuple(model.classes),
            model.window,
            model.pad,
        )

    def check_windows(self, windows: WindowSettings) -> None:
        """The head reads embeddings of its own windows: raise for others (``prediction_windows`` chose them)."""
        if (windows.window, windows.pad) != (self.window, self.pad):
            raise AudioclasError(
                f"model {self.name!r} was trained on {self.window:g} s windows padded by {self.pad}: "
                f"a job cannot use {windows.window:g} s windows padded by {windows.pad}"
            )

    def manifest(self) -> dict[str, Any]:
        """How ``job.json`` and the table files record it."""
        return {"name": self.name, "sha256": self.sha256, "backbone_sha256": self.backbone_sha256}

    def load(self) -> SavedModel:
        """The model, on a worker; raises ``AudioclasError`` if its folder no longer holds the model planned."""
        from audioclas.training.store import load_model

        folder = Path(self.path)
        found = model_digest(folder)
        if found != self.sha256:
            raise AudioclasError(
                f"model {self.name!r} at {folder} changed since the job started (its files' sha256 is "
                f"{found[:12]}…, the job's {self.sha256[:12]}…): resume with the model the job ran"
            )
        return load_model(folder)


def model_digest(folder: Path) -> str:
    """sha256 over the files that decide a model's results (read in bounded blocks)."""
    digest = hashlib.sha256()
    for name in IDENTITY_FILES:
        digest.update(name.encode() + b"\0")
        try:
            with open(folder / name, "rb") as stream:
                while block := stream.read(1 << 20):
                    digest.update(block)
        except OSError as error:
            raise AudioclasError(f"model folder {folder}: cannot read {name} ({error.strerror})") from None
    return digest.hexdigest()
