"""Typed prediction results and the post-processing that turns scores into labels.

AudioSet is multi-label, so every class gets its own sigmoid score. A clip of several windows is
summarised per class by the **max** over its windows by default: a sound that is present in any part
of the clip is reported for the clip (a dog barking for ten seconds of a one-hour recording still
shows). ``aggregate="mean"`` instead says how much of the clip a class fills, which is what one wants
for "what is this recording mostly about".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from audioclas.errors import OptionError
from audioclas.labels import resolve_label_names

if TYPE_CHECKING:
    from audioclas.events import Event
    from audioclas.specific import SpecificOrder

Aggregate = Literal["max", "mean"]
Scores = npt.NDArray[np.float32]  # sigmoid scores: (classes,) for a clip, (windows, classes) for its windows


@dataclass(frozen=True)
class LabelScore:
    index: int
    name: str
    score: float
    id: str | None = None  # AudioSet ontology id ("/m/…"); None for a custom model's classes

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "name": self.name, "score": round(self.score, 6)}


@dataclass(frozen=True)
class WindowPrediction:
    start: float  # seconds
    end: float  # seconds
    labels: list[LabelScore]

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "labels": [x.to_dict() for x in self.labels]}


@dataclass
class Prediction:
    """Result for one input: clip-level labels, and the per-window timeline."""

    source: str
    duration: float  # seconds of audio
    labels: list[LabelScore]
    windows: list[WindowPrediction]
    scores: Scores = field(repr=False)  # (classes,) clip-level scores
    window_scores: Scores = field(repr=False)  # (windows, classes)
    audioset: Prediction | None = None  # AudioSet tags alongside a custom model's labels, when asked
    events: list[Event] | None = None  # timed events, when asked (``events.find_events``)

    def to_dict(self, timeline: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "input": self.source,
            "duration": round(self.duration, 3),
            "labels": [x.to_dict() for x in self.labels],
        }
        if timeline:
            result["windows"] = [w.to_dict() for w in self.windows]
        if self.events is not None:
            result["events"] = [event.to_dict() for event in self.events]
        if self.audioset is not None:
            result["audioset"] = self.audioset.to_dict(timeline)
        return result


@dataclass(frozen=True)
class LabelQuery:
    """Which labels to report, as the caller asks: every edge (Python, CLI, REST, DEEPaaS, batch) maps its own syntax
    to one of these, checked here on construction. ``resolve`` turns it into a ``LabelFilter`` for one model's
    classes (names in ``labels``/``exclude`` are names or ids of those classes)."""

    top_k: int = 5  # 0: no limit
    threshold: float = 0.0  # report only scores at or above this
    labels: tuple[str, ...] | None = None  # report only these classes; None (or none given): any class
    exclude: tuple[str, ...] = ()  # never report these
    aggregate: Aggregate = "max"  # clip scores from window scores
    exact: bool = False  # AudioSet names in labels/exclude: the class alone, not also the classes below it
    specific: bool = False  # AudioSet classes: rank confident specific classes above their ancestors (specific.py)

    def __post_init__(self) -> None:
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, Integral) or self.top_k < 0:
            raise OptionError(f"top_k must be a whole number, 0 or more (0: every label), not {self.top_k!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, Real) or not 0.0 <= self.threshold <= 1.0:
            raise OptionError(f"threshold must be between 0 and 1, not {self.threshold!r}")
        if self.aggregate not in ("max", "mean"):
            raise OptionError(f"aggregate must be 'max' or 'mean', not {self.aggregate!r}")
        for option in ("exact", "specific"):
            if not isinstance(getattr(self, option), bool):
                raise OptionError(f"{option} must be true or false, not {getattr(self, option)!r}")
        object.__setattr__(self, "labels", _names("labels", self.labels) or None)
        object.__setattr__(self, "exclude", _names("exclude", self.exclude))

    def resolve(self, names: Sequence[str], ids: Sequence[str] | None) -> LabelFilter:
        """The filter for a model whose classes are ``names`` (and ``ids``); raises ``AudioclasError`` naming the
        labels it does not have. With AudioSet ``ids``, a name selects the class and the classes below it that the
        model predicts (``exact``: the class alone), and ``specific`` orders by the ontology."""
        include = self._resolve(self.labels, names, ids) if self.labels else None
        order = None
        if self.specific and ids:
            from audioclas.specific import specific_order

            order = specific_order(tuple(ids))
        return LabelFilter(self.top_k, self.threshold, include, self._resolve(self.exclude, names, ids), order)

    def _resolve(self, wanted: Sequence[str], names: Sequence[str], ids: Sequence[str] | None) -> frozenset[int]:
        if not ids or not wanted:  # a custom model's classes: no hierarchy
            return resolve_label_names(wanted, names, ids)
        from audioclas.ontology import resolve_classes

        return resolve_classes(wanted, ids, self.exact)

    def to_dict(self) -> dict[str, Any]:
        """As a batch job's ``job.json`` records it (``labels`` under the name ``include``)."""
        include = list(self.labels) if self.labels else None
        return {
            "top_k": self.top_k,
            "threshold": self.threshold,
            "aggregate": self.aggregate,
            "include": include,
            "exclude": list(self.exclude),
            # only when on: a folder written before these options resumes as it was
            **{option: True for option in ("exact", "specific") if getattr(self, option)},
        }


def _names(option: str, given: Iterable[str] | None) -> tuple[str, ...]:
    """Label names as a tuple; one name given as a bare string is one name, not a sequence of letters."""
    if given is None:
        return ()
    names = (given,) if isinstance(given, str) else tuple(given)
    if not all(isinstance(name, str) for name in names):
        raise OptionError(f"{option} must be label names (strings), not {names!r}")
    return names


@dataclass(frozen=True)
class LabelFilter:
    """A ``LabelQuery`` resolved against one model's classes: which class indices to report, and how many."""

    top_k: int = 5  # 0: no limit
    threshold: float = 0.0  # report only scores at or above this
    include: frozenset[int] | None = None  # report only these class indices
    exclude: frozenset[int] = frozenset()
    specific: SpecificOrder | None = None  # rank confident specific classes above their ancestors

    def select(self, scores: Scores, names: Sequence[str], ids: Sequence[str] | None) -> list[LabelScore]:
        if self.specific is not None:
            return self._select_specific(self.specific, scores, names, ids)
        order = np.argsort(-scores, kind="stable")
        chosen: list[LabelScore] = []
        for index in order:
            index = int(index)
            score = float(scores[index])
            if score < self.threshold:
                break
            if index in self.exclude or (self.include is not None and index not in self.include):
                continue
            chosen.append(LabelScore(index, names[index], score, ids[index] if ids else None))
            if self.top_k and len(chosen) == self.top_k:
                break
        return chosen

    def _select_specific(
        self, specific: SpecificOrder, scores: Scores, names: Sequence[str], ids: Sequence[str] | None
    ) -> list[LabelScore]:
        reported = scores >= self.threshold
        if self.include is not None:
            reported &= np.isin(np.arange(len(scores)), list(self.include))
        reported[list(self.exclude)] = False
        order = specific.order(scores, reported, self.top_k)
        return [LabelScore(i, names[i], float(scores[i]), ids[i] if ids else None) for i in order]


def aggregate_windows(window_scores: Scores, how: Aggregate) -> Scores:
    """Clip-level scores from (windows, classes) scores."""
    clip_scores: Scores
    if how == "max":
        clip_scores = window_scores.max(axis=0)
    elif how == "mean":
        clip_scores = window_scores.mean(axis=0)
    else:
        raise OptionError(f"aggregate must be 'max' or 'mean', not {how!r}")
    return clip_scores


def make_prediction(
    source: str,
    duration: float,
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
    window_scores: Scores,
    scores: Scores,
    names: Sequence[str],
    ids: Sequence[str] | None,
    label_filter: LabelFilter,
) -> Prediction:
    """A ``Prediction`` from window and clip scores, labels chosen by ``label_filter``."""
    windows = [
        WindowPrediction(float(s), float(e), label_filter.select(row, names, ids))
        for s, e, row in zip(starts, ends, window_scores)
    ]
    return Prediction(source, duration, label_filter.select(scores, names, ids), windows, scores, window_scores)
