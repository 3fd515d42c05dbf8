"""The NumPy log-mel front end against the reference log-mel and, where PyTorch is installed, against PyTorch's.

It runs without PyTorch: the reference comparisons read only NumPy arrays from the reference file.
"""

from __future__ import annotations

import numpy as np
import pytest

from audioclas.architecture import MIN_SAMPLES, N_MELS
from audioclas.engine.frontend import NumpyLogMel, mel_filterbank, num_frames

pytestmark = pytest.mark.unit


def waveform(reference, clip: str) -> np.ndarray:
    return reference[f"{clip}__wave_int16"].astype(np.float32) / np.float32(32768)


def test_filterbank_and_window_are_the_reference_ones(reference) -> None:
    np.testing.assert_allclose(mel_filterbank().astype(np.float32), reference["mel_filterbank"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(NumpyLogMel().window, reference["stft_window"], rtol=0, atol=1e-6)


def test_log_mel_of_every_reference_clip(reference) -> None:
    """Within the bound tests/test_model.py holds PyTorch's front end to."""
    front_end = NumpyLogMel()
    for clip in reference["clip_ids"]:
        wave = waveform(reference, clip)
        mel = front_end(wave[None])
        assert mel.dtype == np.float32 and mel.shape == (1, 1, N_MELS, num_frames(len(wave))), clip
        np.testing.assert_allclose(mel[0, 0], reference[f"{clip}__mel"], rtol=0, atol=1e-3, err_msg=clip)


def test_same_as_the_pytorch_front_end(reference) -> None:
    """Whole clips and a batch of windows of unequal content. PyTorch's float32 front end is itself up to 6e-5 from
    the same computation in float64 on these clips (ours 3e-5: its FFT runs in float64), hence 1e-4."""
    torch = pytest.importorskip("torch")
    from audioclas.features import LogMelFrontEnd

    ours, theirs = NumpyLogMel(), LogMelFrontEnd()
    long = np.concatenate([waveform(reference, clip) for clip in reference["clip_ids"]])
    batches = [waveform(reference, clip)[None] for clip in reference["clip_ids"]]
    batches.append(long[: 5 * 320000].reshape(5, 320000))  # rows of a batch must not leak into each other
    batches.append(long[:MIN_SAMPLES][None])
    for batch in batches:
        with torch.inference_mode():
            expected = theirs(torch.from_numpy(batch)).numpy()
        np.testing.assert_allclose(ours(batch), expected, rtol=0, atol=1e-4)


def test_shortest_input_and_bad_shapes() -> None:
    front_end = NumpyLogMel()
    assert front_end(np.zeros((1, MIN_SAMPLES), np.float32)).shape == (1, 1, N_MELS, 2)
    for bad in (np.zeros((1, MIN_SAMPLES - 1), np.float32), np.zeros(MIN_SAMPLES, np.float32)):
        with pytest.raises(ValueError, match=f"at least {MIN_SAMPLES} samples"):
            front_end(bad)
