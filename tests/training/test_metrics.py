"""Metrics, thresholds, heads and training options, checked against values worked out by hand."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from audioclas.training.config import ConfigError, TrainConfig, make_config, read_config_file
from audioclas.training.heads import build_head
from audioclas.training.metrics import (
    average_precision,
    confusion_image,
    multilabel_metrics,
    single_label_metrics,
    tune_thresholds,
    write_confusion,
)

NAMES = ["a", "b", "c"]


def one_hot_scores(predicted: list[int], classes: int = 3) -> np.ndarray:
    return np.eye(classes)[predicted]


def test_single_label_metrics_by_hand() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = [0, 0, 0, 1, 1, 2, 2, 2]
    metrics = single_label_metrics(truth, one_hot_scores(predicted), NAMES)
    assert metrics["accuracy"] == 6 / 8
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert metrics["confusion_matrix"] == [[3, 1, 0], [0, 1, 1], [0, 0, 2]]
    a, b, c = metrics["per_class"]
    assert (a["precision"], a["recall"], a["support"]) == (1.0, 0.75, 4)
    assert (b["precision"], b["recall"]) == (0.5, 0.5)
    assert (c["precision"], c["recall"]) == pytest.approx((2 / 3, 1.0))
    f1 = [2 * 0.75 / 1.75, 0.5, 2 * (2 / 3) / (5 / 3)]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))


def test_a_class_absent_from_the_data_does_not_count() -> None:
    truth = np.array([0, 0, 1])
    metrics = single_label_metrics(truth, one_hot_scores([0, 0, 1]), NAMES)
    assert metrics["balanced_accuracy"] == 1.0 and metrics["macro_f1"] == 1.0  # class c never occurs nor is predicted


def test_average_precision_by_hand() -> None:
    assert average_precision(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.1])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0, 1]), np.array([0.2, 0.9])) == 1.0
    assert np.isnan(average_precision(np.array([0, 0]), np.array([0.2, 0.9])))


def test_tied_scores_give_the_same_average_precision_in_either_order() -> None:
    # One positive and one negative with equal scores: precision 1/2 at recall 1, whichever comes first.
    assert average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert average_precision(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    tied = multilabel_metrics(np.array([[1, 0], [0, 1]]), np.full((2, 2), 0.5), ["x", "y"], np.full(2, 0.5))
    assert tied["mAP"] == 0.5 and [c["average_precision"] for c in tied["per_class"]] == [0.5, 0.5]


@pytest.mark.parametrize("seed", range(6))
def test_single_label_report_equals_scikit_learn(seed: int) -> None:
    from sklearn import metrics as sk

    rng = np.random.default_rng(seed)
    count, n = int(rng.integers(2, 7)), int(rng.integers(3, 60))
    truth = rng.integers(0, count, n)  # small draws leave some classes out of the truth
    scores = rng.random((n, count)).round(1)  # ties
    report = single_label_metrics(truth, scores, [f"c{i}" for i in range(count)])
    predicted = scores.argmax(1)
    assert report["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": the reference still counts
        assert report["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(truth, predicted))
    assert report["macro_f1"] == pytest.approx(sk.f1_score(truth, predicted, average="macro", zero_division=0))
    assert report["confusion_matrix"] == sk.confusion_matrix(truth, predicted, labels=range(count)).tolist()
    reference = sk.precision_recall_fscore_support(truth, predicted, labels=range(count), zero_division=0)
    for name, column in zip(("precision", "recall", "f1", "support"), reference):
        assert [c[name] for c in report["per_class"]] == pytest.approx(column.tolist())


@pytest.mark.parametrize("seed", range(6))
def test_multilabel_report_equals_scikit_learn(seed: int) -> None:
    from sklearn import metrics as sk

    rng = np.random.default_rng(seed)
    count, n = int(rng.integers(2, 7)), int(rng.integers(3, 60))
    truth = (rng.random((n, count)) < 0.3).astype(np.int64)
    truth[0, 0] = 1  # at least one class with a positive
    scores = rng.random((n, count)).round(1)  # ties
    thresholds = rng.random(count).round(1)
    report = multilabel_metrics(truth, scores, [f"c{i}" for i in range(count)], thresholds)
    predicted = (scores >= thresholds).astype(np.int64)
    with_positives = [c for c in range(count) if truth[:, c].any()]
    assert report["mAP"] == pytest.approx(
        np.mean([sk.average_precision_score(truth[:, c], scores[:, c]) for c in with_positives])
    )
    assert [c["average_precision"] for c in report["per_class"]] == pytest.approx(
        [sk.average_precision_score(truth[:, c], scores[:, c]) if c in with_positives else None for c in range(count)]
    )
    assert report["micro_f1"] == pytest.approx(sk.f1_score(truth, predicted, average="micro", zero_division=0))
    assert report["macro_f1"] == pytest.approx(sk.f1_score(truth, predicted, average="macro", zero_division=0))
    assert report["subset_accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
    reference = sk.precision_recall_fscore_support(truth, predicted, average=None, zero_division=0)
    for name, column in zip(("precision", "recall", "f1", "support"), reference):
        assert [c[name] for c in report["per_class"]] == pytest.approx(column.tolist())


def test_thresholds_maximise_f1_per_class() -> None:
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.6, 0.2], [0.4, 0.3], [0.2, 0.25]])
    thresholds = tune_thresholds(truth, scores)
    assert thresholds[0] == pytest.approx(0.5)  # between 0.6 (last positive) and 0.4
    assert thresholds[1] == pytest.approx(0.275)  # between 0.3 (the positive) and 0.25
    metrics = multilabel_metrics(truth, scores, ["x", "y"], thresholds)
    assert metrics["macro_f1"] == 1.0 and metrics["micro_f1"] == 1.0 and metrics["subset_accuracy"] == 1.0
    assert metrics["mAP"] == 1.0
    assert tune_thresholds(np.zeros((3, 1)), np.array([[0.1], [0.2], [0.3]]))[0] == 0.5  # no positives: default


def test_confusion_matrix_files(tmp_path) -> None:
    matrix = np.array([[5, 1, 0], [0, 3, 2], [0, 0, 4]])
    write_confusion(matrix, ["cat", "dog", "a rather long class name"], tmp_path)
    with Image.open(tmp_path / "confusion_matrix.png") as image:
        assert image.format == "PNG" and image.size[0] > 3 * 28
    saved = json.loads((tmp_path / "confusion_matrix.json").read_text())
    assert saved["matrix"] == matrix.tolist() and saved["rows"] == "true class" and saved["classes"][0] == "cat"
    pixels = np.asarray(confusion_image(matrix, ["cat", "dog", "x"]).convert("L"))
    assert pixels.min() < 128 < pixels.max()  # the diagonal is shaded, the background white


@pytest.mark.parametrize("kind", ["linear", "mlp", "attention"])
def test_heads_ignore_padding_windows(kind: str) -> None:
    torch.manual_seed(0)
    head = build_head(kind, 384, 4).eval()
    clip = torch.randn(1, 3, 384)
    padded = torch.cat([clip, torch.randn(1, 2, 384) * 100], 1)
    mask = torch.tensor([[True, True, True, False, False]])
    window_logits, clip_logits = head(clip, torch.ones(1, 3, dtype=torch.bool))
    _, padded_logits = head(padded, mask)
    torch.testing.assert_close(padded_logits, clip_logits)
    assert window_logits.shape == (1, 3, 4)
    if kind != "attention":  # mean pooling: the clip is the mean of its windows' logits
        torch.testing.assert_close(clip_logits, window_logits.mean(1))


@pytest.mark.parametrize("kind", ["linear", "mlp", "attention"])
def test_reset_layers_draws_new_weights_and_keeps_the_input_statistics(kind: str) -> None:
    head = build_head(kind, 384, 4)
    head.set_normalisation(torch.randn(50, 384) * 3 + 1)
    before = {name: value.clone() for name, value in head.state_dict().items()}
    head.reset_layers()
    after = head.state_dict()
    assert torch.equal(after["mean"], before["mean"]) and torch.equal(after["std"], before["std"])
    weights = [name for name in before if name.endswith("weight")]
    assert weights and all(not torch.equal(after[name], before[name]) for name in weights)


def test_config_file_and_flags(tmp_path) -> None:
    path = tmp_path / "train.toml"
    path.write_text('data = "clips"\nhead = "mlp"\nlr = 1\nlr-step-every = 5\n')
    values = read_config_file(path)
    assert (
        values["data"] == str((tmp_path / "clips").resolve()) and values["lr"] == 1.0 and values["lr_step_every"] == 5
    )
    config = make_config(path, lr=0.5, epochs=None)
    assert (config.head, config.lr, config.epochs) == ("mlp", 0.5, TrainConfig().epochs)
    path.write_text('[project]\nname = "x"\n[train]\nhead = "attention"\n')  # a [train] table among others
    assert make_config(path).head == "attention"


@pytest.mark.parametrize(
    "text, message",
    [
        ('heda = "mlp"', "unknown option 'heda' (did you mean 'head'?)"),
        ("epochs = 1.5", "epochs = 1.5 has the wrong type"),
        ('multilabel = "yes"', "wrong type"),
        ("epochs = [", "not valid TOML"),
        ('head = "transformer"', "head must be linear, mlp or attention"),
        ("val_fraction = 1.0\nl2 = -1", "l2 must be 0 or more, not -1.0; val_fraction must be in [0, 1), not 1.0"),
        (
            "speed = 1.0\nnoise_snr = -3\nspec_masks = 20",
            "speed must be in [0, 1), not 1.0; noise_snr must be 0 (off) or more, "
            "not -3.0; spec_masks must be 0..10, not 20",
        ),
    ],
)
def test_config_errors_name_the_problem(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        make_config(path)
    assert message in str(caught.value)


def test_device_is_not_a_training_option(tmp_path, capsys) -> None:
    """It was accepted everywhere and never used: every way of giving it is now refused."""
    from pydantic import ValidationError

    from audioclas.cli import build_parser
    from audioclas.service.schemas import TrainRequest

    path = tmp_path / "old.toml"
    path.write_text('head = "mlp"\ndevice = "cpu"\n')
    with pytest.raises(ConfigError, match="unknown option 'device'"):
        make_config(path)
    with pytest.raises(ConfigError, match="unknown option 'device'"):
        make_config(device="cpu")
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["train", str(tmp_path), "--device", "cpu"])
    assert exited.value.code == 2 and "unrecognized arguments: --device cpu" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="device"):
        TrainRequest(dataset="/data", device="cpu")


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        make_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("seconds", [0.2, 0.3, 0.45, 0.6, 1.0])
def test_finetune_windows_are_the_prediction_windows(seconds: float) -> None:
    from audioclas.training.finetune import window_batch
    from audioclas.windows import WindowSettings, iter_windows

    settings = WindowSettings(0.3, 0.1, "zeros")
    wave = np.random.default_rng(0).standard_normal(round(seconds * 32000)).astype(np.float32)
    size, hop = settings.in_samples(32000)
    expected = np.stack([window.samples for window in iter_windows([wave], size, hop, "zeros")])
    np.testing.assert_array_equal(window_batch(torch.from_numpy(wave)[None], settings)[0].numpy(), expected)


def tone(seconds: float, hz: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * 32000)) / 32000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dominant_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.fft.rfftfreq(len(audio), 1 / 32000)[spectrum.argmax()])


def test_augmentation_off_leaves_the_clip_alone() -> None:
    from audioclas.training.augment import Augmentation

    off = Augmentation(speed=0, time_shift=0, gain_db=0, noise_snr=0, masks=0)
    audio = tone(0.5)
    np.testing.assert_array_equal(off.waveform(audio, 32000, np.random.default_rng(0)), audio)
    mel = torch.randn(2, 1, 128, 50)
    assert off.spectrogram(mel, np.random.default_rng(0)) is mel


def test_speed_change_moves_tempo_and_pitch_together() -> None:
    from audioclas.training.augment import Augmentation

    speed = Augmentation(speed=0.2, time_shift=0, gain_db=0, noise_snr=0)
    audio = tone(1.0)
    for seed in range(5):
        changed = speed.waveform(audio, 64000, np.random.default_rng(seed))
        factor = len(audio) / len(changed)  # played faster -> shorter
        assert 0.8 <= factor <= 1.2 and abs(factor - 1) > 1e-3
        assert dominant_hz(changed) == pytest.approx(440 * factor, abs=2.0)


def test_noise_lands_within_the_snr_range_and_gain_within_its_bound() -> None:
    from audioclas.training.augment import NOISE_SNR_SPAN_DB, Augmentation

    audio = tone(1.0)
    for seed in range(5):
        noisy = Augmentation(speed=0, time_shift=0, gain_db=0, noise_snr=10).waveform(
            audio, 32000, np.random.default_rng(seed)
        )
        snr = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean((noisy - audio).astype(np.float64) ** 2))
        assert 10 - 0.5 <= snr <= 10 + NOISE_SNR_SPAN_DB + 0.5
        louder = Augmentation(speed=0, time_shift=0, gain_db=6, noise_snr=0).waveform(
            audio, 32000, np.random.default_rng(seed)
        )
        gain_db = 20 * np.log10(np.abs(louder).max() / np.abs(audio).max())
        assert -6 - 1e-3 <= gain_db <= 6 + 1e-3


def test_time_shift_delays_within_the_room_left_and_long_clips_are_cut() -> None:
    from audioclas.training.augment import Augmentation

    shift = Augmentation(speed=0, time_shift=0.5, gain_db=0, noise_snr=0)
    audio = tone(0.4)
    delays = set()
    for seed in range(10):
        shifted = shift.waveform(audio, 32000, np.random.default_rng(seed))
        delay = len(shifted) - len(audio)
        assert 0 <= delay <= 0.5 * (32000 - len(audio)) and not shifted[:delay].any()
        np.testing.assert_array_equal(shifted[delay:], audio)
        delays.add(delay)
    assert len(delays) > 1
    assert len(shift.waveform(tone(3.0), 32000, np.random.default_rng(0))) == 32000


def test_spectrogram_masks_zero_bands_and_spans_of_each_clip() -> None:
    from audioclas.training.augment import MAX_MASKED_BINS, Augmentation

    mel = torch.ones(8, 1, 128, 100)
    masked = Augmentation(masks=2).spectrogram(mel, np.random.default_rng(0))
    assert mel.all()  # the input is not changed in place
    for row in masked[:, 0]:
        zero_bins = int((row == 0).all(1).sum())
        zero_frames = int((row == 0).all(0).sum())
        assert zero_bins <= 2 * MAX_MASKED_BINS and zero_frames <= 2 * 10
    assert (masked == 0).any()
