"""The 527 AudioSet classes: display names and ontology ids, in the model's output order."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from audioclas.errors import OptionError


@dataclass(frozen=True)
class Label:
    index: int  # position in the model's output vector
    id: str  # AudioSet ontology id, e.g. "/m/09x0r"
    name: str  # display name, e.g. "Speech"


@cache
def audioset_labels() -> tuple[Label, ...]:
    """The AudioSet labels shipped with the package (``class_labels_indices.csv``, CC BY 4.0)."""
    text = resources.files("audioclas.data").joinpath("class_labels_indices.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    labels = tuple(Label(int(row["index"]), row["mid"], row["display_name"]) for row in rows)
    assert [label.index for label in labels] == list(range(len(labels))), "label CSV out of order"
    return labels


def search_labels(query: str, labels: tuple[Label, ...] | None = None) -> list[Label]:
    """Labels whose name or id contains ``query`` (case-insensitive); every label for an empty query."""
    labels = audioset_labels() if labels is None else labels
    needle = query.casefold().strip()
    return [label for label in labels if needle in label.name.casefold() or needle == label.id.casefold()]


def resolve_label_names(
    wanted: Iterable[str], names: Sequence[str], ids: Sequence[str] | None = None
) -> frozenset[int]:
    """Indices of the classes named in ``wanted`` by display name or id (exact, case-insensitive)."""
    by_key = {name.casefold(): index for index, name in enumerate(names)}
    by_key.update({id_.casefold(): index for index, id_ in enumerate(ids or ())})
    wanted = [name.strip() for name in wanted]
    unknown = [name for name in wanted if name.casefold() not in by_key]
    if unknown:
        raise unknown_labels_error(unknown, lambda name: close_label_names(name, names))
    return frozenset(by_key[name.casefold()] for name in wanted)


def unknown_labels_error(unknown: Sequence[str], close: Callable[[str], list[str]]) -> OptionError:
    """One line naming each unknown label, with the names close to it."""
    listing = []
    for name in unknown:
        near = close(name)
        listing.append(repr(name) + (f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""))
    return OptionError(f"unknown label(s) {', '.join(listing)}: 'audioclas labels SEARCH' lists the names")


def close_label_names(name: str, names: Sequence[str]) -> list[str]:
    """Up to three of ``names`` close to ``name`` (a typo, another case)."""
    import difflib  # here: only an error needs it

    by_key = {x.casefold(): x for x in names}
    return [by_key[x] for x in difflib.get_close_matches(name.casefold()[:200], by_key, n=3, cutoff=0.6)]
