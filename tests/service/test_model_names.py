"""Model names over HTTP: a name is only ever a model under the server's models folder (never a folder in its
working directory), unnamed training jobs get distinct names, and training options it does not have are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from service_server import Server, wait_for

from audioclas.training import TrainConfig, train
from audioclas.training.store import NAME_PATTERN

TRAIN = "/v2/models/audioset/train/"
JOB_SECONDS = 180


@pytest.fixture(scope="module")
def saved_model(data_root: Path) -> Path:
    """A real model, trained in this process on the tiny dataset (in the session's own home, removed after)."""
    config = TrainConfig(
        name="names-real", head="linear", epochs=3, early_stopping=0, val_fraction=0.0, tensorboard=False
    )
    path = train(data_root / "digits", config).model.path
    yield path
    shutil.rmtree(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data_root: Path, saved_model: Path) -> Server:
    base = tmp_path_factory.mktemp("names")
    shutil.copytree(saved_model, base / "home" / "models" / "served")
    shutil.copytree(saved_model, base / "cwd" / "stray")  # a whole model, but in the server's working directory
    with Server(base / "home", "--data-root", str(data_root), "--max-jobs", "1", cwd=base / "cwd") as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> httpx.Client:
    with server.client() as client:
        yield client


def test_a_model_folder_in_the_working_directory_is_not_a_model(api: httpx.Client, shared_dir: Path) -> None:
    served = api.get("/v2/models/served/")
    assert served.status_code == 200 and served.json()["classes"] == ["one", "zero"]  # the same model, by name
    assert api.get("/v2/models/stray/").status_code == 404
    audio = (shared_dir / "datasets/fsdd/recordings/0_george_0.wav").read_bytes()
    assert api.post("/v2/models/stray/predict/", files={"files": ("a.wav", audio)}).status_code == 404
    assert api.post("/v2/models/stray/train/", json={"dataset": "/x"}).status_code == 404
    assert "stray" not in [model["name"] for model in api.get("/v2/models/").json()["models"]]
    assert api.post("/v2/models/served/predict/", files={"files": ("a.wav", audio)}).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "%2E%2E",
        "..%2Fcwd%2Fstray",
        "%2E%2E%2F%2E%2E%2Fhome%2Fmodels%2Fserved",
        "stray%00",
        "a%00b",
        "%2Fetc",
        "-stray",
        ".stray",
    ],
)
def test_names_that_are_not_names_are_refused(api: httpx.Client, name: str) -> None:
    for response in (
        api.get(f"/v2/models/{name}/"),
        api.post(f"/v2/models/{name}/predict/", data={"url": "x"}),
        api.delete(f"/v2/models/{name}/"),
    ):
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)


def test_unnamed_jobs_started_together_get_distinct_names(api: httpx.Client, data_root: Path) -> None:
    body = {"dataset": str(data_root / "digits"), "epochs": 100000, "early_stopping": 0, "tensorboard": False}
    responses = [api.post(TRAIN, json=body) for _ in range(3)]  # back to back: within the same second
    assert [response.status_code for response in responses] == [202, 202, 202], [r.text for r in responses]
    jobs = [response.json() for response in responses]
    targets = [job["target"] for job in jobs]
    assert len(set(targets)) == 3 and all(NAME_PATTERN.fullmatch(target) for target in targets)
    for job in reversed(jobs):  # the queued ones first, then the running one
        assert api.delete(f"/v2/models/audioset/train/{job['id']}").status_code in (200, 202)

    def all_ended() -> bool:
        return all(
            api.get(f"/v2/models/audioset/train/{job['id']}").json()["status"] in ("cancelled", "failed", "succeeded")
            for job in jobs
        )

    assert wait_for(all_ended, JOB_SECONDS)


def test_device_is_refused(api: httpx.Client, data_root: Path) -> None:
    response = api.post(TRAIN, json={"dataset": str(data_root / "digits"), "device": "cpu"})
    assert response.status_code == 422 and "device" in response.json()["error"]
