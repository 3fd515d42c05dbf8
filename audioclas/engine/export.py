"""``audioclas export``: the whole tagger as one self-contained ONNX file for edge devices; no PyTorch.

The file takes ``waveform`` (batch, samples): 32 kHz mono float32 in [-1, 1], each row one window (10 s for the
AudioSet tagger, the model's own window for a custom one), the log-mel front end in the graph. It returns
``scores`` (batch, classes), one row per window; ``clip_scores`` (1, classes), the batch taken as the windows of
one clip and pooled as audioclas pools them (the max of the window scores for AudioSet, ``--aggregate max``, the
default; for a custom model its head's own pooling: the mean of the window logits, or attention, then the
activation); and ``embedding`` (batch, 384). Scores are the sigmoid of the logits for AudioSet and multi-label
models, a softmax over the classes for single-label ones.

A custom model's head (``training.store.numpy_head``: the stored mean/std standardisation, its linear layers) is
appended after the embedding; a fine-tuned model's own backbone replaces the pretrained weights, checked against
its sha256 first. Everything an edge user needs to use the file is in its ``metadata_props`` (``METADATA_KEYS``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from audioclas import __version__
from audioclas.architecture import EMBEDDING_DIM, MIN_SAMPLES, NUM_CLASSES, SAMPLE_RATE
from audioclas.engine.checkpoint import State, read_checkpoint, read_safetensors, state_sha256
from audioclas.engine.onnx_graph import audioset_head, backbone
from audioclas.engine.onnx_ops import Graph
from audioclas.errors import AudioclasError, WeightsError
from audioclas.labels import audioset_labels
from audioclas.weights import WEIGHTS_SHA256, resolve_weights

if TYPE_CHECKING:
    from audioclas.training.store import SavedModel

LICENCE = (
    "audioclas code and the EfficientAT mn04 weights: MIT; AudioSet class names and ids: CC BY 4.0 (Google); "
    "a custom model's head and fine-tuned weights: whatever terms its training data carry"
)
METADATA_KEYS = (
    "audioclas_version",
    "model",
    "classes",
    "multilabel",
    "activation",
    "clip_pooling",
    "thresholds",
    "sample_rate",
    "window_seconds",
    "hop_seconds",
    "pad",
    "min_samples",
    "backbone_sha256",
    "pretrained_sha256",
    "finetuned",
    "licence",
)


class ExportError(AudioclasError):
    """The export cannot be done (the output exists, a backbone does not match): one line, naming the file."""


@dataclass(frozen=True)
class Exported:
    path: Path
    size: int  # bytes
    classes: int
    metadata: dict[str, str]


def export_onnx(
    output: Path, model: SavedModel | None = None, weights: str | Path | None = None, force: bool = False
) -> Exported:
    """Write the AudioSet tagger (``model`` None) or ``model`` as one ONNX file at ``output``, atomically; an
    existing file is replaced only with ``force``. ``weights``: the pretrained checkpoint (as ``resolve_weights``)."""
    output = Path(output)
    _check_output(output, force)
    graph = Graph()
    if model is None:
        state = _pretrained(weights)
        embedding = backbone(graph, state, "waveform")
        activation, pooling = "sigmoid", "max"
        scores = _activate(graph, audioset_head(graph, state, embedding), activation)
        clip = graph.op("ReduceMax", scores, axes=[0], keepdims=1)
        metadata = _audioset_metadata()
    else:
        state = _backbone_of(model, weights)
        embedding = backbone(graph, state, "waveform")
        activation = "sigmoid" if model.multilabel else "softmax"
        logits, clip_logits, pooling = classifier_head(graph, model, embedding)
        scores, clip = _activate(graph, logits, activation), _activate(graph, clip_logits, activation)
        metadata = _custom_metadata(model)
    classes = len(json.loads(metadata["classes"]))
    metadata.update(
        audioclas_version=__version__,
        activation=activation,
        clip_pooling=pooling,
        sample_rate=str(SAMPLE_RATE),
        min_samples=str(MIN_SAMPLES),
        licence=LICENCE,
    )
    proto = graph.model(
        {
            graph.rename(scores, "scores"): ["batch", classes],
            graph.rename(clip, "clip_scores"): [1, classes],
            graph.rename(embedding, "embedding"): ["batch", EMBEDDING_DIM],
        },
        {key: metadata[key] for key in METADATA_KEYS},
    )
    proto.producer_version = __version__
    proto.doc_string = __doc__ or ""
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    _write(output, data, force)
    return Exported(output, len(data), classes, metadata)


def _pretrained(weights: str | Path | None) -> State:
    return read_checkpoint(resolve_weights(weights))  # resolve_weights checked its sha256


def _backbone_of(model: SavedModel, weights: str | Path | None) -> State:
    """The network whose embeddings ``model``'s head reads: its own fine-tuned one, or the pretrained one."""
    if not model.finetuned:
        if model.backbone_sha256 != WEIGHTS_SHA256:
            raise ExportError(f"model {model.name!r} was trained on another backbone ({model.backbone_sha256[:12]}…)")
        return _pretrained(weights)
    file = model.path / "backbone.safetensors"
    try:
        state = read_safetensors(file)
    except WeightsError:
        raise ExportError(f"saved model {model.path} is damaged: cannot load {file.name}") from None
    if state_sha256(state) != model.backbone_sha256:
        raise ExportError(f"saved model {model.path} is damaged: {file.name} does not match its sha256 in model.json")
    return state


def classifier_head(graph: Graph, model: SavedModel, embedding: str) -> tuple[str, str, str]:
    """(window logits (B, C), clip logits (1, C), pooling name): ``NumpyHead.forward`` with the batch as windows."""
    tensors = model.head.tensors
    x = graph.op(
        "Div",
        graph.op("Sub", embedding, graph.const("head.mean", tensors["mean"])),
        graph.const("head.std", tensors["std"]),
        name="standardised",
    )
    if model.head.kind != "linear":
        x = graph.op("Relu", _linear(graph, tensors, "hidden.0", x))
    logits = _linear(graph, tensors, "classifier", x)
    if model.head.kind == "attention":
        weights = graph.op("Softmax", _linear(graph, tensors, "attention", x), axis=0, name="attention_weights")
        pooled = graph.op("ReduceSum", graph.op("Mul", weights, logits), graph.const("axes", [0]), keepdims=1)
        return logits, pooled, "attention"
    return logits, graph.op("ReduceMean", logits, axes=[0], keepdims=1), "mean"


def _linear(graph: Graph, tensors: dict[str, np.ndarray], layer: str, x: str) -> str:
    weight, bias = (
        graph.const(f"head.{layer}.weight", tensors[f"{layer}.weight"]),
        graph.const(f"head.{layer}.bias", tensors[f"{layer}.bias"]),
    )
    return graph.op("Gemm", x, weight, bias, name=f"head.{layer}", transB=1)


def _activate(graph: Graph, logits: str, activation: str) -> str:
    if activation == "sigmoid":
        return graph.op("Sigmoid", logits)
    return graph.op("Softmax", logits, axis=1)


def _audioset_metadata() -> dict[str, str]:
    labels = audioset_labels()
    assert len(labels) == NUM_CLASSES
    return {
        "model": "audioset",
        "classes": json.dumps([{"index": x.index, "id": x.id, "name": x.name} for x in labels], ensure_ascii=False),
        "multilabel": "true",
        "thresholds": "null",
        "window_seconds": "10.0",
        "hop_seconds": "10.0",
        "pad": "loop",
        "backbone_sha256": WEIGHTS_SHA256,
        "pretrained_sha256": WEIGHTS_SHA256,
        "finetuned": "false",
    }


def _custom_metadata(model: SavedModel) -> dict[str, str]:
    classes = [{"index": index, "id": None, "name": name} for index, name in enumerate(model.classes)]
    thresholds = model.thresholds.tolist() if model.thresholds is not None else None
    return {
        "model": model.name,
        "classes": json.dumps(classes, ensure_ascii=False),
        "multilabel": json.dumps(model.multilabel),
        "thresholds": json.dumps(thresholds),
        "window_seconds": str(float(model.window)),
        "hop_seconds": str(float(model.hop if model.hop is not None else model.window)),
        "pad": model.pad,
        "backbone_sha256": model.backbone_sha256,
        "pretrained_sha256": model.pretrained_sha256,
        "finetuned": json.dumps(model.finetuned),
    }


def _check_output(output: Path, force: bool) -> None:
    """Before any work: refuse an output that exists (unless ``force``) or that is not a file."""
    if output.is_dir():
        raise ExportError(f"{output} is a folder: give the file to write")
    if output.exists() or output.is_symlink():
        if not force:
            raise ExportError(f"{output} exists: use --force to replace it")
        if not output.is_file():
            raise ExportError(f"{output} is not a regular file: refusing to replace it")


def _write(output: Path, data: bytes, force: bool) -> None:
    """Write ``data`` to a temporary file beside ``output``, then move it into place: a hard link (which fails if
    ``output`` appeared meanwhile) unless ``force``, a rename with it. A crash never leaves a partial file."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)
        if force:
            os.replace(tmp, output)
            return
        try:
            os.link(tmp, output)
        except FileExistsError:
            raise ExportError(f"{output} exists: use --force to replace it") from None
        except OSError:  # a file system without hard links (FAT, some mounts): check, then rename
            if output.exists():
                raise ExportError(f"{output} exists: use --force to replace it") from None
            os.replace(tmp, output)
    except OSError as error:
        if error.filename in (None, tmp):  # name the file the user asked for, not the temporary one
            raise OSError(error.errno, error.strerror, str(output)) from None
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)
