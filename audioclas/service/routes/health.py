"""``/health``: is the server up, and how busy is it."""

from __future__ import annotations

import time

from fastapi import Depends

from audioclas import __version__
from audioclas.service.context import Service
from audioclas.service.routing import SlashRouter, service
from audioclas.service.schemas import Health

router = SlashRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness, version, and jobs queued and running")
def health(svc: Service = Depends(service)) -> Health:
    from audioclas.training.store import list_models

    jobs = {status: len(svc.store.with_status(status)) for status in ("queued", "running")}
    return Health(
        status="ok",
        version=__version__,
        models=1 + len(list_models()),
        jobs=jobs,
        uptime_seconds=round(time.monotonic() - svc.started, 3),
    )
