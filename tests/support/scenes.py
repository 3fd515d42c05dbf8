"""Real-sound test scenes: a real clip placed at a known time inside silence, written as a WAV file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from media import encode

from audioclas.audio import SAMPLE_RATE, load_audio
from audioclas.inputs.types import AudioSource

SPEECH = "198-209-0000.ogg"  # 13.9 s of read speech: "Speech" well above 0.5 in every window that holds it


def place(clip: Path, folder: Path, onset: float, seconds: float) -> tuple[Path, float, float]:
    """``clip`` decoded and placed at ``onset`` seconds in ``seconds`` of silence, as ``folder/scene.wav``; returns
    (the file, the clip's true onset and offset in seconds)."""
    foreground = load_audio(AudioSource(clip.name, path=clip))
    scene = np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)
    first = round(onset * SAMPLE_RATE)
    scene[first : first + len(foreground)] = foreground
    path = encode(folder / "scene.wav", scene, SAMPLE_RATE, "pcm_s16le")
    return path, onset, onset + len(foreground) / SAMPLE_RATE
