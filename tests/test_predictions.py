"""Choosing labels from scores: top-k, threshold, allow and deny lists, clip aggregation."""

import numpy as np
import pytest

from audioclas.errors import AudioclasError
from audioclas.labels import audioset_labels, resolve_label_names, search_labels
from audioclas.predictions import LabelFilter, aggregate_windows

NAMES = ["Speech", "Dog", "Bark", "Music", "Silence"]
SCORES = np.array([0.9, 0.2, 0.7, 0.5, 0.01], dtype=np.float32)


def names_of(label_filter: LabelFilter) -> list[str]:
    return [label.name for label in label_filter.select(SCORES, NAMES, None)]


def test_top_k_in_descending_order() -> None:
    assert names_of(LabelFilter(top_k=3)) == ["Speech", "Bark", "Music"]
    assert names_of(LabelFilter(top_k=0)) == ["Speech", "Bark", "Music", "Dog", "Silence"]


def test_threshold_cuts_low_scores() -> None:
    assert names_of(LabelFilter(top_k=0, threshold=0.5)) == ["Speech", "Bark", "Music"]


def test_include_and_exclude() -> None:
    assert names_of(LabelFilter(top_k=2, include=frozenset({1, 2}))) == ["Bark", "Dog"]
    assert names_of(LabelFilter(top_k=2, exclude=frozenset({0}))) == ["Bark", "Music"]


def test_aggregate_max_and_mean() -> None:
    windows = np.array([[0.8, 0.0], [0.2, 0.4]])
    np.testing.assert_allclose(aggregate_windows(windows, "max"), [0.8, 0.4])
    np.testing.assert_allclose(aggregate_windows(windows, "mean"), [0.5, 0.2])
    with pytest.raises(ValueError):
        aggregate_windows(windows, "median")  # type: ignore[arg-type]


def test_audioset_labels_are_the_527_classes_in_model_order() -> None:
    labels = audioset_labels()
    assert len(labels) == 527
    assert (labels[0].id, labels[0].name) == ("/m/09x0r", "Speech")
    assert [x.index for x in labels] == list(range(527))


def test_label_search_and_resolution() -> None:
    assert "Dog" in [x.name for x in search_labels("dog")]
    assert [x.name for x in search_labels("/m/09x0r")] == ["Speech"]
    labels = audioset_labels()
    names, ids = [x.name for x in labels], [x.id for x in labels]
    assert resolve_label_names(["speech", "/M/0BT9LR"], names, ids) == {0, ids.index("/m/0bt9lr")}
    with pytest.raises(AudioclasError, match="'Unicorn'"):
        resolve_label_names(["Unicorn"], names, ids)
