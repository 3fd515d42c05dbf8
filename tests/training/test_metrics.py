"""Metrics and thresholds (``audioclas.training.metrics``), checked against values worked out by hand and against
scikit-learn."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from audioclas.training.metrics import (
    average_precision,
    confusion_image,
    multilabel_metrics,
    single_label_metrics,
    tune_thresholds,
    write_confusion,
)

pytestmark = pytest.mark.unit

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
