"""Batch jobs with a custom model (``--model NAME``), local engine: the same guarantees as the AudioSet jobs of
test_local.py, for a frozen head on the pretrained network and for a fine-tuned model with its own network.

The models are real and small (tests/support/tiny_models.py: two FSDD digits, trained in seconds); the inputs are
real FSDD recordings, a corrupt file and a zip; processes are really killed through the worker's test hook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from batch_inputs import ARCHIVE, assert_exactly_once, expected_inputs, make_inputs, set_faults, tables
from tiny_models import FINETUNED, FROZEN, tiny_models

from audioclas.batch import JobSpec, read_embeddings, read_job, run_job
from audioclas.batch.job import PRODUCER_KEY
from audioclas.batch.models import JobModel
from audioclas.batch.worker import FAULTS_ENV, ShardWorker
from audioclas.cli import main
from audioclas.errors import AudioclasError, InputError
from audioclas.options import prediction_windows
from audioclas.predictions import LabelQuery
from audioclas.tagger import Tagger
from audioclas.training import load_model
from audioclas.training.store import SavedModel
from audioclas.weights import WEIGHTS_SHA256
from audioclas.windows import WindowRequest

CLIPS = ["0_george_30.wav", "0_jackson_5.wav", "1_george_31.wav", "1_nicolas_7.wav", "2_theo_3.wav"]  # FSDD


@pytest.fixture(scope="module")
def models(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SavedModel]:
    frozen, finetuned = tiny_models(shared_dir, tmp_path_factory.mktemp("models"))
    return {"frozen": load_model(frozen), "finetuned": load_model(finetuned)}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    return make_inputs(tmp_path_factory.mktemp("batch") / "in", shared_dir / "datasets" / "fsdd" / "recordings", CLIPS)


def _data(inputs: Path) -> list[str]:
    return [str(inputs), str(inputs / ARCHIVE)]


def _spec(task: str, model: SavedModel, **options) -> JobSpec:
    return JobSpec(task, prediction_windows(model, WindowRequest()), model=JobModel.of(model), **options)


def _producers(out: Path) -> list[dict]:
    """The producer metadata of every table file of the job's shards."""
    paths = [path for table in ("clips", "windows", "failures") for path in sorted((out / table).glob("*.parquet"))]
    return [json.loads(pq.read_schema(path).metadata[PRODUCER_KEY]) for path in paths if path.stem != "listing"]


@pytest.mark.parametrize("kind", ["frozen", "finetuned"])
def test_predict_rows_are_the_models_and_say_which_model(
    models: dict[str, SavedModel], inputs: Path, tmp_path: Path, kind: str
) -> None:
    model, out = models[kind], tmp_path / "out"
    spec = _spec("predict", model, query=LabelQuery(top_k=2), timeline=True, shard_size=3)
    summary = run_job(_data(inputs), out, spec)
    good, failed = expected_inputs(inputs, CLIPS)
    assert (summary.inputs, summary.clips, summary.failed) == (7, len(good), 1)
    assert_exactly_once(out, good, failed)

    identity = {"name": model.name, "sha256": JobModel.of(model).sha256, "backbone_sha256": model.backbone_sha256}
    assert read_job(out)["model"] == identity and read_job(out)["backbone_sha256"] == model.backbone_sha256
    assert (model.backbone_sha256 == WEIGHTS_SHA256) == (kind == "frozen")
    producers = _producers(out)
    assert len(producers) == 3 + 3 + 1  # clips and windows of 3 shards, the corrupt file's failures
    assert producers == [{"backbone_sha256": model.backbone_sha256, "model": identity}] * len(producers)

    clips, windows, _ = tables(out).values()
    files = [inputs / name for name in CLIPS]
    expected = {p.source: p for p in Tagger(batch_size=1).predict_many(files, top_k=2, model=model)}
    window_rows = windows.to_pylist()
    for row in clips.to_pylist():
        if "!" in row["input"]:
            continue
        prediction = expected[row["input"]]
        assert not isinstance(prediction, InputError)
        assert [x["name"] for x in row["labels"]] == [x.name for x in prediction.labels]
        assert {x["name"] for x in row["labels"]} <= set(model.classes) and row["labels"][0]["id"] is None
        assert [x["score"] for x in row["labels"]] == pytest.approx([x.score for x in prediction.labels], abs=1e-5)
        mine = [w for w in window_rows if w["input"] == row["input"]]
        assert [(w["start"], w["end"]) for w in mine] == [(w.start, w.end) for w in prediction.windows]
        assert [[x["name"] for x in w["labels"]] for w in mine] == [
            [x.name for x in w.labels] for w in prediction.windows
        ]


@pytest.mark.parametrize("kind", ["frozen", "finetuned"])
def test_embeddings_are_those_the_models_head_reads(
    models: dict[str, SavedModel], inputs: Path, tmp_path: Path, kind: str
) -> None:
    model, out = models[kind], tmp_path / "out"
    run_job(_data(inputs), out, _spec("embed", model, timeline=True, shard_size=3))
    assert_exactly_once(out, *expected_inputs(inputs, CLIPS))
    assert read_job(out)["backbone_sha256"] == model.backbone_sha256 and read_job(out)["model"]["name"] == model.name
    read = {clip.input: clip for clip in read_embeddings(out)}
    tagger = Tagger(batch_size=1)
    settings = prediction_windows(model, WindowRequest())
    for name in CLIPS[:3]:
        clip = read[str(inputs / name)]
        expected = tagger.embed(inputs / name, windows=settings, network=model.load_backbone())
        np.testing.assert_allclose(clip.windows, expected.windows, atol=1e-5)
        np.testing.assert_array_equal(clip.starts, expected.starts)
        # the head, given these embeddings, scores the clip as the model does
        np.testing.assert_allclose(
            model.classify(np.array(clip.windows))[1], tagger.predict(inputs / name, model=model).scores, atol=1e-5
        )
        pretrained = tagger.embed(inputs / name, windows=settings)
        assert np.allclose(clip.windows, pretrained.windows, atol=1e-5) == (kind == "frozen")


def test_a_job_resumes_only_with_its_own_model(
    models: dict[str, SavedModel], inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, data = tmp_path / "out", [str(inputs / CLIPS[0])]
    run_job(data, out, _spec("predict", models["frozen"]))
    others = [
        _spec("predict", models["finetuned"]),
        JobSpec("predict", prediction_windows(models["frozen"], WindowRequest())),
    ]
    for other in others:
        with pytest.raises(AudioclasError, match=f"holds the results of model '{FROZEN}'") as error:
            run_job(data, out, other)
        assert "\n" not in str(error.value)
    assert main(["predict", *data, "--out", str(out), "--model", FINETUNED, "--no-progress"]) == 2
    message = capsys.readouterr().err.strip()
    assert f"model '{FROZEN}'" in message and f"model '{FINETUNED}'" in message and "\n" not in message
    # an AudioSet job is not resumed with a model either
    audioset = tmp_path / "audioset"
    run_job(data, audioset, JobSpec("embed"))
    with pytest.raises(AudioclasError, match=r"holds the results of the AudioSet network \(no --model\)"):
        run_job(data, audioset, _spec("embed", models["frozen"]))


def test_a_model_changed_under_its_name_is_another_model(
    models: dict[str, SavedModel], tmp_path: Path, inputs: Path
) -> None:
    """Retrained under the same name (here: its model.json rewritten), a model is refused by the job planned with
    it, at resume and on a worker that loads it mid-job."""
    folder = tmp_path / "copy"
    os.makedirs(folder)
    for path in models["frozen"].path.iterdir():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())
    before = _spec("predict", load_model(folder))
    out, data = tmp_path / "out", [str(inputs / CLIPS[0])]
    run_job(data, out, before)
    info = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**info, "retrained": True}))
    with pytest.raises(AudioclasError, match="holds the results of model"):
        run_job(data, out, _spec("predict", load_model(folder)))
    with pytest.raises(AudioclasError, match="changed since the job started"):
        ShardWorker(before, str(tmp_path / "other"), 1)


def test_model_options_are_checked_before_any_work(models: dict[str, SavedModel], inputs: Path, tmp_path: Path) -> None:
    frozen = models["frozen"]
    with pytest.raises(AudioclasError, match=r"trained on 0\.3 s windows"):
        JobSpec("embed", prediction_windows(None, WindowRequest()), model=JobModel.of(frozen))
    with pytest.raises(AudioclasError, match="unknown label"):
        _spec("predict", frozen, query=LabelQuery(labels=("Dog",)))
    out = tmp_path / "out"
    assert main(["embed", str(inputs), "--out", str(out), "--model", FROZEN, "--window", "10", "--no-progress"]) == 2
    assert main(["predict", str(inputs), "--out", str(out), "--model", FROZEN, "--with-audioset"]) == 2
    assert not out.exists()


def _cli(task: str, inputs: Path, out: Path, model: str, faults: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, FAULTS_ENV: str(faults)} if faults else dict(os.environ)  # AUDIOCLAS_HOME: the models
    command = [sys.executable, "-m", "audioclas", task, *_data(inputs), "--out", str(out), "--model", model]
    command += ["--timeline", "--shard-size", "2", "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("task", ["predict", "embed"])
def test_killed_model_job_resumes_exactly_once(
    models: dict[str, SavedModel], inputs: Path, tmp_path: Path, task: str
) -> None:
    model = models["finetuned"]
    reference = tmp_path / "reference"
    run_job(_data(inputs), reference, _spec(task, model, timeline=True, shard_size=2))
    faults, out = tmp_path / "faults.json", tmp_path / "out"
    set_faults(faults, {str(inputs / CLIPS[4]): 1})  # in the third of four shards (7 sorted items, 2 a shard)
    killed = _cli(task, inputs, out, FINETUNED, faults)
    assert killed.returncode == -9, killed.stderr
    assert len(list((out / "clips").glob("*.parquet"))) == 2
    resumed = _cli(task, inputs, out, FINETUNED, faults)
    assert resumed.returncode == 1, resumed.stderr  # 1: the corrupt file
    assert "7 inputs (3 run now, 4 already done)" in " ".join(resumed.stderr.split())
    assert_exactly_once(out, *expected_inputs(inputs, CLIPS))
    finished, expected = tables(out), tables(reference)
    assert {name: finished[name].equals(expected[name]) for name in finished} == dict.fromkeys(finished, True)
    assert read_job(out) == read_job(reference)
