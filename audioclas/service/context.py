"""The ``Service``: what the routes of one app share (routes get it with ``Depends(routing.service)``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from audioclas.service.catalogue import Catalogue
from audioclas.service.jobs import JobStore
from audioclas.service.predictor import Predictor
from audioclas.service.settings import ServiceSettings
from audioclas.settings import home_dir


class Service:
    """What the routes share: settings, the predictor, the job store and its dispatcher, the model catalogue."""

    def __init__(self, settings: ServiceSettings) -> None:
        from audioclas.service.worker import Dispatcher

        self.settings = settings
        self.started = time.monotonic()
        self.predictor = Predictor(settings)
        folder = Path(settings.home or home_dir()) / "service"
        self.store = JobStore(folder / "jobs.sqlite3")
        self.dispatcher = Dispatcher(
            self.store, folder / "jobs", settings.max_jobs, settings.cancel_grace_seconds, settings.data_roots
        )
        self.catalogue = Catalogue(self.predictor, self.store)
        self.submit_lock = threading.Lock()  # no two jobs queued for the same model name

    def start(self) -> None:
        self.dispatcher.start()

    def stop(self) -> None:
        self.dispatcher.stop()
        self.predictor.close()
        self.store.close()
