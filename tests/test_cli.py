"""The ``audioclas`` command as a user runs it: a real process, real files, its output and exit status."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media import encode

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"


def audioclas(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audioclas", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_table_for_people(audio_dir: Path) -> None:
    run = audioclas("predict", audio_dir / ROBIN, "--timeline")
    assert run.returncode == 0, run.stderr
    assert "Bird" in run.stdout and "Chirp, tweet" in run.stdout and "timeline" in run.stdout
    assert "Traceback" not in run.stderr


def test_json_schema_with_timeline(audio_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    run = audioclas("predict", audio_dir / ROBIN, empty, audio_dir / "pibble.ogg", "-f", "json", "--timeline", "-k", "2")
    assert run.returncode == 1  # one input failed
    robin, bad, pibble = json.loads(run.stdout)
    assert robin["input"].endswith(ROBIN) and robin["duration"] == pytest.approx(2.699, abs=1e-3)
    assert [x["name"] for x in robin["labels"]] == ["Bird", "Chirp, tweet"]
    assert robin["labels"][0] == {"index": 111, "id": "/m/015p6", "name": "Bird", "score": pytest.approx(0.83, abs=0.02)}
    assert bad == {"input": str(empty), "error": "file is empty (0 bytes)"}
    assert [w["start"] for w in pibble["windows"]] == [0, 10, 20, 30, 36.955]
    assert all(len(w["labels"]) == 2 for w in pibble["windows"])
    assert run.stderr.count("error:") == 1 and "empty.ogg" in run.stderr and "Traceback" not in run.stderr


def test_jsonl_and_csv_to_files(audio_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tags.jsonl"
    run = audioclas("predict", audio_dir / ROBIN, audio_dir / TRUMPET, "-f", "jsonl", "-o", out, "--no-progress")
    assert run.returncode == 0 and run.stdout == ""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["labels"][0]["name"] for x in lines] == ["Bird", "Trumpet"]

    out = tmp_path / "tags.csv"
    run = audioclas("predict", audio_dir / TRUMPET, "-f", "csv", "-o", out, "-k", "3", "--timeline")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["label"] for r in rows] == ["Trumpet", "Music", "Brass instrument"]
    assert rows[0]["start"] == "0.0" and rows[0]["id"] == "/m/07gql" and rows[0]["rank"] == "1"


def test_failed_run_leaves_no_half_written_output(tmp_path: Path) -> None:
    out = tmp_path / "tags.json"
    run = audioclas("predict", tmp_path / "missing.wav", "-f", "json", "-o", out, "--labels", "Unicorn")
    assert run.returncode == 2 and "Unicorn" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_every_input_bad_exits_1_with_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "noise.mp3").write_bytes(b"\x00\x01garbage" * 100)
    run = audioclas("predict", tmp_path / "missing.wav", tmp_path / "noise.mp3", "-f", "jsonl")
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "missing.wav" in errors[0] and "noise.mp3" in errors[1]
    assert [json.loads(line)["input"] for line in run.stdout.splitlines()] == [str(tmp_path / "missing.wav"), str(tmp_path / "noise.mp3")]


def test_labels_search_and_help() -> None:
    run = audioclas("labels", "dog", "--json")
    assert {"index": 74, "id": "/m/0bt9lr", "name": "Dog"} in json.loads(run.stdout)
    run = audioclas("predict", "--help")
    assert run.returncode == 0 and "--timeline" in run.stdout and "examples:" in run.stdout


def test_non_finite_scores_give_an_error_entry_and_valid_json(audio_dir: Path, tmp_path: Path) -> None:
    huge = encode(tmp_path / "huge.wav", np.random.default_rng(0).standard_normal(16000) * 1e30, 16000, "pcm_f32le",
                  format="wav")  # fmt: skip
    run = audioclas("predict", huge, audio_dir / ROBIN, "-f", "json", "--no-progress")
    assert run.returncode == 1
    bad, robin = json.loads(run.stdout)
    assert bad["input"] == str(huge) and "NaN or infinite scores" in bad["error"] and "labels" not in bad
    assert robin["labels"][0]["name"] == "Bird"
    assert run.stderr.count("error:") == 1 and "huge.wav" in run.stderr
