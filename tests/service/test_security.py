"""The service's safe defaults over real HTTP: training data confined to the data roots (links included),
no file contents in errors, training off beyond loopback without a root, Host checks, body deadlines."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from service_server import Server, tiny_dataset, wait_for

TOKEN = "t0ken"
AUTH = {"authorization": f"Bearer {TOKEN}"}
TRAIN = "/v2/models/audioset/train/"
JOB_SECONDS = 180
SECRET = "hunter2-the-server-password"


def finished(api: httpx.Client, job: dict) -> dict:
    def done() -> dict | None:
        current = api.get(f"/v2/models/{job['model']}/train/{job['id']}", headers=AUTH).json()
        return current if current["status"] not in ("queued", "running") else None

    return wait_for(done, JOB_SECONDS)


def embeddings_dataset(folder: Path, per_class: int = 4) -> Path:
    """A CSV dataset of two classes with precomputed (random, seeded) 384-d embeddings instead of audio:
    trains in a second, which is all the path checks below need."""
    rng = np.random.default_rng(0)
    (folder / "emb").mkdir(parents=True)
    rows = []
    for label, offset in (("low", -1.0), ("high", 1.0)):
        for index in range(per_class):
            name = f"{label}{index}.wav"
            np.save(folder / "emb" / f"{name}.npy", (rng.normal(size=(3, 384)) + offset).astype(np.float32))
            rows.append(f"{name},{label}")
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("security")
    root, outside = base / "root", base / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"{SECRET},{SECRET}\nroot:x:0:0:{SECRET}\n")
    shutil.copy(shared_dir / "datasets" / "fsdd" / "recordings" / "2_george_0.wav", outside / "private.wav")
    tiny_dataset(shared_dir, root / "linked")
    (root / "linked" / "one" / "private.wav").symlink_to(outside / "private.wav")  # escapes the root
    embeddings_dataset(root / "npy")
    return {"root": root, "outside": outside, "base": base}


@pytest.fixture(scope="module")
def server(places: dict[str, Path]) -> Server:
    """Loopback, one data root, a token."""
    with Server(places["base"] / "home", "--data-root", str(places["root"]), token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> httpx.Client:
    with server.client() as client:
        yield client


def test_a_linked_file_inside_the_data_root_cannot_reach_outside(api: httpx.Client, places: dict[str, Path]) -> None:
    response = api.post(TRAIN, json={"dataset": str(places["root"] / "linked"), "name": "linked"}, headers=AUTH)
    assert response.status_code == 202, response.text
    job = finished(api, response.json())
    assert job["status"] == "failed"
    assert "one/private.wav: is outside the folders allowed for training data" in job["error"], job["error"]
    assert str(places["outside"]) not in job["error"]
    assert api.get("/v2/models/linked/").status_code == 404


def test_embeddings_and_a_retrained_models_saved_folder_are_checked(
    api: httpx.Client, places: dict[str, Path], server: Server
) -> None:
    npy = places["root"] / "npy"
    body = {
        "dataset": str(npy / "data.csv"),
        "from_embeddings": str(npy / "emb"),
        "name": "npy",
        "epochs": 3,
        "val_fraction": 0.0,
        "tensorboard": False,
    }
    job = finished(api, api.post(TRAIN, json=body, headers=AUTH).json())
    assert job["status"] == "succeeded", job["error"]

    outside_embeddings = places["outside"] / "emb"  # a model trained (by the CLI, say) on embeddings elsewhere
    shutil.copytree(npy / "emb", outside_embeddings)
    config_file = server.home / "models" / "npy" / "config.json"
    config = json.loads(config_file.read_text())
    assert config["from_embeddings"] == str(npy / "emb")
    config_file.write_text(json.dumps({**config, "from_embeddings": str(outside_embeddings)}))
    refused = api.post("/v2/models/npy/train/", json={"epochs": 2}, headers=AUTH)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"].startswith(f"from_embeddings {outside_embeddings} is outside the folders")
    assert (
        api.post(
            "/v2/models/npy/train/", json={"epochs": 2, "from_embeddings": str(npy / "emb")}, headers=AUTH
        ).status_code
        == 202
    )  # a folder inside the root, given explicitly, is fine

    (npy / "emb" / "high0.wav.npy").unlink()  # an embedding linked to a file outside the root
    (npy / "emb" / "high0.wav.npy").symlink_to(outside_embeddings / "high0.wav.npy")
    body["name"] = "npy-linked"
    job = finished(api, api.post(TRAIN, json=body, headers=AUTH).json())
    assert job["status"] == "failed" and "data.csv:5: is outside the folders allowed" in job["error"], job["error"]


def test_a_nul_byte_in_a_path_is_a_400(api: httpx.Client, places: dict[str, Path]) -> None:
    for body in (
        {"dataset": str(places["root"]) + "/a\0b"},
        {"dataset": str(places["root"] / "npy" / "data.csv"), "from_embeddings": "/x\0"},
    ):
        response = api.post(TRAIN, json=body, headers=AUTH)
        assert response.status_code == 400, response.text
        assert "cannot contain a NUL byte" in response.json()["error"] and "\n" not in response.json()["error"]


def test_history_and_logs_need_the_token(api: httpx.Client) -> None:
    assert api.get(TRAIN).status_code == 401
    jobs = api.get(TRAIN, headers=AUTH).json()["jobs"]
    assert jobs and jobs[0]["dataset"]  # they carry server paths
    assert api.get(f"/v2/models/audioset/train/{jobs[0]['id']}").status_code == 401
    assert api.get(f"/v2/models/audioset/train/{jobs[0]['id']}", headers=AUTH).json()["log"]


# ---------------------------------------------------------------------------------------------- beyond loopback


def test_training_beyond_loopback_needs_a_root_or_the_opt_in(places: dict[str, Path], tmp_path: Path) -> None:
    secret = str(places["outside"] / "secret.csv")
    with Server(tmp_path / "open", "--host", "0.0.0.0") as server, server.client() as api:
        assert "training is off" in server.log() and "--allow-any-dataset" in server.log()  # said at start-up
        refused = api.post(TRAIN, json={"dataset": secret})
        assert refused.status_code == 403, refused.text
        assert "--data-root" in refused.json()["error"] and "--allow-any-dataset" in refused.json()["error"]
        assert api.get(TRAIN).json() == {"jobs": []}
    with Server(tmp_path / "opted-in", "--host", "0.0.0.0", "--allow-any-dataset") as server, server.client() as api:
        assert "training is off" not in server.log()
        response = api.post(TRAIN, json={"dataset": secret})
        assert response.status_code == 202, response.text
        job = finished(api, response.json())
        assert job["status"] == "failed" and "secret.csv:1" in job["error"] and "secret.csv:2" in job["error"]
        shown = json.dumps(job)
        assert SECRET not in shown and "root:x" not in shown, job["error"]  # no file contents, anywhere


# ---------------------------------------------------------------------------------------------- Host and body


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Server:
    home = tmp_path_factory.mktemp("guarded") / "home"
    with Server(home, "--allowed-hosts", "audio.lab.example", "--body-timeout", "2", "--max-body-seconds", "5") as s:
        yield s


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("[::1]:{port}", 200),
        ("LOCALHOST", 200),
        ("audio.lab.example:{port}", 200),
        ("192.0.2.7:{port}", 200),
        ("[2001:db8::1]", 200),
        ("rebind.attacker.example:{port}", 400),
        ("localhost.attacker.example", 400),
        ("", 400),
        ("[::1", 400),
        ("localhost:port", 400),
    ],
)
def test_only_configured_host_names_are_answered(guarded: Server, host: str, status: int) -> None:
    response = httpx.get(f"{guarded.url}/v2/models/", headers={"host": host.format(port=guarded.port)})
    assert response.status_code == status, response.text
    if status == 400:
        assert "does not answer to the host name" in response.json()["error"]


def raw_request(port: int, head: str, pieces: list[bytes], interval: float) -> tuple[bytes, float]:
    """Send ``head`` and then ``pieces`` one every ``interval`` seconds; (the answer, seconds until it came)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(head.encode())
        sock.settimeout(interval)
        answer = chunk = b""
        for piece in [*pieces, None]:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if piece is not None:
                    sock.sendall(piece)
                continue
            answer += chunk
            break
        sock.settimeout(30)
        while chunk:  # the server closes the connection after the 408 (a reset when bytes sent were left unread)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            answer += chunk
        return answer, time.monotonic() - started


@pytest.mark.parametrize("path", ["/v2/models/audioset/predict/", TRAIN])
def test_a_body_that_does_not_come_times_out(guarded: Server, path: str) -> None:
    kind = "multipart/form-data; boundary=xx" if "predict" in path else "application/json"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{guarded.port}\r\nContent-Type: {kind}\r\n"
        "Content-Length: 100000\r\n\r\n"
    )
    answer, seconds = raw_request(guarded.port, head, [], 10)  # the headers, and then nothing
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"nothing came for 2 s" in answer and 1.5 < seconds < 6
    part = b'--xx\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\n'
    answer, seconds = raw_request(guarded.port, head, [part] + [b"R"] * 20, 1.0)  # a byte a second: under 2 s apart
    assert answer.startswith(b"HTTP/1.1 408 ") and b"within 5 s" in answer and 4.5 < seconds < 9, (
        answer[:300],
        seconds,
    )
    assert httpx.get(f"{guarded.url}/health").status_code == 200
