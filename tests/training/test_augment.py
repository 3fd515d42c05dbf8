"""Training augmentation (``audioclas.training.augment``) on generated tones, checked against values worked out by
hand: speed, noise, gain, time shift and spectrogram masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.unit


def tone(seconds: float, hz: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * 32000)) / 32000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dominant_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.fft.rfftfreq(len(audio), 1 / 32000)[spectrum.argmax()])


def test_augmentation_off_leaves_the_clip_alone() -> None:
    from audioclas.training.augment import Augmentation

    off = Augmentation(speed=0, time_shift=0, gain_db=0, noise_snr=0, masks=0)
    audio = tone(0.5)
    np.testing.assert_array_equal(off.waveform(audio, 32000, np.random.default_rng(0)), audio)
    mel = torch.randn(2, 1, 128, 50)
    assert off.spectrogram(mel, np.random.default_rng(0)) is mel


def test_speed_change_moves_tempo_and_pitch_together() -> None:
    from audioclas.training.augment import Augmentation

    speed = Augmentation(speed=0.2, time_shift=0, gain_db=0, noise_snr=0)
    audio = tone(1.0)
    for seed in range(5):
        changed = speed.waveform(audio, 64000, np.random.default_rng(seed))
        factor = len(audio) / len(changed)  # played faster -> shorter
        assert 0.8 <= factor <= 1.2 and abs(factor - 1) > 1e-3
        assert dominant_hz(changed) == pytest.approx(440 * factor, abs=2.0)


def test_noise_lands_within_the_snr_range_and_gain_within_its_bound() -> None:
    from audioclas.training.augment import NOISE_SNR_SPAN_DB, Augmentation

    audio = tone(1.0)
    for seed in range(5):
        noisy = Augmentation(speed=0, time_shift=0, gain_db=0, noise_snr=10).waveform(
            audio, 32000, np.random.default_rng(seed)
        )
        snr = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean((noisy - audio).astype(np.float64) ** 2))
        assert 10 - 0.5 <= snr <= 10 + NOISE_SNR_SPAN_DB + 0.5
        louder = Augmentation(speed=0, time_shift=0, gain_db=6, noise_snr=0).waveform(
            audio, 32000, np.random.default_rng(seed)
        )
        gain_db = 20 * np.log10(np.abs(louder).max() / np.abs(audio).max())
        assert -6 - 1e-3 <= gain_db <= 6 + 1e-3


def test_time_shift_delays_within_the_room_left_and_long_clips_are_cut() -> None:
    from audioclas.training.augment import Augmentation

    shift = Augmentation(speed=0, time_shift=0.5, gain_db=0, noise_snr=0)
    audio = tone(0.4)
    delays = set()
    for seed in range(10):
        shifted = shift.waveform(audio, 32000, np.random.default_rng(seed))
        delay = len(shifted) - len(audio)
        assert 0 <= delay <= 0.5 * (32000 - len(audio)) and not shifted[:delay].any()
        np.testing.assert_array_equal(shifted[delay:], audio)
        delays.add(delay)
    assert len(delays) > 1
    assert len(shift.waveform(tone(3.0), 32000, np.random.default_rng(0))) == 32000


def test_spectrogram_masks_zero_bands_and_spans_of_each_clip() -> None:
    from audioclas.training.augment import MAX_MASKED_BINS, Augmentation

    mel = torch.ones(8, 1, 128, 100)
    masked = Augmentation(masks=2).spectrogram(mel, np.random.default_rng(0))
    assert mel.all()  # the input is not changed in place
    for row in masked[:, 0]:
        zero_bins = int((row == 0).all(1).sum())
        zero_frames = int((row == 0).all(0).sum())
        assert zero_bins <= 2 * MAX_MASKED_BINS and zero_frames <= 2 * 10
    assert (masked == 0).any()
