"""Batch jobs on a real local Ray cluster (2 CPUs, started here for this module and shut down after it).

The same inputs as test_local.py: real clips from ../shared/audio, a corrupt file and a zip (and for the custom
models of tests/support/tiny_models.py, as in test_models.py, FSDD recordings). A Ray actor is
really killed (SIGKILL) mid-job through the worker's test hook, which the actor processes read from the
environment they inherit from this process: set before ``ray.init``, armed per test by writing its JSON file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from batch_inputs import ARCHIVE, CLIPS, assert_exactly_once, expected_inputs, make_inputs, set_faults, tables
from tiny_models import FINETUNED, FROZEN, tiny_models

from audioclas.batch import JobSpec, read_job, run_job
from audioclas.batch.worker import FAULTS_ENV
from audioclas.cli import main
from audioclas.windows import WindowSettings

DIGITS = ["0_george_30.wav", "0_jackson_5.wav", "1_george_31.wav", "1_nicolas_7.wav", "2_theo_3.wav"]  # FSDD


def _processes_using(folder: Path) -> list[int]:
    """Ids of the processes whose command line mentions ``folder`` (the cluster's temporary folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private 2-CPU Ray for this module; yields the faults file its workers watch. Leaves no process behind."""
    faults = tmp_path_factory.mktemp("faults") / "faults.json"
    set_faults(faults, {})
    ray_dir = tmp_path_factory.mktemp("ray")
    previous = os.environ.get(FAULTS_ENV)
    os.environ[FAULTS_ENV] = str(faults)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        _temp_dir=str(ray_dir),
        logging_level="WARNING",
    )
    try:
        yield faults
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop(FAULTS_ENV)
        else:
            os.environ[FAULTS_ENV] = previous
        deadline = time.monotonic() + 30
        while _processes_using(ray_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _processes_using(ray_dir), "Ray processes outlived ray.shutdown()"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> Path:
    return make_inputs(tmp_path_factory.mktemp("batch") / "in", audio_dir)


@pytest.mark.parametrize("task", ["predict", "embed"])
def test_ray_writes_what_the_local_engine_writes(cluster: Path, inputs: Path, tmp_path: Path, task: str) -> None:
    data = [str(inputs), str(inputs / ARCHIVE)]
    run_job(data, tmp_path / "local", JobSpec(task, timeline=True, shard_size=2))
    # through the command line, which finds the cluster this process already joined
    status = main([task, *data, "--out", str(tmp_path / "ray"), "--engine", "ray", "--timeline", "--shard-size", "2"])
    assert status == 1  # the corrupt file
    assert_exactly_once(tmp_path / "ray", *expected_inputs(inputs))
    local, on_ray = tables(tmp_path / "local"), tables(tmp_path / "ray")
    assert {name: on_ray[name].equals(local[name]) for name in local} == dict.fromkeys(local, True)  # bit for bit


def test_killed_ray_worker_loses_and_duplicates_nothing(cluster: Path, inputs: Path, tmp_path: Path) -> None:
    """One actor is killed while decoding one file (Ray restarts it and retries the shard, which is rewritten); an
    archive member kills its actor every time (skipped after two deaths, listed as a failure, the archive's other
    member kept)."""
    data = [str(inputs), str(inputs / ARCHIVE)]
    spec = JobSpec("embed", timeline=True, shard_size=2)
    run_job(data, tmp_path / "local", spec)
    killed_once, poison = str(inputs / CLIPS[3]), f"{inputs / ARCHIVE}!members/{CLIPS[1]}"  # in different shards
    set_faults(cluster, {killed_once: 1, poison: 99})
    try:
        summary = run_job(data, tmp_path / "ray", spec, engine="ray")
    finally:
        faults_left = cluster.read_text()
        set_faults(cluster, {})
    assert faults_left == f'{{"{killed_once}": 0, "{poison}": 97}}'  # the kills really happened
    good, failed = expected_inputs(inputs)
    assert_exactly_once(tmp_path / "ray", good - {poison}, failed | {poison})
    assert f"{poison}: the worker process died 2 times while reading it; skipped" in summary.failures
    local, on_ray = tables(tmp_path / "local"), tables(tmp_path / "ray")
    for name in ("clips", "windows"):
        inputs_of = on_ray[name].column("input").to_pylist()
        keep = [i for i, source in enumerate(local[name].column("input").to_pylist()) if source in set(inputs_of)]
        assert on_ray[name].equals(local[name].take(keep))  # every other row as the local engine wrote it
    assert not list((tmp_path / "ray" / "_journal").glob("*"))


@pytest.mark.parametrize(("task", "model"), [("predict", FROZEN), ("embed", FINETUNED)])
def test_ray_runs_a_custom_model_as_the_local_engine(
    cluster: Path, shared_dir: Path, tmp_path: Path, task: str, model: str
) -> None:
    tiny_models(shared_dir, tmp_path / "models")
    inputs = make_inputs(tmp_path / "in", shared_dir / "datasets" / "fsdd" / "recordings", DIGITS)
    common = [task, str(inputs), str(inputs / ARCHIVE), "--model", model, "--timeline", "--shard-size", "2"]
    assert main([*common, "--out", str(tmp_path / "local"), "--no-progress"]) == 1  # the corrupt file
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 1
    assert_exactly_once(tmp_path / "ray", *expected_inputs(inputs, DIGITS))
    assert (
        read_job(tmp_path / "ray") == read_job(tmp_path / "local")
        and read_job(tmp_path / "ray")["model"]["name"] == model
    )
    local, on_ray = tables(tmp_path / "local"), tables(tmp_path / "ray")
    assert {name: on_ray[name].equals(local[name]) for name in local} == dict.fromkeys(local, True)  # bit for bit


def test_ray_retries_failures_and_copies_audio_done_under_another_name(
    cluster: Path, shared_dir: Path, tmp_path: Path
) -> None:
    fsdd = shared_dir / "datasets" / "fsdd" / "recordings"
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in DIGITS[:3]:
        (inputs / name).write_bytes((fsdd / name).read_bytes())
    late = inputs / "1_late.wav"  # sorts after DIGITS[2]: with 2 a shard, in its shard
    late.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 20)
    spec = JobSpec("embed", WindowSettings(1.0, None, "zeros"), timeline=True, shard_size=2)
    first = run_job([str(inputs)], tmp_path / "ray", spec, engine="ray")
    assert first.failed == 1
    late.write_bytes((fsdd / DIGITS[4]).read_bytes())  # repaired
    (inputs / "renamed.wav").write_bytes((fsdd / DIGITS[0]).read_bytes())  # a copy under a new name
    summary = run_job([str(inputs)], tmp_path / "ray", spec, engine="ray", retry_failed=True)
    assert (summary.retried, summary.copied, summary.clips, summary.failed) == (1, 2, 3, 0)
    names = [*DIGITS[:3], late.name, "renamed.wav"]
    assert_exactly_once(tmp_path / "ray", {str(inputs / name) for name in names}, set())
    run_job([str(inputs)], tmp_path / "local", spec)
    local, on_ray = tables(tmp_path / "local"), tables(tmp_path / "ray")
    assert {name: on_ray[name].equals(local[name]) for name in local} == dict.fromkeys(local, True)
