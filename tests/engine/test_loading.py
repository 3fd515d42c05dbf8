"""Choosing and building engines: the pretrained network, and a saved fine-tuned backbone checked by its sha256."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import save_file

from audioclas.engine.loading import BackboneError, Resolved, load_backbone_engine, load_engine, resolve_backend
from audioclas.engine.torch_engine import module_sha256
from audioclas.errors import OptionError
from audioclas.model import load_efficientat
from audioclas.weights import WEIGHTS_SHA256

WINDOW = 320_000  # 10 s at 32 kHz


@pytest.mark.unit
def test_the_seam_and_its_callers_import_no_backend() -> None:
    """Importing the engine package, the pipeline, the options and the tagger loads neither PyTorch nor ONNX Runtime:
    a backend is imported when an engine is built on it."""
    code = (
        "import sys, audioclas.engine, audioclas.engine.loading, audioclas.pipeline, audioclas.options, "
        "audioclas.tagger\n"
        "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.unit
def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(OptionError, match="backend must be one of auto, onnxruntime, torch, not 'tensorflow'"):
        resolve_backend("tensorflow")  # type: ignore[arg-type]  # what a caller without types may pass
    assert resolve_backend("torch") == "torch" and resolve_backend("onnxruntime") == "onnxruntime"


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_saved_backbone_loads_as_an_engine_only_with_its_sha256(
    weights_path: Path, tmp_path: Path, reference, backend: Resolved
) -> None:
    network = load_efficientat(weights_path, fuse=False)  # as fine-tuning saves it: BatchNorm not folded
    file = tmp_path / "backbone.safetensors"
    save_file(network.state_dict(), str(file))
    sha256 = module_sha256(network)
    engine = load_backbone_engine(file, sha256, backend, threads=1)
    assert (engine.identity, engine.backend) == (sha256, backend)
    wave = reference["robin__wave_int16"].astype(np.float32)[None, :WINDOW] / 32768
    pretrained = load_engine(weights_path, "torch", threads=1)
    assert pretrained.identity == WEIGHTS_SHA256
    # Against the pretrained network on PyTorch: the same backend to 1e-5, the other within the 1e-4.
    for got, expected in zip(engine.run(wave), pretrained.run(wave)):
        np.testing.assert_allclose(got, expected, atol=1e-5 if backend == "torch" else 1e-4)
    with pytest.raises(BackboneError, match=r"^backbone\.safetensors does not match the backbone sha256"):
        load_backbone_engine(file, WEIGHTS_SHA256, backend)
    file.write_bytes(b"not safetensors")
    with pytest.raises(BackboneError, match=r"^cannot load backbone\.safetensors \("):
        load_backbone_engine(file, sha256, backend)
