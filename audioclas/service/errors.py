"""Errors that become a JSON answer with an HTTP status: the status of each kind of ``AudioclasError``, in one
mapping (an input's problem included: over a bound 413, not audio we can decode 415, else 400).

The core raises typed errors and knows nothing of HTTP; ``app.py`` answers any ``AudioclasError`` that reaches it
with ``http_status(error)``, so that a route never catches an error only to choose its status.
"""

from __future__ import annotations

from typing import Any

from audioclas.errors import AudioclasError, InputError, InputTooLarge, OptionError, UnsupportedInput, WeightsError
from audioclas.training.config import ConfigError
from audioclas.training.store import ModelError, ModelExists, ModelNotFound


class RequestError(Exception):
    """Refuse the request with ``status`` and a one-line ``message`` (plus optional extra JSON fields)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class ModelBusy(ModelError):
    """A training job is writing the model the request would change."""


class PretrainedModel(ModelError):
    """The request would change the pretrained model, which is not a saved model."""


# The status of each kind of error; a kind not listed takes its nearest listed base class's, else 400.
STATUS: dict[type[AudioclasError], int] = {
    OptionError: 422,  # a value out of range or unknown, e.g. a label the model does not have
    ConfigError: 422,
    ModelError: 422,  # a model name that is not allowed, or a saved model that cannot be used
    ModelNotFound: 404,
    ModelExists: 409,
    ModelBusy: 409,
    PretrainedModel: 400,
    WeightsError: 500,  # the server's own network is missing or damaged
    InputError: 400,  # an input that cannot be used, one of several in a request
    InputTooLarge: 413,
    UnsupportedInput: 415,
}


def http_status(error: AudioclasError) -> int:
    """The HTTP status of ``error``, by its type: its nearest class in ``STATUS``."""
    return next((STATUS[kind] for kind in type(error).__mro__ if kind in STATUS), 400)
