"""What a user waits for on short commands: whole-process wall time and peak memory of the CLI.

    .venv/bin/python benchmarks/cli_startup.py [--runs 7] [--against DIR]

Times `audioclas --help`, `audioclas labels dog` and `audioclas predict CLIP` (a 2.7 s real clip) as whole
processes: interpreter start, imports, work and teardown. With ``--against DIR`` (another checkout of audioclas,
e.g. a `git worktree` of an older commit), every command runs alternately from both trees in one run, and the
medians and the per-pair ratio (this tree / DIR) are printed, so a comparison holds when the machine's speed drifts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
CLIP = SHARED / "audio" / "456440__inspectorj__bird-whistling-robin-single-13.ogg"
COMMANDS = {
    "--help": ["--help"],
    "labels dog": ["labels", "dog"],
    "predict clip": ["predict", str(CLIP), "--no-progress"],
}


def run_once(tree: Path, argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one `python -m audioclas ARGV` run with ``tree`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree), "AUDIOCLAS_WEIGHTS": str(SHARED / "weights" / "efficientat")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "audioclas", *argv],
        cwd="/",  # not a checkout: `-m` puts the working folder first on the path
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"audioclas {' '.join(argv)} failed in {tree}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another checkout to compare with, alternately")
    args = parser.parse_args()
    trees = [REPO] + ([args.against.resolve()] if args.against else [])
    print(
        f"{'command':<14} {'tree':<10} {'wall s (median)':>16} {'peak MiB':>9}" + ("   ratio" if args.against else "")
    )
    for label, argv in COMMANDS.items():
        for tree in trees:
            run_once(tree, argv)  # warm-up: file cache, .pyc files
        results: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in trees}
        for _ in range(args.runs):
            for tree in trees:
                results[tree].append(run_once(tree, argv))
        for index, tree in enumerate(trees):
            walls = [wall for wall, _ in results[tree]]
            peak = statistics.median(peak for _, peak in results[tree])
            line = (
                f"{label:<14} {'this' if index == 0 else 'against':<10} {statistics.median(walls):>16.3f} {peak:>9.0f}"
            )
            if index == 0 and args.against:
                ratios = [a / b for (a, _), (b, _) in zip(results[REPO], results[trees[1]])]
                line += f"   {statistics.median(ratios):.2f}"
            print(line)


if __name__ == "__main__":
    main()
