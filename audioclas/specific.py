"""``--specific``: rank a more specific AudioSet class above its ancestors when both are confident.

AudioSet's general classes ("Music", "Animal", "Speech") score high on almost every clip of their kind, so plain
ranking puts "Music" above "Guitar" and "Animal" above "Dog". With ``specific``, a reported class D is **confident
against** a reported ancestor A (any class above it in the ontology, through any parent) when

    score(D) >= SPECIFIC_MIN_SCORE  and  score(D) >= SPECIFIC_RATIO × score(A)

that is, D is itself a likely tag (not noise under a strong parent), and at least half as likely as A. Each class
has a place: its own score, or the place of an ancestor it is confident against, whichever is highest (so "Bass
guitar", confident against "Musical instrument", which is confident against "Music", takes the place of "Music").
Classes are listed by place, then by score, except that a class comes right after the classes confident against it
(deepest first). Only reported classes take part (above the threshold, selected, not excluded), the scores are
unchanged, and ``top_k`` is applied after the reordering.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

SPECIFIC_MIN_SCORE = 0.2
SPECIFIC_RATIO = 0.5

Indices = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class SpecificOrder:
    """The ancestry of one model's outputs: each (descendant, ancestor) pair, sorted by the descendant's depth."""

    below: Indices  # the descendant of each pair
    above: Indices  # the ancestor of each pair
    levels: tuple[slice, ...]  # the pairs whose descendant has one depth, shallowest first

    def order(self, scores: npt.NDArray[np.float32], reported: npt.NDArray[np.bool_], limit: int = 0) -> list[int]:
        """The outputs where ``reported`` is true, best first, specific classes above their ancestors; the first
        ``limit`` of them (0: all)."""
        score = scores.astype(np.float64)
        below, above = score[self.below], score[self.above]
        confident = (
            reported[self.below]
            & reported[self.above]
            & (below >= SPECIFIC_MIN_SCORE)
            & (below >= SPECIFIC_RATIO * above)
        )
        place = score.copy()
        for level in self.levels:  # an ancestor is shallower than its descendant: its place is final when read
            take = confident[level]
            np.maximum.at(place, self.below[level][take], place[self.above[level][take]])
        chosen = np.flatnonzero(reported)
        ranked = chosen[np.lexsort((-score[chosen], -place[chosen]))].tolist()
        rank = {index: position for position, index in enumerate(ranked)}
        confident_below: dict[int, list[int]] = {}
        for d, a in zip(self.below[confident].tolist(), self.above[confident].tolist()):
            confident_below.setdefault(a, []).append(d)
        listed: list[int] = []
        done: set[int] = set()

        def add(index: int) -> None:  # the classes confident against it first; depth is bounded by the ontology's
            done.add(index)
            for d in sorted(confident_below.get(index, ()), key=rank.__getitem__):
                if d not in done:
                    add(d)
            listed.append(index)

        for index in ranked:
            if index not in done:
                add(index)
            if limit and len(listed) >= limit:
                break
        return listed[: limit or None]


@cache
def specific_order(ids: Sequence[str]) -> SpecificOrder:
    """The order for a model whose outputs are the AudioSet ontology classes ``ids`` (a tuple: it is cached)."""
    from audioclas.ontology import audioset_ontology

    ontology = audioset_ontology()
    position = {id_: index for index, id_ in enumerate(ids)}
    pairs = sorted(
        (ontology.depth(id_), index, position[node.id])
        for id_, index in position.items()
        for node in ontology.ancestors(id_)
        if node.id in position
    )
    depths, below, above = (np.array([pair[side] for pair in pairs], dtype=np.intp) for side in range(3))
    starts = np.flatnonzero(np.diff(depths, prepend=-1)).tolist() if pairs else []
    levels = tuple(slice(a, b) for a, b in itertools.pairwise([*starts, len(pairs)]))
    return SpecificOrder(below, above, levels)
