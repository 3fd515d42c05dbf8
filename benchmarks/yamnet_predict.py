"""The YAMNet peer as a user would script it: tag one audio file with YAMNet (TFLite) and print the top 5.

    python benchmarks/yamnet_predict.py FILE

Whole-process counterpart of ``audioclas predict FILE`` in benchmarks/predict_speed.py: PyAV decodes, soxr HQ
resamples to YAMNet's 16 kHz (as audioclas does to its 32 kHz), and the model scores 0.975 s patches every 0.48 s,
averaged over the file. Weights: ../shared/weights/yamnet (or $AUDIOCLAS_SHARED/weights/yamnet).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import av
import numpy as np
import soxr
from ai_edge_litert.interpreter import Interpreter

SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
RATE, PATCH, HOP = 16000, 15600, 7680


def mono_16k(path: str):
    """Yield mono float32 pieces at 16 kHz."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        resampler = soxr.ResampleStream(stream.codec_context.sample_rate, RATE, 1, dtype="float32", quality="HQ")
        converter = av.AudioResampler(format="fltp")
        for frame in container.decode(stream):
            for planar in converter.resample(frame):
                yield resampler.resample_chunk(planar.to_ndarray().mean(axis=0))
        yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)


def main() -> None:
    interpreter = Interpreter(model_path=str(SHARED / "weights" / "yamnet" / "yamnet.tflite"), num_threads=2)
    interpreter.allocate_tensors()
    waveform = interpreter.get_input_details()[0]["index"]
    scores = next(o["index"] for o in interpreter.get_output_details() if o["name"] == "Identity")
    buffer, total, count = np.zeros(0, np.float32), np.zeros(521), 0
    for piece in mono_16k(sys.argv[1]):
        buffer = np.concatenate([buffer, piece])
        while len(buffer) >= PATCH:
            interpreter.set_tensor(waveform, buffer[None, :PATCH])
            interpreter.invoke()
            total += interpreter.get_tensor(scores)[0]
            count += 1
            buffer = buffer[HOP:]
    if count == 0:  # shorter than one patch: padded, as YAMNet itself does
        interpreter.set_tensor(waveform, np.pad(buffer, (0, PATCH - len(buffer)))[None])
        interpreter.invoke()
        total, count = interpreter.get_tensor(scores)[0], 1
    with open(SHARED / "weights" / "yamnet" / "yamnet_class_map.csv", newline="") as file:
        names = [row["display_name"] for row in csv.DictReader(file)]
    mean = total / count
    for index in np.argsort(mean)[::-1][:5]:
        print(f"{names[index]:<40}{mean[index]:.3f}")


if __name__ == "__main__":
    main()
