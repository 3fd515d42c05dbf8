"""The log-mel front end as ONNX nodes: (B, N) waveform -> (B, 1, 128, T), the same numbers as ``features``.

Pre-emphasis, reflect padding by n_fft / 2, the STFT (symmetric Hann 800 centred in a 1024 frame, hop 320) as two
convolutions, power, the Kaldi mel bank as a MatMul, ln(x + 1e-5) and (x + 4.5) / 5. See docs/efficientat-mn04.md,
section 2.
"""

from __future__ import annotations

import numpy as np

from audioclas.architecture import (
    HOP_LENGTH,
    LOG_OFFSET,
    N_FFT,
    PREEMPHASIS,
    WIN_LENGTH,
)
from audioclas.engine.frontend import mel_filterbank
from audioclas.engine.onnx_ops import Graph


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
    power = _power_spectrum(graph, padded)  # (B, 512, T), bins in BIN_ORDER
    mel = graph.op(
        "MatMul", graph.const("mel_filterbank", mel_filterbank().astype(np.float32)[:, BIN_ORDER]), power
    )  # (B, 128, T)
    logged = graph.op("Log", graph.op("Add", mel, graph.const("log_offset", LOG_OFFSET)))
    normalised = graph.op("Div", graph.op("Add", logged, graph.const("shift", 4.5)), graph.const("scale", 5.0))
    return graph.op("Unsqueeze", normalised, graph.const("channel", [1]), name="log_mel")


# The STFT as two convolutions, a 1024-point DFT split into 32-point DFTs (Cooley-Tukey, sample n = 32 n1 + n2 of a
# frame, bin k = k1 + 32 k2): about twice as fast as onnxruntime's STFT op (30 against 56 ms per 10 s window).
# Signal sample 32 q + n2 is row q, column n2 of a (rows, 32) grid, and frame t starts at row 10 t (hop 320 = 10
# rows). Stage 1, a grouped conv over rows (kernel 32, stride 10, one group per column n2): the windowed 32-point
# DFT over n1, all k1, real and imaginary parts. Stage 2, a grouped 1x1 conv (one group per k1): the twiddle
# factor and the 32-point DFT over n2. Only bins 0-511 are computed (the Nyquist bin's mel weights are all zero);
# they leave the second stage with bin k1 + 32 k2 at row 16 k1 + k2.
_SPLIT = 32
_BINS = N_FFT // 2
assert N_FFT == _SPLIT**2 and HOP_LENGTH % _SPLIT == 0, "the split needs n_fft = 32 x 32 and a hop of whole rows"
BIN_ORDER = np.arange(_BINS) // 16 + _SPLIT * (np.arange(_BINS) % 16)


def _dft_kernels() -> tuple[np.ndarray, np.ndarray]:
    """Stage 1 weights (n2 x [re, im] x k1, 1, n1) with the window folded in, stage 2 weights (k1 x [re, im] x
    k2, [re, im] x n2, 1); float32."""
    n = np.arange(_SPLIT)
    first = 2 * np.pi * np.outer(n, n) / _SPLIT  # [k1, n1]
    dft = np.concatenate([np.cos(first), -np.sin(first)])  # [[re, im] x k1, n1]
    window = frame_window().reshape(_SPLIT, _SPLIT)  # [n1, n2]
    stage1 = dft[None, :, :] * window.T[:, None, :]  # [n2, [re, im] x k1, n1]
    k2 = np.arange(_BINS // _SPLIT)
    angle = 2 * np.pi * (np.outer(n, n)[:, :, None] / N_FFT + np.outer(n, k2)[None] / _SPLIT)  # [k1, n2, k2]
    re, im = np.cos(angle), -np.sin(angle)  # (a + ib)(re + i im) for input [a, b] over n2 -> output [re, im] x k2
    stage2 = np.concatenate([np.concatenate([re, im], 2), np.concatenate([-im, re], 2)], 1)  # [k1, [a, b] n2, out]
    return (
        stage1.reshape(-1, 1, _SPLIT).astype(np.float32),
        stage2.transpose(0, 2, 1).reshape(-1, 2 * _SPLIT, 1).astype(np.float32),
    )


def _power_spectrum(graph: Graph, padded: str) -> str:
    """|DFT|^2 of the windowed 1024-sample frames of ``padded`` (B, L) every 320 samples: (B, 512, T)."""
    length = graph.op("Gather", graph.op("Shape", padded), graph.const("axis", [1]))
    frames = graph.op(  # T = 1 + (L - 1024) // 320
        "Add",
        graph.op("Div", graph.op("Sub", length, graph.const("n_fft", [N_FFT])), graph.const("hop", [HOP_LENGTH])),
        graph.const("one", [1]),
    )
    to_rows = graph.op(
        "Sub",
        graph.const("row", [_SPLIT - 1]),
        graph.op("Mod", graph.op("Add", length, graph.const("row", [_SPLIT - 1])), graph.const("row", [_SPLIT])),
    )
    grid = graph.op(
        "Reshape",
        graph.op("Pad", padded, graph.op("Concat", graph.const("no_pad", [0, 0, 0]), to_rows, axis=0)),
        graph.const("grid", [0, -1, _SPLIT]),
    )
    columns = graph.op("Transpose", grid, perm=[0, 2, 1])  # (B, n2, rows)
    first, second = _dft_kernels()
    stage1 = graph.op(
        "Conv",
        columns,
        graph.const("dft_n1", first),
        kernel_shape=[_SPLIT],
        strides=[HOP_LENGTH // _SPLIT],
        group=_SPLIT,
    )  # (B, n2 x [re, im] x k1, T or T + 1)
    by_k1 = graph.op(
        "Reshape",
        graph.op(
            "Transpose",
            graph.op("Reshape", stage1, graph.const("parts", [0, _SPLIT, 2, _SPLIT, -1])),
            perm=[0, 3, 2, 1, 4],
        ),
        graph.const("groups", [0, 2 * _SPLIT * _SPLIT, -1]),
    )  # (B, k1 x [re, im] x n2, frames)
    stage2 = graph.op("Conv", by_k1, graph.const("dft_n2", second), kernel_shape=[1], group=_SPLIT)
    parts = graph.op("Reshape", stage2, graph.const("parts", [0, _SPLIT, 2, _BINS // _SPLIT, -1]))
    power = graph.op(
        "Reshape", graph.op("ReduceSumSquare", parts, axes=[2], keepdims=0), graph.const("bins", [0, _BINS, -1])
    )
    # The grid may yield one frame more than T, made of the zeros padding it: drop it.
    return graph.op("Slice", power, graph.const("zero", [0]), frames, graph.const("axis", [2]))
