"""Training options: one dataclass, readable from a TOML file whose values command-line flags override.

A config file holds the same names as ``TrainConfig``'s fields (dashes or underscores), at the top level or in a
``[train]`` table, e.g.::

    data = "recordings/dataset"   # relative to the config file
    head = "mlp"
    epochs = 60
    lr = 1e-3
    lr_schedule = "step"
    lr_step_decay = 0.5
    lr_step_every = 10
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from audioclas.errors import AudioclasError


class ConfigError(AudioclasError):
    """A training option has a wrong name, type or value."""


@dataclass
class TrainConfig:
    """Every training option, with its default. ``TrainConfig(**values).validate()`` checks them all."""

    data: str | None = None  # dataset: split-file folder, folder per class, or CSV
    name: str | None = None  # saved model name (default: a timestamp and a random suffix)
    overwrite: bool = False  # replace a saved model of the same name
    # the task and the head
    head: str = "attention"  # linear | mlp | attention (attention pooling over windows)
    hidden: int = 256  # hidden units of the mlp and attention heads
    dropout: float | None = None  # default 0 for linear, 0.2 for mlp and attention
    multilabel: bool | None = None  # default: multi-label when the data has rows with several labels
    class_weights: str = "none"  # none | balanced (loss weights inversely proportional to class frequency)
    # optimisation
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine | step | constant
    lr_step_decay: float = 0.1  # step schedule: multiply the learning rate by this …
    lr_step_every: int = 30  # … every this many epochs
    l2: float = 1e-4  # AdamW decoupled weight decay on weight matrices (not biases or normalisation)
    seed: int = 0
    # validation, stopping and checkpoints
    val_fraction: float = 0.1  # stratified hold-out from train when the data has no val split (0: none)
    early_stopping: int = 10  # patience in epochs without a better validation score (0: off)
    checkpoint_every: int = 0  # also keep a checkpoint every N epochs (0: only the best)
    tensorboard: bool = True  # write TensorBoard scalars and the confusion matrix under the run folder
    # embeddings
    window: float | None = None  # seconds per analysis window (default: chosen from the clip lengths, see api)
    hop: float | None = None  # seconds between windows (default: 0.1 s with 0.3 s windows, else the window)
    pad: str | None = None  # a clip shorter than the window is looped (loop) or zero-padded (zeros)
    from_embeddings: str | None = None  # folder of precomputed <relative path>.npy embeddings: no audio decoded
    skip_bad_audio: bool = False  # train without files that cannot be decoded instead of stopping
    # fine-tuning the backbone
    finetune: bool = False
    finetune_epochs: int = 20
    finetune_batch_size: int = 32  # clips per fine-tuning step (more steps per epoch than the head's 64)
    backbone_lr: float = 2e-3
    mixup: float = 0.3  # Beta(a, a) mixing of pairs of clips (0: off)
    speed: float = 0.1  # random speed (tempo and pitch) change within ±this fraction (0: off)
    time_shift: float = 1.0  # random delay up to this fraction of the room left in the training segment
    gain_db: float = 6.0  # random gain within ±this many dB
    noise_snr: float = 10.0  # white noise at a random SNR from this to 20 dB more (0: off)
    spec_masks: int = 2  # SpecAugment frequency and time masks per clip (0: off)

    def validate(self) -> TrainConfig:
        problems = []

        def check(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        check(self.head in ("linear", "mlp", "attention"), f"head must be linear, mlp or attention, not {self.head!r}")
        check(self.class_weights in ("none", "balanced"), f"class_weights must be none or balanced, not {self.class_weights!r}")
        check(self.lr_schedule in ("cosine", "step", "constant"),
              f"lr_schedule must be cosine, step or constant, not {self.lr_schedule!r}")
        check(self.pad in (None, "loop", "zeros"), f"pad must be loop or zeros, not {self.pad!r}")
        check(1 <= self.hidden <= 8192, f"hidden must be 1..8192, not {self.hidden}")
        check(self.dropout is None or 0 <= self.dropout < 1, f"dropout must be in [0, 1), not {self.dropout}")
        check(1 <= self.epochs <= 100_000, f"epochs must be 1..100000, not {self.epochs}")
        check(1 <= self.batch_size <= 65_536, f"batch_size must be 1..65536, not {self.batch_size}")
        check(0 < self.lr <= 10, f"lr must be in (0, 10], not {self.lr}")
        check(0 < self.backbone_lr <= 10, f"backbone_lr must be in (0, 10], not {self.backbone_lr}")
        check(0 < self.lr_step_decay <= 1, f"lr_step_decay must be in (0, 1], not {self.lr_step_decay}")
        check(self.lr_step_every >= 1, f"lr_step_every must be at least 1, not {self.lr_step_every}")
        check(self.l2 >= 0, f"l2 must be 0 or more, not {self.l2}")
        check(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), not {self.val_fraction}")
        check(self.early_stopping >= 0, f"early_stopping must be 0 (off) or a patience in epochs, not {self.early_stopping}")
        check(self.checkpoint_every >= 0, f"checkpoint_every must be 0 (off) or more, not {self.checkpoint_every}")
        check(self.window is None or 0.1 <= self.window <= 60, f"window must be 0.1..60 seconds, not {self.window}")
        check(self.hop is None or 0.1 <= self.hop <= (self.window or 60), f"hop must be 0.1 s..the window, not {self.hop}")
        check(1 <= self.finetune_epochs <= 10_000, f"finetune_epochs must be 1..10000, not {self.finetune_epochs}")
        check(1 <= self.finetune_batch_size <= 4096, f"finetune_batch_size must be 1..4096, not {self.finetune_batch_size}")
        check(self.mixup >= 0, f"mixup must be 0 (off) or more, not {self.mixup}")
        check(self.gain_db >= 0, f"gain_db must be 0 or more, not {self.gain_db}")
        check(0 <= self.time_shift <= 1, f"time_shift must be in [0, 1], not {self.time_shift}")
        check(0 <= self.speed < 1, f"speed must be in [0, 1), not {self.speed}")
        check(self.noise_snr >= 0, f"noise_snr must be 0 (off) or more, not {self.noise_snr}")
        check(0 <= self.spec_masks <= 10, f"spec_masks must be 0..10, not {self.spec_masks}")
        check(not (self.finetune and self.from_embeddings), "finetune needs the audio: it cannot use from_embeddings")
        if problems:
            raise ConfigError("invalid training options: " + "; ".join(problems))
        return self

    @property
    def head_dropout(self) -> float:
        return self.dropout if self.dropout is not None else (0.0 if self.head == "linear" else 0.2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_types() -> dict[str, type | tuple[type, ...]]:
    kinds: dict[str, type | tuple[type, ...]] = {}
    for field in fields(TrainConfig):
        text = str(field.type)
        base = bool if "bool" in text else int if text.startswith("int") else float if "float" in text else str
        kinds[field.name] = (int, float) if base is float else base
    return kinds


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (top level or a ``[train]`` table); ``data`` is made relative to the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    raw = raw.get("train", raw) if isinstance(raw.get("train"), dict) else raw
    kinds = _field_types()
    values, problems = {}, []
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in kinds:
            close = difflib.get_close_matches(name, kinds, n=1)
            problems.append(f"unknown option {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        elif isinstance(value, bool) != (kinds[name] is bool) or not isinstance(value, kinds[name]):
            problems.append(f"{key} = {value!r} has the wrong type")
        else:
            values[name] = float(value) if kinds[name] == (int, float) else value
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    if isinstance(values.get("data"), str):
        values["data"] = str((path.parent / values["data"]).resolve()) if not Path(values["data"]).is_absolute() else values["data"]
    return values


def make_config(file: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """The config file's values (if any), overridden by every ``overrides`` value that is not None, validated."""
    values = read_config_file(file) if file else {}
    values.update({key: value for key, value in overrides.items() if value is not None})
    unknown = set(values) - {field.name for field in fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    return TrainConfig(**values).validate()
