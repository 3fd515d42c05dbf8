"""The operator's bounds on uploaded datasets together (``--max-datasets``, ``--max-datasets-mb``): real FSDD
recordings zipped and posted to the real server on loopback; refusals leave nothing behind, the listing reports
the usage against the limits, and deleting a dataset makes room again."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from archive_bytes import zip_bytes
from service_server import Server

from audioclas.inputs.types import MiB

TOKEN = "limits-token"
DATASETS = "/v2/datasets/"
MAX_DATASETS = 2
MAX_MB = 0.3
MAX_BYTES = int(MAX_MB * MiB)
SUMMARY_ROOM = 64 * 1024  # kept free for the dataset.json an upload writes (datasets.MAX_SUMMARY_BYTES)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limits-root")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, root: Path) -> httpx.Client:
    home = tmp_path_factory.mktemp("limits") / "home"
    args = ("--data-root", str(root), "--max-datasets", str(MAX_DATASETS), "--max-datasets-mb", str(MAX_MB))
    with Server(home, *args, token=TOKEN) as server, server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def fsdd_zip(shared_dir: Path, speaker: str, per_class: int) -> tuple[bytes, int]:
    """A folder-per-class zip (stored, not compressed) of ``per_class`` real recordings of digits 0 and 1 by
    ``speaker``; the zip and the bytes of its audio."""
    recordings = shared_dir / "datasets" / "fsdd" / "recordings"
    clips = [recordings / f"{digit}_{speaker}_{index}.wav" for digit in (0, 1) for index in range(per_class)]
    members = {f"{('zero', 'one')[int(clip.name[0])]}/{clip.name}": clip.read_bytes() for clip in clips}
    return zip_bytes(members), sum(clip.stat().st_size for clip in clips)


def upload(api: httpx.Client, archive: bytes, name: str) -> httpx.Response:
    return api.post(DATASETS, files={"file": (f"{name}.zip", archive)}, data={"name": name})


def uploads(root: Path) -> list[str]:
    """Everything in the uploads folder, hidden temporary folders included."""
    folder = root / "uploads"
    return sorted(entry.name for entry in folder.iterdir()) if folder.exists() else []


def stored_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in (root / "uploads").rglob("*") if path.is_file())


def delete_all(api: httpx.Client, root: Path) -> None:
    for entry in api.get(DATASETS).json()["datasets"]:
        assert api.delete(f"{DATASETS}{entry['name']}").status_code == 200
    assert uploads(root) == []


def test_the_count_limit_refuses_and_deleting_makes_room(api: httpx.Client, root: Path, shared_dir: Path) -> None:
    small, audio = fsdd_zip(shared_dir, "george", 6)
    assert upload(api, small, "first").status_code == 201
    usage = api.get(DATASETS).json()["usage"]
    assert usage == {"datasets": 1, "max_datasets": MAX_DATASETS, "bytes": stored_bytes(root), "max_bytes": MAX_BYTES}
    assert usage["bytes"] > audio  # the audio and the dataset's summary
    assert upload(api, small, "second").status_code == 201

    refused = upload(api, small, "third")
    assert refused.status_code == 507, refused.text
    error = refused.json()["error"]
    assert f"at most {MAX_DATASETS} uploaded datasets" in error and "delete a dataset" in error
    assert uploads(root) == ["first", "second"]  # no hidden temporary folder, no third dataset
    assert api.get(DATASETS).json()["usage"]["datasets"] == 2

    assert api.delete(f"{DATASETS}first").status_code == 200
    assert api.get(DATASETS).json()["usage"]["datasets"] == 1
    assert upload(api, small, "third").status_code == 201
    delete_all(api, root)
    assert api.get(DATASETS).json()["usage"] == {
        "datasets": 0,
        "max_datasets": MAX_DATASETS,
        "bytes": 0,
        "max_bytes": MAX_BYTES,
    }


def test_an_archive_larger_than_the_room_left_is_stopped(api: httpx.Client, root: Path, shared_dir: Path) -> None:
    small, _ = fsdd_zip(shared_dir, "george", 6)
    large, audio = fsdd_zip(shared_dir, "jackson", 10)
    assert audio < MAX_BYTES - SUMMARY_ROOM  # the large one fits alone
    assert upload(api, small, "small").status_code == 201
    used = stored_bytes(root)
    assert audio > MAX_BYTES - used - SUMMARY_ROOM  # but not beside the small one

    refused = upload(api, large, "large")
    assert refused.status_code == 507, refused.text
    error = refused.json()["error"]
    assert "left for uploaded datasets" in error and "delete a dataset" in error and "large.zip" in error
    assert uploads(root) == ["small"] and stored_bytes(root) == used  # nothing of it left, not even hidden
    assert api.get(DATASETS).json()["usage"]["bytes"] == used

    assert api.delete(f"{DATASETS}small").status_code == 200
    stored = upload(api, large, "large")
    assert stored.status_code == 201, stored.text
    assert stored.json()["bytes"] == audio
    delete_all(api, root)


def test_two_uploads_at_once_never_pass_the_limit_together(api: httpx.Client, root: Path, shared_dir: Path) -> None:
    """Each archive fits alone, not both: the lock makes the second see the room the first took."""
    archive, audio = fsdd_zip(shared_dir, "jackson", 8)
    assert audio < MAX_BYTES - SUMMARY_ROOM < 2 * audio
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda name: upload(api, archive, name), ["left", "right"]))
    assert sorted(answer.status_code for answer in answers) == [201, 507], [answer.text for answer in answers]
    assert len(uploads(root)) == 1 and stored_bytes(root) <= MAX_BYTES
    delete_all(api, root)
