"""Where audioclas finds and keeps its files; every location can be overridden from the environment.

| variable | what | default |
|---|---|---|
| ``AUDIOCLAS_WEIGHTS`` | the mn04 checkpoint (a file), or a folder holding it | the user cache |
| ``AUDIOCLAS_CACHE`` | downloaded weights and cached embeddings | ``platformdirs.user_cache_dir("audioclas")`` |
| ``AUDIOCLAS_HOME`` | trained models and training jobs | ``platformdirs.user_data_dir("audioclas")`` |
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """Folder for re-creatable files (downloaded weights, embedding cache)."""
    return Path(os.environ.get("AUDIOCLAS_CACHE") or platformdirs.user_cache_dir("audioclas"))


def home_dir() -> Path:
    """Folder for what users make and must not lose (trained models, job history)."""
    return Path(os.environ.get("AUDIOCLAS_HOME") or platformdirs.user_data_dir("audioclas"))
