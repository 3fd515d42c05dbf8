"""The ``audioclas`` command line: one sub-command per module in this package.

Each sub-command module has ``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed arguments and returning the exit status.
"""

from __future__ import annotations

import argparse
import sys

from audioclas.errors import AudioclasError

from . import embed, labels, models, predict, serve, train
from .console import print_error, stderr

COMMANDS = [predict, labels, train, models, embed, serve]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audioclas",
        description="Tag audio with the 527 AudioSet classes, or train and use your own classifier.",
        epilog="Run 'audioclas COMMAND --help' for the options of each command.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AudioclasError as error:
        print_error(error)
        return 2
    except KeyboardInterrupt:
        stderr.print("interrupted", style="yellow")
        return 130


if __name__ == "__main__":
    sys.exit(main())
