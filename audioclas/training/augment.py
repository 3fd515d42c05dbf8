"""Augmentation for fine-tuning: what a new recording of the same sound may change, drawn at random per clip.

On the waveform (NumPy, before the front end): a random stretch of a long clip, a speed change (tempo and pitch
together, as tape or a faster talker), a random delay (time shift), a gain, and white noise at a random
signal-to-noise ratio. On the log-mel spectrogram (after the front end): SpecAugment's frequency and time masks.
Mixup, which mixes pairs of clips, lives in the fine-tuning loop.

On FSDD, these are what let a fine-tuned network recognise digits spoken by a speaker it never heard (README,
"Measured on FSDD").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr
import torch
from torch import Tensor

from audioclas.audio import SAMPLE_RATE

NOISE_SNR_SPAN_DB = 20.0  # noise SNR is drawn from [noise_snr, noise_snr + this]
MAX_MASKED_BINS = 15  # of the 128 mel bins, per frequency mask
MAX_MASKED_FRACTION = 0.1  # of the frames, per time mask


@dataclass(frozen=True)
class Augmentation:
    """How strongly to augment; every amount 0 turns that augmentation off."""

    speed: float = 0.1  # speed factor drawn from [1 - speed, 1 + speed]
    time_shift: float = 1.0  # delay by up to this fraction of the room left in the segment
    gain_db: float = 6.0  # gain drawn from ±this many dB
    noise_snr: float = 10.0  # lowest signal-to-noise ratio of the added white noise, in dB
    masks: int = 2  # SpecAugment frequency masks and time masks, each, per clip

    def waveform(self, audio: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """At most ``length`` samples of ``audio``, changed at random."""
        if self.speed:
            factor = rng.uniform(1 - self.speed, 1 + self.speed)
            # Played `factor` times faster: read at SAMPLE_RATE * factor, i.e. resample down to SAMPLE_RATE / factor.
            audio = soxr.resample(audio, SAMPLE_RATE, SAMPLE_RATE / factor, "QQ").astype(np.float32, copy=False)
        if len(audio) > length:
            start = int(rng.integers(0, len(audio) - length + 1))
            audio = audio[start : start + length]
        if self.time_shift:
            delay = int(rng.integers(0, int(self.time_shift * (length - len(audio))) + 1))
            audio = np.concatenate([np.zeros(delay, np.float32), audio]) if delay else audio
        if self.gain_db:
            audio = audio * 10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20)
        if self.noise_snr and len(audio):
            power = float(np.mean(np.square(audio, dtype=np.float64)))
            snr = rng.uniform(self.noise_snr, self.noise_snr + NOISE_SNR_SPAN_DB)
            audio = audio + rng.normal(0, np.sqrt(power / 10 ** (snr / 10)), len(audio))
        clipped: np.ndarray = np.clip(audio, -1, 1).astype(np.float32)
        return clipped

    def spectrogram(self, mel: Tensor, rng: np.random.Generator) -> Tensor:
        """(B, 1, bins, frames) log-mel with ``masks`` random frequency bands and time spans set to zero, per clip."""
        if not self.masks:
            return mel
        mel = mel.clone()
        bins, frames = mel.shape[-2:]
        longest = max(1, int(MAX_MASKED_FRACTION * frames))
        for row in mel:
            for _ in range(self.masks):
                width = int(rng.integers(0, MAX_MASKED_BINS + 1))
                start = int(rng.integers(0, bins - width + 1))
                row[..., start : start + width, :] = 0
                span = int(rng.integers(0, longest + 1))
                start = int(rng.integers(0, frames - span + 1))
                row[..., start : start + span] = 0
        return mel


def mixup_pairs(batch: int, alpha: float, rng: np.random.Generator) -> tuple[float, Tensor]:
    """(weight of each clip, the partner it is mixed with); weight 1 (no mixing) when ``alpha`` is 0."""
    weight = float(rng.beta(alpha, alpha)) if alpha and batch > 1 else 1.0
    return weight, torch.from_numpy(rng.permutation(batch))
