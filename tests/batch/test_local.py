"""Batch jobs with the local engine: listing, Parquet rows against the Tagger API, resuming, crashes, training cache.

Real clips from ../shared/audio, a corrupt file and a zip; the network is the real one. Processes are really
killed (SIGKILL) through the worker's test hook, at a known input, so that the tests do not depend on timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from batch_inputs import ARCHIVE, CLIPS, CORRUPT, assert_exactly_once, expected_inputs, make_inputs, set_faults, tables

from audioclas.architecture import EMBEDDING_DIM
from audioclas.batch import JobSpec, read_embeddings, read_job, read_table, run_job
from audioclas.batch.job import OutputFolder
from audioclas.batch.tasks import list_inputs
from audioclas.batch.worker import FAULTS_ENV, _Journal
from audioclas.errors import AudioclasError, InputError
from audioclas.predictions import LabelQuery
from audioclas.tagger import Tagger
from audioclas.windows import WindowSettings


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> Path:
    return make_inputs(tmp_path_factory.mktemp("batch") / "in", audio_dir)


@pytest.fixture(scope="module")
def embed_job(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete embed job with a timeline, run once for the tests that read it."""
    out = tmp_path_factory.mktemp("embed") / "out"
    run_job([str(inputs), str(inputs / ARCHIVE)], out, JobSpec("embed", timeline=True, shard_size=3))
    return out


def test_listing_is_sorted_absolute_and_without_duplicates(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(inputs.parent)
    given = ["in", f"in/{CLIPS[0]}", "in/*.ogg", f"in/{ARCHIVE}", "in/missing.wav", "https://example.org/a.mp3"]
    items, errors = list_inputs(given)
    ids = [item.id for item in items]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    folder_files = {str(inputs / name) for name in [*CLIPS, CORRUPT]}
    assert set(ids) == folder_files | {str(inputs / ARCHIVE), "https://example.org/a.mp3"}
    # what the user named is opened as predict opens it (archives expanded); folder files are single audio files
    assert {item.id for item in items if item.expand} == {str(inputs / ARCHIVE), "https://example.org/a.mp3"}
    assert [(str(e.source), e.problem) for e in errors] == [("in/missing.wav", "no such file or directory")]


def test_listing_keeps_the_real_path_of_names_shown_with_escapes(tmp_path: Path) -> None:
    """Sources show odd names escaped; a job's items are paths to open, so they keep the real name."""
    (tmp_path / "odd\x1b[2J.ogg").write_bytes(b"x")
    items, errors = list_inputs([str(tmp_path)])
    assert [item.id for item in items] == [str(tmp_path / "odd\x1b[2J.ogg")] and not errors


def test_predict_rows_match_the_tagger(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = JobSpec("predict", query=LabelQuery(top_k=3), timeline=True, shard_size=3)
    summary = run_job([str(inputs), str(inputs / ARCHIVE)], out, spec)
    good, failed = expected_inputs(inputs)
    assert (summary.inputs, summary.already_done, summary.clips, summary.failed) == (8, 0, len(good), 1)
    assert_exactly_once(out, good, failed)
    assert read_job(out)["labels"]["top_k"] == 3 and read_job(out)["backbone_sha256"] == Tagger().model_id

    clips, windows, failures = tables(out).values()
    assert clips.schema.field("labels").type == pa.list_(
        pa.struct([("index", pa.int32()), ("id", pa.string()), ("name", pa.string()), ("score", pa.float32())])
    )
    assert failures.to_pylist()[0]["reason"].startswith("not a recognised audio or video format")
    files = [inputs / name for name in CLIPS]
    expected = {p.source: p for p in Tagger(batch_size=1).predict_many(files, top_k=3) if not isinstance(p, InputError)}
    window_rows = windows.to_pylist()
    for row in clips.to_pylist():
        if "!" in row["input"]:
            continue
        prediction = expected[row["input"]]
        assert row["sha256"] == hashlib.sha256(Path(row["input"]).read_bytes()).hexdigest()
        assert row["duration"] == pytest.approx(prediction.duration) and row["windows"] == len(prediction.windows)
        assert [x["index"] for x in row["labels"]] == [x.index for x in prediction.labels]
        assert [x["score"] for x in row["labels"]] == pytest.approx([x.score for x in prediction.labels], abs=1e-5)
        mine = [w for w in window_rows if w["input"] == row["input"]]
        assert [w["window"] for w in mine] == list(range(len(prediction.windows)))
        assert [(w["start"], w["end"]) for w in mine] == [(w.start, w.end) for w in prediction.windows]
        names = [[x.name for x in w.labels] for w in prediction.windows]
        assert [[x["name"] for x in w["labels"]] for w in mine] == names
    member = next(row for row in clips.to_pylist() if row["input"].endswith(f"!members/{CLIPS[0]}"))
    plain = next(row for row in clips.to_pylist() if row["input"] == str(inputs / CLIPS[0]))
    assert member["sha256"] == plain["sha256"] and member["labels"] == plain["labels"]


def test_embeddings_match_the_tagger_and_read_back(inputs: Path, embed_job: Path) -> None:
    clips = read_table(embed_job, "clips")
    assert clips.schema.field("embedding").type == pa.list_(pa.float32(), EMBEDDING_DIM)
    read = {clip.input: clip for clip in read_embeddings(embed_job)}
    assert set(read) == set(clips.column("input").to_pylist())
    tagger = Tagger(batch_size=1)
    for name in CLIPS[2:4]:
        expected, clip = tagger.embed(inputs / name), read[str(inputs / name)]
        np.testing.assert_allclose(clip.windows, expected.windows, atol=1e-5)
        np.testing.assert_allclose(clip.embedding, expected.clip, atol=1e-5)
        np.testing.assert_array_equal(clip.starts, expected.starts)
        assert clip.windows.dtype == np.float32 and clip.duration == pytest.approx(expected.duration)


def test_rerun_skips_done_inputs_and_redoes_only_a_lost_shard(inputs: Path, embed_job: Path, tmp_path: Path) -> None:
    before = tables(embed_job)
    clip_files = sorted((embed_job / "clips").glob("*.parquet"))
    stamps = {path: path.stat().st_mtime_ns for path in clip_files}
    again = run_job([str(inputs), str(inputs / ARCHIVE)], embed_job, JobSpec("embed", timeline=True, shard_size=3))
    assert (again.inputs, again.already_done, again.shards, again.clips) == (8, 8, 0, 0)
    assert {path: path.stat().st_mtime_ns for path in clip_files} == stamps

    # A shard whose commit marker is missing (killed before its clips file was written) leaves its windows file
    # behind: the re-run removes that, redoes the shard alone and the tables come out as before.
    lost = clip_files[1]
    lost_items = OutputFolder(embed_job).committed()[lost.stem]
    lost.unlink()
    assert (embed_job / "windows" / lost.name).exists()
    resumed = run_job([str(inputs), str(inputs / ARCHIVE)], embed_job, JobSpec("embed", timeline=True, shard_size=3))
    assert (resumed.shards, resumed.already_done) == (1, 8 - len(lost_items))
    after = tables(embed_job)
    assert {name: after[name].equals(before[name]) for name in before} == dict.fromkeys(before, True)


def test_a_job_is_resumed_only_with_its_own_settings(inputs: Path, embed_job: Path, tmp_path: Path) -> None:
    with pytest.raises(AudioclasError, match=r"other settings.*hop"):
        run_job([str(inputs)], embed_job, JobSpec("embed", WindowSettings(hop=5.0), timeline=True))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AudioclasError, match="not empty and holds no batch job"):
        run_job([str(inputs)], tmp_path, JobSpec("embed"))
    with pytest.raises(AudioclasError, match="unknown label"):
        JobSpec("predict", query=LabelQuery(labels=("Not a label",)))


def test_job_json_keeps_its_format() -> None:
    """A folder written before the options became objects still resumes: the manifest has the same keys and values."""
    spec = JobSpec("predict", WindowSettings(5.0, None, "zeros"), LabelQuery(3, 0.2, ("Bird",), (), "mean"), True)
    assert {key: value for key, value in spec.manifest().items() if key != "backbone_sha256"} == {
        "format": 1,
        "task": "predict",
        "backbone": "EfficientAT mn04_as",
        "window": 5.0,
        "hop": 5.0,
        "pad": "zeros",
        "timeline": True,
        "labels": {"top_k": 3, "threshold": 0.2, "aggregate": "mean", "include": ["Bird"], "exclude": []},
    }
    assert "labels" not in JobSpec("embed").manifest()


def _embed_cli(inputs: Path, out: Path, faults: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, FAULTS_ENV: str(faults)} if faults else dict(os.environ)
    command = [
        sys.executable,
        "-m",
        "audioclas",
        "embed",
        str(inputs),
        str(inputs / ARCHIVE),
        "--out",
        str(out),
        "--timeline",
        "--shard-size",
        "2",
        "--no-progress",
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_killed_local_job_resumes_exactly_once(inputs: Path, embed_job: Path, tmp_path: Path) -> None:
    faults, out = tmp_path / "faults.json", tmp_path / "out"
    victim = str(inputs / CLIPS[4])  # in the third of four shards (sorted inputs, 2 a shard): two are committed
    set_faults(faults, {victim: 1})
    killed = _embed_cli(inputs, out, faults)
    assert killed.returncode == -9, killed.stderr
    assert len(list((out / "clips").glob("*.parquet"))) == 2 and list((out / "windows").glob("*.parquet"))
    resumed = _embed_cli(inputs, out, faults)
    assert resumed.returncode == 1, resumed.stderr  # 1: the corrupt file
    assert "8 inputs (4 run now, 4 already done)" in " ".join(resumed.stderr.split())  # the last two shards
    assert_exactly_once(out, *expected_inputs(inputs))
    finished, reference = tables(out), tables(embed_job)
    assert {name: finished[name].equals(reference[name]) for name in finished} == dict.fromkeys(finished, True)
    assert not list((out / "_journal").glob("*"))


def test_an_input_that_kills_the_worker_twice_is_skipped(inputs: Path, tmp_path: Path) -> None:
    faults, out = tmp_path / "faults.json", tmp_path / "out"
    poison = str(inputs / CLIPS[0])
    set_faults(faults, {poison: 99})
    assert [_embed_cli(inputs, out, faults).returncode for _ in range(2)] == [-9, -9]
    third = _embed_cli(inputs, out, faults)
    assert third.returncode == 1, third.stderr
    assert f"{poison}: the worker process died 2 times while reading it; skipped" in " ".join(third.stderr.split())
    good, failed = expected_inputs(inputs)
    assert_exactly_once(out, good - {poison}, failed | {poison})


def test_journal_blames_what_each_dead_attempt_was_reading(tmp_path: Path) -> None:
    lines = [
        {"attempt": 1},
        {"item": "a.zip"},
        {"source": "a.zip!x.wav"},  # died decoding a member
        {"attempt": 2},
        {"item": "a.zip"},
        {"source": "a.zip!x.wav"},
        {"idle": True},  # died extracting the next one
        {"attempt": 3},
        {"item": "a.zip"},
        {"source": "a.zip!x.wav"},
        {"attempt": 4},
        {"item": "b.wav"},
        {"source": "b.wav"},
        {"writing": True},  # died writing: no one to blame
    ]
    path = tmp_path / "shard.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"sour')  # a torn last line
    assert _Journal(path, "shard").begin() == {"a.zip!x.wav": 2, "a.zip": 1}
    assert json.loads(path.read_text().splitlines()[-1]) == {"attempt": 5}
    path.write_text('{"attempt": 1}\n{"writing": true}\n{"attempt": 2}\n{"attempt": 3}\n')
    with pytest.raises(AudioclasError, match="died 3 times, not while reading an input"):
        _Journal(path, "shard").begin()


def test_training_cache_reads_an_embed_job(embed_job: Path, tmp_path: Path) -> None:
    from audioclas.batch.training_cache import fill_training_cache
    from audioclas.training.embedding_cache import EmbeddingCache

    assert fill_training_cache(embed_job, tmp_path) == len(set(read_table(embed_job).column("sha256").to_pylist()))
    cache = EmbeddingCache(read_job(embed_job)["backbone_sha256"], WindowSettings(), tmp_path)
    for clip in read_embeddings(embed_job):
        entry = cache.get(clip.sha256)
        np.testing.assert_array_equal(entry.windows, clip.windows)
        np.testing.assert_array_equal(entry.starts, clip.starts)
    assert fill_training_cache(embed_job, tmp_path) == 0  # already there


def test_parquet_output_needs_only_the_base_install(audio_dir: Path, tmp_path: Path) -> None:
    """``embed`` and ``predict --out`` work without the [ray] extra: pyarrow is a base dependency, and a local job
    never imports Ray (blocked in the child process, as if not installed)."""
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert "pyarrow" in {re.match(r"[\w.-]+", requirement)[0].lower() for requirement in project["dependencies"]}
    without_ray = "import sys; sys.modules['ray'] = None; from audioclas.cli import main; sys.exit(main())"
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-c", without_ray, "embed", str(audio_dir / CLIPS[0]), "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert read_table(out, "clips").num_rows == 1
