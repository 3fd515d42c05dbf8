"""The targets of issue 11, measured beside YAMNet (TFLite) on the same inputs in one run.

    .venv/bin/python benchmarks/predict_speed.py [--rounds 5] [--backend NAME] [--skip-hour] [--venv DIR]

Inputs are made from the real recordings in ../shared/audio (looped and re-encoded with PyAV): a 3 s WAV clip,
a 10-minute 44.1 kHz mp3, 200 clips of 5 s as 44.1 kHz Ogg Vorbis, and a 1-hour mp3 for peak memory.

Whole process (interpreter start, imports, work, exit): ``audioclas predict`` against benchmarks/yamnet_predict.py
(the YAMNet peer as a user scripts it: PyAV + soxr HQ to 16 kHz, 0.975 s patches every 0.48 s), and
``audioclas --help``. In process (both models loaded before the clock starts): the 10-minute mp3 in multiples of
real time, and 200 short clips against YAMNet with the same decoder. Every pair runs in alternating rounds (A B A B
…) and the medians are printed, with the median of the per-round ratios, so a comparison holds when the machine's
speed drifts. ``--backend`` picks the engine of the in-process rows where ``Tagger`` accepts one.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests" / "support"))
os.environ.setdefault("AUDIOCLAS_WEIGHTS", str(SHARED / "weights" / "efficientat"))

from media import encode  # noqa: E402  (tests/support/media.py: PyAV encoding helper)

from audioclas.audio import load_audio, stream_audio  # noqa: E402
from audioclas.inputs import AudioSource  # noqa: E402
from audioclas.tagger import Tagger  # noqa: E402

RATE = 44100
YAMNET_RATE, YAMNET_PATCH, YAMNET_HOP = 16000, 15600, 7680
YAMNET_SCRIPT = REPO / "benchmarks" / "yamnet_predict.py"


def real_audio(seconds: float) -> np.ndarray:
    """The shared recordings, concatenated and looped to ``seconds`` at 44.1 kHz."""
    clips = [
        load_audio(AudioSource(p.name, path=p), sample_rate=RATE) for p in sorted((SHARED / "audio").glob("*.ogg"))
    ]
    return np.resize(np.concatenate(clips), round(seconds * RATE)).astype(np.float32)


class YAMNet:
    """YAMNet in process, fed by audioclas's decoder (at 16 kHz)."""

    def __init__(self, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(
            model_path=str(SHARED / "weights" / "yamnet" / "yamnet.tflite"), num_threads=threads
        )
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.scores = next(o["index"] for o in self.interpreter.get_output_details() if o["name"] == "Identity")

    def predict(self, path: Path) -> np.ndarray:
        """Mean of the patch scores over the file, decoded in a stream like audioclas does."""
        buffer, total, count = np.zeros(0, np.float32), np.zeros(521, np.float64), 0
        for chunk in stream_audio(AudioSource(str(path), path=path), sample_rate=YAMNET_RATE):
            buffer = np.concatenate([buffer, chunk])
            while len(buffer) >= YAMNET_PATCH:
                self.interpreter.set_tensor(self.input, buffer[None, :YAMNET_PATCH])
                self.interpreter.invoke()
                total += self.interpreter.get_tensor(self.scores)[0]
                count += 1
                buffer = buffer[YAMNET_HOP:]
        if count == 0:  # shorter than one patch: pad it, as YAMNet itself does
            self.interpreter.set_tensor(self.input, np.pad(buffer, (0, YAMNET_PATCH - len(buffer)))[None])
            self.interpreter.invoke()
            total, count = self.interpreter.get_tensor(self.scores)[0], 1
        return total / count


def make_tagger(backend: str | None) -> Tagger:
    if backend is None:
        return Tagger(batch_size=16)
    if "backend" not in inspect.signature(Tagger).parameters:
        raise SystemExit(f"--backend {backend}: this Tagger has no engine backends")
    return Tagger(batch_size=16, backend=backend)  # type: ignore[call-arg]


# Started by a small Python process: a child forked from this (large) one would report its peak memory as at
# least this one's (ru_maxrss survives exec on Linux). Its own size, about 10 MiB, is the floor of the figure.
LAUNCHER = (
    "import os, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "child = subprocess.Popen(sys.argv[1:], cwd='/', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "print(time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))\n"
)


def compile_package() -> None:
    """Write the package's bytecode, as pip does when it installs a wheel: a process that finds none (a checkout
    run with PYTHONDONTWRITEBYTECODE, as on the development machines) compiles every module it imports, about 40 ms
    that no installed user pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "audioclas")], check=True)


def process(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one whole process, its output thrown away."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "AUDIOCLAS_SHARED": str(SHARED)}
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], env=env, capture_output=True, text=True, check=True)
    wall, peak, status = out.stdout.split()
    if status != "0":
        raise SystemExit(f"failed ({status}): {' '.join(argv)}")
    return float(wall), float(peak)


def alternate(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each case once as a warm-up, then ``rounds`` rounds of all cases in turn; the figures of each round."""
    for run in cases.values():
        run()
    figures: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            figures[name].append(run())
    return figures


def stopwatch(run: Callable[[], object]) -> Callable[[], float]:
    def timed() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    return timed


def ratio(a: list[float], b: list[float]) -> float:
    """Median of the per-round ratios a / b."""
    return statistics.median(x / y for x, y in zip(a, b))


def peak_rss_mb(path: Path, backend: str | None) -> float:
    """Peak resident memory of a fresh process tagging ``path`` with a per-window timeline.

    Read from VmHWM: ``ru_maxrss`` survives exec on Linux, so it would report this (large) parent.
    """
    code = (
        "import re, sys\n"
        "from audioclas.tagger import Tagger\n"
        f"kw = {{'backend': {backend!r}}} if {backend!r} else {{}}\n"
        "p = Tagger(**kw).predict(sys.argv[1], top_k=5)\n"
        "assert len(p.windows) >= 360, len(p.windows)\n"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.split()[-1]) / 1024


def venv_mb(venv: Path) -> float:
    total = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of each pair (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="YAMNet's threads (audioclas picks its own)")
    parser.add_argument("--backend", help="the engine backend of the in-process rows (Tagger(backend=...))")
    parser.add_argument("--skip-hour", action="store_true", help="skip the 1-hour peak-memory run")
    parser.add_argument("--venv", type=Path, help="a virtual environment with a plain `pip install audioclas`")
    args = parser.parse_args()
    audioclas = [sys.executable, "-m", "audioclas"]
    yamnet_script = [sys.executable, str(YAMNET_SCRIPT)]
    rows: list[tuple[str, str]] = []

    def row(measure: str, figure: str) -> None:
        rows.append((measure, figure))
        print(f"{measure:<68}{figure}", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        print(f"making inputs from {SHARED / 'audio'} …", flush=True)
        clip = encode(tmp / "clip3s.wav", real_audio(3), RATE, "pcm_s16le")
        long_file = encode(tmp / "ten_minutes.mp3", real_audio(600), RATE, "libmp3lame", bit_rate=128_000)
        audio = real_audio(1000)
        clips = [
            encode(tmp / f"clip{i:03d}.ogg", audio[i * 5 * RATE : (i + 1) * 5 * RATE], RATE, "vorbis")
            for i in range(200)
        ]
        compile_package()
        print(f"\n{os.cpu_count()} CPUs; medians of {args.rounds} alternating rounds; ratios per round\n")

        def whole(argv: list[str]) -> Callable[[], float]:
            return lambda: process(argv)[0]

        def versus_yamnet(what: str, audio: Path, as_fast: bool) -> None:
            """One row: whole processes predicting ``audio``, ours against the YAMNet script, in alternating rounds;
            compared as how many times its time (``as_fast``: how many times as fast)."""
            times = alternate(
                {
                    "ours": whole([*audioclas, "predict", str(audio), "--no-progress"]),
                    "yamnet": whole([*yamnet_script, str(audio)]),
                },
                args.rounds,
            )
            ours, yamnet = times["ours"], times["yamnet"]
            versus = f"{ratio(yamnet, ours):.2f}× as fast" if as_fast else f"{ratio(ours, yamnet):.1f}× its time"
            row(
                f"whole process, {what} (vs YAMNet script)",
                f"{statistics.median(ours):.2f} s vs {statistics.median(yamnet):.2f} s ({versus})",
            )

        versus_yamnet("predict a 3 s clip", clip, as_fast=False)
        helps = [process([*audioclas, "--help"]) for _ in range(args.rounds + 1)][1:]
        row(
            "whole process, audioclas --help",
            f"{statistics.median(w for w, _ in helps):.2f} s, {statistics.median(m for _, m in helps):.0f} MiB",
        )
        versus_yamnet("10-minute mp3", long_file, as_fast=True)

        tagger, yamnet = make_tagger(args.backend), YAMNet(args.threads)
        engine = getattr(getattr(tagger, "engine", None), "backend", None) or "torch"
        long_in = alternate(
            {
                "ours": stopwatch(lambda: tagger.predict(long_file)),
                "yamnet": stopwatch(lambda: yamnet.predict(long_file)),
            },
            args.rounds,
        )
        row(
            f"in process, 10-minute mp3, × real time, {engine}",
            f"{600 / statistics.median(long_in['ours']):.0f}× (YAMNet {600 / statistics.median(long_in['yamnet']):.0f}×)",
        )
        many = alternate(
            {
                "ours": stopwatch(lambda: list(tagger.predict_many(clips))),
                "yamnet": stopwatch(lambda: [yamnet.predict(c) for c in clips]),
            },
            max(1, args.rounds // 2),
        )
        row(
            "in process, 200 clips of 5 s (vs YAMNet)",
            f"{1000 / statistics.median(many['ours']):.0f}× vs {1000 / statistics.median(many['yamnet']):.0f}× "
            f"real time ({ratio(many['yamnet'], many['ours']):.2f}× as fast)",
        )
        if not args.skip_hour:
            hour = encode(tmp / "one_hour.mp3", real_audio(3600), RATE, "libmp3lame", bit_rate=64_000)
            row("peak RSS, 1-hour mp3, fresh process", f"{peak_rss_mb(hour, args.backend):.0f} MiB")
        if args.venv:
            row(f"venv size ({args.venv})", f"{venv_mb(args.venv):.0f} MiB")

    print("\n| measure | measured |\n|---|---|")
    for measure, figure in rows:
        print(f"| {measure} | {figure} |")


if __name__ == "__main__":
    main()
