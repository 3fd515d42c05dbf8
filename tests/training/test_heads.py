"""The classifier heads (``audioclas.training.heads``): padding windows are ignored, resetting keeps the input
statistics."""

from __future__ import annotations

import pytest
import torch

from audioclas.training.heads import build_head

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
