"""Training options: one validated Pydantic model, readable from a TOML file whose values command-line flags override.

``TrainConfig`` is the only description of the options: the CLI flags, a TOML file, the REST body (which adds
``dataset`` to ``TrainOptions``, every option but the data), the job worker and the DEEPaaS adapter all build one
and hand it on whole; nothing checks an option again after that. A problem is reported as one line naming the
option, e.g. ``epochs must be 1..100000, not 0``.

A config file holds the same names as the fields (dashes or underscores), at the top level or in a ``[train]``
table, e.g.::

    data = "recordings/dataset"   # relative to the config file
    head = "mlp"
    epochs = 60
    lr = 1e-3
    lr_schedule = "step"
    lr_step_decay = 0.5
    lr_step_every = 10
"""

from __future__ import annotations

import difflib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from audioclas.errors import AudioclasError


class ConfigError(AudioclasError):
    """A training option has a wrong name, type or value."""


ZERO_IS_OFF = frozenset(
    {"val_fraction", "early_stopping", "checkpoint_every", "mixup", "speed", "noise_snr", "spec_masks"}
)  # options whose 0 turns a feature off, said so in their range
_PROBLEM = "training_option"  # the error type of a problem already explained in our words
_SHOWN = 40  # characters of a refused value quoted in an error


class TrainOptions(BaseModel):
    """Every training option but the dataset, with its default, type and allowed values; validated on construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="saved model name (default: a timestamp and a random suffix)")
    overwrite: bool = Field(False, description="replace a saved model of the same name")
    # the task and the head
    head: Literal["linear", "mlp", "attention"] = Field("attention", description="attention pools over the windows")
    hidden: int = Field(256, ge=1, le=8192, description="hidden units of the mlp and attention heads")
    dropout: float | None = Field(None, ge=0, lt=1, description="default 0 for linear, 0.2 for mlp and attention")
    multilabel: bool | None = Field(None, description="default: multi-label when the data has rows with several labels")
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="balanced: loss weights inversely proportional to class frequency"
    )
    # optimisation
    epochs: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(1e-3, gt=0, le=10)
    lr_schedule: Literal["cosine", "step", "constant"] = "cosine"
    lr_step_decay: float = Field(0.1, gt=0, le=1, description="step schedule: multiply the learning rate by this …")
    lr_step_every: int = Field(30, ge=1, description="… every this many epochs")
    l2: float = Field(
        1e-4, ge=0, description="AdamW decoupled weight decay on weight matrices (not biases or normalisation)"
    )
    seed: int = 0
    # validation, stopping and checkpoints
    val_fraction: float = Field(
        0.1, ge=0, lt=1, description="stratified hold-out from train when the data has no val split (0: none)"
    )
    early_stopping: int = Field(10, ge=0, description="patience in epochs without a better validation score (0: off)")
    checkpoint_every: int = Field(0, ge=0, description="also keep a checkpoint every N epochs (0: only the best)")
    tensorboard: bool = Field(
        True, description="write TensorBoard scalars and the confusion matrix under the run folder"
    )
    # embeddings
    window: float | None = Field(
        None, ge=0.1, le=60, description="seconds per analysis window (default: chosen from the clip lengths)"
    )
    hop: float | None = Field(
        None, ge=0.1, le=60, description="seconds between windows (default: 0.1 s with 0.3 s windows, else the window)"
    )
    pad: Literal["loop", "zeros"] | None = Field(
        None, description="a clip shorter than the window is looped or zero-padded"
    )
    from_embeddings: str | None = Field(
        None, description="folder of precomputed <relative path>.npy embeddings: no audio decoded"
    )
    skip_bad_audio: bool = Field(False, description="train without files that cannot be decoded instead of stopping")
    # annotated recordings (Raven, Audacity or file,start,end,label tables)
    label_column: str | None = Field(
        None, max_length=200, description="Raven table column holding the labels (default: Annotation, Label, Species…)"
    )
    background: bool = Field(
        False, description="unannotated stretches become examples: class 'background', or no label if multi-label"
    )
    # fine-tuning the backbone
    finetune: bool = False
    finetune_epochs: int = Field(20, ge=1, le=10_000)
    finetune_batch_size: int = Field(32, ge=1, le=4096, description="clips per fine-tuning step")
    backbone_lr: float = Field(2e-3, gt=0, le=10)
    mixup: float = Field(0.3, ge=0, description="Beta(a, a) mixing of pairs of clips (0: off)")
    speed: float = Field(
        0.1, ge=0, lt=1, description="random speed (tempo and pitch) change within ±this fraction (0: off)"
    )
    time_shift: float = Field(
        1.0, ge=0, le=1, description="random delay up to this fraction of the room left in the training segment"
    )
    gain_db: float = Field(6.0, ge=0, description="random gain within ±this many dB")
    noise_snr: float = Field(10.0, ge=0, description="white noise at a random SNR from this to 20 dB more (0: off)")
    spec_masks: int = Field(2, ge=0, le=10, description="SpecAugment frequency and time masks per clip (0: off)")

    @model_validator(mode="wrap")
    @classmethod
    def _explain(cls, values: Any, handler: Any) -> Any:
        """Pydantic's problems, reworded as one line each that names the option and what it accepts."""
        try:
            return handler(values)
        except ValidationError as error:
            details = [
                InitErrorDetails(
                    type=PydanticCustomError(_PROBLEM, _explained(cls, problem)),
                    loc=problem["loc"],
                    input=problem["input"],
                )
                for problem in error.errors()
            ]
            raise ValidationError.from_exception_data(error.title, details) from None

    @property
    def head_dropout(self) -> float:
        return self.dropout if self.dropout is not None else (0.0 if self.head == "linear" else 0.2)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class TrainConfig(TrainOptions):
    """Every training option, with its default: ``TrainConfig(head="mlp", epochs=60)``. Invalid values raise
    pydantic's ``ValidationError`` (a ``ValueError``); ``make_config`` raises ``ConfigError`` instead."""

    data: str | None = Field(None, description="dataset: split-file folder, folder per class, or CSV")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        problems = []
        if self.hop is not None and self.hop > (self.window or 60):
            problems.append(f"hop must be 0.1 s..the window, not {self.hop}")
        if self.finetune and self.from_embeddings:
            problems.append("finetune needs the audio: it cannot use from_embeddings")
        if problems:
            raise PydanticCustomError(_PROBLEM, "; ".join(problems))
        return self


def _explained(model: type[BaseModel], problem: Any) -> str:
    """One line for one of pydantic's error dicts: the option, what it accepts and the value refused."""
    kind, value = problem["type"], problem["input"]
    name = ".".join(map(str, problem["loc"]))
    if kind == _PROBLEM:
        return str(problem["msg"])
    field = model.model_fields.get(name)
    if field is None:
        close = difflib.get_close_matches(name, model.model_fields, n=1) if kind == "extra_forbidden" else []
        return f"unknown option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    numbers = base_type(field.annotation)
    if numbers is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # shown as the number it stands for: 1 → 1.0
    shown = repr(value) if len(repr(value)) <= _SHOWN else repr(value)[:_SHOWN] + "…"
    if kind == "literal_error":
        return f"{name} must be {problem['ctx']['expected'].replace(chr(39), '')}, not {shown}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{name} must be {_accepted(name, field.metadata, numbers is int)}, not {shown}"
    return f"{name} = {shown} has the wrong type ({_kind(numbers)} expected)"


def base_type(annotation: Any) -> Any:
    """``int`` for ``int | None``, the first argument of a union."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def _kind(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(annotation, "a value")


def _accepted(name: str, constraints: list[Any], whole: bool) -> str:
    """The range of a field's bounds in words: ``1..8192``, ``in [0, 1)``, ``0 (off) or more``, ``at least 1``."""
    kinds = (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt)
    bounds = {
        type(bound).__name__.lower(): getattr(bound, type(bound).__name__.lower())
        for bound in constraints
        if isinstance(bound, kinds)
    }
    low, high = bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt"))
    if low is not None and high is not None:
        if whole:
            return f"{low}..{high}"
        return f"in {'[' if 'ge' in bounds else '('}{low}, {high}{']' if 'le' in bounds else ')'}"
    if high is not None:
        return f"at most {high}" if "le" in bounds else f"less than {high}"
    if low == 0 and "ge" in bounds:
        return "0 (off) or more" if name in ZERO_IS_OFF else "0 or more"
    return f"at least {low}" if "ge" in bounds else f"more than {low}"


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (top level or a ``[train]`` table), not yet checked; ``data`` is made relative to
    the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    raw = raw.get("train", raw) if isinstance(raw.get("train"), dict) else raw
    values = {key.replace("-", "_"): value for key, value in raw.items()}
    if isinstance(values.get("data"), str) and not Path(values["data"]).is_absolute():
        values["data"] = str((path.parent / values["data"]).resolve())
    return values


def make_config(file: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """The config file's values (if any), overridden by every ``overrides`` value that is not None, as a
    ``TrainConfig``. Types are strict (a file's ``epochs = 2.0`` or ``multilabel = "yes"`` is refused); any
    problem raises one ``ConfigError`` listing them all."""
    from_file = read_config_file(file) if file else {}
    values = {**from_file, **{key: value for key, value in overrides.items() if value is not None}}
    try:
        return TrainConfig.model_validate(values, strict=True)
    except ValidationError as error:
        named = {str(problem["loc"][0]) for problem in error.errors() if problem["loc"]}
        where = f"{file}: " if file and named and named <= set(from_file) else ""
        problems = "; ".join(problem["msg"] for problem in error.errors())
        raise ConfigError(f"{where}invalid training options: {problems}") from None
