"""``audioclas predict`` with events, as a user runs it: a real process on a real-sound scene, and the Raven and
Audacity tables it writes read back by parsers that know only the documented columns (the stdlib ``csv`` module, and
pandas)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scenes import SPEECH, place

TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"
RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)"]


def audioclas(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audioclas", *map(str, args), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> tuple[Path, float, float]:
    """Speech placed at 15 s in 40 s of silence: (the WAV file, true onset, true offset)."""
    return place(audio_dir / SPEECH, tmp_path_factory.mktemp("scene"), onset=15.0, seconds=40.0)


def raven_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


def test_raven_table_of_a_scene_read_back_by_csv_and_pandas(scene: tuple[Path, float, float], tmp_path: Path) -> None:
    path, onset, offset = scene
    out = tmp_path / "scene.selections.txt"  # the format from the double extension
    run = audioclas("predict", path, "--hop", "1", "-o", out)
    assert run.returncode == 0, run.stderr
    rows = raven_rows(out)
    assert list(rows[0]) == [*RAVEN_COLUMNS, "Label", "Id", "Score", "Mean Score"]  # one input: no Begin File
    assert [int(r["Selection"]) for r in rows] == list(range(1, len(rows) + 1))
    assert {(r["View"], r["Channel"], r["Low Freq (Hz)"], r["High Freq (Hz)"]) for r in rows} == {
        ("Spectrogram 1", "1", "0", "16000")
    }
    (speech,) = [r for r in rows if r["Label"] == "Speech"]
    begin, end = float(speech["Begin Time (s)"]), float(speech["End Time (s)"])
    assert begin < offset and end > onset and speech["Id"] == "/m/09x0r"
    assert 0.5 <= float(speech["Mean Score"]) <= float(speech["Score"]) <= 1.0

    pandas = pytest.importorskip("pandas")  # the dev extra has it: an independent reader of the same file
    table = pandas.read_csv(out, sep="\t")
    assert list(table.columns[:7]) == RAVEN_COLUMNS
    assert str(table["Begin Time (s)"].dtype) == "float64" and str(table["Selection"].dtype) == "int64"
    assert (table["End Time (s)"] > table["Begin Time (s)"]).all() and (table["End Time (s)"] <= 40.0).all()
    assert table.loc[table["Label"] == "Speech", "Begin Time (s)"].item() == pytest.approx(begin)


def test_a_raven_table_of_several_inputs_names_each_file_on_one_timeline(
    scene: tuple[Path, float, float], audio_dir: Path, tmp_path: Path
) -> None:
    path, onset, offset = scene
    run = audioclas("predict", path, audio_dir / TRUMPET, "--hop", "1", "-f", "raven")
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout), delimiter="\t"))
    assert list(rows[0])[7:9] == ["Begin File", "File Offset (s)"]
    assert {r["Begin File"] for r in rows} == {str(path), str(audio_dir / TRUMPET)}
    for row in rows:  # the second file's selections start after the 40 s of the first, as in a Raven file list
        first = row["Begin File"] == str(path)
        assert float(row["Begin Time (s)"]) == pytest.approx(float(row["File Offset (s)"]) + (0.0 if first else 40.0))
    assert any(r["Label"] == "Trumpet" for r in rows if r["Begin File"].endswith(TRUMPET))
    (speech,) = [r for r in rows if r["Label"] == "Speech" and r["Begin File"] == str(path)]
    assert float(speech["Begin Time (s)"]) < offset and float(speech["End Time (s)"]) > onset


def test_audacity_label_file_read_back_by_csv_and_pandas(scene: tuple[Path, float, float], tmp_path: Path) -> None:
    path, onset, offset = scene
    out = tmp_path / "scene.labels.txt"
    run = audioclas("predict", path, "--hop", "1", "--merge-gap", "2", "-o", out)
    assert run.returncode == 0, run.stderr
    with out.open(newline="", encoding="utf-8") as stream:
        lines = list(csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert lines and all(len(line) == 3 for line in lines)  # start, end, "label score"
    labels = {
        text.rsplit(" ", 1)[0]: (float(start), float(end), float(text.rsplit(" ", 1)[1])) for start, end, text in lines
    }
    start, end, score = labels["Speech"]
    assert start < offset and end > onset and 0.5 <= score <= 1.0

    pandas = pytest.importorskip("pandas")
    track = pandas.read_csv(out, sep="\t", header=None, names=["start", "end", "label"], quoting=csv.QUOTE_NONE)
    assert str(track["start"].dtype) == "float64" and (track["end"] > track["start"]).all()
    assert track["label"].str.startswith("Speech ").sum() == 1


def test_audacity_refuses_several_inputs_in_one_file_but_writes_one_table_each(
    scene: tuple[Path, float, float], audio_dir: Path, tmp_path: Path
) -> None:
    path, _, _ = scene
    run = audioclas("predict", path, audio_dir / TRUMPET, "-f", "audacity")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "--tables DIR" in run.stderr and "Traceback" not in run.stderr

    with path.open("rb") as stdin:  # standard input is one input
        piped = subprocess.run(
            [sys.executable, "-m", "audioclas", "predict", "-", "-f", "audacity", "--hop", "2", "--no-progress"],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert piped.returncode == 0 and "Speech " in piped.stdout, piped.stderr

    folder = tmp_path / "tables"
    run = audioclas("predict", path, audio_dir / TRUMPET, "-f", "audacity", "--tables", folder)
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""  # --tables alone writes only the tables
    assert sorted(p.name for p in folder.iterdir()) == ["scene.labels.txt", "sorohanro_-_solo-trumpet-06.labels.txt"]
    assert "Trumpet " in (folder / "sorohanro_-_solo-trumpet-06.labels.txt").read_text()


def test_csv_event_rows_with_per_label_thresholds_and_the_threshold(
    scene: tuple[Path, float, float], tmp_path: Path
) -> None:
    path, onset, offset = scene
    thresholds = tmp_path / "thresholds.csv"
    thresholds.write_text("label,threshold\nSpeech,0.99\n", encoding="utf-8")  # no window of the clip scores that
    run = audioclas("predict", path, "--hop", "1", "--events", "-f", "csv", "--merge-gap", "0")
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert list(rows[0]) == ["input", "start", "end", "label", "id", "score", "mean_score", "error"]
    assert any(r["label"] == "Speech" and float(r["start"]) < offset and float(r["end"]) > onset for r in rows)
    assert all(float(r["score"]) >= 0.5 for r in rows)  # the default threshold

    strict = audioclas("predict", path, "--hop", "1", "-f", "csv", "--thresholds", thresholds)  # turns events on
    assert strict.returncode == 0, strict.stderr
    assert "Speech" not in {r["label"] for r in csv.DictReader(io.StringIO(strict.stdout))}
    lenient = audioclas("predict", path, "--hop", "1", "--events", "-f", "csv", "-t", "0.3", "--merge-gap", "0")
    assert len(list(csv.DictReader(io.StringIO(lenient.stdout)))) > len(rows)


def test_event_options_that_cannot_be_used_are_one_line_usage_errors(
    scene: tuple[Path, float, float], tmp_path: Path
) -> None:
    path, _, _ = scene
    bad = tmp_path / "bad.tsv"
    bad.write_text("Speech\tlots\nNo such class\t0.5\n", encoding="utf-8")
    cases = [
        (["--events", "--out", tmp_path / "job"], "not available for batch jobs"),
        (["--events", "--timeline", "-f", "csv"], "CSV holds either"),
        (["--events", "--min-duration", "-1"], "min_duration must be between"),
        (["--thresholds", bad], "line 1: the threshold"),
        (["--tables", tmp_path / "t", "-f", "json"], "--tables writes Raven or Audacity tables"),
    ]
    for extra, message in cases:
        run = audioclas("predict", path, *extra)
        assert run.returncode == 2 and message in run.stderr, (extra, run.stderr)
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
