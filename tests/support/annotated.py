"""Annotated recordings for tests: FSDD digits (George's recordings) joined with silence between them into longer
recordings, and the annotations of where each digit was put, written as Raven selection tables."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

GAP = 0.7  # seconds of silence before each digit
RATE = 8000  # FSDD's sample rate


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as stream:
        return np.frombuffer(stream.readframes(stream.getnframes()), dtype=np.int16)


def recording(fsdd: Path, target: Path, digits: list[tuple[int, int]]) -> list[tuple[float, float, str]]:
    """Write ``target`` (digits (digit, index) with silence between them); return (start, end, label) of each."""
    names = ["zero", "one", "two"]
    pieces, annotations, position = [], [], 0
    for digit, index in digits:
        clip = read_wav(fsdd / "recordings" / f"{digit}_george_{index}.wav")
        pieces += [np.zeros(int(GAP * RATE), np.int16), clip]
        start = position + int(GAP * RATE)
        annotations.append((round(start / RATE, 3), round((start + len(clip)) / RATE, 3), names[digit]))
        position = start + len(clip)
    pieces.append(np.zeros(int(GAP * RATE), np.int16))
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as stream:
        stream.setnchannels(1)
        stream.setsampwidth(2)
        stream.setframerate(RATE)
        stream.writeframes(np.concatenate(pieces).tobytes())
    return annotations


def raven(path: Path, annotations: list[tuple[float, float, str]], column: str = "Annotation") -> None:
    lines = [f"Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\t{column}"]
    for number, (start, end, label) in enumerate(annotations, 1):
        for view in ("Waveform 1", "Spectrogram 1"):  # Raven lists a selection once per view
            lines.append(f"{number}\t{view}\t1\t{start}\t{end}\t0\t4000\t{label}")
    path.write_text("\n".join(lines) + "\n")
