"""How the ``audioclas`` program ends: its output flushed and its exit handlers run, then out without the
interpreter's teardown of every module's objects (a fifth of a short ``predict``); its exit status kept."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROGRAM = (
    "import atexit, sys\n"
    "from audioclas.cli import run\n"
    "class Teardown:\n"
    "    def __del__(self):\n"
    "        print('TEARDOWN', file=sys.stderr)\n"
    "marker = Teardown()  # a module global: only the interpreter's teardown deletes it\n"
    "atexit.register(lambda: print('EXIT HANDLER'))\n"
    "sys.argv = ['audioclas', *sys.argv[1:]]\n"
    "run()\n"
)


def program(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=120, **kwargs)


def test_the_program_runs_exit_handlers_flushes_and_skips_the_teardown() -> None:
    done = program("labels", "dog", "--json")
    assert done.returncode == 0, done.stderr
    labels, handler = done.stdout.rsplit("]", 1)
    found = [(label["index"], label["id"], label["name"]) for label in json.loads(labels + "]")]
    assert (74, "/m/0bt9lr", "Dog") in found
    assert handler.strip() == "EXIT HANDLER"  # written by an exit handler after the command's output, and flushed
    assert "TEARDOWN" not in done.stderr


@pytest.mark.parametrize(("args", "status"), [(["labels", "dog"], 0), (["labels", "--bogus"], 2), (["--help"], 0)])
def test_exit_status_is_the_commands(args: list[str], status: int) -> None:
    done = program(*args)
    assert done.returncode == status, done.stderr
    assert "TEARDOWN" not in done.stderr


def test_output_that_cannot_be_flushed_at_exit_is_one_line_and_status_2() -> None:
    """The label list fits in the stdout buffer, so the write to /dev/full fails only when it is flushed at exit."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "audioclas", "labels", "dog"], stdout=full, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 2
    assert done.stderr == "error: No space left on device\n", done.stderr
