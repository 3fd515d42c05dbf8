"""End-to-end tagging speed (decode -> labels) of audioclas beside YAMNet, on the same inputs in one run.

    .venv/bin/python benchmarks/predict_speed.py [--threads 2] [--skip-hour]

Inputs are made from the real recordings in ../shared/audio (looped and re-encoded with PyAV):
(a) one 10-minute 44.1 kHz mp3, (b) 200 clips of 5 s as 44.1 kHz Ogg Vorbis, (c) a 1-hour mp3 for
peak memory, measured in a fresh process. YAMNet (TFLite, ../shared/weights/yamnet) gets the same
decoder (PyAV + soxr, to its 16 kHz) and runs as its authors frame it: 0.975 s patches every 0.48 s.
Both models are loaded before the clock starts. Throughput is seconds of audio per second of wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

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


def real_audio(seconds: float) -> np.ndarray:
    """The shared recordings, concatenated and looped to ``seconds`` at 44.1 kHz."""
    clips = [
        load_audio(AudioSource(p.name, path=p), sample_rate=RATE) for p in sorted((SHARED / "audio").glob("*.ogg"))
    ]
    return np.resize(np.concatenate(clips), round(seconds * RATE)).astype(np.float32)


class YAMNet:
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


def timed(run, seconds_of_audio: float) -> float:
    start = time.perf_counter()
    run()
    return seconds_of_audio / (time.perf_counter() - start)


def peak_rss_mb(path: Path) -> float:
    """Peak resident memory of a fresh process tagging ``path`` with a per-window timeline.

    Read from VmHWM: ``ru_maxrss`` survives exec on Linux, so it would report this (large) parent.
    """
    code = (
        "import re, sys\n"
        "from audioclas.tagger import Tagger\n"
        "p = Tagger().predict(sys.argv[1], top_k=5)\n"
        "assert len(p.windows) >= 360, len(p.windows)\n"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="YAMNet's threads (audioclas picks its own)")
    parser.add_argument("--skip-hour", action="store_true", help="skip the 1-hour peak-memory run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("making inputs from ../shared/audio …", flush=True)
        long_file = encode(tmp / "ten_minutes.mp3", real_audio(600), RATE, "libmp3lame", bit_rate=128_000)
        audio = real_audio(1000)
        clips = [
            encode(tmp / f"clip{i:03d}.ogg", audio[i * 5 * RATE : (i + 1) * 5 * RATE], RATE, "vorbis")
            for i in range(200)
        ]

        tagger, yamnet = Tagger(batch_size=16), YAMNet(args.threads)
        tagger.predict(clips[0]), yamnet.predict(clips[0])  # warm up both

        rows = [
            ("(a) one 10-minute mp3", 600.0, lambda: tagger.predict(long_file), lambda: yamnet.predict(long_file)),
            (
                "(b) 200 clips of 5 s",
                1000.0,
                lambda: list(tagger.predict_many(clips)),
                lambda: [yamnet.predict(c) for c in clips],
            ),
        ]
        print(
            f"\nthroughput, seconds of audio per second ({os.cpu_count()} CPUs; YAMNet {args.threads} threads, "
            f"audioclas {torch.get_num_threads()} network thread(s) + 1 decoder thread)"
        )
        print(f"{'input':<26}{'audioclas mn04':>16}{'YAMNet':>12}{'ratio':>9}")
        for name, seconds, ours, theirs in rows:
            a, y = timed(ours, seconds), timed(theirs, seconds)
            print(f"{name:<26}{a:>15.0f}x{y:>11.0f}x{a / y:>8.2f}x", flush=True)

        if not args.skip_hour:
            hour = encode(tmp / "one_hour.mp3", real_audio(3600), RATE, "libmp3lame", bit_rate=64_000)
            print(f"\npeak RSS tagging a 1-hour mp3 in a fresh process: {peak_rss_mb(hour):.0f} MB")


if __name__ == "__main__":
    main()
