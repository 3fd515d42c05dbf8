"""A saved head's forward pass in NumPy, so that a trained model predicts without PyTorch.

It reads ``head.safetensors`` (the state dict of a ``training.heads.Head``) and computes what that head computes in
eval mode (dropout off): inputs standardised with the stored mean and std, the head's linear layers (ReLU after the
hidden one), then per clip a masked mean of the window logits (``linear``, ``mlp``) or attention pooling (a softmax
over the windows per class, ``attention``). PyTorch trains the head; tests hold the two forwards within 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]

# The linear layers of each head kind, by state-dict prefix (``hidden.0`` is the Linear in ``hidden``'s Sequential).
LAYERS = {
    "linear": ("classifier",),
    "mlp": ("hidden.0", "classifier"),
    "attention": ("hidden.0", "classifier", "attention"),
}


@dataclass(frozen=True)
class NumpyHead:
    kind: str
    tensors: dict[str, Array]  # the state dict, float32

    @classmethod
    def load(cls, file: Path, kind: str, dim: int, classes: int, hidden: int) -> NumpyHead:
        """The head in ``file``, checked against its spec in ``model.json``: a ``ValueError`` names what is off."""
        from safetensors.numpy import load_file

        if kind not in LAYERS:
            raise ValueError(f"unknown head type {kind!r}")
        inner = dim if kind == "linear" else hidden
        shapes: dict[str, tuple[int, ...]] = {"mean": (dim,), "std": (dim,)}
        for layer in LAYERS[kind]:
            rows, columns = (hidden, dim) if layer == "hidden.0" else (classes, inner)
            shapes[f"{layer}.weight"], shapes[f"{layer}.bias"] = (rows, columns), (rows,)
        tensors = load_file(file)
        if set(tensors) != set(shapes):
            raise ValueError(f"{file.name} holds tensors {sorted(tensors)}, expected {sorted(shapes)}")
        for key, shape in shapes.items():
            if tensors[key].shape != shape:
                raise ValueError(f"{file.name}: {key} has shape {tensors[key].shape}, expected {shape}")
        return cls(kind, {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in tensors.items()})

    def forward(self, x: Array, mask: npt.NDArray[np.bool_]) -> tuple[Array, Array]:
        """(window logits (B, W, C), clip logits (B, C)) from windows (B, W, D) and mask (B, W) of real windows."""
        t = self.tensors
        x = (x.astype(np.float32, copy=False) - t["mean"]) / t["std"]
        if self.kind != "linear":
            x = np.maximum(self._linear("hidden.0", x), 0)
        window_logits = self._linear("classifier", x)
        if self.kind == "attention":
            scores = np.where(mask[..., None], self._linear("attention", x), -np.inf)
            weights = np.exp(scores - scores.max(1, keepdims=True))
            clip_logits = (weights / weights.sum(1, keepdims=True) * window_logits).sum(1)
        else:
            real = mask[..., None].astype(np.float32)
            clip_logits = (window_logits * real).sum(1) / np.maximum(real.sum(1), 1)
        return window_logits, clip_logits.astype(np.float32, copy=False)

    def _linear(self, layer: str, x: Array) -> Array:
        out: Array = x @ self.tensors[f"{layer}.weight"].T + self.tensors[f"{layer}.bias"]
        return out


def sigmoid(logits: Array) -> Array:
    """1 / (1 + exp(-x)) without overflow warnings for large negative logits."""
    out: Array = np.exp(-np.logaddexp(0, -logits)).astype(np.float32, copy=False)
    return out


def softmax(logits: Array, axis: int = -1) -> Array:
    shifted = np.exp(logits - logits.max(axis, keepdims=True))
    out: Array = shifted / shifted.sum(axis, keepdims=True)
    return out
