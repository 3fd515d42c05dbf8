"""Custom classifiers on EfficientAT embeddings: datasets, cached embeddings, heads, training, metrics, saved models.

    from audioclas.training import TrainConfig, train, evaluate, load_model
    result = train("my_dataset/", TrainConfig(name="birds", head="mlp", epochs=60))
    print(result.metrics["test"]["accuracy"])
    window_scores, clip_scores = load_model("birds").classify(windows)

See ``run`` for the hooks (progress, cancellation, log) and ``store`` for the saved-model format. The modules, by
concern: ``dataset`` (layouts and checks), ``embeddings`` (and ``embedding_cache``), ``trainer`` (the loop; ``heads``,
``finetune``, ``augment``), ``metrics``, ``evaluation``, ``run`` (orchestration), ``store`` (model folders).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audioclas.training.config import ConfigError, TrainConfig, make_config
    from audioclas.training.dataset import Dataset, DatasetError, load_dataset
    from audioclas.training.embeddings import Cancelled
    from audioclas.training.evaluation import EvalResult, evaluate
    from audioclas.training.run import TrainResult, extract_embeddings, train
    from audioclas.training.store import ModelError, SavedModel, delete_model, list_models, load_model
    from audioclas.training.trainer import TrainEvent

__all__ = [
    "Cancelled",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "EvalResult",
    "ModelError",
    "SavedModel",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "delete_model",
    "evaluate",
    "extract_embeddings",
    "list_models",
    "load_dataset",
    "load_model",
    "make_config",
    "train",
]

_HOMES = {
    "Cancelled": "audioclas.training.embeddings",
    "ConfigError": "audioclas.training.config",
    "Dataset": "audioclas.training.dataset",
    "DatasetError": "audioclas.training.dataset",
    "EvalResult": "audioclas.training.evaluation",
    "ModelError": "audioclas.training.store",
    "SavedModel": "audioclas.training.store",
    "TrainConfig": "audioclas.training.config",
    "TrainEvent": "audioclas.training.trainer",
    "TrainResult": "audioclas.training.run",
    "delete_model": "audioclas.training.store",
    "evaluate": "audioclas.training.evaluation",
    "extract_embeddings": "audioclas.training.run",
    "list_models": "audioclas.training.store",
    "load_dataset": "audioclas.training.dataset",
    "load_model": "audioclas.training.store",
    "make_config": "audioclas.training.config",
    "train": "audioclas.training.run",
}


def __getattr__(name: str) -> Any:
    """The public names load their modules on first use, so that ``audioclas.training.config`` (or the command
    line's help) does not import PyTorch and the whole training stack."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'audioclas.training' has no attribute {name!r}")
