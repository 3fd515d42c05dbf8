"""The ``audioclas`` command line: one sub-command per module in this package.

Each sub-command module has ``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed arguments and returning the exit status.

Exit statuses: 0 success, 1 some input failed (the command's own help says which), 2 a usage or set-up error
(one line on stderr, never a traceback, also when the output cannot be written), 130 interrupted, 141 standard
output closed early (``audioclas predict … -f jsonl | head -1``), as for a process killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from audioclas import __version__
from audioclas.errors import AudioclasError

from .console import print_error, stderr

# The sub-commands, in the order '--help' lists them, with their one-line help. A command's module (``predict``,
# ``train`` …) is imported only when that command runs: 'audioclas predict' need not import what training's
# options need (pydantic models, the batch engines), which was 0.2 s of its start.
COMMANDS = {
    "predict": "tag audio with AudioSet labels (or a custom model's classes)",
    "labels": "list or search the 527 AudioSet classes",
    "train": "train a classifier for your own classes on the network's embeddings",
    "evaluate": "measure a saved classifier on a dataset",
    "models": "list, show or delete saved classifiers",
    "embed": "compute embeddings of many files into Parquet (local or on Ray)",
    "serve": "run the REST API (DEEPaaS v2 layout), the training queue and the web page",
    "export": "write the tagger or a trained classifier as one self-contained ONNX file",
}
BROKEN_PIPE = 128 + 13  # the status of a process killed by SIGPIPE


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2; the usage is one ``--help`` away."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of the command ``argv`` names (of every command when ``argv`` is None)."""
    chosen = next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    parser = _Parser(
        prog="audioclas",
        description="Tag audio with the 527 AudioSet classes, or train and use your own classifier.",
        epilog="Run 'audioclas COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(f"audioclas.cli.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
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


def run() -> NoReturn:
    """The ``audioclas`` program: ``main``, then an exit that skips the interpreter's teardown.

    Tearing down PyTorch's and the other modules' objects cost a fifth of the CPU time of ``predict`` on a 3 s clip
    (0.45 s of 1.6 s); nothing needs it once the output is flushed and the exit handlers have run (logging,
    temporary folders, a local Ray cluster's shutdown). Freezing the garbage collector after the imports saved
    nothing measurable on top. Kept for ``serve``, which ends in its own time, and whenever a thread that is not a
    daemon still runs (the interpreter would wait for it). ``main`` itself, which tests and programs call, returns.
    """
    argv = sys.argv[1:]
    try:
        status = main(argv)
    except SystemExit as done:  # --help, --version and usage errors: argparse has written its output and exits
        if not isinstance(done.code, int | None):
            raise
        status = done.code or 0
    if argv[:1] == ["serve"] or any(not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        sys.exit(status)
    atexit._run_exitfuncs()  # CPython's own exit runs them too (they may still write: flushed below)
    os._exit(_flush_output(status))


def _flush_output(status: int) -> int:
    """Flush standard output and error; the status of a failure to, as ``main`` gives it."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        status = BROKEN_PIPE if status == 0 else status
    except OSError as error:
        _discard_stdout()
        print_error(_os_problem(error))
        status = 2
    with contextlib.suppress(OSError, ValueError):  # nowhere left to say so
        sys.stderr.flush()
    return status


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
    run()
