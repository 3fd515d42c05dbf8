"""Building an ``Engine``: for the pretrained weights (``load_engine``) or a saved fine-tuned backbone
(``load_backbone_engine``), on the backend asked for.

``"auto"`` is ONNX Runtime when it is installed (a plain install), else PyTorch. Each backend is imported only
when chosen, so that importing this module imports neither.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from audioclas.engine import BACKENDS, Backend, Engine
from audioclas.errors import AudioclasError, OptionError, WeightsError
from audioclas.pipeline import network_threads
from audioclas.weights import WEIGHTS_SHA256, resolve_weights

Resolved = Literal["onnxruntime", "torch"]


class BackboneError(AudioclasError):
    """A saved backbone that cannot be read or does not match its sha256 (one line, naming the file only)."""


def resolve_backend(backend: Backend) -> Resolved:
    """The backend ``backend`` means here: "auto" is ONNX Runtime when installed, else PyTorch."""
    if backend not in BACKENDS:
        raise OptionError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "auto":
        return backend
    return "onnxruntime" if importlib.util.find_spec("onnxruntime") else "torch"


def load_engine(weights: str | Path | None = None, backend: Backend = "auto", threads: int | None = None) -> Engine:
    """The pretrained network (``weights`` as in ``resolve_weights``, verified) on ``backend``, with ``threads``
    compute threads (default: every usable core but one, which the decoder uses)."""
    chosen = resolve_backend(backend)
    path = resolve_weights(weights)
    threads = threads or network_threads()
    if chosen == "torch":
        from audioclas.engine.torch_engine import TorchEngine
        from audioclas.model import load_efficientat

        return TorchEngine(load_efficientat(path), WEIGHTS_SHA256, threads)
    from audioclas.engine.onnx_engine import OnnxEngine

    return OnnxEngine.pretrained(path, WEIGHTS_SHA256, threads)


def load_backbone_engine(file: Path, sha256: str, backend: Backend = "auto", threads: int | None = None) -> Engine:
    """A fine-tuned backbone saved as safetensors (``training.store``), checked against ``sha256``; raises
    ``BackboneError`` if it cannot be read or does not match."""
    chosen = resolve_backend(backend)
    threads = threads or network_threads()
    if chosen == "torch":
        return _torch_backbone(file, sha256, threads)
    from audioclas.engine.checkpoint import read_safetensors, state_sha256
    from audioclas.engine.onnx_engine import OnnxEngine

    try:
        state = read_safetensors(file)
    except WeightsError:
        raise BackboneError(f"cannot load {file.name} (damaged, or not an EfficientAT backbone)") from None
    if state_sha256(state) != sha256:
        raise BackboneError(f"{file.name} does not match the backbone sha256 in model.json")
    return OnnxEngine.from_state(state, sha256, threads)


def _torch_backbone(file: Path, sha256: str, threads: int) -> Engine:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from audioclas.engine.torch_engine import TorchEngine, module_sha256
    from audioclas.model import EfficientAT

    model = EfficientAT()
    try:
        model.load_state_dict(load_file(file))
    except (OSError, RuntimeError, ValueError, SafetensorError) as error:
        raise BackboneError(f"cannot load {file.name} ({type(error).__name__})") from None
    if module_sha256(model) != sha256:
        raise BackboneError(f"{file.name} does not match the backbone sha256 in model.json")
    return TorchEngine(model.eval().fuse_for_inference(), sha256, threads)
