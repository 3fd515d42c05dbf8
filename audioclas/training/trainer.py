"""The training loop for a head on fixed window embeddings.

Seeded (weights, shuffling and dropout follow ``config.seed``; the same data and config give the same model),
AdamW with ``l2`` as decoupled weight decay on weight matrices only, a cosine, step or constant schedule per
epoch, optional class weighting, selection of the best epoch on validation (macro-F1, or mAP for multi-label; ties
go to the lower validation loss), early stopping, checkpoints, TensorBoard scalars, and a clean stop on Ctrl-C or
on a cancellation flag that keeps the best weights. TensorBoard writing is in ``tensorboard_log``.
"""

from __future__ import annotations

import copy
import io
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from audioclas.fileio import atomic_open
from audioclas.training.config import TrainConfig
from audioclas.training.embedding_cache import cancelled
from audioclas.training.heads import Head, decay_parameters
from audioclas.training.metrics import headline, multilabel_metrics, single_label_metrics
from audioclas.training.tensorboard_log import TensorBoard


@dataclass(frozen=True)
class TrainEvent:
    """Progress of a training run: ``stage`` is "extract" (files), "train" (epochs) or "finetune" (batches)."""

    stage: str
    done: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class EmbeddedSplit:
    """The window embeddings of a split, flattened: clip i owns ``windows[offsets[i]:offsets[i + 1]]``."""

    windows: Tensor  # (total windows, D) float32
    offsets: Tensor  # (clips + 1,) int64
    targets: Tensor  # (clips,) int64 class indices, or (clips, C) float32 0/1 for multi-label

    @classmethod
    def build(
        cls, clip_windows: list[np.ndarray], labels: list[tuple[int, ...]], classes: int, multilabel: bool
    ) -> EmbeddedSplit:
        lengths = [len(windows) for windows in clip_windows]
        offsets = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int64)
        windows = (
            torch.from_numpy(np.concatenate(clip_windows).astype(np.float32)) if clip_windows else torch.zeros(0, 0)
        )
        if multilabel:
            targets = torch.zeros(len(labels), classes)
            for row, label_set in enumerate(labels):
                targets[row, list(label_set)] = 1.0
        else:
            targets = torch.tensor([label_set[0] for label_set in labels], dtype=torch.int64)
        return cls(windows, offsets, targets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def shuffled_batches(self, batch_size: int, generator: torch.Generator, pool: int = 32) -> list[Tensor]:
        """Random batches of clips with similar window counts (less padding): each run of ``pool`` batches of a
        random order is sorted by length and cut into batches, and the batches are shuffled."""
        order = torch.randperm(len(self), generator=generator)
        batches = []
        for start in range(0, len(order), batch_size * pool):
            run = order[start : start + batch_size * pool]
            run = run[torch.argsort(self.lengths[run], stable=True)]
            batches += list(torch.split(run, batch_size))
        return [batches[i] for i in torch.randperm(len(batches), generator=generator)]

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """Padded windows (B, W, D) and mask (B, W) of the clips in ``index``."""
        starts = self.offsets[index]
        lengths = self.offsets[index + 1] - starts
        positions = torch.arange(int(lengths.max()))
        mask = positions < lengths[:, None]
        gather = torch.where(mask, starts[:, None] + positions, starts[:, None])
        return self.windows[gather], mask


def predict_scores(
    head: Head, split: EmbeddedSplit, multilabel: bool, batch_size: int = 256
) -> tuple[np.ndarray, float]:
    """(clip scores (n, C): softmax or sigmoid, mean loss) of ``head`` on ``split``, in eval mode."""
    head.eval()
    scores, loss_sum = [], 0.0
    criterion = nn.BCEWithLogitsLoss(reduction="sum") if multilabel else nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        order = torch.argsort(split.lengths, stable=True)  # batches of similar lengths: little padding
        for index in torch.split(order, batch_size):
            _, logits = head(*split.batch(index))
            loss_sum += float(criterion(logits, split.targets[index]))
            scores.append(torch.sigmoid(logits) if multilabel else logits.softmax(-1))
    count = len(split) * (split.targets.shape[1] if multilabel else 1)
    result = torch.empty(len(split), len(scores[0][0]) if scores else 0)
    if scores:
        result[order] = torch.cat(scores)
    return result.numpy(), loss_sum / max(count, 1)


def split_metrics(
    scores: np.ndarray, split: EmbeddedSplit, classes: list[str], multilabel: bool, thresholds: np.ndarray | None = None
) -> dict[str, Any]:
    if multilabel:
        thresholds = np.full(len(classes), 0.5) if thresholds is None else thresholds
        return multilabel_metrics(split.targets.numpy().astype(np.int64), scores, classes, thresholds)
    return single_label_metrics(split.targets.numpy(), scores, classes)


def loss_function(config: TrainConfig, targets: Tensor, multilabel: bool, classes: int) -> nn.Module:
    """Cross-entropy (single-label) or binary cross-entropy (multi-label), weighted by class frequency if asked.

    ``balanced``: single-label class c weighs n / (C · n_c); multi-label positives of class c weigh
    negatives_c / positives_c (clamped to 1..100).
    """
    if multilabel:
        if config.class_weights == "balanced":
            positives = targets.sum(0)
            pos_weight = ((len(targets) - positives) / positives.clamp_min(1)).clamp(1.0, 100.0)
            return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        return nn.BCEWithLogitsLoss()
    if config.class_weights == "balanced":
        counts = torch.bincount(targets, minlength=classes).float()
        return nn.CrossEntropyLoss(weight=len(targets) / (classes * counts.clamp_min(1)))
    return nn.CrossEntropyLoss()


def make_optimizer(modules: list[tuple[nn.Module, float]], l2: float) -> torch.optim.AdamW:
    """AdamW over (module, learning rate) pairs; weight decay ``l2`` on weight matrices only."""
    groups = []
    for module, lr in modules:
        matrices, others = decay_parameters(module)
        groups += [
            {"params": matrices, "lr": lr, "weight_decay": l2},
            {"params": others, "lr": lr, "weight_decay": 0.0},
        ]
    return torch.optim.AdamW([group for group in groups if group["params"]], foreach=True)


def lr_factor(config: TrainConfig, epoch: int, epochs: int) -> float:
    """Learning-rate multiplier for ``epoch`` (0-based)."""
    if config.lr_schedule == "step":
        return config.lr_step_decay ** (epoch // config.lr_step_every)
    if config.lr_schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    return 1.0


def set_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], factor: float) -> float:
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor
    return float(optimizer.param_groups[0]["lr"])


@dataclass
class FitResult:
    best_state: dict[str, Tensor]
    best_epoch: int  # 1-based; 0 if no epoch finished
    epochs_run: int
    history: list[dict[str, float]]
    stopped: str  # "completed", "early stopping", "interrupted" or "cancelled"


def _tag(name: str) -> str:
    """TensorBoard tag of a history column: loss/train, loss/val, lr, val/accuracy, val/score…"""
    if name.endswith("_loss"):
        return f"loss/{name.removesuffix('_loss')}"
    return name.replace("val_", "val/", 1) if name.startswith("val_") else name


def _score_key(metrics: dict[str, float]) -> tuple[float, float]:
    return metrics["val_score"], -metrics["val_loss"]


def fit(
    head: Head,
    train: EmbeddedSplit,
    val: EmbeddedSplit | None,
    config: TrainConfig,
    classes: list[str],
    multilabel: bool,
    *,
    run_dir: Path | None = None,
    tensorboard: TensorBoard | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> FitResult:
    """Train ``head`` in place; on return it holds the best epoch's weights (by validation, else the last)."""
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    head.set_normalisation(train.windows)
    criterion = loss_function(config, train.targets, multilabel, len(classes))
    optimizer = make_optimizer([(head, config.lr)], config.l2)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    tensorboard = tensorboard or TensorBoard(None)
    history: list[dict[str, float]] = []
    best_state, best_key, best_epoch, stale = copy.deepcopy(head.state_dict()), None, 0, 0
    stopped = "completed"
    try:
        for epoch in range(config.epochs):
            lr = set_lr(optimizer, base_lrs, lr_factor(config, epoch, config.epochs))
            head.train()
            loss_sum, seen = 0.0, 0
            for index in train.shuffled_batches(config.batch_size, generator):
                _, logits = head(*train.batch(index))
                loss = criterion(logits, train.targets[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(index)
                seen += len(index)
                if cancelled(cancel):
                    stopped = "cancelled"
                    break
            if stopped == "cancelled":
                break
            metrics = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen}
            if val is not None and len(val):
                scores, metrics["val_loss"] = predict_scores(head, val, multilabel)
                evaluation = split_metrics(scores, val, classes, multilabel)
                metrics["val_score"] = headline(evaluation)
                for name in ("accuracy", "balanced_accuracy", "macro_f1", "mAP"):
                    if name in evaluation:
                        metrics[f"val_{name}"] = evaluation[name]
            history.append(metrics)
            tensorboard.scalars({_tag(name): value for name, value in metrics.items() if name != "epoch"}, epoch + 1)
            improved = "val_score" not in metrics or best_key is None or _score_key(metrics) > best_key
            if improved:
                best_state, best_epoch, stale = copy.deepcopy(head.state_dict()), epoch + 1, 0
                best_key = _score_key(metrics) if "val_score" in metrics else None
                if run_dir is not None:
                    save_checkpoint(run_dir / "checkpoints" / "best.pt", head, optimizer, metrics)
            else:
                stale += 1
            if run_dir is not None and config.checkpoint_every and (epoch + 1) % config.checkpoint_every == 0:
                save_checkpoint(run_dir / "checkpoints" / f"epoch_{epoch + 1:05d}.pt", head, optimizer, metrics)
            if on_event:
                on_event(TrainEvent("train", epoch + 1, config.epochs, metrics))
            if config.early_stopping and "val_score" in metrics and stale >= config.early_stopping:
                stopped = "early stopping"
                break
            if cancelled(cancel):
                stopped = "cancelled"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    head.load_state_dict(best_state)
    head.eval()
    return FitResult(best_state, best_epoch, len(history), history, stopped)


def save_checkpoint(path: Path, head: nn.Module, optimizer: torch.optim.Optimizer, metrics: dict[str, float]) -> None:
    buffer = io.BytesIO()  # torch.save into a file turns a full disk into an obscure RuntimeError; a write says it
    torch.save({"head": head.state_dict(), "optimizer": optimizer.state_dict(), "metrics": metrics}, buffer)
    with atomic_open(path, "wb") as stream:
        stream.write(buffer.getbuffer())
