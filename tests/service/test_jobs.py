"""Training jobs over HTTP: real training on a tiny FSDD subset in worker processes, cancel, restarts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from annotated import raven, recording
from service_server import Server, wait_for

TRAIN = "/v2/models/audioset/train/"
JOB_SECONDS = 180  # a worker imports torch and loads the network before it trains: slow on a busy machine
LONG = {"epochs": 100000, "early_stopping": 0, "val_fraction": 0.0, "tensorboard": False}  # runs until stopped


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Server:
    home = tmp_path_factory.mktemp("jobs") / "home"
    with Server(home, "--data-root", str(data_root), "--max-jobs", "1") as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> httpx.Client:
    with server.client() as client:
        yield client


def job_status(api: httpx.Client, model: str, job_id: str) -> dict:
    response = api.get(f"/v2/models/{model}/train/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_until(api: httpx.Client, job: dict, *statuses: str, stage: str | None = None) -> dict:
    def reached() -> dict | None:
        current = job_status(api, job["model"], job["id"])
        if current["status"] in statuses and (stage is None or (current["progress"] or {}).get("stage") == stage):
            return current
        return None

    return wait_for(reached, JOB_SECONDS)


def worker_pid(job: dict) -> int:
    (pid,) = [int(m.group(1)) for line in job["log"] for m in [re.search(r"worker process (\d+)", line)] if m]
    return pid


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # a zombie has stopped too


def test_train_predict_retrain_delete(api: httpx.Client, data_root: Path, shared_dir: Path) -> None:
    response = api.post(
        TRAIN,
        json={
            "dataset": str(data_root / "digits"),
            "name": "digits",
            "epochs": 30,
            "lr": 0.01,
            "val_fraction": 0.0,
            "head": "linear",
        },
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["status"], job["model"], job["target"], job["config"]["epochs"]) == ("queued", "audioset", "digits", 30)

    done = wait_until(api, job, "succeeded", "failed")
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"] == {"stage": "train", "done": 30, "total": 30}
    assert [row["epoch"] for row in done["history"]] == list(range(1, 31))
    assert done["result"]["model"] == "digits" and done["result"]["embeddings_computed"] == 12
    assert any("saved model 'digits'" in line for line in done["log"]) and done["started"] and done["finished"]
    assert wait_for(lambda: process_gone(worker_pid(done)), 10)

    model = api.get("/v2/models/digits/").json()
    assert (model["kind"], model["classes"]) == ("custom", ["one", "zero"])
    assert model["metadata"]["training"]["epochs_run"] == 30
    assert model["card"].startswith("# digits\n") and "| one | 6 |" in model["card"]  # written by the job
    assert "digits" in [m["name"] for m in api.get("/v2/models/").json()["models"]]
    recordings = shared_dir / "datasets" / "fsdd" / "recordings"
    # Files it was trained on: six clips a class fit the head, but are too few to judge it on new speech.
    files = [("files", (name, (recordings / name).read_bytes())) for name in ("0_george_0.wav", "1_george_3.wav")]
    results = api.post("/v2/models/digits/predict/", files=files, data={"with_audioset": "true"}).json()["results"]
    assert [r["labels"][0]["name"] for r in results] == ["zero", "one"]
    assert all(r["labels"][0]["score"] > 0.9 for r in results)
    assert len(results[0]["audioset"]["labels"]) == 5 and results[0]["audioset"]["labels"][0]["id"].startswith("/m/")

    assert [j["id"] for j in api.get(TRAIN).json()["jobs"]] == [job["id"]]
    assert [j["id"] for j in api.get("/v2/models/digits/train").json()["jobs"]] == [job["id"]]

    retrain = api.post("/v2/models/digits/train/", json={"epochs": 3})  # dataset and options from the saved model
    assert retrain.status_code == 202, retrain.text
    again = wait_until(api, retrain.json(), "succeeded", "failed")
    assert again["status"] == "succeeded", again["error"]
    assert again["config"]["data"] == str(data_root / "digits") and again["result"]["embeddings_computed"] == 0
    assert api.get("/v2/models/digits/").json()["metadata"]["training"]["epochs_run"] == 3

    assert api.delete("/v2/models/digits/").json() == {"name": "digits", "deleted": True}
    assert api.get("/v2/models/digits/").status_code == 404
    assert api.post("/v2/models/digits/predict/", files=files).status_code == 404
    assert len(api.get("/v2/models/digits/train/").json()["jobs"]) == 2  # the history outlives the model


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"dataset": "/definitely/not/here"}, 400, "outside the folders"),
        ({"dataset": "relative/path"}, 422, "absolute path"),
        ({}, 422, "dataset"),
        ({"dataset": "{root}/missing"}, 400, "does not exist"),
        ({"dataset": "{root}/digits", "epochz": 3}, 422, "epochz"),
        ({"dataset": "{root}/digits", "epochz": 3}, 422, "unknown option 'epochz' (did you mean 'epochs'?)"),
        (
            {"dataset": "{root}/digits", "finetune": True, "from_embeddings": "{root}/digits"},
            422,
            "finetune needs the audio",
        ),
        ({"dataset": "{root}/digits", "epochs": 0}, 422, "epochs must be 1..100000"),
        ({"dataset": "{root}/digits", "head": "transformer"}, 422, "head must be"),
        ({"dataset": "{root}/digits", "epochs": "many"}, 422, "epochs"),
        ({"dataset": "{root}/digits", "name": "audioset"}, 422, "pretrained model"),
        ({"dataset": "{root}/digits", "name": "../escape"}, 422, "not allowed"),
    ],
)
def test_bad_train_requests(api: httpx.Client, data_root: Path, body: dict, status: int, fragment: str) -> None:
    body = {key: value.format(root=data_root) if isinstance(value, str) else value for key, value in body.items()}
    response = api.post(TRAIN, json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert api.post("/v2/models/ghost/train/", json={"dataset": str(data_root / "digits")}).status_code == 404


def test_an_invalid_dataset_fails_its_job_with_every_problem(
    api: httpx.Client, data_root: Path, shared_dir: Path
) -> None:
    broken = data_root / "broken"
    (broken / "recordings").mkdir(parents=True)
    for name in ("0_george_0.wav", "1_george_0.wav"):
        (broken / "recordings" / name).write_bytes((shared_dir / "datasets/fsdd/recordings" / name).read_bytes())
    (broken / "classes.txt").write_text("zero\none\n")
    (broken / "train.txt").write_text(
        "recordings/0_george_0.wav 0\nrecordings/1_george_0.wav 1\nrecordings/gone.wav 0\nrecordings/0_george_0.wav 7\n"
    )
    job = api.post(TRAIN, json={"dataset": str(broken), "name": "broken"}).json()
    failed = wait_until(api, job, "succeeded", "failed")
    assert failed["status"] == "failed"
    assert "train.txt:3: file not found" in failed["error"] and "train.txt:4: label" in failed["error"], failed["error"]
    assert "gone.wav" not in failed["error"]  # the service names the line, never its text
    assert api.get("/v2/models/broken/").status_code == 404


def test_train_from_annotated_recordings(api: httpx.Client, data_root: Path, shared_dir: Path) -> None:
    """Recordings with Raven tables (label column 'Species'): a job lists every problem without quoting the tables or
    naming unknown files; fixed, it trains a model with a background class from the unannotated stretches."""
    fsdd, folder = shared_dir / "datasets" / "fsdd", data_root / "annotated"
    for number in range(3):
        digits = [(digit, 10 + 3 * number + k) for k, digit in enumerate([0, 1, 0])]
        raven(folder / f"rec{number}.selections.txt", recording(fsdd, folder / f"rec{number}.wav", digits), "Species")
    table = folder / "rec0.selections.txt"
    good = table.read_text()
    table.write_text(good + "9\tSpectrogram 1\t1\t1.0\tsoon\t0\t4000\tzero\n")
    (folder / "rec1.selections.txt").write_text(
        (folder / "rec1.selections.txt").read_text().replace("Species", "Secret")
    )
    options = {
        "dataset": str(folder),
        "label_column": "Species",
        "background": True,
        "epochs": 30,
        "tensorboard": False,
    }
    failed = wait_until(api, api.post(TRAIN, json={**options, "name": "annotated"}).json(), "succeeded", "failed")
    assert failed["status"] == "failed"
    assert "rec0.selections.txt:8: End Time (s) is not a number" in failed["error"], failed["error"]
    assert "rec1.selections.txt:1: header lacks column(s) Species" in failed["error"]
    assert "soon" not in failed["error"] and "Secret" not in failed["error"]

    table.write_text(good)
    (folder / "rec1.selections.txt").write_text(
        (folder / "rec1.selections.txt").read_text().replace("Secret", "Species")
    )
    done = wait_until(api, api.post(TRAIN, json={**options, "name": "annotated"}).json(), "succeeded", "failed")
    assert done["status"] == "succeeded", done["error"]
    model = api.get("/v2/models/annotated/").json()
    assert model["classes"] == ["background", "one", "zero"]


def test_cancel_a_queued_and_a_running_job(api: httpx.Client, data_root: Path) -> None:
    running = api.post(TRAIN, json={"dataset": str(data_root / "digits"), "name": "long", **LONG}).json()
    running = wait_until(api, running, "running", stage="train")
    queued = api.post(TRAIN, json={"dataset": str(data_root / "digits"), "name": "next"}).json()
    assert job_status(api, "next", queued["id"])["status"] == "queued"  # one job at a time
    assert api.post(TRAIN, json={"dataset": str(data_root / "digits"), "name": "long"}).status_code == 409

    cancelled = api.delete(f"/v2/models/audioset/train/{queued['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    stop = api.delete(f"/v2/models/audioset/train/{running['id']}")
    assert stop.status_code in (200, 202), stop.text
    stopped = wait_until(api, running, "cancelled", "failed", "succeeded")
    assert stopped["status"] == "cancelled" and stopped["cancel_requested"]
    assert stopped["result"]["stopped"] == "cancelled"  # the best epoch so far was kept, as on Ctrl-C
    assert stopped["history"] and stopped["history"][-1]["epoch"] < 100000
    assert wait_for(lambda: process_gone(worker_pid(stopped)), 10)
    assert api.delete(f"/v2/models/audioset/train/{running['id']}").status_code == 409  # already ended
    assert api.get("/health").json()["jobs"] == {"queued": 0, "running": 0}


def test_restarts_mark_running_jobs_interrupted(tmp_path: Path, data_root: Path) -> None:
    home = tmp_path / "home"
    dataset = str(data_root / "digits")
    crashed = Server(home).start()
    with crashed.client() as api:
        first = wait_until(
            api, api.post(TRAIN, json={"dataset": dataset, "name": "a", **LONG}).json(), "running", stage="train"
        )
    crashed.kill()  # SIGKILL: no clean-up at all; the orphaned worker notices and exits
    assert wait_for(lambda: process_gone(worker_pid(first)), 10)

    with Server(home) as restarted, restarted.client() as api:
        after_crash = job_status(api, "a", first["id"])
        assert after_crash["status"] == "interrupted"
        assert "the server stopped while this job was running" in after_crash["error"]
        second = wait_until(
            api, api.post(TRAIN, json={"dataset": dataset, "name": "b", **LONG}).json(), "running", stage="train"
        )
    # leaving the block stopped the server gracefully (SIGTERM)
    assert wait_for(lambda: process_gone(worker_pid(second)), 10)

    with Server(home) as third, third.client() as api:
        after_stop = job_status(api, "b", second["id"])
        assert after_stop["status"] == "interrupted" and "shut down" in after_stop["error"]
        history = api.get(TRAIN).json()["jobs"]
        assert [(job["target"], job["status"]) for job in history] == [("b", "interrupted"), ("a", "interrupted")]
        assert job_status(api, "a", first["id"])["history"]  # progress recorded before the crash is kept
