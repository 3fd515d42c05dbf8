"""audioclas: AudioSet tagging with EfficientAT mn04, and custom classifiers on its embeddings.

``from audioclas import Tagger`` is the entry point. The heavy parts (PyTorch, PyAV) load on first
use, so importing a light module such as ``audioclas.errors`` stays cheap.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["AudioclasError", "ClipEmbedding", "InputError", "LabelScore", "Prediction", "Tagger", "WindowPrediction"]

_HOMES = {
    "AudioclasError": "audioclas.errors",
    "InputError": "audioclas.errors",
    "LabelScore": "audioclas.predictions",
    "Prediction": "audioclas.predictions",
    "WindowPrediction": "audioclas.predictions",
    "ClipEmbedding": "audioclas.tagger",
    "Tagger": "audioclas.tagger",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'audioclas' has no attribute {name!r}")
