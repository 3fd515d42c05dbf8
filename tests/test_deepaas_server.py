"""The real ``deepaas-run`` (DEEPaaS 2.6, the [deepaas] extra) serving audioclas through its entry point, on a free
loopback port, talked to over HTTP as a DEEPaaS user does: the model list, predictions, and training below
``$AUDIOCLAS_DATA_ROOT`` closed by a prediction with the model it trained. DEEPaaS runs the adapter in spawned
worker processes; train jobs report ``status`` ("running", "done", "error") and, when done, ``result.output``
(the adapter's answer) or, on an error, ``message`` (``str`` of the exception)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deepaas_server import DeepaasServer
from service_server import tiny_dataset, wait_for

PREDICT = "/v2/models/audioclas/predict/"
TRAIN = "/v2/models/audioclas/train/"
ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
SECRET = "hunter2-password"


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> dict[str, Path]:
    """A data root with a tiny FSDD dataset and a dataset uploaded as ``audioclas serve`` stores one, and a
    folder outside it."""
    from audioclas.service.datasets import add_dataset
    from audioclas.service.settings import ServiceSettings

    base = tmp_path_factory.mktemp("deepaas")
    root, outside = base / "root", base / "outside"
    tiny_dataset(shared_dir, root / "digits")
    outside.mkdir()
    (outside / "secret.csv").write_text(f"{SECRET},{SECRET}\nroot:x:0:0:{SECRET}\n")
    (root / "leak.csv").write_text(f"{SECRET},{SECRET}\nroot:x:0:0:{SECRET}\n")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    archive = base / "digits.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(root), "digits"], check=True)
    add_dataset(ServiceSettings(data_roots=(root,)), archive, "digits.tar", "web-digits")  # POST /v2/datasets/
    return {"base": base, "root": root, "outside": outside}


@pytest.fixture(scope="module")
def api(places: dict[str, Path]) -> Iterator[httpx.Client]:
    server = DeepaasServer(places["base"], {"AUDIOCLAS_DATA_ROOT": str(places["root"])})
    try:
        with server.client() as client:
            yield client
    finally:
        server.stop()


def finished(api: httpx.Client, started: httpx.Response, timeout: float = 300) -> dict:
    """The train job's last state, polled until it is no longer running."""
    assert started.status_code == 200, started.text
    uuid = started.json()["uuid"]

    def state() -> dict | None:
        job = api.get(f"{TRAIN}{uuid}").json()
        return job if job["status"] != "running" else None

    return wait_for(state, timeout, interval=0.5)


def predict(api: httpx.Client, clip: Path, **query: object) -> dict:
    with open(clip, "rb") as file:
        response = api.post(PREDICT, params=query, files={"data": (clip.name, file)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK"
    return body["predictions"]


def test_models_list_and_predict(api: httpx.Client, audio_dir: Path) -> None:
    models = api.get("/v2/models/").json()["models"]
    assert [model["name"] for model in models] == ["audioclas"]
    answer = predict(api, audio_dir / ROBIN, top_k=3)
    (result,) = answer["results"]
    assert answer["model"] == "audioset" and result["input"] == ROBIN
    assert result["labels"][0]["name"] == "Bird" and len(result["labels"]) == 3


def test_a_url_naming_a_server_path_is_refused(api: httpx.Client) -> None:
    for url in ("/etc/passwd", "file:///etc/passwd"):
        response = api.post(PREDICT, params={"url": url})
        assert response.status_code == 200, response.text
        (result,) = response.json()["predictions"]["results"]
        assert set(result) == {"input", "error"} and result["input"] == url, result  # nothing was read
        assert "only http and https URLs" in result["error"]


def test_train_below_the_data_root_then_predict_with_the_new_model(
    api: httpx.Client, places: dict[str, Path], shared_dir: Path
) -> None:
    """A model trained through DEEPaaS predicts through DEEPaaS: the loop closed over the same server."""
    query = {"dataset": str(places["root"] / "digits"), "name": "deepaas-digits", "head": "linear", "epochs": 30,
             "lr": 0.01, "val_fraction": 0.0, "tensorboard": False}  # fmt: skip
    job = finished(api, api.post(TRAIN, params=query))
    assert job["status"] == "done", job.get("message")
    output = job["result"]["output"]
    assert (output["model"], output["stopped"], output["embeddings_computed"]) == ("deepaas-digits", "completed", 12)
    recordings = shared_dir / "datasets" / "fsdd" / "recordings"
    # Files it was trained on: six clips a class fit the head, but are too few to judge it on new speech.
    for clip, digit in (("0_george_0.wav", "zero"), ("1_george_3.wav", "one")):
        answer = predict(api, recordings / clip, model="deepaas-digits", top_k=2)
        (result,) = answer["results"]
        assert answer["model"] == "deepaas-digits"
        assert result["labels"][0]["name"] == digit and result["labels"][0]["score"] > 0.9
        assert {label["name"] for label in result["labels"]} == {"zero", "one"}  # the custom classes, not AudioSet's


def test_an_uploaded_dataset_trains_by_its_name(api: httpx.Client, places: dict[str, Path]) -> None:
    query = {"dataset": "web-digits", "name": "from-upload", "head": "linear", "epochs": 1, "tensorboard": False}
    job = finished(api, api.post(TRAIN, params=query))
    assert job["status"] == "done", job.get("message")
    assert job["result"]["output"]["model"] == "from-upload"
    unknown = finished(api, api.post(TRAIN, params={**query, "dataset": "no-such-upload"}))
    assert unknown["status"] == "error"
    assert unknown["message"] == (
        "dataset 'no-such-upload' is neither an absolute path on the server nor the name of an uploaded dataset"
    )


@pytest.mark.parametrize(
    ("dataset", "extra", "fragment"),
    [
        ("{outside}/secret.csv", {}, "is outside the folders this server trains from ({root})"),
        ("{root}/linked/secret.csv", {}, "is outside the folders this server trains from ({root})"),
        ("{root}/../outside/secret.csv", {}, "is outside the folders this server trains from ({root})"),
        ("digits", {}, "dataset 'digits' is neither an absolute path"),  # relative: no upload of that name
        ("{root}/digits", {"from_embeddings": "{outside}"}, "from_embeddings {outside} is outside the folders"),
        ("{root}/digits", {"name": "audioset"}, "'audioset' is the name of the pretrained model"),
        ("{root}/digits", {"name": "../up"}, "model name '../up' is not allowed"),
    ],
)
def test_datasets_outside_the_data_root_are_refused(
    api: httpx.Client, places: dict[str, Path], dataset: str, extra: dict[str, str], fragment: str
) -> None:
    where = {"root": places["root"], "outside": places["outside"]}
    query = {key: value.format(**where) for key, value in {"dataset": dataset, **extra}.items()}
    job = finished(api, api.post(TRAIN, params=query))
    assert job["status"] == "error" and fragment.format(**where) in job["message"], job
    assert SECRET not in json.dumps(job)


def test_training_errors_name_lines_and_quote_no_file_contents(api: httpx.Client, places: dict[str, Path]) -> None:
    job = finished(api, api.post(TRAIN, params={"dataset": str(places["root"] / "leak.csv"), "epochs": 1}))
    assert job["status"] == "error", job
    assert "leak.csv:1" in job["message"] and "leak.csv:2" in job["message"]
    assert SECRET not in json.dumps(job) and "root:x" not in job["message"], job["message"]


def test_without_a_data_root_training_is_off(tmp_path: Path, places: dict[str, Path]) -> None:
    """DEEPaaS cannot tell the adapter where it listens, and has no token: without $AUDIOCLAS_DATA_ROOT (and no
    opt-in) it trains on nothing, and says which variable to set; predictions are unaffected."""
    server = DeepaasServer(tmp_path, {})
    try:
        with server.client() as api:
            job = finished(api, api.post(TRAIN, params={"dataset": str(places["root"] / "digits"), "epochs": 1}))
            assert job["status"] == "error"
            assert job["message"].startswith("training is off") and "$AUDIOCLAS_DATA_ROOT" in job["message"]
            assert "AUDIOCLAS_ALLOW_ANY_DATASET=1" in job["message"] and "\n" not in job["message"]
    finally:
        server.stop()


def test_refused_predictions_are_answered_and_leave_the_server_working(
    api: httpx.Client, audio_dir: Path, tmp_path: Path
) -> None:
    """DEEPaaS answers an exception from predict with a bare 500 that drops its message, and one that cannot be
    unpickled (ours with more than a message, such as ``InputError``) kills its worker pool's result thread, after
    which every request waits for ever: refusals are answers with an ``error``, and the next clip is tagged."""
    junk = tmp_path / "junk.ogg"
    junk.write_bytes(b"OggS" + bytes(range(256)) * 8)
    (result,) = predict(api, junk)["results"]
    assert result["input"] == "junk.ogg" and result["error"]
    for query, message in (
        ({"model": "no-such-model"}, "no-such-model"),
        ({"model": "../x"}, "model name '../x' is not allowed"),
        ({}, "send a file (data) or a url"),
    ):
        with open(audio_dir / ROBIN, "rb") as file:
            files = {"data": (ROBIN, file)} if query else None
            response = api.post(PREDICT, params=query, files=files)
        assert response.status_code == 200, response.text
        answer = response.json()["predictions"]
        assert message in answer["error"] and "\n" not in answer["error"] and answer["results"] == [], answer
    refused = api.post(PREDICT, params={"top_k": 0})  # DEEPaaS's own check of the declared range
    assert refused.status_code == 422 and "top_k" in refused.json()
    assert predict(api, audio_dir / ROBIN, top_k=1)["results"][0]["labels"][0]["name"] == "Bird"
