"""``audioclas models list|show|delete``: the classifiers saved by ``audioclas train``."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from audioclas.cli import COMMANDS
from audioclas.cli.console import per_class_table, print_json

EXAMPLES = """
examples:
  audioclas models list               every saved model with its classes and test score
  audioclas models show birds         the model card (its README.md) and per-class metrics
  audioclas models show birds --json  the whole model.json and metrics.json
  audioclas models delete birds --yes
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "models",
        help=COMMANDS["models"],
        description="Saved classifiers live in one folder each under the user data folder (AUDIOCLAS_HOME/models).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every saved model")
    listing.add_argument("--json", action="store_true", help="as JSON")
    show = actions.add_parser("show", help="the model card and per-class metrics of one model")
    show.add_argument("name", metavar="NAME", help="model name, or a folder's path (./dir)")
    show.add_argument("--json", action="store_true", help="model.json and metrics.json as one JSON object")
    delete = actions.add_parser("delete", help="delete a model")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "show": _show, "delete": _delete}[args.action](args)


def _list(args: argparse.Namespace) -> int:
    from audioclas.training.store import list_models, models_dir

    models = list_models()
    if args.json:
        print_json(
            [
                {
                    "name": m.name,
                    "path": str(m.path),
                    "created": m.created,
                    "classes": m.classes,
                    "multilabel": m.multilabel,
                    "head": m.head,
                    "score": m.score,
                    "problem": m.problem or None,
                }
                for m in models
            ]
        )
        return 0
    out = Console(highlight=False)
    if not models:
        out.print(f"no saved models in {models_dir()}; train one with 'audioclas train DATA --name NAME'")
        return 0
    table = Table()
    for column in ("name", "created", "classes", "task", "head", "score"):
        table.add_column(column)
    for m in models:
        if m.problem:
            table.add_row(m.name, "", "", "", "", f"[red]{m.problem}[/]")
        else:
            table.add_row(
                m.name,
                m.created[:16].replace("T", " "),
                str(m.classes),
                "multi-label" if m.multilabel else "single-label",
                m.head,
                m.score,
            )
    out.print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    from audioclas.training.store import load_model, model_ref, read_card

    model = load_model(model_ref(args.name))
    metrics_file = model.path / "metrics.json"
    metrics = json.loads(metrics_file.read_text("utf-8")) if metrics_file.is_file() else {}
    if args.json:
        print_json({**model.info, "path": str(model.path), "metrics": metrics})
        return 0
    out = Console(highlight=False)
    out.print(Markdown(read_card(model.path)))  # the card (README.md, or built now for an older model)
    out.print(Text.assemble(("path", "bold"), f" {model.path}"), soft_wrap=True)
    for split, values in metrics.items():
        out.print(per_class_table(values.get("per_class", []), f"{split} per class"))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from audioclas.training.store import delete_model

    if not args.yes:
        if not sys.stdin.isatty():
            Console(stderr=True).print("refusing to delete without confirmation: add --yes")
            return 2
        if input(f"delete model {args.name!r}? [y/N] ").strip().lower() not in ("y", "yes"):
            return 1
    path = delete_model(args.name)
    Console(highlight=False).print(f"deleted {path}")
    return 0
