"""Batch throughput: hours of audio per hour with the local engine and with Ray, on the same cores, same inputs.

    .venv/bin/python benchmarks/batch_throughput.py [--minutes 30] [--clip-seconds 30] [--cpus 2]

Inputs are made from the real recordings in ../shared/audio (concatenated, looped, cut into clips and encoded as
44.1 kHz Ogg Vorbis with PyAV). Each engine runs the same ``embed`` job with a per-window timeline into a fresh
output folder; the wall time covers everything a user waits for: listing, loading the network (in every Ray
actor), decoding, inference and writing Parquet. Ray's start-up (``ray.init``) is timed apart, since a cluster
is normally already running. For reference, ``Tagger.embed_many`` (no Parquet, no shards) runs on the same files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests" / "support"))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("AUDIOCLAS_WEIGHTS", str(SHARED / "weights" / "efficientat"))

from media import encode  # noqa: E402  (tests/support/media.py: PyAV encoding helper)
from predict_speed import RATE, real_audio  # noqa: E402

from audioclas.batch import JobSpec, read_table, run_job  # noqa: E402  (first: sets OMP_WAIT_POLICY before torch)
from audioclas.tagger import Tagger  # noqa: E402


def make_inputs(folder: Path, minutes: float, clip_seconds: float) -> list[Path]:
    count = round(minutes * 60 / clip_seconds)
    audio = real_audio(count * clip_seconds)
    size = round(clip_seconds * RATE)
    return [encode(folder / f"clip{i:04d}.ogg", audio[i * size : (i + 1) * size], RATE, "vorbis") for i in range(count)]


def best_wall(run, repeat: int) -> float:
    """The shortest of ``repeat`` runs: other processes on the machine only ever slow a run down."""
    walls = []
    for attempt in range(repeat):
        start = time.perf_counter()
        run(attempt)
        walls.append(time.perf_counter() - start)
    return min(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="audio in all (default 30)")
    parser.add_argument("--clip-seconds", type=float, default=30.0, help="length of each file (default 30)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to Ray (default 2, this machine's)")
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each engine; the best counts (default 2)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"making {args.minutes:g} minutes of inputs from ../shared/audio …", flush=True)
        (tmp / "in").mkdir()
        files = make_inputs(tmp / "in", args.minutes, args.clip_seconds)
        seconds = len(files) * args.clip_seconds
        spec = JobSpec("embed", timeline=True, shard_size=args.shard_size)

        def job(name: str, engine: str, data: list[str]):
            """A run of the job into a fresh folder ``name-attempt``."""
            return lambda attempt: run_job(data, tmp / f"{name}-{attempt}", spec, engine=engine)

        everything = [str(tmp / "in")]
        reference = best_wall(lambda attempt: list(Tagger().embed_many(files)), args.repeat)
        local = best_wall(job("local", "local", everything), args.repeat)
        started = time.perf_counter()
        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
        ray_start = time.perf_counter() - started
        try:
            on_ray = best_wall(job("ray", "ray", everything), args.repeat)
            fixed = best_wall(job("ray-one-file", "ray", [str(files[0])]), args.repeat)  # start-up costs only
        finally:
            ray.shutdown()
        rows = {name: read_table(tmp / f"{name}-0", "windows") for name in ("local", "ray")}
        assert rows["local"].equals(rows["ray"]), "the engines disagree"

        print(
            f"\n{len(files)} files, {seconds / 60:.0f} min of audio, {rows['local'].num_rows} windows; "
            f"{os.cpu_count()} CPUs, load average at start: {load:.1f}; best of {args.repeat}"
        )
        print(f"{'run':<44}{'wall s':>8}{'h audio / h':>13}")
        for name, wall in (
            ("Tagger.embed_many (no Parquet, reference)", reference),
            ("local engine", local),
            (f"Ray engine ({args.cpus} actors, cluster running)", on_ray),
        ):
            print(f"{name:<44}{wall:>8.1f}{seconds / wall:>13.0f}")
        print(f"Ray fixed cost per job (a one-file job: actors start, load the network): {fixed:.1f} s")
        print(f"Ray start-up (ray.init, not in the above): {ray_start:.1f} s")
        print(f"overhead ratio Ray / local (wall time): {on_ray / local:.2f}")


if __name__ == "__main__":
    main()
