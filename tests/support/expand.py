"""Helpers shared by the input tests (tests/inputs/): expanding inputs as a caller would, and a time bound."""

from __future__ import annotations

import threading

from audioclas.audio import load_audio
from audioclas.errors import InputError
from audioclas.inputs import InputLimits, open_sources

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
ROBIN_SAMPLES = 86357  # at 32 kHz


def expand(inputs, limits: InputLimits = InputLimits(), decode: bool = True, **options) -> list[tuple[str, str]]:
    """Every item as (name, "ok" or the problem). Sources are decoded inside the ``with``, as a caller would, and
    must be the robin call (unless ``decode`` is False); a source that fails to open gives its problem."""
    results = []
    with open_sources(inputs, limits, **options) as sources:
        for item in sources:
            try:
                if isinstance(item, InputError):
                    raise item
                assert not decode or len(load_audio(item)) == ROBIN_SAMPLES, item.name
                results.append((item.name, "ok"))
            except InputError as error:
                results.append((error.source, error.problem))
    return results


def within(seconds: float, call):
    """``call()``'s result, failing the test if it takes longer than ``seconds`` (it runs in a daemon thread, so that
    a call blocked forever cannot hang the test run)."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((call(), None))
        except Exception as error:
            outcome.append((None, error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    result, error = outcome[0]
    if error is not None:
        raise error
    return result
