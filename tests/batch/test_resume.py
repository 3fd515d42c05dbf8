"""Resuming a batch job by content (audio done under another name is copied, not computed again) and retrying
failed inputs (``--retry-failed``), local engine; the Ray engine runs the same worker (test_ray.py).

Real FSDD recordings; a file that fails at first is a corrupt one later replaced by real audio (a download
completed, a disk repaired). A process is really killed mid-retry through the worker's test hook.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from batch_inputs import assert_exactly_once, set_faults, tables

from audioclas.batch import JobSpec, read_table, run_job
from audioclas.batch.reuse import REUSED_KEY
from audioclas.batch.worker import FAULTS_ENV
from audioclas.pipeline import Progress
from audioclas.windows import WindowSettings

GOOD = ["0_george_30.wav", "0_jackson_5.wav", "1_george_31.wav", "1_nicolas_7.wav"]
LATE = "1_late.wav"  # sorted between GOOD[2] and GOOD[3]: with 2 a shard, it shares its shard with GOOD[2]
CORRUPT = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 20
SETTINGS = WindowSettings(1.0, None, "zeros")  # FSDD clips are under a second


@pytest.fixture(scope="module")
def fsdd(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "fsdd" / "recordings"


def _folder(path: Path, fsdd: Path, names: list[str]) -> Path:
    path.mkdir(parents=True)
    for name in names:
        shutil.copy(fsdd / name, path / name)
    return path


def _decoded(inputs: list[str], out: Path, spec: JobSpec, **options) -> tuple[set[str], object]:
    """Run the job; return (the inputs the network ran on, the summary)."""
    seen: set[str] = set()

    def note(progress: Progress) -> None:
        seen.add(progress.source)

    summary = run_job(inputs, out, spec, on_progress=note, **options)
    return seen, summary


def _without_input(table) -> list[tuple]:
    return [tuple(row.values())[1:] for row in table.to_pylist()]


@pytest.mark.parametrize("task", ["predict", "embed"])
def test_audio_done_under_another_name_is_copied_not_computed(fsdd: Path, tmp_path: Path, task: str) -> None:
    first = _folder(tmp_path / "first", fsdd, GOOD[:3])
    later = _folder(tmp_path / "later", fsdd, [GOOD[3]])
    shutil.copy(fsdd / GOOD[1], later / "renamed.wav")
    spec, out = JobSpec(task, SETTINGS, timeline=True, shard_size=2), tmp_path / "out"
    run_job([str(first)], out, spec)

    decoded, summary = _decoded([str(first), str(later)], out, spec)
    assert decoded == {str(later / GOOD[3])}  # the renamed copy was not decoded
    assert (summary.inputs, summary.already_done, summary.clips, summary.copied) == (5, 3, 2, 1)
    assert "1 clips copied from the same audio done before" in summary.text()
    assert_exactly_once(
        out, {str(first / n) for n in GOOD[:3]} | {str(later / n) for n in (GOOD[3], "renamed.wav")}, set()
    )
    # the copy's rows are the original's under the new name, and its clips file says where they came from
    for table in ("clips", "windows"):
        rows = read_table(out, table)
        original = rows.filter([source == str(first / GOOD[1]) for source in rows.column("input").to_pylist()])
        copy = rows.filter([source == str(later / "renamed.wav") for source in rows.column("input").to_pylist()])
        assert copy.num_rows == original.num_rows > 0 and _without_input(copy) == _without_input(original)
    reused = [pq.read_schema(path).metadata.get(REUSED_KEY) for path in (out / "clips").glob("*.parquet")]
    assert [json.loads(x) for x in reused if x] == [{str(later / "renamed.wav"): str(first / GOOD[1])}]


def test_a_failure_is_final_unless_retried(fsdd: Path, tmp_path: Path) -> None:
    inputs = _folder(tmp_path / "in", fsdd, GOOD)
    (inputs / LATE).write_bytes(CORRUPT)
    spec, out = JobSpec("embed", SETTINGS, timeline=True, shard_size=2), tmp_path / "out"
    assert run_job([str(inputs)], out, spec).failed == 1
    (inputs / LATE).write_bytes((fsdd / "2_theo_3.wav").read_bytes())  # repaired

    decoded, again = _decoded([str(inputs)], out, spec)
    assert (decoded, again.already_done, again.retried) == (set(), 5, 0)  # without --retry-failed: final
    assert read_table(out, "failures").column("input").to_pylist() == [str(inputs / LATE)]

    # with it only the failed input runs; the other input of its shard is copied, the other shards untouched
    stamps = {path.name: path.stat().st_mtime_ns for path in (out / "clips").glob("*.parquet")}
    decoded, retried = _decoded([str(inputs / GOOD[2]), str(inputs / LATE)], out, spec, retry_failed=True)
    assert decoded == {str(inputs / LATE)}
    assert (retried.retried, retried.already_done, retried.clips, retried.copied, retried.failed) == (1, 0, 2, 1, 0)
    assert_exactly_once(out, {str(inputs / name) for name in [*GOOD, LATE]}, set())
    assert len([name for name in stamps if (out / "clips" / name).exists()]) == 2  # two shards kept as they were
    reference = tmp_path / "reference"
    run_job([str(inputs)], reference, spec)
    assert {name: table.equals(tables(reference)[name]) for name, table in tables(out).items()} == {
        "clips": True,
        "windows": True,
        "failures": True,
    }
    assert not list((out / "_retry").rglob("*.parquet"))


def test_retry_leaves_shards_whose_inputs_are_not_given(fsdd: Path, tmp_path: Path) -> None:
    """A retry uncommits a shard only when all its inputs are in this run: otherwise its good rows would vanish."""
    inputs = _folder(tmp_path / "in", fsdd, GOOD)
    (inputs / LATE).write_bytes(CORRUPT)
    spec, out = JobSpec("embed", SETTINGS, shard_size=2), tmp_path / "out"
    run_job([str(inputs)], out, spec)
    before = tables(out)
    summary = run_job([str(inputs / LATE)], out, spec, retry_failed=True)  # its shard also holds GOOD[2]
    assert (summary.retried, summary.shards) == (0, 0)
    assert {name: table.equals(before[name]) for name, table in tables(out).items()} == dict.fromkeys(before, True)


def _embed_cli(inputs: Path, out: Path, faults: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "audioclas", "embed", str(inputs), "--out", str(out), "--timeline"]
    command += ["--window", "1", "--pad", "zeros", "--shard-size", "2", "--no-progress", *extra]
    env = {**os.environ, FAULTS_ENV: str(faults)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_a_retry_killed_midway_resumes_exactly_once(fsdd: Path, tmp_path: Path) -> None:
    inputs = _folder(tmp_path / "in", fsdd, GOOD)
    (inputs / LATE).write_bytes(CORRUPT)
    faults, out = tmp_path / "faults.json", tmp_path / "out"
    set_faults(faults, {})
    assert _embed_cli(inputs, out, faults).returncode == 1
    (inputs / LATE).write_bytes((fsdd / "2_theo_3.wav").read_bytes())
    set_faults(faults, {str(inputs / LATE): 1})
    killed = _embed_cli(inputs, out, faults, "--retry-failed")
    assert killed.returncode == -9, killed.stderr
    # killed with the failed shard uncommitted: its inputs read as not done (no row of any kind), nothing twice
    assert_exactly_once(out, {str(inputs / name) for name in GOOD if name != GOOD[2]}, set())
    resumed = _embed_cli(inputs, out, faults)  # a plain resume finishes the retry
    assert resumed.returncode == 0, resumed.stderr
    assert "1 clips copied from the same audio done before" in " ".join(resumed.stderr.split())
    assert_exactly_once(out, {str(inputs / name) for name in [*GOOD, LATE]}, set())
    assert not list((out / "_retry").rglob("*.parquet"))
