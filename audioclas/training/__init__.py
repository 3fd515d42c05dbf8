"""Custom classifiers on EfficientAT embeddings: datasets, cached embeddings, heads, training, metrics, saved models.

    from audioclas.training import TrainConfig, train, evaluate, load_model
    result = train("my_dataset/", TrainConfig(name="birds", head="mlp", epochs=60))
    print(result.metrics["test"]["accuracy"])
    window_scores, clip_scores = load_model("birds").classify(windows)

See ``api`` for the hooks (progress, cancellation, log) and ``store`` for the saved-model format.
"""

from audioclas.training.api import Cancelled, EvalResult, TrainResult, evaluate, extract_embeddings, train
from audioclas.training.config import ConfigError, TrainConfig, make_config
from audioclas.training.dataset import Dataset, DatasetError, load_dataset
from audioclas.training.store import ModelError, SavedModel, delete_model, list_models, load_model
from audioclas.training.trainer import TrainEvent

__all__ = [
    "Cancelled", "ConfigError", "Dataset", "DatasetError", "EvalResult", "ModelError", "SavedModel", "TrainConfig",
    "TrainEvent", "TrainResult", "delete_model", "evaluate", "extract_embeddings", "list_models", "load_dataset",
    "load_model", "make_config", "train",
]
