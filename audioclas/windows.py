"""Cutting a stream of audio into fixed-length analysis windows.

The network was trained on 10 s clips only, so every window it sees is exactly ``window`` samples:

- audio shorter than one window is looped to fill it (``pad="loop"``, the default, as the system we
  replace did) or zero-padded (``pad="zeros"``);
- longer audio gets windows every ``hop`` samples; if the last of these stops before the end of the
  audio, one more window is placed flush with the end, so the tail is heard in full without zero
  padding and without wrapping round to the start of the file.

Only about one window plus one decoded chunk is ever held in memory, whatever the length of the audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from audioclas.errors import OptionError

PadMode = Literal["loop", "zeros"]


MAX_WINDOW_SECONDS = 60.0
MIN_SECONDS = 0.1  # the shortest window and hop


@dataclass(frozen=True)
class WindowSettings:
    """How a clip is cut into windows, in seconds; refused on construction when out of range."""

    window: float = 10.0
    hop: float | None = None  # None: the window length (no overlap)
    pad: PadMode = "loop"

    def __post_init__(self) -> None:
        _check_window(self.window)
        _check_hop(self.hop, self.window)
        _check_pad(self.pad)

    @property
    def hop_seconds(self) -> float:
        return self.window if self.hop is None else self.hop

    def in_samples(self, sample_rate: int) -> tuple[int, int]:
        """(window, hop) in samples."""
        return round(self.window * sample_rate), round(self.hop_seconds * sample_rate)

    def to_dict(self) -> dict[str, Any]:
        """``{"window", "hop", "pad"}``, the hop always given (as a batch job's ``job.json`` records them)."""
        return {"window": self.window, "hop": self.hop_seconds, "pad": self.pad}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowSettings:
        return cls(data["window"], data["hop"], data["pad"])


@dataclass(frozen=True)
class WindowRequest:
    """The windows a caller asks for: each ``None`` is left to the model (10 s looped windows for the network's own
    tags; a custom model's own window, hop and padding). What is given is checked on construction; the hop against
    the window once that is known (``options.prediction_windows`` settles a request into ``WindowSettings``)."""

    window: float | None = None
    hop: float | None = None
    pad: PadMode | None = None

    def __post_init__(self) -> None:
        if self.window is not None:
            _check_window(self.window)
        _check_hop(self.hop, MAX_WINDOW_SECONDS if self.window is None else self.window)
        if self.pad is not None:
            _check_pad(self.pad)


def _check_window(window: Any) -> None:
    if not _is_number(window) or not MIN_SECONDS <= window <= MAX_WINDOW_SECONDS:
        raise OptionError(f"window must be between {MIN_SECONDS} and {MAX_WINDOW_SECONDS:g} seconds, not {window}")


def _check_hop(hop: Any, window: float) -> None:
    if hop is not None and (not _is_number(hop) or not MIN_SECONDS <= hop <= window):
        raise OptionError(f"hop must be between {MIN_SECONDS} s and the window ({window} s), not {hop}")


def _check_pad(pad: Any) -> None:
    if pad not in ("loop", "zeros"):
        raise OptionError(f"pad must be 'loop' or 'zeros', not {pad!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Window:
    start: int  # first sample, in the clip
    length: int  # samples of real audio it covers (less than the window for a padded short clip)
    samples: npt.NDArray[np.float32]  # exactly one window long


def fill_window(audio: npt.NDArray[np.float32], size: int, pad: PadMode) -> npt.NDArray[np.float32]:
    """Loop or zero-pad ``audio`` (shorter than ``size``) to exactly ``size`` samples."""
    if pad == "loop":
        return np.resize(audio, size)
    return np.pad(audio, (0, size - len(audio)))


def iter_windows(
    chunks: Iterable[npt.NDArray[np.floating[Any]]], size: int, hop: int, pad: PadMode = "loop"
) -> Iterator[Window]:
    """Windows of ``size`` samples every ``hop`` samples over the concatenation of ``chunks``."""
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # clip position of buffer[0]
    next_start = 0
    last_end = 0
    for chunk in chunks:
        buffer = np.concatenate([buffer, chunk.astype(np.float32, copy=False)])
        buffer_end = buffer_start + len(buffer)
        while next_start + size <= buffer_end:
            offset = next_start - buffer_start
            yield Window(next_start, size, buffer[offset : offset + size].copy())
            last_end = next_start + size
            next_start += hop
        # Keep what the next window needs, and the last full window's worth for a final flush window.
        keep_from = max(min(next_start, buffer_end - size), buffer_start)
        buffer = buffer[keep_from - buffer_start :]
        buffer_start = keep_from
    total = buffer_start + len(buffer)
    if total == 0:
        return
    if total < size:
        yield Window(0, total, fill_window(buffer, size, pad))
    elif last_end < total:
        yield Window(total - size, size, buffer[len(buffer) - size :].copy())
