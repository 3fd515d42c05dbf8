"""The summary of a finished training run that every edge reports: the CLI's ``--json``, a service job's
``result`` and the DEEPaaS adapter's answer (each adds what it shows beside it, such as the metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audioclas.training import TrainResult


def summary(result: TrainResult) -> dict[str, Any]:
    """The model saved, why training stopped, the best epoch, the timings (seconds, to the millisecond) and how many
    files' embeddings had to be computed."""
    return {
        "model": result.model.name,
        "stopped": result.stopped,
        "best_epoch": result.best_epoch,
        "timings": {key: round(value, 3) for key, value in result.timings.items()},
        "embeddings_computed": result.embeddings_computed,
    }
