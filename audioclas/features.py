"""Log-mel front end of EfficientAT mn04: 32 kHz waveform -> (B, 1, 128, T) network input.

Pre-emphasis, STFT (n_fft 1024, symmetric Hann 800 centred in the frame, hop 320, reflect padding),
power, a Kaldi-style mel bank (128 bands, 0-15 kHz, triangles linear in mel, no area normalisation),
ln(x + 1e-5) and the fixed affine map (x + 4.5) / 5. See docs/efficientat-mn04.md, section 2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .architecture import (
    HOP_LENGTH,
    LOG_OFFSET,
    MIN_SAMPLES,
    N_FFT,
    PREEMPHASIS,
    WIN_LENGTH,
)
from .engine.frontend import mel_filterbank

ROWS_PER_CHUNK = 2


class LogMelFrontEnd(nn.Module):
    """(B, N) float32 waveform at 32 kHz in [-1, 1] -> (B, 1, 128, T) with T = 1 + (N - 1) // 320."""

    window: Tensor
    mel_filterbank: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN_LENGTH, periodic=False), persistent=False)
        self.register_buffer("mel_filterbank", torch.from_numpy(mel_filterbank()).float(), persistent=False)

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 2 or waveform.shape[1] < MIN_SAMPLES:
            raise ValueError(
                f"waveform must be (batch, samples) with at least {MIN_SAMPLES} samples, "
                f"got shape {tuple(waveform.shape)}"
            )
        # The spectrogram of 10 s is 2 MB; a few rows at a time stay in cache (2-3x faster than one big batch).
        return torch.cat([self._log_mel(rows) for rows in torch.split(waveform, ROWS_PER_CHUNK)]).unsqueeze(1)

    def _log_mel(self, waveform: Tensor) -> Tensor:
        emphasised = waveform[:, 1:] - PREEMPHASIS * waveform[:, :-1]
        spectrum = torch.stft(
            emphasised, N_FFT, HOP_LENGTH, WIN_LENGTH, self.window, center=True, pad_mode="reflect", return_complex=True
        )
        power = spectrum.real.square() + spectrum.imag.square()
        mel = torch.matmul(self.mel_filterbank, power)
        return (torch.log(mel + LOG_OFFSET) + 4.5) / 5.0
