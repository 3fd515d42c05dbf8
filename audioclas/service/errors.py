"""Errors that become a JSON answer with an HTTP status, and how an input's problem maps to a status."""

from __future__ import annotations

from typing import Any

from audioclas.errors import InputError


class RequestError(Exception):
    """Refuse the request with ``status`` and a one-line ``message`` (plus optional extra JSON fields)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


# Problems of an input (the texts of audioclas.sources / audio / predictor) that are not plain bad input.
_TOO_LARGE = ("larger than the limit", "more than the limit", "longer than the limit", "expands to more than",
              "too large for")
_UNSUPPORTED = ("not a recognised audio or video format", "has no audio stream", "playlists are not supported")


def input_status(error: InputError) -> int:
    """413 for an input over a bound, 415 for one that is not audio we can decode, else 400."""
    problem = error.problem
    if any(marker in problem for marker in _TOO_LARGE) or ("archive has" in problem and "more than" in problem):
        return 413
    if any(marker in problem for marker in _UNSUPPORTED):
        return 415
    return 400
