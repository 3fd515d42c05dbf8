"""The classifier heads (``audioclas.training.heads``): padding windows are ignored, resetting keeps the input
statistics, and the NumPy forward of a saved head (``training.store.numpy_head``) is the PyTorch one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audioclas.training.heads import build_head
from audioclas.training.store.numpy_head import NumpyHead

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("kind", ["linear", "mlp", "attention"])
def test_heads_ignore_padding_windows(kind: str) -> None:
    torch.manual_seed(0)
    head = build_head(kind, 384, 4).eval()
    clip = torch.randn(1, 3, 384)
    padded = torch.cat([clip, torch.randn(1, 2, 384) * 100], 1)
    mask = torch.tensor([[True, True, True, False, False]])
    window_logits, clip_logits = head(clip, torch.ones(1, 3, dtype=torch.bool))
    _, padded_logits = head(padded, mask)
    torch.testing.assert_close(padded_logits, clip_logits)
    assert window_logits.shape == (1, 3, 4)
    if kind != "attention":  # mean pooling: the clip is the mean of its windows' logits
        torch.testing.assert_close(clip_logits, window_logits.mean(1))


@pytest.mark.parametrize("kind", ["linear", "mlp", "attention"])
def test_reset_layers_draws_new_weights_and_keeps_the_input_statistics(kind: str) -> None:
    head = build_head(kind, 384, 4)
    head.set_normalisation(torch.randn(50, 384) * 3 + 1)
    before = {name: value.clone() for name, value in head.state_dict().items()}
    head.reset_layers()
    after = head.state_dict()
    assert torch.equal(after["mean"], before["mean"]) and torch.equal(after["std"], before["std"])
    weights = [name for name in before if name.endswith("weight")]
    assert weights and all(not torch.equal(after[name], before[name]) for name in weights)


@pytest.mark.parametrize("kind", ["linear", "mlp", "attention"])
def test_the_numpy_forward_of_a_saved_head_is_the_torch_forward(kind: str, tmp_path: Path) -> None:
    """Random weights and input statistics, clips of different lengths padded with loud junk windows: the NumPy
    head reads the saved state dict and gives the torch head's window and clip logits."""
    torch.manual_seed(1)
    head = build_head(kind, 384, 5, hidden=32).eval()
    head.set_normalisation(torch.randn(40, 384) * 2 + 0.5)
    save_file(head.state_dict(), tmp_path / "head.safetensors")
    x = torch.randn(3, 6, 384) * 3
    mask = torch.tensor([[True] * 6, [True, True, False, False, False, False], [True] * 4 + [False] * 2])
    x[~mask] = 1000.0
    with torch.no_grad():
        expected_windows, expected_clips = head(x, mask)
    numpy_head = NumpyHead.load(tmp_path / "head.safetensors", kind, 384, 5, 32)
    window_logits, clip_logits = numpy_head.forward(x.numpy(), mask.numpy())
    real = mask.numpy()
    np.testing.assert_allclose(window_logits[real], expected_windows.numpy()[real], atol=1e-5, rtol=0)
    np.testing.assert_allclose(clip_logits, expected_clips.numpy(), atol=1e-5, rtol=0)
    assert clip_logits.dtype == np.float32


def test_a_saved_head_that_does_not_match_its_spec_is_refused(tmp_path: Path) -> None:
    save_file(build_head("mlp", 384, 5, hidden=32).state_dict(), tmp_path / "head.safetensors")
    with pytest.raises(ValueError, match=r"hidden\.0\.weight has shape"):
        NumpyHead.load(tmp_path / "head.safetensors", "mlp", 384, 5, 64)
    with pytest.raises(ValueError, match="holds tensors"):
        NumpyHead.load(tmp_path / "head.safetensors", "attention", 384, 5, 32)
