"""Choosing labels from scores: top-k, threshold, allow and deny lists, clip aggregation."""

import numpy as np
import pytest

from audioclas.errors import AudioclasError, OptionError
from audioclas.labels import audioset_labels, resolve_label_names, search_labels
from audioclas.predictions import LabelFilter, LabelQuery, aggregate_windows

pytestmark = pytest.mark.unit

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


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"top_k": -3}, "top_k must be"),
        ({"top_k": True}, "top_k must be"),
        ({"top_k": 2.5}, "top_k must be"),
        ({"threshold": 2}, "threshold must be"),
        ({"threshold": float("nan")}, "threshold must be"),
        ({"threshold": "0.5"}, "threshold must be"),
        ({"aggregate": "median"}, "aggregate must be"),
        ({"labels": [1]}, "labels must be label names"),
        ({"exclude": [None]}, "exclude must be label names"),
    ],
)
def test_a_label_query_is_checked_on_construction(options: dict, fragment: str) -> None:
    with pytest.raises(OptionError, match=fragment):
        LabelQuery(**options)


def test_a_label_query_resolves_names_against_the_model_classes() -> None:
    query = LabelQuery(top_k=2, threshold=0.1, labels=["bark", "Dog"], exclude="Silence")  # a bare string: one name
    assert (query.labels, query.exclude) == (("bark", "Dog"), ("Silence",))
    assert query.resolve(NAMES, None) == LabelFilter(2, 0.1, frozenset({1, 2}), frozenset({4}))
    assert names_of(query.resolve(NAMES, None)) == ["Bark", "Dog"]
    assert LabelQuery(labels=[]).labels is None and LabelQuery().resolve(NAMES, None).include is None
    with pytest.raises(AudioclasError, match="'Cat'"):
        LabelQuery(exclude=["Cat"]).resolve(NAMES, None)


def test_a_label_query_as_a_batch_job_records_it() -> None:
    query = LabelQuery(3, 0.25, ("Bird",), ("Speech",), "mean")
    assert query.to_dict() == {
        "top_k": 3,
        "threshold": 0.25,
        "aggregate": "mean",
        "include": ["Bird"],
        "exclude": ["Speech"],
    }
    assert LabelQuery().to_dict() == {"top_k": 5, "threshold": 0.0, "aggregate": "max", "include": None, "exclude": []}
