"""Log-mel front end speed: NumPy (audioclas.engine.frontend) against PyTorch (audioclas.features), in process;
and where the ONNX graph builder is present, where the front end should run: in NumPy before an ONNX network that
takes the log-mel, or inside the ONNX graph that takes the waveform.

    .venv/bin/python benchmarks/frontend_speed.py [--rounds 7] [--batch 16]

Everything runs on one thread (the engine shares the cores with the decoder) on the same batch of 10 s windows cut
from the real recordings in ../shared/audio; rounds alternate the cases, and the medians are printed in ms per
window.
"""

from __future__ import annotations

import argparse
import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # before NumPy loads its BLAS

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from audioclas.audio import load_audio  # noqa: E402
from audioclas.engine.frontend import NumpyLogMel  # noqa: E402
from audioclas.inputs import AudioSource  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
WINDOW = 320000


def windows(batch: int) -> np.ndarray:
    """``batch`` 10 s windows of the shared recordings, concatenated and looped."""
    clips = [load_audio(AudioSource(p.name, path=p)) for p in sorted((SHARED / "audio").glob("*.ogg"))]
    return np.resize(np.concatenate(clips), batch * WINDOW).reshape(batch, WINDOW).astype(np.float32)


def torch_front_end() -> Callable[[np.ndarray], object]:
    import torch

    from audioclas.features import LogMelFrontEnd

    torch.set_num_threads(1)
    module = LogMelFrontEnd()

    def run(batch: np.ndarray) -> object:
        with torch.inference_mode():
            return module(torch.from_numpy(batch))

    return run


def onnx_placements() -> dict[str, Callable[[np.ndarray], object]] | None:
    """NumPy front end + ONNX network on the log-mel, and the ONNX graph with the front end inside; None without
    the builder (audioclas.engine.onnx_graph)."""
    try:
        import onnxruntime as ort

        from audioclas.engine.checkpoint import read_checkpoint
        from audioclas.engine.onnx_engine import session_options
        from audioclas.engine.onnx_graph import build_model
    except ImportError:
        return None
    state = read_checkpoint(SHARED / "weights" / "efficientat" / "mn04_as_mAP_432.pt")
    sessions = {
        inputs: ort.InferenceSession(build_model(state, inputs).SerializeToString(), session_options(1))
        for inputs in ("waveform", "log_mel")
    }
    front_end = NumpyLogMel()
    return {
        "numpy + onnx(log_mel)": lambda batch: sessions["log_mel"].run(None, {"log_mel": front_end(batch)}),
        "onnx(waveform)": lambda batch: sessions["waveform"].run(None, {"waveform": batch}),
    }


def compare(cases: dict[str, Callable[[], object]], rounds: int, per: int) -> dict[str, float]:
    """Median ms per item of each case over ``rounds`` alternating rounds (after one warm-up each)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():
        run()
    for _ in range(rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000 / per)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    batch = windows(args.batch)
    numpy_front_end, torch_run = NumpyLogMel(), torch_front_end()
    medians = compare(
        {"numpy": lambda: numpy_front_end(batch), "torch": lambda: torch_run(batch)}, args.rounds, args.batch
    )
    print(f"log-mel front end, 1 thread, batch of {args.batch} × 10 s, median of {args.rounds} alternated rounds")
    for name, ms in medians.items():
        print(f"  {name:<8}{ms:7.2f} ms per window")
    print(f"  numpy / torch: {medians['numpy'] / medians['torch']:.2f}")

    placements = onnx_placements()
    if placements is None:
        print("front end and network on ONNX Runtime: skipped (no ONNX graph builder in this tree)")
        return
    cases = {name: (lambda run=run: run(batch)) for name, run in placements.items()}
    medians = compare(cases, args.rounds, args.batch)
    print(f"front end + network, ONNX Runtime, 1 thread, batch of {args.batch} × 10 s")
    for name, ms in medians.items():
        print(f"  {name:<24}{ms:7.2f} ms per window")


if __name__ == "__main__":
    main()
