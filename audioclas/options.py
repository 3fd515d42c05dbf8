"""Where prediction options meet a model: the ``Classifier`` protocol of a custom model, the classes it reports,
and the window settings and label filter a prediction runs with (``resolve_options``, the one place every edge's
options are checked against a model); and building the option objects from the Python API's keywords.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from audioclas.engine import Backend, Engine
from audioclas.errors import OptionError
from audioclas.labels import audioset_labels
from audioclas.predictions import LabelFilter, LabelQuery, Scores
from audioclas.windows import PadMode, WindowRequest, WindowSettings

Options = TypeVar("Options", LabelQuery, WindowRequest, WindowSettings)
Accepted = TypeVar("Accepted")


class Classifier(Protocol):
    """A custom classifier trained on window embeddings (``audioclas.training.store.SavedModel``)."""

    name: str
    classes: list[str]
    window: float
    hop: float | None
    pad: PadMode
    backbone_sha256: str  # the network whose embeddings it reads: the pretrained one, or its fine-tuned copy
    pretrained_sha256: str  # the pretrained network it derives from
    finetuned: bool

    def load_backbone(self, backend: Backend = "auto", threads: int | None = None) -> Engine | None:
        """The engine of the fine-tuned network whose embeddings the classifier reads (checked against
        ``backbone_sha256``) on ``backend`` with ``threads``, or None for the pretrained one."""
        ...

    def classify(self, windows: npt.NDArray[np.float32]) -> tuple[Scores, Scores]:
        """(window scores (windows, classes), clip scores (classes,)) from (windows, 384) embeddings."""
        ...


def class_names(model: Classifier | None) -> tuple[list[str], list[str] | None]:
    """(names, ids) of the classes a model reports: AudioSet's without one, a custom model's (no ids) with one."""
    if model is None:
        labels = audioset_labels()
        return [label.name for label in labels], [label.id for label in labels]
    return list(model.classes), None


def resolve_options(
    model: Classifier | None, query: LabelQuery, windows: WindowRequest | WindowSettings
) -> tuple[WindowSettings, LabelFilter]:
    """The windows and the label filter a prediction with ``model`` (None: the network's AudioSet tags) runs with:
    the one place where options meet a model. Raises ``AudioclasError`` (one line) for options it cannot use: labels
    it does not have, windows it was not trained on."""
    return prediction_windows(model, windows), query.resolve(*class_names(model))


def prediction_windows(model: Classifier | None, windows: WindowRequest | WindowSettings) -> WindowSettings:
    """The windows to predict with; raises ``OptionError`` (one line) for settings that cannot be used.

    Without a model: 10 s windows (the network's own), looped, unless given. A custom model reads embeddings of
    the windows it was trained on: its window length and padding are part of it, so a different ``window`` or
    ``pad`` is refused (a head trained on 0.3 s windows knows nothing of 10 s ones); ``hop`` only sets where
    windows start, so it is honoured (a finer timeline), up to the window length. ``WindowSettings`` ask for all
    three.
    """
    window, hop, pad = windows.window, windows.hop, windows.pad
    if model is not None:
        if window is not None and not math.isclose(window, model.window):
            raise OptionError(
                f"model {model.name!r} was trained on {model.window:g} s windows: it cannot use "
                f"{window:g} s windows (leave the window out)"
            )
        if pad is not None and pad != model.pad:
            raise OptionError(
                f"model {model.name!r} was trained with short clips padded by {model.pad}: it "
                f"cannot use pad {pad} (leave pad out)"
            )
        window, hop, pad = model.window, model.hop if hop is None else hop, model.pad
    try:
        return WindowSettings(10.0 if window is None else window, hop, pad or "loop")
    except OptionError as error:
        suffix = f" (model {model.name!r} uses {model.window:g} s windows)" if model else ""
        raise OptionError(f"{error}{suffix}") from None


def given_or_built(
    given: object, kind: type[Options], accepts: tuple[type[Accepted], ...] = (), **keywords: Any
) -> Options | Accepted:
    """``given`` (a ``kind``, or one of ``accepts``), or a ``kind`` built from the Python API's keyword options (those
    not None); never both."""
    chosen = {name: value for name, value in keywords.items() if value is not None}
    if given is None:
        return kind(**chosen)
    if chosen:
        raise OptionError(f"give {', '.join(chosen)} inside the {kind.__name__}, not beside it")
    if isinstance(given, (kind, accepts)):
        return given
    raise OptionError(f"expected a {kind.__name__}, not {type(given).__name__}")
