"""Terminal output shared by the sub-commands."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

stderr = Console(stderr=True, highlight=False)


def print_error(message: object, console: Console = stderr) -> None:
    """One line ``error: …`` on stderr, never wrapped or read as markup (file names may hold brackets)."""
    console.print(Text.assemble(("error:", "bold red"), f" {message}"), soft_wrap=True)
