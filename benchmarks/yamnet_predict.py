"""The YAMNet peer as a user would script it: tag one audio file with YAMNet (TFLite) and print the top 5.

    python benchmarks/yamnet_predict.py FILE

Whole-process counterpart of ``audioclas predict FILE`` in benchmarks/predict_speed.py: PyAV decodes and its
resampler (FFmpeg's) makes mono 16 kHz, and the model scores 0.975 s patches every 0.48 s, averaged over the file. Weights: ../shared/weights/yamnet (or $AUDIOCLAS_SHARED/weights/yamnet).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import av
import numpy as np
from ai_edge_litert.interpreter import Interpreter

SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
RATE, PATCH, HOP = 16000, 15600, 7680


def mono_16k(path: str) -> np.ndarray:
    """The first audio stream as mono float32 at 16 kHz, FFmpeg's resampler converting each frame."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    with av.open(path) as container:
        pieces = [out.to_ndarray()[0] for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    pieces += [out.to_ndarray()[0] for out in resampler.resample(None)]
    return np.concatenate(pieces)


def main() -> None:
    interpreter = Interpreter(model_path=str(SHARED / "weights" / "yamnet" / "yamnet.tflite"), num_threads=2)
    interpreter.allocate_tensors()
    waveform = interpreter.get_input_details()[0]["index"]
    scores = next(o["index"] for o in interpreter.get_output_details() if o["name"] == "Identity")
    audio = mono_16k(sys.argv[1])
    if len(audio) < PATCH:  # shorter than one patch: padded, as YAMNet itself does
        audio = np.pad(audio, (0, PATCH - len(audio)))
    starts = range(0, len(audio) - PATCH + 1, HOP)
    total = np.zeros(521)
    for start in starts:
        interpreter.set_tensor(waveform, audio[None, start : start + PATCH])
        interpreter.invoke()
        total += interpreter.get_tensor(scores)[0]
    with open(SHARED / "weights" / "yamnet" / "yamnet_class_map.csv", newline="") as file:
        names = [row["display_name"] for row in csv.DictReader(file)]
    mean = total / len(starts)
    for index in np.argsort(mean)[::-1][:5]:
        print(f"{names[index]:<40}{mean[index]:.3f}")


if __name__ == "__main__":
    main()
