"""The model catalogue over HTTP: listing and describing models reads their model.json only, never their weights,
so a model whose weights are damaged is listed as before and fails only when it predicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from service_server import Server

from audioclas.training import TrainConfig, train

GARBAGE = b"\xff" * 4096  # not a safetensors file: opening it would fail


@pytest.fixture(scope="module")
def trained(data_root: Path) -> dict[str, Path]:
    """Two real models trained in this process on the tiny dataset: a head on the pretrained network, and a
    fine-tuned one (kept without validation: the dataset has no validation split)."""
    common = dict(epochs=3, early_stopping=0, val_fraction=0.0, tensorboard=False)
    frozen = train(data_root / "digits", TrainConfig(name="cat-frozen", head="linear", **common)).model
    tuned = train(
        data_root / "digits",
        TrainConfig(
            name="cat-tuned", head="linear", finetune=True, finetune_epochs=1, finetune_batch_size=12, **common
        ),
    ).model
    assert tuned.finetuned
    yield {"frozen": frozen.path, "tuned": tuned.path}
    shutil.rmtree(frozen.path)
    shutil.rmtree(tuned.path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, trained: dict[str, Path]) -> Server:
    """Five saved models: the two intact ones, and copies whose weights are garbage or absent."""
    home = tmp_path_factory.mktemp("catalogue") / "home"
    models = home / "models"
    for name, source in (
        ("frozen", "frozen"),
        ("tuned", "tuned"),
        ("bad-head", "frozen"),
        ("no-head", "frozen"),
        ("bad-backbone", "tuned"),
    ):
        shutil.copytree(trained[source], models / name)
    (models / "bad-head" / "head.safetensors").write_bytes(GARBAGE)
    (models / "no-head" / "head.safetensors").unlink()
    (models / "bad-backbone" / "backbone.safetensors").write_bytes(GARBAGE)
    with Server(home) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> httpx.Client:
    with server.client() as client:
        yield client


def test_listing_describes_models_without_reading_their_weights(api: httpx.Client) -> None:
    listed = {model["name"]: model for model in api.get("/v2/models/").json()["models"]}
    assert set(listed) == {"audioset", "frozen", "tuned", "bad-head", "no-head", "bad-backbone"}
    for damaged, intact in (("bad-head", "frozen"), ("bad-backbone", "tuned")):
        assert listed[intact]["classes"] == ["one", "zero"] and listed[intact]["problem"] is None
        assert {**listed[damaged], "name": intact} == listed[intact]  # garbage weights: described as before
        described = api.get(f"/v2/models/{damaged}/").json()
        assert described["card"].startswith(f"# cat\\-{intact}\n")  # one model described: with its card
        assert {**described, "card": None} == listed[damaged]
    assert listed["tuned"]["metadata"]["backbone"]["finetuned"] is True
    assert listed["frozen"]["metadata"]["backbone"]["finetuned"] is False
    absent = listed["no-head"]  # an absent file is seen without opening anything, and said
    assert absent["classes"] == ["one", "zero"] and "no-head" in absent["problem"]
    assert "missing head.safetensors" in absent["problem"]


def test_damaged_weights_fail_only_to_predict(api: httpx.Client, shared_dir: Path) -> None:
    audio = (shared_dir / "datasets/fsdd/recordings/0_george_0.wav").read_bytes()
    for name in ("frozen", "tuned"):
        response = api.post(f"/v2/models/{name}/predict/", files={"files": ("a.wav", audio)})
        assert response.status_code == 200 and response.json()["failed"] == 0, response.text
    for name, file in (
        ("bad-head", "SafetensorError"),
        ("no-head", "head.safetensors"),
        ("bad-backbone", "backbone.safetensors"),
    ):
        response = api.post(f"/v2/models/{name}/predict/", files={"files": ("a.wav", audio)})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert f"models/{name} is damaged" in error and file in error and "\n" not in error


def test_model_errors_carry_their_status(api: httpx.Client) -> None:
    for method, path, status, fragment in (
        ("GET", "/v2/models/ghost/", 404, "no model named 'ghost'"),
        ("GET", "/v2/models/.hidden/", 404, "no model named '.hidden'"),
        ("DELETE", "/v2/models/ghost/", 404, "no trained model named 'ghost'"),
        ("DELETE", "/v2/models/audioset/", 400, "cannot be deleted"),
        ("POST", "/v2/models/ghost/predict/", 404, "no model named 'ghost'"),
        ("POST", "/v2/models/ghost/train/", 404, "no model named 'ghost'"),
    ):
        response = api.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == status and response.json()["status"] == status, (path, response.text)
        assert fragment in response.json()["error"], (path, response.text)
    assert api.delete("/v2/models/bad-head/").json() == {"name": "bad-head", "deleted": True}
    assert api.get("/v2/models/bad-head/").status_code == 404
