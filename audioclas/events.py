"""Timed events from per-window scores: *when* each label is heard in a long recording.

The network scores windows (10 s by default) every ``hop`` seconds. An event is where a label's score stays at or
above its threshold:

- Each window's score stands for the stretch of time nearer to its centre than to any other window's centre: with
  a regular hop, the hop-long stretch centred on the window's centre. The first stretch is extended back to the
  clip's start and the last one to its end (never past the duration). So the stretches tile the clip exactly,
  and the time *step* of an event is the hop. Its precision is also bounded by the window: a window scores a sound
  wherever in the window it falls, so an event spreads up to half a window beyond the sound on each side.
- An event is a run of consecutive stretches whose score for the label is at or above the label's threshold (its
  entry in ``thresholds``, by name or id, else ``threshold``).
- Runs of one label separated by at most ``merge_gap`` seconds are merged into one event; events shorter than
  ``min_duration`` seconds are then dropped.
- ``score`` is the event's peak window score, ``mean_score`` the mean over its windows (those at or above the
  threshold; the gap a merge bridges does not count). Events are sorted by start, then label.

A custom model's events are those of its classes (no ids); AudioSet's carry the ontology ids.

Defaults, from ``benchmarks/events.py`` (8 real-sound scenes, 37 events, sed_eval event-based F1 with a 1 s onset
collar): without a window given, AudioSet events are found on 2 s windows, every 0.5 s unless a hop is given (F1
0.66, onset F1 0.79, 126x real time; 10 s windows every 1 s: F1 0.08 and 55x), and runs of a label at most 2 s apart are merged
(never worse in the table). A custom model's events use its own windows.

The default threshold is 0.5: for the sigmoid scores of AudioSet (and of a multi-label custom model) that is where
the network says the class is more likely present than not, and for a single-label model's softmax it is where the
class outweighs all the others together. Lower it for faint or rare sounds, per label with a thresholds file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from numbers import Real
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from audioclas.errors import OptionError
from audioclas.fileio import open_regular
from audioclas.labels import resolve_label_names
from audioclas.windows import WindowRequest, WindowSettings

DEFAULT_THRESHOLD = 0.5
DEFAULT_MERGE_GAP = 2.0  # seconds
EVENT_WINDOW, EVENT_HOP = 2.0, 0.5  # seconds: AudioSet events when no window or hop is given (see above)
MAX_SECONDS = 7 * 24 * 3600.0  # min_duration and merge_gap: a week, beyond any recording we accept
MAX_THRESHOLDS_BYTES = 1 << 20  # a thresholds file: 1 MiB, far more than one line per class of any model
MAX_PROBLEMS = 20  # problems of a thresholds file listed in one message


@dataclass(frozen=True)
class EventOptions:
    """How window scores become events (see the module's docstring); checked once, on construction."""

    threshold: float = DEFAULT_THRESHOLD  # a window counts for a label when its score is at least this
    thresholds: Mapping[str, float] = field(default_factory=dict)  # per label (name or id), instead of threshold
    min_duration: float = 0.0  # seconds: shorter events are dropped
    merge_gap: float = DEFAULT_MERGE_GAP  # seconds: runs of a label this close are one event

    def __post_init__(self) -> None:
        _check_threshold("threshold", self.threshold)
        if not isinstance(self.thresholds, Mapping):
            raise OptionError(f"thresholds must map label names to thresholds, not {type(self.thresholds).__name__}")
        for label, value in self.thresholds.items():
            if not isinstance(label, str) or not label.strip():
                raise OptionError(f"thresholds must map label names (strings) to thresholds, not {label!r}")
            _check_threshold(f"the threshold of {label!r}", value)
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))
        for name in ("min_duration", "merge_gap"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= MAX_SECONDS:
                raise OptionError(f"{name} must be between 0 and {MAX_SECONDS:g} seconds, not {value!r}")

    @classmethod
    def given(
        cls,
        threshold: float | None = None,
        thresholds: Mapping[str, float] | str | Path | None = None,
        min_duration: float | None = None,
        merge_gap: float | None = None,
    ) -> EventOptions:
        """Options from what an edge was given (None: the default); ``thresholds`` a mapping or a file's path."""
        options = {"threshold": threshold, "min_duration": min_duration, "merge_gap": merge_gap}
        chosen: dict[str, Any] = {key: value for key, value in options.items() if value is not None}
        if isinstance(thresholds, str | Path):
            return cls.from_file(thresholds, **chosen)
        return cls(thresholds=thresholds or {}, **chosen)

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> EventOptions:
        """Options with the per-label thresholds of ``path`` (see ``read_thresholds``) and ``options`` otherwise."""
        return cls(thresholds=read_thresholds(path), **options)

    def class_thresholds(self, names: Sequence[str], ids: Sequence[str] | None) -> npt.NDArray[np.float32]:
        """The threshold of each of a model's classes; raises ``OptionError`` naming labels it does not have."""
        levels = np.full(len(names), self.threshold, dtype=np.float32)
        for label, value in self.thresholds.items():
            (index,) = resolve_label_names([label], names, ids)
            levels[index] = value
        return levels

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "thresholds": dict(self.thresholds),
            "min_duration": self.min_duration,
            "merge_gap": self.merge_gap,
        }


@dataclass(frozen=True)
class Event:
    start: float  # seconds
    end: float  # seconds
    label: str
    id: str | None  # AudioSet ontology id; None for a custom model's classes
    score: float  # the peak window score
    mean_score: float  # the mean over the event's windows

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "id": self.id,
            "score": round(self.score, 6),
            "mean_score": round(self.mean_score, 6),
        }


def stretch_bounds(
    starts: npt.NDArray[np.float64], ends: npt.NDArray[np.float64], duration: float
) -> npt.NDArray[np.float64]:
    """(windows + 1,) boundaries of the stretch each window's score stands for: midway between window centres, the
    first from 0 and the last to ``duration``."""
    centres = (np.asarray(starts, np.float64) + np.asarray(ends, np.float64)) / 2
    inner = (centres[:-1] + centres[1:]) / 2
    return np.concatenate([[0.0], np.clip(inner, 0.0, duration), [duration]])


def find_events(
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
    duration: float,
    window_scores: npt.NDArray[np.float32],
    names: Sequence[str],
    ids: Sequence[str] | None,
    options: EventOptions,
    classes: npt.NDArray[np.bool_] | None = None,
) -> list[Event]:
    """The events of one clip from its (windows, classes) scores; ``classes``: a mask of the classes to look at
    (default all). Raises ``OptionError`` for a per-label threshold naming a class the model does not have."""
    scores = np.asarray(window_scores)
    if scores.ndim != 2 or scores.shape[0] != len(starts) or scores.shape[1] != len(names):
        raise ValueError(f"window scores of shape {scores.shape} for {len(starts)} windows of {len(names)} classes")
    if scores.shape[0] == 0:
        return []
    above = scores >= options.class_thresholds(names, ids)
    if classes is not None:
        above &= classes
    bounds = stretch_bounds(starts, ends, duration)
    events: list[Event] = []
    for index in map(int, np.flatnonzero(above.any(axis=0))):
        column = scores[:, index]
        for windows in _merged_runs(np.flatnonzero(above[:, index]), bounds, options.merge_gap):
            start, end = float(bounds[windows[0]]), float(bounds[windows[-1] + 1])
            if end - start < options.min_duration - 1e-9:
                continue
            label_id = ids[index] if ids else None
            peak, mean = float(column[windows].max()), float(column[windows].mean())
            events.append(Event(start, end, names[index], label_id, peak, mean))
    events.sort(key=lambda event: (event.start, event.label))
    return events


def _merged_runs(
    rows: npt.NDArray[np.intp], bounds: npt.NDArray[np.float64], merge_gap: float
) -> list[npt.NDArray[np.intp]]:
    """The windows of each run of consecutive ``rows``, runs at most ``merge_gap`` seconds apart merged."""
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    merged: list[npt.NDArray[np.intp]] = [runs[0]]
    for run in runs[1:]:
        gap = bounds[run[0]] - bounds[merged[-1][-1] + 1]
        if gap <= merge_gap + 1e-9:
            merged[-1] = np.concatenate([merged[-1], run])
        else:
            merged.append(run)
    return merged


def read_thresholds(path: str | Path) -> dict[str, float]:
    """Per-label thresholds from a two-column ``label,threshold`` file: comma- or tab-separated (a line with a tab is
    split at its tabs), an optional ``label,threshold`` header, blank lines and ``#`` comments skipped. A name with
    commas may be quoted, or left bare in a comma-separated line: the threshold is the last field. Raises
    ``OptionError`` listing every problem at once, each with the file and line (never quoting the file)."""
    try:
        with open_regular(path) as stream:
            data = stream.read(MAX_THRESHOLDS_BYTES + 1)
    except OSError as error:
        raise OptionError(f"cannot read the thresholds file {path}: {error.strerror or error}") from None
    if len(data) > MAX_THRESHOLDS_BYTES:
        raise OptionError(f"{path}: a thresholds file must be at most {MAX_THRESHOLDS_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise OptionError(f"{path}: not UTF-8 text (byte {error.start})") from None
    thresholds: dict[str, float] = {}
    seen: set[str] = set()
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else next(csv.reader([line]))
        if len(fields) > 2 and "\t" not in line:
            fields = [",".join(fields[:-1]), fields[-1]]
        if len(fields) != 2:
            problems.append(f"line {number}: expected two fields, label and threshold, not {len(fields)}")
            continue
        label, value = fields[0].strip(), fields[1].strip()
        if number == 1 and (label.casefold(), value.casefold()) == ("label", "threshold"):
            continue
        try:
            threshold = float(value)
        except ValueError:
            threshold = math.nan
        if not label:
            problems.append(f"line {number}: no label")
        elif not 0.0 < threshold <= 1.0:
            problems.append(f"line {number}: the threshold must be a number above 0, at most 1")
        elif label.casefold() in seen:
            problems.append(f"line {number}: a label given twice")
        else:
            seen.add(label.casefold())
            thresholds[label] = threshold
    if problems:
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise OptionError(f"{path}: " + "; ".join(problems[:MAX_PROBLEMS]) + more)
    return thresholds


def _check_threshold(option: str, value: Any) -> None:
    if not _is_number(value) or not 0.0 < value <= 1.0:
        raise OptionError(f"{option} must be above 0 and at most 1, not {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def event_windows(request: WindowRequest | WindowSettings) -> WindowRequest | WindowSettings:
    """The windows AudioSet events are found on: those asked for; without a window, ``EVENT_WINDOW`` long, every
    ``EVENT_HOP`` seconds unless a hop is given (see the module docstring). Clip labels then come from the same,
    shorter windows."""
    if not isinstance(request, WindowRequest) or request.window is not None:
        return request
    return replace(request, window=EVENT_WINDOW, hop=EVENT_HOP if request.hop is None else request.hop)
