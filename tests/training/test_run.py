"""Training end to end on a small real FSDD subset: embedding cache, heads, saved models, predict, evaluate, CLI.

The subset (3 digits, George's recordings) is embedded once per session into the session's private cache; later
trainings reuse it, which is also what the cache is for.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from media import encode
from no_torch import run_without_torch
from PIL import Image

from audioclas.audio import load_audio
from audioclas.engine.torch_engine import TorchEngine
from audioclas.inputs import AudioSource
from audioclas.tagger import Tagger
from audioclas.training import (
    Cancelled,
    DatasetError,
    ModelError,
    TrainConfig,
    evaluate,
    extract_embeddings,
    list_models,
    load_dataset,
    load_model,
    train,
)
from audioclas.training.embedding_cache import EmbeddingCache, extract
from audioclas.training.embeddings import Embedder, embedded_split
from audioclas.training.heads import build_head
from audioclas.training.store import models_dir, save_model
from audioclas.training.trainer import fit, make_optimizer, predict_scores
from audioclas.weights import WEIGHTS_SHA256
from audioclas.windows import WindowSettings

DIGITS = ["zero", "one", "two"]
TRAIN, VAL, TEST = range(10, 18), range(18, 20), range(0, 3)
FAST = dict(epochs=25, early_stopping=0, tensorboard=False)


def make_split_files(root: Path, fsdd: Path) -> Path:
    """3 classes of George's digits: 8 train, 2 val and 3 test recordings each, copied into ``root``."""
    (root / "audio").mkdir(parents=True)
    for split, indices in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        lines = []
        for label in range(len(DIGITS)):
            for index in indices:
                name = f"{label}_george_{index}.wav"
                shutil.copy(fsdd / "recordings" / name, root / "audio" / name)
                lines.append(f"audio/{name} {label}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(DIGITS) + "\n")
    (root / "info.txt").write_text("three digits spoken by George (FSDD)\n")
    return root


@pytest.fixture(scope="module")
def fsdd(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "fsdd"


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, fsdd: Path) -> Path:
    return make_split_files(tmp_path_factory.mktemp("digits"), fsdd)


@pytest.fixture(scope="module")
def trained(digits: Path):
    """The reference training of this module (attention head): embeds the subset into the session cache."""
    messages: list[str] = []
    result = train(digits, TrainConfig(name="digits", head="attention", **FAST), log=messages.append)
    result.messages = messages
    return result


@pytest.fixture(scope="module")
def splits(trained, digits: Path):
    """The subset's embedded splits, straight from the cache the reference training filled."""
    dataset = load_dataset(digits)
    embedder = Embedder(WindowSettings(trained.model.window, trained.model.hop, trained.model.pad))
    clips, failed, computed = embedder(dataset.examples())
    assert not failed and computed == 0
    return {split: embedded_split(items, clips, 3, False) for split, items in dataset.splits.items()}, dataset


def run_cli(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="audioclas")
    module.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# ---------------------------------------------------------------- training and the saved model


def test_short_clips_get_short_overlapping_windows(trained) -> None:
    assert (trained.model.window, trained.model.hop, trained.model.pad) == (0.3, 0.1, "zeros")
    assert any("median clip length" in message for message in trained.messages)


def test_train_saves_a_complete_model(trained) -> None:
    folder = trained.model.path
    assert folder == models_dir() / "digits"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "model.json",
            "README.md",
            "head.safetensors",
            "config.json",
            "metrics.json",
            "history.json",
            "classes.txt",
            "info.txt",
            "confusion_matrix_val.json",
            "confusion_matrix_val.png",
            "confusion_matrix_test.json",
            "confusion_matrix_test.png",
        ]
    )
    info = json.loads((folder / "model.json").read_text())
    assert info["classes"] == DIGITS and info["multilabel"] is False
    assert info["backbone"] == {
        "name": "EfficientAT mn04_as",
        "sha256": WEIGHTS_SHA256,
        "pretrained_sha256": WEIGHTS_SHA256,
        "finetuned": False,
        "file": None,
    }
    assert info["dataset"]["counts"] == {"train": [8, 8, 8], "val": [2, 2, 2], "test": [3, 3, 3]}
    config = json.loads((folder / "config.json").read_text())
    assert config["head"] == "attention" and config["window"] == 0.3 and config["epochs"] == 25
    assert len(json.loads((folder / "history.json").read_text())) == 25 == trained.model.info["training"]["epochs_run"]
    matrix = json.loads((folder / "confusion_matrix_test.json").read_text())["matrix"]
    assert np.sum(matrix) == 9 and np.trace(matrix) == round(trained.metrics["test"]["accuracy"] * 9)
    with Image.open(folder / "confusion_matrix_test.png") as image:
        assert image.format == "PNG" and min(image.size) > 50
    assert (folder / "info.txt").read_text().startswith("three digits")
    assert not list(models_dir().glob(".tmp-*"))


def test_the_trained_model_separates_the_digits(trained) -> None:
    # Held-out recordings of the same speaker: the frozen embeddings separate three digits easily.
    assert trained.metrics["val"]["accuracy"] >= 5 / 6
    assert trained.metrics["test"]["accuracy"] >= 7 / 9
    assert set(trained.metrics["test"]) >= {
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "per_class",
        "confusion_matrix",
    }


def test_load_and_classify_window_embeddings(trained, splits) -> None:
    model = load_model("digits")
    (by_split, _dataset) = splits
    assert model.classes == DIGITS and not model.multilabel and model.backbone_sha256 == WEIGHTS_SHA256
    test = by_split["test"]
    expected, _ = predict_scores(model.torch_head(), test, False)
    for clip in range(len(test)):
        windows = test.windows[test.offsets[clip] : test.offsets[clip + 1]].numpy()
        window_scores, clip_scores = model.classify(windows)
        assert window_scores.shape == (len(windows), 3) and clip_scores.shape == (3,)
        np.testing.assert_allclose(window_scores.sum(1), 1, atol=1e-5)
        np.testing.assert_allclose(clip_scores, expected[clip], atol=1e-5)
        assert model.decide(clip_scores) == [DIGITS[int(np.argmax(clip_scores))]]
    with pytest.raises(ValueError, match="shape"):
        model.classify(np.zeros((2, 100), np.float32))


@pytest.mark.parametrize("kind", ["linear", "mlp", "attention"])
def test_a_saved_model_classifies_in_numpy_as_its_torch_head_does(kind: str, trained, splits, digits: Path) -> None:
    """``classify`` runs the saved head in NumPy: window and clip scores within 1e-5 of the torch head's."""
    model = (
        trained.model
        if kind == "attention"
        else train(digits, TrainConfig(name=f"numpy-{kind}", head=kind, **FAST)).model
    )
    head = model.torch_head()
    test = splits[0]["test"]
    for clip in range(len(test)):
        windows = test.windows[test.offsets[clip] : test.offsets[clip + 1]]
        with torch.no_grad():
            window_logits, clip_logits = head(windows[None], torch.ones(1, len(windows), dtype=torch.bool))
        window_scores, clip_scores = model.classify(windows.numpy())
        np.testing.assert_allclose(window_scores, window_logits[0].softmax(-1).numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(clip_scores, clip_logits[0].softmax(-1).numpy(), atol=1e-5, rtol=0)


def test_a_saved_model_loads_and_classifies_without_torch(trained, splits, tmp_path: Path) -> None:
    """``load_model`` and ``classify`` on an install without PyTorch (blocked in the subprocess)."""
    test = splits[0]["test"]
    windows = test.windows[test.offsets[0] : test.offsets[1]].numpy()
    np.save(tmp_path / "windows.npy", windows)
    code = (
        "import json, numpy as np\n"
        "from audioclas.training import load_model\n"
        "model = load_model('digits')\n"
        "print(json.dumps(model.classify(np.load(sys.argv[1]))[1].tolist()))\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\n"
    )
    run = run_without_torch(code, str(tmp_path / "windows.npy"))
    assert run.returncode == 0, run.stderr
    scores, torch_loaded = run.stdout.splitlines()
    np.testing.assert_allclose(json.loads(scores), load_model("digits").classify(windows)[1], atol=1e-6)
    assert torch_loaded == "NO TORCH"


def test_predict_with_the_trained_model(trained, digits: Path) -> None:
    from audioclas.tagger import Tagger

    model = load_model("digits")
    files = sorted((digits / "audio").glob("*_george_[0-2].wav"))
    predictions = list(Tagger().predict_many(files, model=model, top_k=3, pad=model.pad))
    assert len(predictions) == 9
    correct = sum(p.labels[0].name == DIGITS[int(Path(p.source).name[0])] for p in predictions)
    assert correct == round(trained.metrics["test"]["accuracy"] * 9)  # predict agrees with training's own test


def test_predict_with_a_saved_model_needs_no_torch(trained, digits: Path) -> None:
    """``audioclas predict --model`` on an install without PyTorch (blocked in the subprocess): the network on
    ONNX Runtime, the same labels and scores (1e-4) as with the network on PyTorch (the NumPy head is checked
    against the PyTorch head in test_a_saved_model_classifies_in_numpy_as_its_torch_head_does)."""
    file = digits / "audio" / "1_george_0.wav"
    code = (
        "from audioclas.cli import main\n"
        "sys.exit(main(['predict', sys.argv[1], '--model', 'digits', '-f', 'json', '--top-k', '3']))\n"
    )
    run = run_without_torch(code, str(file))
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)[0]["labels"]
    model = load_model("digits")
    reference = Tagger(backend="torch").predict(file, model=model, top_k=3)
    assert [label["name"] for label in got] == [label.name for label in reference.labels]
    assert [label["score"] for label in got] == pytest.approx([label.score for label in reference.labels], abs=1e-4)


def test_evaluate_matches_training_and_writes_a_report(trained, digits: Path, tmp_path: Path) -> None:
    result = evaluate("digits", digits, output=tmp_path / "report")
    assert result.metrics["accuracy"] == trained.metrics["test"]["accuracy"]
    assert result.metrics["confusion_matrix"] == trained.metrics["test"]["confusion_matrix"]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "confusion_matrix.json",
        "confusion_matrix.png",
        "metrics.json",
    ]
    assert evaluate("digits", digits, "val").metrics["examples"] == 6


def test_evaluate_on_a_folder_per_class_with_a_subset_of_the_classes(trained, digits: Path, tmp_path: Path) -> None:
    for name in ("two", "zero"):
        (tmp_path / name).mkdir()
    for label, name in ((2, "two"), (0, "zero")):
        for index in TEST:
            shutil.copy(digits / "audio" / f"{label}_george_{index}.wav", tmp_path / name)
    result = evaluate(trained.model, tmp_path)
    assert result.metrics["examples"] == 6 and result.classes == DIGITS
    (tmp_path / "seven").mkdir()
    shutil.copy(digits / "audio" / "0_george_0.wav", tmp_path / "seven" / "x.wav")
    with pytest.raises(DatasetError, match="class 'seven' is not one of the model's classes"):
        evaluate(trained.model, tmp_path)


def test_a_second_training_decodes_nothing(trained, digits: Path) -> None:
    result = train(digits, TrainConfig(name="digits-linear", head="linear", **FAST))
    assert result.embeddings_computed == 0
    assert result.timings["extract"] < trained.timings["extract"]


def test_the_same_seed_gives_the_same_head_and_l2_really_applies(splits) -> None:
    (by_split, _dataset) = splits

    def weights(**options) -> torch.Tensor:
        torch.manual_seed(0)
        head = build_head("mlp", 384, 3)
        fit(head, by_split["train"], by_split["val"], TrainConfig(head="mlp", **FAST, **options), DIGITS, False)
        return torch.cat([p.detach().flatten() for p in head.parameters() if p.ndim >= 2])

    assert torch.equal(weights(seed=3), weights(seed=3))
    assert not torch.equal(weights(seed=3), weights(seed=4))
    assert weights(l2=1.0, lr=0.01, batch_size=4).norm() < 0.9 * weights(l2=0.0, lr=0.01, batch_size=4).norm()


def test_l2_is_decoupled_weight_decay_on_weight_matrices(splits) -> None:
    (by_split, _) = splits
    train = by_split["train"]
    steps = {}
    for l2 in (0.0, 0.5):
        torch.manual_seed(0)
        head = build_head("mlp", 384, 3)
        head.set_normalisation(train.windows)
        before = {name: p.detach().clone() for name, p in head.named_parameters()}
        optimizer = make_optimizer([(head, 0.01)], l2)
        index = torch.arange(len(train))
        torch.nn.functional.cross_entropy(head(*train.batch(index))[1], train.targets[index]).backward()
        optimizer.step()
        steps[l2] = {name: p.detach() for name, p in head.named_parameters()}
    for name, start in before.items():
        shrink = steps[0.0][name] - steps[0.5][name]  # what the decay took: lr * l2 * w, on matrices only
        expected = 0.01 * 0.5 * start if start.ndim >= 2 else torch.zeros_like(start)
        torch.testing.assert_close(shrink, expected, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("schedule", ["step", "cosine", "constant"])
def test_learning_rate_schedules(splits, schedule: str) -> None:
    (by_split, _) = splits
    head = build_head("linear", 384, 3)
    config = TrainConfig(lr=0.01, lr_schedule=schedule, lr_step_every=5, lr_step_decay=0.5, epochs=12, early_stopping=0)
    rates = [row["lr"] for row in fit(head, by_split["train"], None, config, DIGITS, False).history]
    expected = {
        "step": [0.01 * 0.5 ** (e // 5) for e in range(12)],
        "cosine": [0.005 * (1 + np.cos(np.pi * e / 12)) for e in range(12)],
        "constant": [0.01] * 12,
    }[schedule]
    np.testing.assert_allclose(rates, expected)


def test_class_weights_and_early_stopping(splits) -> None:
    (by_split, _) = splits
    head = build_head("mlp", 384, 3)
    config = TrainConfig(class_weights="balanced", epochs=500, early_stopping=5, lr=0.05, lr_schedule="constant", l2=0)
    result = fit(head, by_split["train"], by_split["val"], config, DIGITS, False)  # overfits: val loss rises
    assert result.stopped == "early stopping" and result.epochs_run == result.best_epoch + 5 < 500


def test_ctrl_c_stops_and_keeps_the_best_epoch(digits: Path) -> None:
    def interrupt(event) -> None:
        if event.stage == "train" and event.done == 3:
            raise KeyboardInterrupt

    result = train(digits, TrainConfig(name="interrupted", epochs=50, tensorboard=False), on_event=interrupt)
    assert result.stopped == "interrupted" and len(result.history) == 3 and 1 <= result.best_epoch <= 3
    assert load_model("interrupted").info["training"]["stopped"] == "interrupted"


def test_cancellation(digits: Path) -> None:
    cancel = threading.Event()

    def cancel_at_epoch_two(event) -> None:
        if event.stage == "train" and event.done == 2:
            cancel.set()

    result = train(
        digits, TrainConfig(name="cancelled", epochs=50, tensorboard=False), on_event=cancel_at_epoch_two, cancel=cancel
    )
    assert result.stopped == "cancelled" and len(result.history) == 2
    with pytest.raises(Cancelled, match="before the first epoch"):
        train(digits, TrainConfig(name="never", tensorboard=False), cancel=lambda: True)
    assert not (models_dir() / "never").exists()


def test_tensorboard_scalars_and_confusion_matrix(digits: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from audioclas.settings import home_dir

    train(digits, TrainConfig(name="logged", epochs=4, early_stopping=0, checkpoint_every=2))
    run = home_dir() / "runs" / "logged"
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    assert {"loss/train", "loss/val", "val/accuracy", "val/score", "lr"} <= set(events.Tags()["scalars"])
    assert [round(event.value, 6) for event in events.Scalars("loss/train")] == [
        round(row["train_loss"], 6) for row in json.loads((models_dir() / "logged" / "history.json").read_text())
    ]
    assert {"confusion_matrix/val", "confusion_matrix/test"} <= set(events.Tags()["images"])
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "epoch_00002.pt", "epoch_00004.pt"]
    checkpoint = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert set(checkpoint) == {"head", "optimizer", "metrics"}


# ---------------------------------------------------------------- the embedding cache


def test_an_interrupted_extraction_resumes_with_only_the_rest(trained, digits: Path, tmp_path: Path) -> None:
    from audioclas.tagger import Tagger

    dataset = load_dataset(digits)
    files = [(example.path, example.sha256) for example in dataset.examples()]
    cache = EmbeddingCache(WEIGHTS_SHA256, WindowSettings(0.3, 0.1, "zeros"), tmp_path)
    computed_paths: list[Path] = []

    class CountingTagger:
        tagger = Tagger()

        def embed_many(self, paths, settings):
            computed_paths.extend(paths)
            return self.tagger.embed_many([AudioSource(str(p), path=p) for p in paths], settings)

    done_counts: list[int] = []
    first = extract(
        files,
        cache,
        CountingTagger,
        progress=lambda done, total: done_counts.append(done),
        cancel=lambda: len(done_counts) > 7,
    )
    assert first.cancelled and first.computed == 7
    entries = sorted(cache.folder.rglob("*.npz"))
    assert len(entries) == 7 and not list(cache.folder.rglob("*.tmp"))
    assert all(cache.get(entry.stem) is not None for entry in entries)
    (cache.folder / files[-1][1][:2]).mkdir(exist_ok=True)
    cache.path(files[-1][1]).write_bytes(b"PK\x03\x04 truncated")  # a damaged entry is recomputed, not trusted
    computed_paths.clear()
    second = extract(files, cache, CountingTagger)
    assert not second.cancelled and second.computed == len(files) - 7 == len(computed_paths)
    assert set(computed_paths).isdisjoint(path for path, sha in files if cache.path(sha) in entries)
    reference = EmbeddingCache(WEIGHTS_SHA256, WindowSettings(0.3, 0.1, "zeros"))  # the session cache
    for _, sha256 in files:
        np.testing.assert_allclose(second.clips[sha256].windows, reference.get(sha256).windows, atol=1e-4)


def test_a_fully_cached_extraction_never_loads_the_network(trained, digits: Path) -> None:
    dataset = load_dataset(digits)
    cache = EmbeddingCache(WEIGHTS_SHA256, WindowSettings(0.3, 0.1, "zeros"))

    def no_network():
        raise AssertionError("the network should not be needed")

    result = extract([(e.path, e.sha256) for e in dataset.examples()], cache, no_network)
    assert result.computed == 0 and len(result.clips) == len(dataset.examples())


def test_training_from_exported_embeddings_needs_no_audio(trained, digits: Path, tmp_path: Path) -> None:
    config = TrainConfig(window=0.3, hop=0.1, pad="zeros")
    assert extract_embeddings(digits, config, export=tmp_path / "emb") == 0  # all cached already
    assert len(list((tmp_path / "emb" / "audio").glob("*.wav.npy"))) == 39
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("classes.txt", "train.txt", "val.txt", "test.txt"):
        shutil.copy(digits / name, copy / name)  # the split files only: no audio at all
    result = train(copy, TrainConfig(name="from-npy", from_embeddings=str(tmp_path / "emb"), **FAST))
    assert result.embeddings_computed == 0 and result.model.window == 0.3
    assert result.metrics["test"]["accuracy"] == pytest.approx(
        train(digits, TrainConfig(name="from-audio", window=0.3, hop=0.1, pad="zeros", **FAST)).metrics["test"][
            "accuracy"
        ]
    )


def test_undecodable_audio_is_listed_or_skipped(digits: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(digits, root)
    (root / "audio" / "broken.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    (root / "audio" / "odd\x1bname.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)  # errors show it escaped
    (root / "train.txt").write_text((root / "train.txt").read_text() + "audio/broken.wav 1\naudio/odd\x1bname.wav 1\n")
    with pytest.raises(DatasetError, match=r"train.txt:25: .*broken.wav: ") as caught:
        train(root, TrainConfig(name="broken", **FAST))
    assert "skip them (--skip-bad-audio)" in str(caught.value)
    messages: list[str] = []
    result = train(root, TrainConfig(name="broken", skip_bad_audio=True, **FAST), log=messages.append)
    assert sum(result.model.info["dataset"]["counts"]["train"]) == 24
    assert any("skipped train.txt:25" in message for message in messages)
    assert any("skipped train.txt:26" in message and "odd\\x1bname.wav" in message for message in messages)


# ---------------------------------------------------------------- multi-label


@pytest.fixture(scope="module")
def multilabel_csv(tmp_path_factory: pytest.TempPathFactory, fsdd: Path) -> Path:
    """Real recordings and two-digit sequences made from them ("zero one" is labelled zero;one)."""
    root = tmp_path_factory.mktemp("multilabel")
    rows = ["path,label,split"]
    for number, (first, second) in enumerate([(0, None), (1, None), (2, None), (0, 1), (1, 2), (0, 2)] * 6):
        split = "train" if number < 24 else "val" if number < 30 else "test"
        index = 10 + number // 6 if split == "train" else number // 6 - 4
        parts = [
            load_audio(AudioSource("x", path=fsdd / "recordings" / f"{digit}_george_{index}.wav"), 8000)
            for digit in (first, second)
            if digit is not None
        ]
        name = f"clip{number:02d}.wav"
        encode(root / name, np.concatenate(parts), 8000, "pcm_s16le", format="wav")
        labels = ";".join(DIGITS[digit] for digit in (first, second) if digit is not None)
        rows.append(f"{name},{labels},{split}")
    (root / "sequences.csv").write_text("\n".join(rows) + "\n")
    return root / "sequences.csv"


def test_multilabel_csv_trains_sigmoid_outputs_with_tuned_thresholds(multilabel_csv: Path) -> None:
    result = train(multilabel_csv, TrainConfig(name="sequences", head="attention", epochs=40, tensorboard=False))
    model = result.model
    assert model.multilabel and model.classes == ["one", "two", "zero"]
    assert (
        model.thresholds is not None
        and model.thresholds.shape == (3,)
        and ((model.thresholds > 0) & (model.thresholds < 1)).all()
    )
    for split in ("val", "test"):
        assert {"mAP", "macro_f1", "micro_f1", "subset_accuracy", "per_class"} <= set(result.metrics[split])
        assert all("average_precision" in row and "threshold" in row for row in result.metrics[split]["per_class"])
    assert result.metrics["test"]["mAP"] > 0.7
    assert not (model.path / "confusion_matrix_test.png").exists()
    clip = result.model.classify(np.random.default_rng(0).standard_normal((4, 384)).astype(np.float32))[1]
    assert clip.shape == (3,) and ((clip >= 0) & (clip <= 1)).all()
    assert evaluate(model, multilabel_csv).metrics["mAP"] == pytest.approx(result.metrics["test"]["mAP"])


# ---------------------------------------------------------------- fine-tuning


def test_finetune_saves_and_uses_its_own_network(digits: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(digits, root)
    (root / "val.txt").unlink()  # no validation: the fine-tuned network is kept whatever it scores
    result = train(
        root, TrainConfig(name="tuned", finetune=True, finetune_epochs=1, batch_size=8, val_fraction=0, **FAST)
    )
    model = result.model
    assert model.finetuned and (model.path / "backbone.safetensors").is_file()
    assert (model.window, model.hop, model.pad) == (1.0, None, "zeros")  # short clips: one window per clip
    assert model.backbone_sha256 != WEIGHTS_SHA256 and model.info["backbone"]["pretrained_sha256"] == WEIGHTS_SHA256
    assert len(result.history) == FAST["epochs"] + 1 and result.history[-1]["finetune_epoch"] == 1
    backbone = load_model("tuned").load_backbone(backend="torch")
    assert isinstance(backbone, TorchEngine) and not backbone.module.training
    assert backbone.identity == model.backbone_sha256
    assert evaluate("tuned", root).metrics["accuracy"] == result.metrics["test"]["accuracy"]


# ---------------------------------------------------------------- saved models: atomic writes, names, CLI


@pytest.mark.unit
def test_saving_is_atomic(tmp_path: Path) -> None:
    def crash(folder: Path) -> None:
        (folder / "model.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_model("half", crash)
    assert not (models_dir() / "half").exists() and not list(models_dir().glob(".tmp-*"))
    save_model("whole", lambda folder: (folder / "a.txt").write_text("1"))
    with pytest.raises(ModelError, match="already exists"):
        save_model("whole", lambda folder: (folder / "b.txt").write_text("2"))
    save_model("whole", lambda folder: (folder / "b.txt").write_text("2"), overwrite=True)
    assert [p.name for p in (models_dir() / "whole").iterdir()] == ["b.txt"]
    assert not list(models_dir().glob(".trash-*"))
    for name in ("../evil", ".hidden", "", "a/b", "x" * 65):
        with pytest.raises(ModelError, match="not allowed"):
            save_model(name, lambda folder: None)
    shutil.rmtree(models_dir() / "whole")


def test_models_list_show_delete(trained, capsys: pytest.CaptureFixture) -> None:
    from audioclas.cli import models as models_cli

    assert "digits" in [m.name for m in list_models()]
    assert run_cli(models_cli, ["models", "list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["digits"]["classes"] == 3 and listed["digits"]["score"].startswith("test accuracy")
    assert run_cli(models_cli, ["models", "show", "digits"]) == 0
    shown = capsys.readouterr().out
    assert "0.3 s windows, hop 0.1 s" in shown and WEIGHTS_SHA256 in shown  # the model card
    assert all(re.search(rf"^\s*{name}\s+\d", shown, re.M) for name in ("zero", "one", "two"))  # its classes table
    shutil.copytree(models_dir() / "digits", models_dir() / "doomed")
    assert run_cli(models_cli, ["models", "delete", "doomed", "--yes"]) == 0
    assert not (models_dir() / "doomed").exists()
    with pytest.raises(ModelError, match="no saved model named 'doomed'"):
        load_model("doomed")


def test_train_cli_with_a_config_file_and_overriding_flags(digits: Path, tmp_path: Path, capsys) -> None:
    from audioclas.cli import evaluate as evaluate_cli
    from audioclas.cli import train as train_cli

    config = tmp_path / "train.toml"
    config.write_text(f'[train]\ndata = "{digits}"\nhead = "mlp"\nepochs = 50\nlr = 0.01\nearly-stopping = 0\n')
    status = run_cli(
        train_cli,
        [
            "train",
            "--config",
            str(config),
            "--epochs",
            "3",
            "--name",
            "from-cli",
            "--no-progress",
            "--no-tensorboard",
            "--json",
        ],
    )
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "from-cli" and set(printed["metrics"]) == {"val", "test"}
    saved = json.loads((models_dir() / "from-cli" / "config.json").read_text())
    assert (saved["head"], saved["epochs"], saved["lr"], saved["tensorboard"]) == ("mlp", 3, 0.01, False)
    assert run_cli(evaluate_cli, ["evaluate", "from-cli", str(digits), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 9


@pytest.mark.unit
def test_train_cli_reports_every_data_problem_and_exits_1(digits: Path, tmp_path: Path, capsys) -> None:
    from audioclas.cli import train as train_cli

    root = tmp_path / "data"
    shutil.copytree(digits, root)
    (root / "train.txt").write_text((root / "train.txt").read_text() + "audio/nope.wav 1\naudio/0_george_10.wav 7\n")
    assert run_cli(train_cli, ["train", str(root), "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert "2 problems" in error and "train.txt:25" in error and "train.txt:26" in error
    assert not list(models_dir().glob(".tmp-*"))
