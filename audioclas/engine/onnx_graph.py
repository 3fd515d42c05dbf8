"""EfficientAT mn04 as an ONNX graph, built from a NumPy state dict (``engine.checkpoint``) without PyTorch.

The same network as ``audioclas.model`` with every BatchNorm folded into its conv (in float64, then float32):
convs with bias, ReLU / HardSwish, squeeze-excite as two 1x1 convs on the pooled map with a logistic sigmoid,
residual adds, global average pooling to the 384-d ``embedding`` and the two-layer head to the 527 ``logits``.
The input is either the waveform (B, N), with the log-mel front end in the graph (``onnx_frontend``), or the
log-mel itself (B, 1, 128, T).

``backbone`` leaves the ``Graph`` open, so that a caller can append nodes after the embedding (a classifier head)
before ``Graph.model``; ``build_model`` is the plain AudioSet network.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import onnx

from audioclas.architecture import BN_EPS, EMBEDDING_DIM, N_MELS, NUM_CLASSES
from audioclas.engine.checkpoint import State
from audioclas.engine.layout import Conv, SqueezeExcite, blocks, head_layers, last_conv, stem
from audioclas.engine.onnx_frontend import log_mel
from audioclas.engine.onnx_ops import Graph

Inputs = Literal["waveform", "log_mel"]


def build_model(state: State, inputs: Inputs = "waveform", metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """The network as an ONNX model: input ``waveform`` (B, N) or ``log_mel`` (B, 1, 128, T); outputs ``logits``
    (B, 527) and ``embedding`` (B, 384)."""
    graph = Graph()
    embedding = backbone(graph, state, inputs)
    logits = audioset_head(graph, state, embedding)
    return graph.model(
        {
            graph.rename(logits, "logits"): ["batch", NUM_CLASSES],
            graph.rename(embedding, "embedding"): ["batch", EMBEDDING_DIM],
        },
        metadata,
    )


def backbone(graph: Graph, state: State, inputs: Inputs = "waveform") -> str:
    """Add the input, the front end (for a waveform) and the network up to the pooled (B, 384) embedding."""
    if inputs == "waveform":
        x = log_mel(graph, graph.input("waveform", ["batch", "samples"]))
    else:
        x = graph.input("log_mel", ["batch", 1, N_MELS, "frames"])
    x = _conv(graph, state, stem(), x)
    for block in blocks():
        h = x
        for layer in block.layers:
            h = _conv(graph, state, layer, h) if isinstance(layer, Conv) else _squeeze_excite(graph, state, layer, h)
        x = graph.op("Add", x, h, name="residual") if block.residual else h
    x = _conv(graph, state, last_conv(), x)
    pooled = _mean(graph, x)
    return graph.op("Flatten", pooled, axis=1, name="embedding")


def audioset_head(graph: Graph, state: State, embedding: str) -> str:
    """Linear 384 -> 512, hardswish, Linear 512 -> 527 (dropout is off at inference): the AudioSet logits."""
    (hidden_name, _, _), (out_name, _, _) = head_layers()
    hidden = graph.op("HardSwish", _linear(graph, state, hidden_name, embedding))
    return _linear(graph, state, out_name, hidden)


def fold_batchnorm(state: State, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) float32 of the conv ``name`` with its BatchNorm ``name.1`` folded in, computed in float64."""
    weight = state[f"{name}.0.weight"].astype(np.float64)
    gamma, beta, mean, var = (
        state[f"{name}.1.{t}"].astype(np.float64) for t in ("weight", "bias", "running_mean", "running_var")
    )
    scale = gamma / np.sqrt(var + BN_EPS)
    return (weight * scale[:, None, None, None]).astype(np.float32), (beta - mean * scale).astype(np.float32)


def _conv(graph: Graph, state: State, conv: Conv, x: str) -> str:
    weight, bias = fold_batchnorm(state, conv.name)
    pad = (conv.kernel - 1) // 2
    y = graph.op(
        "Conv",
        x,
        graph.const(f"{conv.name}.weight", weight),
        graph.const(f"{conv.name}.bias", bias),
        name=conv.name,
        kernel_shape=[conv.kernel, conv.kernel],
        strides=[conv.stride, conv.stride],
        pads=[pad, pad, pad, pad],
        group=conv.groups,
    )
    if conv.activation is None:
        return y
    return graph.op("Relu" if conv.activation == "RE" else "HardSwish", y)


def _squeeze_excite(graph: Graph, state: State, se: SqueezeExcite, x: str) -> str:
    """x * sigmoid(fc2(relu(fc1(mean over H, W)))), the Linear layers as 1x1 convs on the (B, C, 1, 1) mean."""
    pooled = _mean(graph, x)
    squeezed = graph.op("Relu", _pointwise(graph, state, f"{se.name}.fc1", pooled))
    gate = graph.op("Sigmoid", _pointwise(graph, state, f"{se.name}.fc2", squeezed))
    return graph.op("Mul", x, gate, name="excite")


def _mean(graph: Graph, x: str) -> str:
    """(B, C, 1, 1) mean over H and W. Not GlobalAveragePool: onnxruntime's sums one float32 at a time, which on a
    long clip's early maps (32 x 2348) moved the logits by 9e-5; ReduceMean's vectorised sum stays within 4e-5."""
    return graph.op("ReduceMean", x, axes=[2, 3], keepdims=1)


def _pointwise(graph: Graph, state: State, name: str, x: str) -> str:
    weight = state[f"{name}.weight"]
    kernel = graph.const(f"{name}.weight", weight[:, :, None, None])
    return graph.op(
        "Conv", x, kernel, graph.const(f"{name}.bias", state[f"{name}.bias"]), name=name, kernel_shape=[1, 1]
    )


def _linear(graph: Graph, state: State, name: str, x: str) -> str:
    """y = x W^T + b: Gemm with the (out, in) weight as stored."""
    weight, bias = (
        graph.const(f"{name}.weight", state[f"{name}.weight"]),
        graph.const(f"{name}.bias", state[f"{name}.bias"]),
    )
    return graph.op("Gemm", x, weight, bias, name=name, transB=1)
