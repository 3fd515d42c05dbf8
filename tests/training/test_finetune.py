"""A fine-tuned model end to end, on a tiny real FSDD subset: it predicts with its own network through the Python
API, the CLI, the REST service and the real deepaas-run, evaluates, and shows the frozen head's and the fine-tuned
network's metrics side by side. Also: window options with a custom model, and AudioSet tags beside one.

One fine-tuning (two digits, 5 training clips each, one epoch) is shared by the module's end-to-end tests; the
windows fine-tuning cuts are checked on their own against the prediction windows.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from deepaas_server import DeepaasServer
from service_server import Server, george_split

from audioclas.cli import main
from audioclas.errors import AudioclasError
from audioclas.tagger import Tagger
from audioclas.training import ModelError, TrainConfig, evaluate, load_model, train
from audioclas.training.finetune import NO_VALIDATION
from audioclas.weights import WEIGHTS_SHA256

DIGITS = ["zero", "one"]
TRAIN, VAL, TEST = range(10, 15), range(15, 18), range(0, 3)
NAME = "tuned-digits"
DOG_CLASSES = {
    "Dog",
    "Animal",
    "Domestic animals, pets",
    "Canidae, dogs, wolves",
    "Howl",
    "Bow-wow",
    "Whimper (dog)",
    "Growling",
    "Yip",
    "Bark",
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """Two of George's digits: 5 train and 3 test recordings each, and no validation split."""
    root = tmp_path_factory.mktemp("tuned-digits")
    for split, indices in (("train", TRAIN), ("test", TEST)):
        george_split(shared_dir, root, split, indices)
    (root / "classes.txt").write_text("\n".join(DIGITS) + "\n")
    return root


@pytest.fixture(scope="module")
def tuned(digits: Path):
    """The fine-tuned model, trained without validation: the fine-tuned network is kept unchecked."""
    messages: list[str] = []
    config = TrainConfig(
        name=NAME,
        finetune=True,
        finetune_epochs=1,
        finetune_batch_size=10,
        epochs=10,
        early_stopping=0,
        val_fraction=0,
        tensorboard=False,
    )
    result = train(digits, config, log=messages.append)
    result.messages = messages
    return result


@pytest.fixture(scope="module")
def test_files(digits: Path) -> list[Path]:
    return [digits / "audio" / f"{label}_george_{index}.wav" for label in range(len(DIGITS)) for index in TEST]


@pytest.fixture(scope="module")
def evaluated(tuned, digits: Path):
    return evaluate(NAME, digits)


# ---------------------------------------------------------------- the saved model


def test_the_model_records_its_own_backbone_and_the_pretrained_one(tuned) -> None:
    model = load_model(NAME)
    backbone = model.info["backbone"]
    assert model.finetuned and backbone["finetuned"] and backbone["file"] == "backbone.safetensors"
    assert model.pretrained_sha256 == backbone["pretrained_sha256"] == WEIGHTS_SHA256
    assert model.backbone_sha256 == backbone["sha256"] != WEIGHTS_SHA256


def test_a_tampered_backbone_is_refused(tuned, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "copy"
    shutil.copytree(tuned.model.path, copy)
    weights = load_file(copy / "backbone.safetensors")
    first = next(key for key, value in weights.items() if value.is_floating_point())
    weights[first] = weights[first] + 0.01
    save_file(weights, str(copy / "backbone.safetensors"))
    with pytest.raises(ModelError, match="does not match the backbone sha256"):
        load_model(copy).load_backbone()
    with pytest.raises(ModelError, match="damaged"):
        Tagger().predict(digits_file(tuned), model=load_model(copy))


def digits_file(tuned) -> Path:
    return Path(tuned.model.info["dataset"]["path"]) / "audio" / "0_george_0.wav"


# ---------------------------------------------------------------- frozen and fine-tuned, side by side


def test_both_networks_test_metrics_are_kept_side_by_side(tuned) -> None:
    info = json.loads((tuned.model.path / "model.json").read_text())
    assert info["finetune"] == {"kept": "finetuned", "selection": NO_VALIDATION}
    frozen, finetuned = info["metrics"]["frozen"], info["metrics"]["finetuned"]
    assert set(frozen) == set(finetuned) == {"test"}  # no validation split
    assert frozen["test"]["examples"] == finetuned["test"]["examples"] == 6
    assert finetuned["test"]["accuracy"] == info["metrics"]["test"]["accuracy"] == tuned.metrics["test"]["accuracy"]
    assert tuned.finetune["frozen"] == frozen and tuned.finetune["finetuned"] == finetuned
    assert any(
        message.startswith("test: frozen head accuracy") and "fine-tuned network accuracy" in message
        for message in tuned.messages
    )
    assert f"warning: {NO_VALIDATION}" in tuned.messages


def test_a_validation_split_decides_between_them(tuned, digits: Path, shared_dir: Path, tmp_path: Path) -> None:
    # Validation clips the frozen head separates perfectly: one fine-tuning epoch cannot beat it, so it is dropped,
    # and its metrics are still shown.
    root = tmp_path / "data"
    shutil.copytree(digits, root)
    george_split(shared_dir, root, "val", VAL)
    messages: list[str] = []
    result = train(
        root,
        TrainConfig(
            name="tuned-val",
            finetune=True,
            finetune_epochs=1,
            finetune_batch_size=10,
            epochs=10,
            early_stopping=0,
            tensorboard=False,
        ),
        log=messages.append,
    )
    info = result.model.info
    assert info["finetune"]["kept"] == "frozen" and not result.model.finetuned
    assert info["metrics"]["frozen"]["val"]["accuracy"] == 1.0
    assert info["finetune"]["selection"].startswith("validation score") and info["finetune"]["selection"] in messages
    assert set(info["metrics"]["frozen"]) == set(info["metrics"]["finetuned"]) == {"val", "test"}
    assert info["metrics"]["test"] == info["metrics"]["frozen"]["test"]
    assert not any(NO_VALIDATION in message for message in messages)


def test_the_train_cli_prints_both_and_the_warning(tuned, digits: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(
        [
            "train",
            str(digits),
            "--name",
            "tuned-cli",
            "--finetune",
            "--finetune-epochs",
            "1",
            "--finetune-batch-size",
            "10",
            "--epochs",
            "10",
            "--val-fraction",
            "0",
            "--no-progress",
            "--no-tensorboard",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "frozen head and fine-tuned network" in out and "test (frozen head)" in out and "test (fine-tuned)" in out
    assert f"warning: {NO_VALIDATION}" in " ".join(out.split())


# ---------------------------------------------------------------- predicting with the fine-tuned network


def test_python_predict_uses_the_fine_tuned_network(tuned, evaluated, test_files: list[Path]) -> None:
    model = load_model(NAME)
    tagger = Tagger()
    predictions = [tagger.predict(path, model=model, top_k=0) for path in test_files]
    assert [p.source for p in predictions] == [str(path) for path in test_files]
    # The same scores as evaluation, which embeds with the saved backbone...
    order = [str(example.path) for example in evaluated.examples]
    expected = evaluated.scores[[order.index(str(path)) for path in test_files]]
    np.testing.assert_allclose([p.scores for p in predictions], expected, atol=1e-4)
    # ... and not those of the head on the pretrained network's embeddings.
    pretrained = [
        model.classify(tagger.embed(path, window=model.window, pad=model.pad).windows)[1] for path in test_files
    ]
    assert np.abs(np.asarray(pretrained) - expected).max() > 1e-3
    assert tagger.backbones.keys() == {model.backbone_sha256}  # loaded once, kept for the next call


def test_a_backbone_engine_given_to_predict_is_used_only_if_it_is_the_models(tuned, test_files: list[Path]) -> None:
    """The service passes each model's backbone engine (behind its slots) rather than letting the tagger load it."""
    model, tagger = load_model(NAME), Tagger(backend="torch")
    backbone = model.load_backbone("torch")
    given = tagger.predict(test_files[0], model=model, backbone=backbone, top_k=0)
    assert not tagger.backbones  # the one given was used, nothing loaded
    np.testing.assert_array_equal(given.scores, tagger.predict(test_files[0], model=model, top_k=0).scores)
    with pytest.raises(AudioclasError, match="is not the one it was trained on"):
        tagger.predict(test_files[0], model=model, backbone=tagger.engine)


def test_evaluate_matches_training(tuned, evaluated) -> None:
    assert evaluated.metrics["accuracy"] == tuned.metrics["test"]["accuracy"]
    assert evaluated.metrics["examples"] == 6


def test_cli_predict_and_evaluate(tuned, evaluated, digits: Path, test_files: list[Path], capsys) -> None:
    assert main(["predict", *map(str, test_files), "--model", NAME, "-k", "0", "-f", "json", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    order = [str(example.path) for example in evaluated.examples]
    for result in printed:
        scores = {label["name"]: label["score"] for label in result["labels"]}
        np.testing.assert_allclose(
            [scores[name] for name in DIGITS], evaluated.scores[order.index(result["input"])], atol=1e-4
        )
    assert main(["evaluate", NAME, str(digits), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == tuned.metrics["test"]["accuracy"]


def test_rest_and_deepaas_predict(tuned, evaluated, test_files: list[Path], tmp_path: Path) -> None:
    order = [str(example.path) for example in evaluated.examples]
    path = test_files[0]
    expected = evaluated.scores[order.index(str(path))]
    # The server shares this session's home, so it sees the saved model.
    with Server(Path(os.environ["AUDIOCLAS_HOME"]), cache=tmp_path / "cache") as server, server.client() as client:
        url = f"/v2/models/{NAME}/predict/"
        answer = client.post(url, files={"files": (path.name, path.read_bytes())}, data={"top_k": "2"})
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        scores = {label["name"]: label["score"] for label in result["labels"]}
        np.testing.assert_allclose([scores[name] for name in DIGITS], expected, atol=1e-4)
        described = client.get(f"/v2/models/{NAME}/").json()
        assert set(described["metrics"]) >= {"test", "frozen", "finetuned"}
        refused = client.post(url, files={"files": (path.name, path.read_bytes())}, data={"window": "10"})
        assert refused.status_code == 422 and "trained on 1 s windows" in refused.json()["error"]
    # DEEPaaS's own server, on the same home: the fine-tuned model predicts through it too.
    deepaas = DeepaasServer(tmp_path, {}, home=Path(os.environ["AUDIOCLAS_HOME"]))
    try:
        with deepaas.client() as client, open(path, "rb") as file:
            answer = client.post(
                "/v2/models/audioclas/predict/", params={"model": NAME, "top_k": 2}, files={"data": (path.name, file)}
            ).json()["predictions"]
            (result,) = answer["results"]
            assert result["input"] == path.name, result
            scores = {label["name"]: label["score"] for label in result["labels"]}
            np.testing.assert_allclose([scores[name] for name in DIGITS], expected, atol=1e-4)
            file.seek(0)
            refused = client.post(
                "/v2/models/audioclas/predict/",
                params={"model": NAME, "window": 10.0},
                files={"data": (path.name, file)},
            ).json()["predictions"]
            assert refused["results"] == [] and "trained on 1 s windows" in refused["error"], refused
    finally:
        deepaas.stop()


# ---------------------------------------------------------------- window options with a custom model


def test_a_custom_model_refuses_other_windows_and_honours_the_hop(tuned, audio_dir: Path) -> None:
    model, tagger = load_model(NAME), Tagger()
    clip = audio_dir / "pibble.ogg"
    with pytest.raises(AudioclasError, match=r"trained on 1 s windows: it cannot use 10 s windows"):
        tagger.predict(clip, model=model, window=10)
    with pytest.raises(AudioclasError, match="padded by zeros: it cannot use pad loop"):
        tagger.predict(clip, model=model, pad="loop")
    with pytest.raises(AudioclasError, match="hop must be"):
        tagger.predict(clip, model=model, hop=2)
    default = tagger.predict(clip, model=model, window=1.0, pad="zeros")  # the model's own: accepted
    finer = tagger.predict(clip, model=model, hop=0.5)
    assert [w.start for w in default.windows][:3] == [0, 1, 2]
    assert [w.start for w in finer.windows][:3] == [0, 0.5, 1]
    assert len(finer.windows) == 2 * len(default.windows) - 1


def test_the_cli_refuses_a_window_the_model_was_not_trained_on(tuned, audio_dir: Path, capsys) -> None:
    assert main(["predict", str(audio_dir / "pibble.ogg"), "--model", NAME, "--window", "10", "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert "trained on 1 s windows" in error and len(error.splitlines()) == 1


def assert_a_dog(audioset) -> None:
    """The network's own tags for pibble.ogg: a dog in the first 10 s window, and among the clip's top labels.

    (Its clip-level top label is "Plop", 0.81, from the quiet windows at 20 s and 37 s, as when tagging it without a
    custom model: see tests/test_model.py. On the custom model's short windows it came back as Music, Baby cry.)
    """
    names = [label.name for label in audioset.labels]
    assert len(audioset.windows) == 5 and audioset.windows[0].end == 10.0
    assert audioset.windows[0].labels[0].name in DOG_CLASSES, names
    assert {"Dog", "Animal"} <= set(names[:4]) and not {"Music", "Baby cry, infant cry", "Silence"} & set(names), names


def test_audioset_tags_beside_a_custom_model_use_10_s_windows(tuned, audio_dir: Path) -> None:
    # A howling dog (pibble.txt). The custom model reads 1 s windows; the AudioSet tags must come from the
    # pretrained network's own 10 s looped windows, exactly as when tagging without a model.
    clip = audio_dir / "pibble.ogg"
    tagger = Tagger()
    plain = tagger.predict(clip, top_k=5)
    custom = tagger.predict(clip, model=load_model(NAME), with_audioset=True, top_k=5)
    assert custom.labels[0].name in DIGITS and len(custom.windows) == 47
    audioset = custom.audioset
    assert_a_dog(audioset)
    assert (
        [w.start for w in audioset.windows]
        == [w.start for w in plain.windows]
        == [0, 10, 20, 30, pytest.approx(36.95, abs=0.01)]
    )
    assert [label.name for label in audioset.labels] == [label.name for label in plain.labels]
    np.testing.assert_allclose(
        [label.score for label in audioset.labels], [label.score for label in plain.labels], atol=1e-5
    )


def test_audioset_tags_beside_a_frozen_short_window_model(tuned, digits: Path, audio_dir: Path) -> None:
    # The case of the report: a frozen head on 0.3 s windows gave a dog "Music, Baby cry, Silence".
    model = train(
        digits, TrainConfig(name="short-frozen", epochs=5, early_stopping=0, val_fraction=0, tensorboard=False)
    ).model
    assert (model.window, model.finetuned) == (0.3, False)
    prediction = Tagger().predict(audio_dir / "pibble.ogg", model=model, with_audioset=True, top_k=5)
    assert_a_dog(prediction.audioset)


def test_models_show_says_which_network_was_kept(tuned, capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "show", NAME]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"kept the fine-tuned network: {NO_VALIDATION}" in shown


@pytest.mark.unit
@pytest.mark.parametrize("seconds", [0.2, 0.3, 0.45, 0.6, 1.0])
def test_finetune_windows_are_the_prediction_windows(seconds: float) -> None:
    from audioclas.training.finetune import window_batch
    from audioclas.windows import WindowSettings, iter_windows

    settings = WindowSettings(0.3, 0.1, "zeros")
    wave = np.random.default_rng(0).standard_normal(round(seconds * 32000)).astype(np.float32)
    size, hop = settings.in_samples(32000)
    expected = np.stack([window.samples for window in iter_windows([wave], size, hop, "zeros")])
    np.testing.assert_array_equal(window_batch(torch.from_numpy(wave)[None], settings)[0].numpy(), expected)
