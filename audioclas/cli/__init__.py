"""The ``audioclas`` command line: one sub-command per module in this package.

Each sub-command module has ``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed arguments and returning the exit status.

Exit statuses: 0 success, 1 some input failed (the command's own help says which), 2 a usage or set-up error
(one line on stderr, never a traceback, also when the output cannot be written), 130 interrupted, 141 standard
output closed early (``audioclas predict … -f jsonl | head -1``), as for a process killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from audioclas import __version__
from audioclas.errors import AudioclasError

from . import embed, evaluate, export, labels, models, predict, serve, train
from .console import print_error, stderr

COMMANDS = [predict, labels, train, evaluate, models, embed, serve, export]
BROKEN_PIPE = 128 + 13  # the status of a process killed by SIGPIPE


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2; the usage is one ``--help`` away."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="audioclas",
        description="Tag audio with the 527 AudioSet classes, or train and use your own classifier.",
        epilog="Run 'audioclas COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except AudioclasError as error:
        print_error(error)
        return 2
    except KeyboardInterrupt:
        stderr.print("interrupted", style="yellow")
        return 130
    except BrokenPipeError:  # the reader of our output has gone (`| head`): stop quietly
        _discard_stdout()
        return BROKEN_PIPE
    except OSError as error:  # a full disk, a read-only folder: one line, not a traceback
        _discard_stdout()
        print_error(_os_problem(error))
        return 2


def _os_problem(error: OSError) -> str:
    problem = error.strerror or str(error)
    return f"{error.filename}: {problem}" if error.filename else problem


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that the flush at exit cannot fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (an embedding program's): nothing to flush at exit
        pass


if __name__ == "__main__":
    sys.exit(main())
