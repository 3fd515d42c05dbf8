"""The service on an install with ``[serve]`` but without ``[train]``: the real server on loopback, with
``import torch`` failing in its process. Prediction works; starting a training job answers 501 with one line that
names the extra (the web page's training form posts to the same route and shows that line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_server import Server, tiny_dataset

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with Server(tmp_path_factory.mktemp("home"), without_torch=True) as server:
        yield server


def test_prediction_works_without_torch(server: Server, audio_dir: Path) -> None:
    with server.client() as api:
        response = api.post("/v2/models/audioset/predict/", files={"files": (ROBIN, (audio_dir / ROBIN).read_bytes())})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["labels"][0]["name"] == "Bird"


def test_training_answers_501_naming_the_extra(server: Server, shared_dir: Path, tmp_path: Path) -> None:
    dataset = tiny_dataset(shared_dir, tmp_path / "digits")
    with server.client() as api:
        response = api.post("/v2/models/audioset/train/", json={"dataset": str(dataset), "epochs": 1})
        history = api.get("/v2/models/audioset/train/")
    assert response.status_code == 501, response.text
    error = response.json()["error"]
    assert error == "training needs the [train] extra (torch not installed): pip install 'audioclas[train]'"
    assert history.status_code == 200 and history.json()["jobs"] == []  # nothing was queued
