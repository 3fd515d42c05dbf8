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


AUDIOSET = audioset_labels()
AS_NAMES, AS_IDS = [x.name for x in AUDIOSET], [x.id for x in AUDIOSET]


def indices(*names: str) -> set[int]:
    return {AS_NAMES.index(name) for name in names}


def test_an_audioset_name_selects_the_class_and_the_classes_below_it() -> None:
    dog = LabelQuery(labels=["dog"]).resolve(AS_NAMES, AS_IDS).include
    assert dog == indices("Dog", "Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)")  # Bay: not predicted
    assert LabelQuery(labels=["Dog"], exact=True).resolve(AS_NAMES, AS_IDS).include == indices("Dog")
    voice = LabelQuery(labels=["Human voice"]).resolve(AS_NAMES, AS_IDS).include  # a container the model lacks
    assert voice is not None and indices("Speech", "Shout", "Whispering", "Male speech, man speaking") <= voice
    excluded = LabelQuery(exclude=["Dog"]).resolve(AS_NAMES, AS_IDS).exclude
    assert excluded == dog and LabelQuery(exclude=["Dog"], exact=True).resolve(AS_NAMES, AS_IDS).exclude == {74}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            LabelQuery(labels=["Dgo", "Unicorn"]),
            r"unknown label\(s\) 'Dgo' \(did you mean 'Dog'\?\), 'Unicorn'.*: 'audioclas labels",
        ),
        (LabelQuery(exclude=["Human voice"], exact=True), "does not predict 'Human voice' .*without --exact"),
        (LabelQuery(labels=["Bay"]), "predicts neither 'Bay' .* nor any class below it"),
        (LabelQuery(labels=[".*"]), r"unknown label\(s\) '\.\*'"),
    ],
)
def test_names_that_select_nothing_are_one_line_errors(query: LabelQuery, message: str) -> None:
    with pytest.raises(OptionError, match=message) as raised:
        query.resolve(AS_NAMES, AS_IDS)
    assert "\n" not in str(raised.value)


def test_close_matches_for_a_custom_models_classes() -> None:
    with pytest.raises(OptionError, match=r"'bark' \(did you mean 'Bark'\?\)|'Barc' \(did you mean 'Bark'\?\)"):
        LabelQuery(labels=["Barc"]).resolve(NAMES, None)


def specific_names(scores: dict[str, float], **options: object) -> list[str]:
    vector = np.zeros(len(AS_NAMES), dtype=np.float32)
    for name, score in scores.items():
        vector[AS_NAMES.index(name)] = score
    label_filter = LabelQuery(specific=True, **options).resolve(AS_NAMES, AS_IDS)  # type: ignore[arg-type]
    return [x.name for x in label_filter.select(vector, AS_NAMES, AS_IDS)]


def test_specific_ranks_a_confident_descendant_above_its_ancestors() -> None:
    guitar = {"Music": 0.9, "Musical instrument": 0.5, "Plucked string instrument": 0.3, "Guitar": 0.35, "Speech": 0.7}
    assert specific_names(guitar, top_k=5) == [
        "Guitar",  # 0.35 >= 0.5 x 0.3 (plucked), which is confident against Musical instrument, against Music
        "Plucked string instrument",
        "Musical instrument",
        "Music",
        "Speech",
    ]
    assert specific_names({"Music": 0.9, "Guitar": 0.4}, top_k=2) == ["Music", "Guitar"]  # under half of Music's
    assert specific_names({"Speech": 0.3, "Whispering": 0.19}, top_k=2) == ["Speech", "Whispering"]  # under 0.2
    assert specific_names({"Music": 0.9, "Guitar": 0.5}, top_k=1) == ["Guitar"]  # top_k after the reordering


def test_specific_takes_only_reported_classes_into_account() -> None:
    scores = {"Animal": 0.8, "Dog": 0.5, "Bark": 0.45, "Music": 0.6}
    assert specific_names(scores, top_k=0, threshold=0.2) == ["Bark", "Dog", "Animal", "Music"]
    assert specific_names(scores, top_k=0, threshold=0.2, exclude=["Animal"], exact=True) == ["Music", "Bark", "Dog"]
    assert specific_names(scores, top_k=0, threshold=0.46) == ["Dog", "Animal", "Music"]
    assert specific_names(scores, top_k=0, labels=["Dog"], threshold=0.2) == ["Bark", "Dog"]


def test_specific_and_exact_are_checked_and_recorded() -> None:
    with pytest.raises(OptionError, match="specific must be true or false"):
        LabelQuery(specific="yes")  # type: ignore[arg-type]
    assert LabelQuery(exact=True, specific=True).to_dict()["specific"] is True
    assert "specific" not in LabelQuery().to_dict() and "exact" not in LabelQuery().to_dict()  # old jobs resume
