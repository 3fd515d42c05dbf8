"""The log-mel front end as ONNX nodes: (B, N) waveform -> (B, 1, 128, T), the same numbers as ``features``.

Pre-emphasis, reflect padding by n_fft / 2, the STFT op (symmetric Hann 800 centred in a 1024 frame, hop 320),
power, the Kaldi mel bank as a MatMul, ln(x + 1e-5) and (x + 4.5) / 5. See docs/efficientat-mn04.md, section 2.
"""

from __future__ import annotations

import numpy as np

from audioclas.architecture import (
    F_MAX,
    HOP_LENGTH,
    LOG_OFFSET,
    N_FFT,
    N_MELS,
    PREEMPHASIS,
    SAMPLE_RATE,
    WIN_LENGTH,
)
from audioclas.engine.onnx_ops import Graph


def mel_filterbank() -> np.ndarray:
    """(128, 513) float32 Kaldi mel weights (triangles linear in mel, zero Nyquist column), built in float64."""
    delta = (_mel(F_MAX) - _mel(0.0)) / (N_MELS + 1)
    left = np.arange(N_MELS, dtype=np.float64)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    bin_mel = _mel(np.arange(N_FFT // 2, dtype=np.float64) * SAMPLE_RATE / N_FFT)[None, :]
    weights = np.maximum(np.minimum((bin_mel - left) / (centre - left), (right - bin_mel) / (right - centre)), 0.0)
    return np.pad(weights, ((0, 0), (0, 1))).astype(np.float32)


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def frame_window() -> np.ndarray:
    """(1024,) float32: the symmetric Hann window of 800 samples, centred in the n_fft frame between zeros."""
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN_LENGTH) / (WIN_LENGTH - 1))).astype(np.float32)
    start = (N_FFT - WIN_LENGTH) // 2
    return np.pad(hann, (start, N_FFT - WIN_LENGTH - start))


def log_mel(graph: Graph, waveform: str) -> str:
    """Nodes from ``waveform`` (B, N), N >= MIN_SAMPLES, to the network input (B, 1, 128, T)."""
    later = graph.op("Slice", waveform, graph.const("one", [1]), graph.const("end", [2**62]), graph.const("axis", [1]))
    earlier = graph.op("Slice", waveform, graph.const("zero", [0]), graph.const("last", [-1]), graph.const("axis", [1]))
    emphasised = graph.op("Sub", later, graph.op("Mul", earlier, graph.const("preemphasis", PREEMPHASIS)))
    half = N_FFT // 2
    padded = graph.op("Pad", emphasised, graph.const("pads", [0, half, 0, half]), mode="reflect")
    signal = graph.op("Unsqueeze", padded, graph.const("channel_axis", [2]))  # (B, L, 1): real signal
    spectrum = graph.op(  # (B, T, 513, 2): real and imaginary parts
        "STFT",
        signal,
        graph.const("hop", np.array(HOP_LENGTH, np.int64)),
        graph.const("window", frame_window()),
        graph.const("frame_length", np.array(N_FFT, np.int64)),
        onesided=1,
    )
    power = graph.op("ReduceSumSquare", spectrum, axes=[-1], keepdims=0)  # (B, T, 513)
    mel = graph.op("MatMul", power, graph.const("mel_filterbank", np.ascontiguousarray(mel_filterbank().T)))
    logged = graph.op("Log", graph.op("Add", mel, graph.const("log_offset", LOG_OFFSET)))
    normalised = graph.op("Div", graph.op("Add", logged, graph.const("shift", 4.5)), graph.const("scale", 5.0))
    bands_first = graph.op("Transpose", normalised, perm=[0, 2, 1])  # (B, 128, T)
    return graph.op("Unsqueeze", bands_first, graph.const("channel", [1]), name="log_mel")
