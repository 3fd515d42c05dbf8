"""Two small real custom models for tests that use one (batch jobs with --model): a frozen head on the pretrained
network and a fine-tuned one, trained in seconds on two FSDD digits (George's recordings, 5 a digit).

They are saved under the session's private ``AUDIOCLAS_HOME`` (tests/conftest.py); ``tiny_models`` trains each once
per session and returns their names.
"""

from __future__ import annotations

from pathlib import Path

from service_server import tiny_dataset

FROZEN, FINETUNED = "tiny-frozen", "tiny-finetuned"


def tiny_models(shared: Path, root: Path) -> tuple[str, str]:
    """(frozen-head model's name, fine-tuned model's name), trained now unless this session already did."""
    from audioclas.training import TrainConfig, train
    from audioclas.training.store import models_dir

    if (models_dir() / FROZEN).is_dir() and (models_dir() / FINETUNED).is_dir():
        return FROZEN, FINETUNED
    data = tiny_dataset(shared, root / "digits", per_class=5)
    fast = dict(epochs=10, early_stopping=0, val_fraction=0, tensorboard=False, overwrite=True)
    train(data, TrainConfig(name=FROZEN, head="linear", **fast))
    train(data, TrainConfig(name=FINETUNED, finetune=True, finetune_epochs=1, finetune_batch_size=10, **fast))
    return FROZEN, FINETUNED
