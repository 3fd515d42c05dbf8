"""The service's inference slots: every engine it runs (the pretrained one, fine-tuned backbones) shares them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from audioclas.engine import Embeddings, Engine, Logits, Waveforms, load_engine
from audioclas.predictions import LabelQuery, Prediction
from audioclas.service.predictor import AUDIOSET, Exclusive, Predictor
from audioclas.service.settings import ServiceSettings
from audioclas.windows import WindowRequest


class _Watched:
    """A real engine that records how many runs are inside it at once (and can make two meet there)."""

    def __init__(self, engine: Engine, meet: threading.Barrier | None = None) -> None:
        self.engine, self.meet = engine, meet
        self.identity, self.backend = engine.identity, engine.backend
        self.inside = self.most = 0
        self.lock = threading.Lock()

    def run(self, waveforms: Waveforms) -> tuple[Logits, Embeddings]:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            if self.meet is not None:
                self.meet.wait()
            time.sleep(0.05)  # a window in which another run would be seen
            return self.engine.run(waveforms)
        finally:
            with self.lock:
                self.inside -= 1


def _run_together(engine: Engine, runs: int) -> list[tuple[Logits, Embeddings]]:
    waves = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 32000)).astype(np.float32)
    results: list[tuple[Logits, Embeddings]] = []
    threads = [threading.Thread(target=lambda: results.append(engine.run(waves))) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_one_slot_lets_one_run_at_a_time_into_the_engine(weights_path: Path) -> None:
    engine = load_engine(weights_path, "torch", threads=1)
    watched = _Watched(engine)
    exclusive = Exclusive(watched, threading.Semaphore(1))
    assert (exclusive.identity, exclusive.backend) == (engine.identity, "torch")
    results = _run_together(exclusive, 4)
    assert len(results) == 4 and watched.most == 1
    # Two slots let two runs meet inside (they would wait at the barrier for ever behind one slot).
    meeting = _Watched(engine, threading.Barrier(2, timeout=30))
    assert len(_run_together(Exclusive(meeting, threading.Semaphore(2)), 2)) == 2 and meeting.most == 2


def test_the_service_runs_its_network_behind_its_slots(weights_path: Path, audio_dir: Path) -> None:
    """While the only slot is taken, a prediction waits; it completes as soon as the slot is free."""
    predictor = Predictor(ServiceSettings(inference_slots=1, weights=weights_path))
    clip = audio_dir / "pibble.ogg"
    results: list[Prediction | Exception] = []

    def predict() -> None:
        results.extend(predictor.predict(AUDIOSET, [("clip.ogg", clip)], LabelQuery(top_k=3), WindowRequest()))

    try:
        with predictor.slots:
            thread = threading.Thread(target=predict)
            thread.start()
            thread.join(2.0)
            assert thread.is_alive() and not results  # decoded, and waiting for the slot
        thread.join(60)
        assert len(results) == 1 and isinstance(results[0], Prediction) and results[0].source == "clip.ogg"
    finally:
        predictor.close()
