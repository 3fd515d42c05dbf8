"""audioclas: AudioSet tagging with EfficientAT mn04, and custom classifiers on its embeddings.

``from audioclas import Tagger`` is the entry point. The heavy parts (PyTorch, PyAV) load on first
use, so importing a light module such as ``audioclas.errors`` stays cheap.
"""

import os
from typing import Any

# Decoding runs in a thread beside PyTorch's OpenMP workers. Spinning idle workers (OpenMP's default
# wait policy) then fight the decoder for the cores: on 2 busy cores a batch took 9x longer (278 ms
# against 32 ms per window). This only applies if torch has not been imported yet; a user's own
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
