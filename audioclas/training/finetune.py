"""Fine-tuning the whole network (``--finetune``) after the head was trained on frozen embeddings.

The network and a freshly initialised head of the same kind train together (the head trained on frozen embeddings
stays as the fallback: trained to convergence on clean input, it is over-confident on augmented input, and its first
gradients damage the pretrained features; on an unseen FSDD speaker it scored 76 % as a starting point, a fresh head
82 %). They train end to end through the same windows as prediction: each clip's training segment
(the whole clip, or a random ``max(window, 1 s)`` stretch of a longer one) is cut into windows every hop, every
window goes through the network, and the head pools them. Augmentation (``augment.py``) changes speed, delay, gain
and noise on the waveform and masks the spectrogram; mixup mixes the clips of a batch. BatchNorm statistics stay
frozen (batches are small). After every epoch the validation clips are embedded exactly as at prediction time; the
best epoch is kept, and if no epoch beats the frozen network on validation, the fine-tuned one is dropped (it is
still returned, so that its test metrics can be shown beside the frozen head's). Without validation clips nothing
decides between them: the last epoch is kept, and ``selection`` says so.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from audioclas.audio import SAMPLE_RATE, load_audio
from audioclas.engine.torch_engine import TorchEngine, module_sha256
from audioclas.errors import InputError
from audioclas.model import EfficientAT, load_efficientat
from audioclas.pipeline import run_network
from audioclas.training.augment import Augmentation, mixup_pairs
from audioclas.training.config import TrainConfig
from audioclas.training.cuts import clip_item, clip_sources
from audioclas.training.dataset import Dataset, Example
from audioclas.training.embedding_cache import cancelled
from audioclas.training.heads import Head
from audioclas.training.metrics import headline
from audioclas.training.tensorboard_log import TensorBoard
from audioclas.training.trainer import (
    EmbeddedSplit,
    FitResult,
    TrainEvent,
    loss_function,
    make_optimizer,
    predict_scores,
    split_metrics,
)
from audioclas.windows import WindowSettings, fill_window

SEGMENT_SECONDS = 1.0  # a training segment is at least this long (or one window, if longer)
WARMUP_STEPS = (
    30  # the learning rate rises over the first steps, so early noisy updates do not wreck pretrained features
)


def window_batch(waves: Tensor, settings: WindowSettings) -> Tensor:
    """(B, N) equal-length waveforms -> (B, windows, window samples), cut as ``windows.iter_windows`` cuts a clip."""
    size, hop = settings.in_samples(SAMPLE_RATE)
    if waves.shape[1] < size:
        return torch.stack([torch.from_numpy(fill_window(w.numpy(), size, settings.pad)) for w in waves])[:, None]
    windows = waves.unfold(1, size, hop)
    if (waves.shape[1] - size) % hop:  # a last window flush with the end, as at prediction time
        windows = torch.cat([windows, waves[:, None, -size:]], 1)
    return windows


NO_VALIDATION = "no validation split: the fine-tuned network was kept without a check"


@dataclass
class Finetuned:
    """What fine-tuning gave, and which network ``train`` keeps."""

    backbone: EfficientAT | None  # the best fine-tuned network (eval mode), or None if no epoch finished
    head_state: dict[str, Tensor] | None  # the head trained with it
    result: FitResult  # the run that is kept: the fine-tuned one, or the frozen one restored
    kept: bool  # True: the fine-tuned network (and ``head_state``) is the model; False: the frozen head is
    selection: str  # why, for a person


def _load(example: Example) -> np.ndarray | None:
    try:
        return load_audio(next(clip_sources([clip_item(example)])))
    except InputError:
        return None


def _validation_score(
    backbone: EfficientAT,
    head: Head,
    examples: list[Example],
    settings: WindowSettings,
    classes: list[str],
    multilabel: bool,
) -> float:
    backbone.eval()
    engine = TorchEngine(backbone, module_sha256(backbone))  # the caller's threads
    sources = clip_sources([clip_item(example) for example in examples])
    kept = [
        (example, output.embeddings)
        for example, output in zip(examples, run_network(engine, sources, settings))
        if not isinstance(output, InputError)
    ]
    split = EmbeddedSplit.build([w for _, w in kept], [e.labels for e, _ in kept], len(classes), multilabel)
    scores, _ = predict_scores(head, split, multilabel)
    return headline(split_metrics(scores, split, classes, multilabel))


def _train_mode(backbone: nn.Module, head: Head) -> None:
    backbone.train()
    head.train()
    for module in backbone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()  # frozen statistics


def finetune(
    head: Head,
    dataset: Dataset,
    config: TrainConfig,
    settings: WindowSettings,
    classes: list[str],
    multilabel: bool,
    frozen: FitResult,
    *,
    tensorboard: TensorBoard,
    on_event: Callable[[TrainEvent], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
    log: Callable[[str], None] = print,
) -> Finetuned:
    """Fine-tune network and ``head`` (in place); ``head`` ends with the kept state (see ``Finetuned``)."""
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    head.reset_layers()
    backbone = load_efficientat(fuse=False)
    augmentation = Augmentation(
        speed=config.speed,
        time_shift=config.time_shift,
        gain_db=config.gain_db,
        noise_snr=config.noise_snr,
        masks=config.spec_masks,
    )
    train_examples, val_examples = dataset.splits["train"], dataset.splits.get("val", [])
    length = round(max(settings.window, SEGMENT_SECONDS) * SAMPLE_RATE)
    targets = EmbeddedSplit.build(
        [np.zeros((1, 1))] * len(train_examples), [e.labels for e in train_examples], len(classes), multilabel
    ).targets
    criterion = loss_function(config, targets, multilabel, len(classes))
    optimizer = make_optimizer([(backbone, config.backbone_lr), (head, config.lr)], config.l2)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    frozen_score = frozen.history[frozen.best_epoch - 1].get("val_score", -math.inf)
    best_score, best_state, history, stopped = -math.inf, None, list(frozen.history), "completed"
    epochs, batches = config.finetune_epochs, math.ceil(len(train_examples) / config.finetune_batch_size)
    with ThreadPoolExecutor(2) as pool:
        try:
            for epoch in range(epochs):
                _train_mode(backbone, head)
                order = rng.permutation(len(train_examples))
                loss_sum = 0.0
                for number, start in enumerate(range(0, len(order), config.finetune_batch_size), 1):
                    index = order[start : start + config.finetune_batch_size]
                    step = epoch * batches + number - 1
                    for group, base in zip(optimizer.param_groups, base_lrs):  # warm-up, then cosine decay
                        warmup = min(1.0, (step + 1) / WARMUP_STEPS)
                        group["lr"] = base * warmup * 0.5 * (1 + math.cos(math.pi * step / (epochs * batches)))
                    audio = list(pool.map(_load, [train_examples[i] for i in index]))
                    keep = [k for k, clip in enumerate(audio) if clip is not None]
                    clips = [clip for clip in audio if clip is not None]
                    if not keep:
                        continue
                    segments = [augmentation.waveform(clip, length, rng) for clip in clips]
                    waves = torch.zeros(len(keep), max(map(len, segments)))
                    for row, segment in enumerate(segments):
                        waves[row, : len(segment)] = torch.from_numpy(segment)
                    batch_targets = targets[torch.as_tensor(index[keep])]
                    mix, partner = mixup_pairs(len(keep), config.mixup, rng)
                    windows = window_batch(mix * waves + (1 - mix) * waves[partner], settings)
                    mel = augmentation.spectrogram(backbone.front_end(windows.flatten(0, 1)), rng)
                    _, embeddings = backbone.net(mel)
                    _, logits = head(
                        embeddings.view(*windows.shape[:2], -1), torch.ones(windows.shape[:2], dtype=torch.bool)
                    )
                    loss = mix * criterion(logits, batch_targets) + (1 - mix) * criterion(
                        logits, batch_targets[partner]
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += float(loss.detach()) * len(keep)
                    if on_event:
                        on_event(
                            TrainEvent("finetune", number, batches, {"epoch": epoch + 1, "loss": float(loss.detach())})
                        )
                    if cancelled(cancel):
                        raise KeyboardInterrupt
                metrics = {
                    "epoch": len(history) + 1,
                    "finetune_epoch": epoch + 1,
                    "lr": optimizer.param_groups[0]["lr"],
                    "train_loss": loss_sum / len(train_examples),
                }
                if val_examples:
                    metrics["val_score"] = _validation_score(
                        backbone, head, val_examples, settings, classes, multilabel
                    )
                history.append(metrics)
                tensorboard.scalars({f"finetune/{k}": v for k, v in metrics.items() if k != "epoch"}, metrics["epoch"])
                log(
                    f"fine-tuning epoch {epoch + 1}/{epochs}: "
                    + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k not in ("epoch", "finetune_epoch"))
                )
                if not val_examples or metrics["val_score"] > best_score:  # without validation: the last epoch
                    best_score = metrics.get("val_score", best_score)
                    best_state = (
                        copy.deepcopy(backbone.state_dict()),
                        copy.deepcopy(head.state_dict()),
                        metrics["epoch"],
                    )
        except KeyboardInterrupt:
            stopped = "cancelled" if cancelled(cancel) else "interrupted"
    frozen_result = FitResult(frozen.best_state, frozen.best_epoch, len(history), history, stopped)
    if best_state is None:
        head.load_state_dict(frozen.best_state)
        head.eval()
        selection = "fine-tuning stopped before its first epoch finished: the frozen network was kept"
        log(selection)
        return Finetuned(None, None, frozen_result, False, selection)
    backbone.load_state_dict(best_state[0])
    backbone.eval()
    kept = not val_examples or best_score > frozen_score
    if not val_examples:
        selection = NO_VALIDATION
    else:
        selection = f"validation score {best_score:.4f} fine-tuned against {frozen_score:.4f} frozen: the " + (
            "fine-tuned network was kept" if kept else "frozen network was kept"
        )
    log(("warning: " if not val_examples else "") + selection)
    head.load_state_dict(best_state[1] if kept else frozen.best_state)
    head.eval()
    result = FitResult(best_state[1], best_state[2], len(history), history, stopped) if kept else frozen_result
    return Finetuned(backbone, best_state[1], result, kept, selection)
