"""``audioclas serve`` takes its data roots from ``$AUDIOCLAS_DATA_ROOT`` when ``--data-root`` is not given (the
image sets the variable): the real server on loopback, its train and dataset routes asked over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from service_server import Server, free_port

TRAIN = "/v2/models/audioset/train/"


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    places = {name: tmp_path / name for name in ("env", "flag", "other")}
    for folder in places.values():
        folder.mkdir()
    return places


def refusal(api, dataset: Path) -> str:
    response = api.post(TRAIN, json={"dataset": str(dataset)})
    assert response.status_code == 400, response.text
    return response.json()["error"]


def test_the_data_root_comes_from_the_environment(
    roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIOCLAS_DATA_ROOT", str(roots["env"]))
    with Server(tmp_path / "home") as server, server.client() as api:
        assert api.get("/v2/datasets/").json()["datasets"] == []  # a server without a data root answers 403
        assert refusal(api, roots["other"]).endswith(f"is outside the folders this server trains from ({roots['env']})")


def test_the_flag_wins_over_the_environment(
    roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIOCLAS_DATA_ROOT", str(roots["env"]))
    with Server(tmp_path / "home", "--data-root", str(roots["flag"])) as server, server.client() as api:
        assert refusal(api, roots["env"]).endswith(f"is outside the folders this server trains from ({roots['flag']})")


def test_a_missing_data_root_is_refused_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    run = subprocess.run(
        [sys.executable, "-m", "audioclas", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,  # refused before it listens: a server that starts would run into this
        env={**os.environ, "AUDIOCLAS_DATA_ROOT": str(missing)},
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == f"error: $AUDIOCLAS_DATA_ROOT: {missing}: no such folder"
