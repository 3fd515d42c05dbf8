"""Custom classifiers on EfficientAT embeddings: datasets, cached embeddings, heads, training, metrics, saved models.

    from audioclas.training import TrainConfig, train, evaluate, load_model
    result = train("my_dataset/", TrainConfig(name="birds", head="mlp", epochs=60))
    print(result.metrics["test"]["accuracy"])
    window_scores, clip_scores = load_model("birds").classify(windows)

See ``run`` for the hooks (progress, cancellation, log) and ``store`` for the saved-model format. The modules, by
concern: ``dataset`` (layouts and checks), ``embeddings`` (and ``embedding_cache``), ``trainer`` (the loop; ``heads``,
``finetune``, ``augment``), ``metrics``, ``evaluation``, ``run`` (orchestration), ``store`` (model folders).
"""

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
