"""The PyTorch engine: the fused network behind the ``Engine`` protocol, and the tagger running it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audioclas import Tagger
from audioclas.engine.torch_engine import TorchEngine, torch_threads
from audioclas.model import load_efficientat
from audioclas.weights import WEIGHTS_SHA256

WINDOW = 320_000  # 10 s at 32 kHz


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(backend="torch")


def test_the_tagger_on_the_torch_backend_reproduces_the_reference(tagger: Tagger, reference) -> None:
    """What ``Tagger`` computed before the engine seam (the reference's scores and embeddings, window by window)."""
    assert tagger.engine.backend == "torch" and tagger.model_id == WEIGHTS_SHA256
    for clip in reference["clip_ids"]:
        wave = reference[f"{clip}__wave_int16"].astype(np.float32) / 32768
        n = max(1, len(wave) // WINDOW)  # windows cut from real audio only (the reference pads its last one)
        prediction = tagger.predict((wave, 32000), pad="zeros", top_k=0)
        np.testing.assert_allclose(prediction.window_scores[:n], reference[f"{clip}__win_probs"][:n], atol=1e-5)
        embedding = tagger.embed((wave, 32000), pad="zeros")
        np.testing.assert_allclose(embedding.windows[:n], reference[f"{clip}__win_embedding"][:n], atol=1e-4)


def test_run_is_the_module_in_inference_mode_on_its_own_threads(weights_path: Path, reference) -> None:
    module = load_efficientat(weights_path)
    engine = TorchEngine(module, WEIGHTS_SHA256, threads=1)
    wave = reference["robin__wave_int16"].astype(np.float32)[None, :WINDOW] / 32768
    before = torch.get_num_threads()
    logits, embeddings = engine.run(wave)
    assert torch.get_num_threads() == before  # the caller's setting is left as it was
    assert isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (1, 527)
    assert embeddings.shape == (1, 384)
    with torch_threads(1), torch.inference_mode():  # the same threads: the same order of sums
        expected = module(torch.from_numpy(wave))
    np.testing.assert_array_equal(logits, expected[0].numpy())
    np.testing.assert_array_equal(embeddings, expected[1].numpy())
