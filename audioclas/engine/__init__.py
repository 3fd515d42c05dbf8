"""The engine: the front end and the network run on batches of windows, nothing else.

An engine takes a batch of equal-length 32 kHz mono windows (B, N) float32 and returns the network's logits
(B, 527) and embeddings (B, 384) as NumPy arrays. It knows nothing of inputs, windowing or labels; everything
that runs the network (the tagger, the service, batch jobs, training's embedding extraction, evaluation) holds an
``Engine`` and calls ``run``.

Two backends: ONNX Runtime (``onnxruntime``, the default for inference: no PyTorch needed) and PyTorch
(``torch``, for training and fine-tuning, and the reference in tests). Both compute the same numbers (within
1e-4), so the embedding cache is valid whichever computed an entry. ``identity`` is the sha256 of the weights the
engine runs: the pretrained checkpoint's, or a fine-tuned backbone's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

Backend = Literal["auto", "onnxruntime", "torch"]
BACKENDS: tuple[Backend, ...] = ("auto", "onnxruntime", "torch")

Waveforms = npt.NDArray[np.float32]  # (batch, samples), 32 kHz mono in [-1, 1]
Logits = npt.NDArray[np.float32]  # (batch, 527)
Embeddings = npt.NDArray[np.float32]  # (batch, 384)


class Engine(Protocol):
    """Front end and network on batches of windows (see the module docstring)."""

    identity: str  # sha256 of the weights it runs (the embedding cache's key)
    backend: str  # "onnxruntime" or "torch"

    def run(self, waveforms: Waveforms) -> tuple[Logits, Embeddings]:
        """(logits (B, 527), embeddings (B, 384)) for windows (B, N) of equal length, N >= ``MIN_SAMPLES``."""
        ...


def load_engine(weights: str | Path | None = None, backend: Backend = "auto", threads: int | None = None) -> Engine:
    """The pretrained network on ``backend`` (see ``audioclas.engine.loading``, imported only when called, so that
    importing this package imports neither PyTorch nor ONNX Runtime)."""
    from audioclas.engine.loading import load_engine as load

    return load(weights, backend, threads)
