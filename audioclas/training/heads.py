"""Classifier heads on the backbone's window embeddings.

Every head maps a batch of clips, each a padded sequence of window embeddings ``x`` (B, W, 384) with a mask
(B, W) of real windows, to per-window logits (B, W, C) and clip logits (B, C):

- ``linear``: one linear layer per window; the clip's logits are the mean over its windows.
- ``mlp``: one hidden layer (ReLU, dropout) per window; mean over windows.
- ``attention``: a hidden layer, then per class a classifier and an attention score per window; the clip's
  logits are the attention-weighted sum of its window logits (softmax over windows, per class), so a short
  event in a long recording is not averaged away — a single-level form of the old system's multi-level attention.

Inputs are standardised with the training set's per-dimension mean and standard deviation, stored in the head
(buffers, saved with the weights), so the same head works on raw embeddings at prediction time.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

HeadKind = Literal["linear", "mlp", "attention"]
HEAD_KINDS = ("linear", "mlp", "attention")


class Head(nn.Module):
    mean: Tensor
    std: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_normalisation(self, windows: Tensor) -> None:
        """Standardise inputs with the statistics of these (training) windows (n, dim)."""
        self.mean.copy_(windows.mean(0))
        self.std.copy_(windows.std(0).clamp_min(1e-6))

    def reset_layers(self) -> None:
        """Fresh random weights in every layer; the input statistics stay."""
        for module in self.modules():
            reset = getattr(module, "reset_parameters", None)
            if module is not self and reset is not None:
                reset()

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(window logits (B, W, C), clip logits (B, C)) from windows (B, W, D) and mask (B, W)."""
        x = (x - self.mean) / self.std
        window_logits, pool_scores = self.score(x)
        if pool_scores is None:
            weights = mask.unsqueeze(-1).to(x.dtype)
            clip_logits = (window_logits * weights).sum(1) / weights.sum(1).clamp_min(1)
        else:
            pool_scores = pool_scores.masked_fill(~mask.unsqueeze(-1), float("-inf"))
            clip_logits = (pool_scores.softmax(1) * window_logits).sum(1)
        return window_logits, clip_logits

    def score(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(window logits, attention scores or None for a mean over windows)."""
        raise NotImplementedError


class LinearHead(Head):
    def __init__(self, dim: int, classes: int, dropout: float = 0.0) -> None:
        super().__init__(dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, classes)

    def score(self, x: Tensor) -> tuple[Tensor, None]:
        return self.classifier(self.dropout(x)), None


class MLPHead(Head):
    def __init__(self, dim: int, classes: int, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__(dim)
        self.hidden = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, classes)

    def score(self, x: Tensor) -> tuple[Tensor, None]:
        return self.classifier(self.hidden(x)), None


class AttentionHead(Head):
    def __init__(self, dim: int, classes: int, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__(dim)
        self.hidden = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, classes)
        self.attention = nn.Linear(hidden, classes)

    def score(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.hidden(x)
        return self.classifier(h), self.attention(h)


def build_head(kind: HeadKind, dim: int, classes: int, hidden: int = 256, dropout: float = 0.2) -> Head:
    if kind == "linear":
        return LinearHead(dim, classes, dropout)
    if kind == "mlp":
        return MLPHead(dim, classes, hidden, dropout)
    if kind == "attention":
        return AttentionHead(dim, classes, hidden, dropout)
    raise ValueError(f"unknown head {kind!r}: choose one of {', '.join(HEAD_KINDS)}")


def decay_parameters(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weight matrices and conv kernels, everything else): L2 applies to the first group only."""
    matrices: list[nn.Parameter] = []
    others: list[nn.Parameter] = []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (matrices if parameter.ndim >= 2 else others).append(parameter)
    return matrices, others
