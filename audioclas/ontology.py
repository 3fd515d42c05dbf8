"""The AudioSet ontology: where each class sits (parents, children, descendants) and search over names and descriptions.

The ontology (``data/ontology.json``, CC BY-SA 4.0, see ``data/ONTOLOGY-NOTICE.md``) has 632 classes; the model
predicts 527 of them (``audioset_labels``). The other 105 are containers ("Human voice", restriction ``abstract``)
or classes dropped from rating (``blacklist``); they still matter, because they link model classes: "Dog" sits
under "Domestic animals, pets", under "Animal". The graph is not a tree: a class can have several parents
("Bow-wow" is under "Dog" and under "Bark"...), so ancestors and descendants are sets, listed nearest first.

Loading needs neither NumPy nor PyTorch: ``audioclas labels`` reads it on every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from audioclas.errors import OptionError
from audioclas.labels import Label, audioset_labels, close_label_names, unknown_labels_error

Match = Literal["id", "name", "description", "below"]  # how a search found a class, best first ("below": under a
# class whose id or name matched: "dog" finds "Growling", whose description says "animal")


@dataclass(frozen=True)
class OntologyClass:
    id: str  # e.g. "/m/0bt9lr"
    name: str  # e.g. "Dog"
    description: str
    child_ids: tuple[str, ...]
    parent_ids: tuple[str, ...]
    restrictions: tuple[str, ...]  # "abstract" (a container, never rated), "blacklist" (dropped from rating)
    index: int | None  # position in the model's output; None: the model does not predict this class


@dataclass(frozen=True)
class SearchHit:
    node: OntologyClass
    match: Match


class Ontology:
    """The class graph. Look classes up by id (``ontology[id]``) or by name or id (``find``)."""

    def __init__(self, entries: Sequence[dict[str, Any]], labels: Sequence[Label]) -> None:
        index = {label.id: label.index for label in labels}
        parents: dict[str, list[str]] = {}
        for entry in entries:
            for child in entry["child_ids"]:
                parents.setdefault(child, []).append(entry["id"])
        self._nodes = {
            entry["id"]: OntologyClass(
                entry["id"],
                entry["name"],
                entry["description"],
                tuple(entry["child_ids"]),
                tuple(parents.get(entry["id"], ())),
                tuple(entry["restrictions"]),
                index.get(entry["id"]),
            )
            for entry in entries
        }
        missing = sorted(set(index) - set(self._nodes))
        if missing:
            raise ValueError(f"model classes missing from the ontology: {', '.join(missing)}")
        self._by_key = {node.name.casefold(): node for node in self._nodes.values()}
        self._by_key.update({node.id.casefold(): node for node in self._nodes.values()})

    def __getitem__(self, id_: str) -> OntologyClass:
        return self._nodes[id_]

    def __iter__(self) -> Iterator[OntologyClass]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def find(self, name_or_id: str) -> OntologyClass | None:
        """The class with this display name or id (exact, case-insensitive, surrounding spaces ignored)."""
        return self._by_key.get(name_or_id.strip().casefold())

    def close_matches(self, text: str) -> list[str]:
        """Display names close to ``text`` (a typo, another case), for an error message."""
        return close_label_names(text, [node.name for node in self._nodes.values()])

    def parents(self, id_: str) -> list[OntologyClass]:
        return [self._nodes[x] for x in self._nodes[id_].parent_ids]

    def children(self, id_: str) -> list[OntologyClass]:
        return [self._nodes[x] for x in self._nodes[id_].child_ids]

    def ancestors(self, id_: str) -> list[OntologyClass]:
        """Every class above ``id_``, through any of its parents, nearest first, each once."""
        return self._walk(id_, lambda node: node.parent_ids)

    def descendants(self, id_: str) -> list[OntologyClass]:
        """Every class below ``id_``, nearest first, each once."""
        return self._walk(id_, lambda node: node.child_ids)

    def depth(self, id_: str) -> int:
        """The longest chain of parents above ``id_`` (0 for a top class): a descendant is always deeper than every
        one of its ancestors, which is what ranking descendants first needs."""
        parents = self._nodes[id_].parent_ids
        return 1 + max(self.depth(x) for x in parents) if parents else 0

    def _walk(self, id_: str, step: Callable[[OntologyClass], tuple[str, ...]]) -> list[OntologyClass]:
        seen = {id_}
        found: list[OntologyClass] = []
        frontier = [self._nodes[id_]]
        while frontier:
            following = []
            for node in frontier:
                for next_id in step(node):
                    if next_id not in seen:
                        seen.add(next_id)
                        following.append(self._nodes[next_id])
            found.extend(following)
            frontier = following
        return found

    def search(self, query: str) -> list[SearchHit]:
        """Classes whose id is ``query``, whose name contains it, whose description contains it (plain text,
        case-insensitive: no pattern syntax), or that sit below a class whose id or name matched, in that order, each
        once; every class for an empty query."""
        needle = query.strip().casefold()
        hits: dict[str, SearchHit] = {}
        tests: list[tuple[Match, Callable[[OntologyClass], bool]]] = [
            ("id", lambda node: needle == node.id.casefold()),
            ("name", lambda node: needle in node.name.casefold()),
            ("description", lambda node: needle in node.description.casefold()),
        ]
        for match, test in tests:
            for node in self._nodes.values():
                if node.id not in hits and test(node):
                    hits[node.id] = SearchHit(node, match)
        named = [hit.node.id for hit in hits.values() if hit.match in ("id", "name")]
        for id_ in named:
            for node in self.descendants(id_):
                hits.setdefault(node.id, SearchHit(node, "below"))
        return list(hits.values())


@cache
def audioset_ontology() -> Ontology:
    """The ontology shipped with the package, joined to the model's 527 classes."""
    text = resources.files("audioclas.data").joinpath("ontology.json").read_text("utf-8")
    return Ontology(json.loads(text), audioset_labels())


def resolve_classes(wanted: Iterable[str], ids: Sequence[str], exact: bool = False) -> frozenset[int]:
    """The outputs of a model whose outputs are the ontology classes ``ids`` that the names (or ids) in ``wanted``
    select: each class and every class below it that the model predicts, or with ``exact`` the class alone. A name
    of a class the model does not predict ("Human voice") selects what is below it. Raises ``OptionError`` for names
    not in the ontology (with close matches) and for names that select no output."""
    ontology = audioset_ontology()
    position = {id_: index for index, id_ in enumerate(ids)}
    chosen: set[int] = set()
    unknown: list[str] = []
    for name in wanted:
        node = ontology.find(name)
        if node is None:
            unknown.append(name.strip())
            continue
        nodes = [node] if exact else [node, *ontology.descendants(node.id)]
        found = {position[x.id] for x in nodes if x.id in position}
        if not found and exact:
            hint = ": without --exact it selects the classes below it" if node.child_ids else ""
            raise OptionError(f"the model does not predict {node.name!r} ({node.id}){hint}")
        if not found:
            raise OptionError(f"the model predicts neither {node.name!r} ({node.id}) nor any class below it")
        chosen |= found
    if unknown:
        raise unknown_labels_error(unknown, ontology.close_matches)
    return frozenset(chosen)
