"""Where saved models live and what they may be called: ``models_dir()``, the name rule, and looking a model up.

A model is named (a ``str``: only ever a folder under ``home_dir()/models``, whatever the current directory
holds) or given as a folder (a ``Path``, which only the command line makes from what its user typed: see
``model_ref``). The service and the DEEPaaS adapter only ever pass names.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime
from pathlib import Path

from audioclas.errors import AudioclasError
from audioclas.settings import home_dir

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ModelError(AudioclasError):
    """A saved model is missing, unreadable, or its name is not allowed."""


class ModelNotFound(ModelError):
    """There is no saved model of that name."""


class ModelExists(ModelError):
    """A model of that name exists, and overwriting it was not asked for."""


def models_dir() -> Path:
    return home_dir() / "models"


def default_name() -> str:
    """A fresh name: the time, and a random suffix so that runs started in the same second differ."""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ModelError(
            f"model name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def model_path(name: str) -> Path:
    return models_dir() / check_name(name)


def resolve_model(name: str) -> Path:
    """The folder of the saved model ``name``: only ever under ``models_dir()``, never a path."""
    folder = models_dir() / check_name(name)
    if not folder.is_dir():
        raise ModelNotFound(f"no saved model named {name!r} (see 'audioclas models list')")
    return folder


def model_folder(path: str | os.PathLike[str]) -> Path:
    """An explicitly given model folder (a path the command line's user typed): it must hold a model.json."""
    folder = Path(path)
    if not (folder / "model.json").is_file():
        raise ModelError(f"{folder} is not a saved model folder (no model.json)")
    return folder


def model_ref(text: str) -> str | Path:
    """How the command line reads a MODEL argument: a valid name is a saved model's name; anything else (a
    path with a '/', e.g. ``./birds``) is the folder of a model. A name never reaches into the current folder."""
    return text if NAME_PATTERN.fullmatch(text) else Path(text)
