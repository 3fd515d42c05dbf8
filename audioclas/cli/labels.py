"""``audioclas labels [SEARCH]``: list or search the AudioSet classes, and show where each sits in the ontology."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from audioclas.cli import COMMANDS
from audioclas.cli.console import print_json
from audioclas.ontology import Ontology, OntologyClass, SearchHit, audioset_ontology

SHOWN_NAMES = 6  # parents or children per row of the table; --json lists them all


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "labels",
        help=COMMANDS["labels"],
        description="List the AudioSet classes the pretrained model predicts with their parents and children in the "
        "AudioSet ontology, or search the ontology: classes whose name or description contains SEARCH "
        "(plain text, case-insensitive), whose id is SEARCH, or that sit below a class whose name matches. "
        "Classes the model does not predict (containers such as 'Human voice') show no index. Use the names with "
        "'predict --labels/--exclude': a class selects its descendants too, unless --exact.",
    )
    parser.add_argument("search", nargs="?", default="", help="text to look for, e.g. 'dog' or '/m/0bt9lr'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ontology = audioset_ontology()
    if args.search:
        found = ontology.search(args.search)
    else:  # the model's classes, in its output order
        found = [SearchHit(node, "name") for node in sorted(ontology, key=_index) if node.index is not None]
    if args.json:
        print_json([_to_dict(ontology, hit, with_match=bool(args.search)) for hit in found])
        return 0
    console = Console(highlight=False)
    if not found:
        console.print(f"no AudioSet class matches {args.search!r}")
        return 1
    predicted = sum(hit.node.index is not None for hit in found)
    columns = ["index", "id", "name", "parents", "children"] + (["found in"] if args.search else [])
    table = Table(*columns, title=f"{len(found)} AudioSet classes ({predicted} predicted by the model)")
    for hit in found:
        node = hit.node
        row = [
            "-" if node.index is None else str(node.index),
            node.id,
            node.name,
            _names(ontology.parents(node.id)),
            _names(ontology.children(node.id)),
        ]
        table.add_row(*row, *([hit.match] if args.search else []))
    console.print(table)
    return 0


def _index(node: OntologyClass) -> int:
    return -1 if node.index is None else node.index


def _names(nodes: list[OntologyClass]) -> str:
    shown = "; ".join(node.name for node in nodes[:SHOWN_NAMES])
    return shown + (f"; … (+{len(nodes) - SHOWN_NAMES})" if len(nodes) > SHOWN_NAMES else "")


def _to_dict(ontology: Ontology, hit: SearchHit, with_match: bool) -> dict[str, object]:
    node = hit.node
    result: dict[str, object] = {
        "index": node.index,
        "id": node.id,
        "name": node.name,
        "parents": [x.name for x in ontology.parents(node.id)],
        "children": [x.name for x in ontology.children(node.id)],
        "restrictions": list(node.restrictions),
        "description": node.description,
    }
    if with_match:
        result["match"] = hit.match
    return result
