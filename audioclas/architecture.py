"""EfficientAT mn04_as as numbers, without PyTorch: the front end's constants and the network's layout.

The PyTorch modules (``model``, ``features``) and the ONNX graph builder (``engine``) both read them, so the two
backends cannot drift apart. See docs/efficientat-mn04.md, sections 2 to 4.
"""

from __future__ import annotations

# Front end: 32 kHz waveform -> log-mel (section 2).
SAMPLE_RATE = 32000
N_FFT = 1024
WIN_LENGTH = 800
HOP_LENGTH = 320
N_MELS = 128
F_MAX = 15000.0
PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5
MIN_SAMPLES = N_FFT // 2 + 2
"""Shortest waveform the STFT accepts: reflect padding needs more than n_fft / 2 pre-emphasised samples."""


# Network: MobileNetV3-Large at width 0.4 (sections 3 and 4).
WIDTH = 0.4
EMBEDDING_DIM = 384
NUM_CLASSES = 527
BN_EPS = 1e-3

# MobileNetV3-Large blocks in full-width channels, scaled by WIDTH below:
# (in, kernel, expanded, out, squeeze-excite, activation, stride)
BLOCKS = [
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]
STEM_CHANNELS = 16
HEAD_HIDDEN = 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """TF-slim channel rounding: nearest multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scaled(channels: int) -> int:
    return make_divisible(channels * WIDTH)
