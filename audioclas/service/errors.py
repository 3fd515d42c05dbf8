"""Errors that become a JSON answer with an HTTP status, and the status of each kind of input problem."""

from __future__ import annotations

from typing import Any

from audioclas.errors import InputError, InputTooLarge, UnsupportedInput


class RequestError(Exception):
    """Refuse the request with ``status`` and a one-line ``message`` (plus optional extra JSON fields)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


# The HTTP status of each kind of input problem; any other InputError is plain bad input (400).
INPUT_STATUS: dict[type[InputError], int] = {InputTooLarge: 413, UnsupportedInput: 415}


def input_status(error: InputError) -> int:
    """413 for an input over a bound, 415 for one that is not audio we can decode, else 400: by the error's type."""
    return next((INPUT_STATUS[kind] for kind in type(error).__mro__ if kind in INPUT_STATUS), 400)
