"""Terminal output shared by the sub-commands."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

stderr = Console(stderr=True, highlight=False)


def print_error(message: object, console: Console = stderr) -> None:
    """One line ``error: …`` on stderr, never wrapped or read as markup (file names may hold brackets)."""
    console.print(Text.assemble(("error:", "bold red"), f" {message}"), soft_wrap=True)


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, ending with a newline (the ``--json`` output of a command)."""
    json.dump(value, sys.stdout, indent=2)
    print()


def per_class_table(rows: list[dict[str, Any]], title: str = "per class") -> Table:
    """Precision, recall, F1 and support per class (the ``per_class`` rows of a model's metrics)."""
    table = Table(title=title, title_justify="left")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in rows:
        scores = (f"{row[name]:.3f}" for name in ("precision", "recall", "f1"))
        table.add_row(row["class"], *scores, str(row["support"]))
    return table


def metrics_table(metrics: dict[str, dict[str, Any]], title: str = "metrics") -> Table:
    """The headline metrics of each split: accuracy, balanced accuracy, macro-F1 (single-label) or mAP, micro-F1."""
    table = Table(title=title, title_justify="left")
    table.add_column("split")
    names = [
        name
        for name in ("accuracy", "balanced_accuracy", "macro_f1", "mAP", "micro_f1")
        if any(name in values for values in metrics.values())
    ]
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column("clips", justify="right")
    for split, values in metrics.items():
        table.add_row(
            split, *(f"{values[name]:.4f}" if name in values else "" for name in names), str(values["examples"])
        )
    return table
