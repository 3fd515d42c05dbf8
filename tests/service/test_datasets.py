"""Uploading datasets to a server that users reach only over HTTP: real FSDD recordings packed into zip and
tar.gz archives, posted to the real server on loopback, listed, trained on through the train route, deleted;
hostile and invalid archives refused with nothing left behind."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest
from archive_bytes import zip_bytes
from service_server import Server, tiny_dataset, wait_for

from audioclas.service.datasets import uploads_root
from audioclas.service.errors import RequestError
from audioclas.service.settings import ServiceSettings

TOKEN = "dataset-token"
DATASETS = "/v2/datasets/"
JOB_SECONDS = 180
MAX_MEMBERS = 40


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data-root")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Server:
    home = tmp_path_factory.mktemp("datasets") / "home"
    args = ("--data-root", str(root), "--max-archive-members", str(MAX_MEMBERS))
    with Server(home, *args, token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> httpx.Client:
    with server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A folder-per-class dataset of 12 real FSDD recordings (zero, one)."""
    return tiny_dataset(shared_dir, tmp_path_factory.mktemp("source") / "digits")


def tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def folder_members(folder: Path, prefix: str) -> dict[str, bytes]:
    return {
        f"{prefix}{path.relative_to(folder).as_posix()}": path.read_bytes() for path in sorted(folder.rglob("*.wav"))
    }


def upload(api: httpx.Client, archive: bytes, file_name: str, name: str | None = None) -> httpx.Response:
    return api.post(DATASETS, files={"file": (file_name, archive)}, data={"name": name} if name else {})


def uploads(root: Path) -> list[str]:
    """Everything in the uploads folder, hidden temporary folders included."""
    folder = root / "uploads"
    return sorted(entry.name for entry in folder.iterdir()) if folder.exists() else []


def test_upload_list_train_delete(api: httpx.Client, root: Path, digits: Path) -> None:
    response = upload(api, zip_bytes(folder_members(digits, "digits/")), "digits.zip", "digits")
    assert response.status_code == 201, response.text
    info = response.json()
    assert (info["name"], info["layout"], info["classes"], info["files"]) == ("digits", "folders", ["one", "zero"], 12)
    assert info["examples"] == {"train": 12} and info["bytes"] == sum(p.stat().st_size for p in digits.rglob("*.wav"))
    assert info["path"] == str(root / "uploads" / "digits" / "files" / "digits")
    assert uploads(root) == ["digits"]

    listed = api.get(DATASETS).json()["datasets"]
    assert [(entry["name"], entry["path"], entry["files"]) for entry in listed] == [("digits", info["path"], 12)]

    again = upload(api, zip_bytes(folder_members(digits, "")), "other.zip", "digits")
    assert again.status_code == 409 and "already exists" in again.json()["error"], again.text
    assert (root / "uploads" / "digits" / "files" / "digits").is_dir() and uploads(root) == ["digits"]

    body = {"dataset": info["path"], "name": "uploaded-digits", "epochs": 3, "val_fraction": 0.0, "head": "linear"}
    started = api.post("/v2/models/audioset/train/", json=body)
    assert started.status_code == 202, started.text
    job = started.json()
    busy = api.delete(f"{DATASETS}digits")  # the job has not finished yet: its worker is still importing torch
    assert busy.status_code == 409 and "training job uses dataset 'digits'" in busy.json()["error"], busy.text

    def finished() -> dict | None:
        current = api.get(f"/v2/models/audioset/train/{job['id']}").json()
        return current if current["status"] in ("succeeded", "failed") else None

    done = wait_for(finished, JOB_SECONDS)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["embeddings_computed"] == 12
    assert api.get("/v2/models/uploaded-digits/").json()["classes"] == ["one", "zero"]

    deleted = api.delete(f"{DATASETS}digits")
    assert deleted.json() == {"name": "digits", "deleted": True}, deleted.text
    assert api.get(DATASETS).json()["datasets"] == [] and uploads(root) == []
    assert api.delete(f"{DATASETS}digits").status_code == 404
    assert api.get("/v2/models/uploaded-digits/").status_code == 200  # the model outlives its dataset


def test_split_files_tar_gz_gets_a_fresh_name(api: httpx.Client, root: Path, shared_dir: Path) -> None:
    fsdd = shared_dir / "datasets" / "fsdd" / "recordings"
    clips = [f"{digit}_jackson_{index}.wav" for digit in (0, 1) for index in range(3)]
    members = {f"recordings/{clip}": (fsdd / clip).read_bytes() for clip in clips}
    members["classes.txt"] = b"zero\none\n"
    members["train.txt"] = "".join(f"recordings/{clip} {clip[0]}\n" for clip in clips).encode()
    response = upload(api, tar_gz(members), "fsdd.tar.gz")
    assert response.status_code == 201, response.text
    info = response.json()
    assert (info["layout"], info["classes"], info["files"]) == ("split-files", ["zero", "one"], 6)
    assert info["path"] == str(root / "uploads" / info["name"] / "files")
    assert api.delete(f"{DATASETS}{info['name']}").status_code == 200 and uploads(root) == []


def _hostile(shared_dir: Path) -> dict[str, tuple[bytes, str, int, str]]:
    wav = (shared_dir / "datasets" / "fsdd" / "recordings" / "0_george_0.wav").read_bytes()
    fine = {f"{label}/{label}_{index}.wav": wav for label in ("zero", "one") for index in range(2)}
    many = {f"zero/{index}.wav": wav for index in range(MAX_MEMBERS + 1)}
    return {
        "dot-dot": (zip_bytes({**fine, "../escaped.wav": wav}), "up.zip", 400, "unsafe member path"),
        "symlink": (tar_gz(fine, {"zero/passwd.wav": "/etc/passwd"}), "link.tar.gz", 400, "symbolic link"),
        "too-many": (zip_bytes(many), "many.zip", 413, f"more than the limit of {MAX_MEMBERS}"),
        "not-a-dataset": (zip_bytes({"notes.txt": b"secret words\n"}), "notes.zip", 422, "not a valid dataset"),
        "not-an-archive": (wav, "clip.wav", 400, "not a zip or tar archive"),
    }


@pytest.mark.parametrize("case", ["dot-dot", "symlink", "too-many", "not-a-dataset", "not-an-archive"])
def test_hostile_and_invalid_archives_are_refused(api: httpx.Client, root: Path, shared_dir: Path, case: str) -> None:
    archive, file_name, status, fragment = _hostile(shared_dir)[case]
    response = upload(api, archive, file_name, f"bad-{case}")
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error and "secret words" not in error
    assert uploads(root) == [] and not (root / "escaped.wav").exists()
    assert api.get(DATASETS).json()["datasets"] == []


def test_every_route_needs_the_token(server: Server, root: Path, digits: Path) -> None:
    with server.client() as anonymous:
        archive = zip_bytes(folder_members(digits, ""))
        assert upload(anonymous, archive, "digits.zip", "sneaky").status_code == 401
        assert anonymous.get(DATASETS).status_code == 401
        assert anonymous.delete(f"{DATASETS}sneaky").status_code == 401
    assert uploads(root) == []


def test_bad_names_are_refused(api: httpx.Client, root: Path, digits: Path) -> None:
    response = upload(api, zip_bytes(folder_members(digits, "")), "digits.zip", "../escape")
    assert response.status_code == 422 and "not allowed" in response.json()["error"], response.text
    assert api.delete(f"{DATASETS}..%2Fescape").status_code in (404, 422)
    assert uploads(root) == []


@pytest.mark.unit
def test_a_server_without_a_data_root_keeps_no_datasets() -> None:
    with pytest.raises(RequestError) as refused:
        uploads_root(ServiceSettings())
    assert refused.value.status == 403 and "--data-root" in refused.value.message
