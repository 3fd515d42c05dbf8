"""``audioclas labels [SEARCH]``: list or search the AudioSet classes."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from audioclas.cli import COMMANDS
from audioclas.cli.console import print_json
from audioclas.labels import audioset_labels, search_labels


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "labels",
        help=COMMANDS["labels"],
        description="List the AudioSet classes the pretrained model predicts, or those whose name contains SEARCH "
        "(case-insensitive) or whose ontology id is SEARCH. Use the names with 'predict --labels/--exclude'.",
    )
    parser.add_argument("search", nargs="?", default="", help="text to look for, e.g. 'dog' or '/m/0bt9lr'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = search_labels(args.search) if args.search else list(audioset_labels())
    if args.json:
        print_json([{"index": x.index, "id": x.id, "name": x.name} for x in found])
        return 0
    console = Console(highlight=False)
    if not found:
        console.print(f"no AudioSet label matches {args.search!r}")
        return 1
    table = Table("index", "id", "name", title=f"{len(found)} AudioSet labels")
    for label in found:
        table.add_row(str(label.index), label.id, label.name)
    console.print(table)
    return 0
