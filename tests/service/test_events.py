"""Events over real HTTP: a real server, a real-speech scene, and the answer as JSON, CSV, Raven and Audacity,
each read back by the stdlib ``csv`` module with the documented columns."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest
from scenes import SPEECH, place
from service_server import Server

PREDICT = "/v2/models/audioset/predict/"
TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> httpx.Client:
    with Server(tmp_path_factory.mktemp("events") / "home") as server, server.client() as client:
        yield client


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> tuple[bytes, float, float]:
    """Speech placed at 15 s in 40 s of silence: (the WAV file's bytes, true onset, true offset)."""
    path, onset, offset = place(audio_dir / SPEECH, tmp_path_factory.mktemp("scene"), onset=15.0, seconds=40.0)
    return path.read_bytes(), onset, offset


def test_events_in_json(api: httpx.Client, scene: tuple[bytes, float, float]) -> None:
    wav, onset, offset = scene
    response = api.post(PREDICT, files={"files": ("scene.wav", wav)}, data={"events": "true", "hop": "1"})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    (speech,) = [event for event in result["events"] if event["label"] == "Speech"]
    assert speech["start"] < offset and speech["end"] > onset and speech["id"] == "/m/09x0r"
    assert 0.5 <= speech["mean_score"] <= speech["score"]
    plain = api.post(PREDICT, files={"files": ("scene.wav", wav)}).json()["results"][0]
    assert "events" not in plain


def test_raven_audacity_and_csv_downloads(
    api: httpx.Client, scene: tuple[bytes, float, float], audio_dir: Path
) -> None:
    wav, onset, offset = scene
    two = [("files", ("scene.wav", wav)), ("files", (TRUMPET, (audio_dir / TRUMPET).read_bytes()))]
    raven = api.post(PREDICT, files=two, data={"format": "raven", "hop": "1"})  # the format turns events on
    assert raven.status_code == 200, raven.text
    assert raven.headers["content-type"].startswith("text/tab-separated-values")
    assert 'filename="events.selections.txt"' in raven.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(raven.text), delimiter="\t"))
    assert {row["Begin File"] for row in rows} == {"scene.wav", TRUMPET}
    (speech,) = [row for row in rows if row["Label"] == "Speech" and row["Begin File"] == "scene.wav"]
    assert float(speech["Begin Time (s)"]) < offset and float(speech["End Time (s)"]) > onset

    refused = api.post(PREDICT, files=two, data={"format": "audacity"})
    assert refused.status_code == 422 and "one input" in refused.json()["error"]
    audacity = api.post(PREDICT, files={"files": ("scene.wav", wav)}, data={"format": "audacity", "hop": "1"})
    lines = list(csv.reader(io.StringIO(audacity.text), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert any(
        text.startswith("Speech ") and float(start) < offset and float(end) > onset for start, end, text in lines
    )

    table = api.post(PREDICT, files=two, data={"events": "1", "hop": "1"}, headers={"accept": "text/csv"})
    assert table.headers["content-type"].startswith("text/csv")
    events = list(csv.DictReader(io.StringIO(table.text)))
    assert list(events[0]) == ["input", "start", "end", "label", "id", "score", "mean_score", "error"]
    assert {"scene.wav", TRUMPET} == {row["input"] for row in events}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"events": "1", "thresholds": json.dumps({"Not a class": 0.3})}, "unknown label"),
        ({"events": "1", "thresholds": "{not json"}, "thresholds"),
        ({"events": "1", "thresholds": json.dumps({"Speech": 3})}, "threshold of 'Speech'"),
        ({"min_duration": "-1"}, "min_duration"),
        ({"events": "1", "threshold": "0"}, "threshold must be above 0"),
        ({"format": "parquet"}, "format"),
        ({"events": "1", "timeline": "1", "format": "csv"}, "CSV holds either"),
    ],
)
def test_event_options_that_cannot_be_used_get_422(
    api: httpx.Client, scene: tuple[bytes, float, float], data: dict[str, str], fragment: str
) -> None:
    response = api.post(PREDICT, files={"files": ("scene.wav", scene[0])}, data=data)
    assert response.status_code == 422 and fragment in response.json()["error"], response.text
