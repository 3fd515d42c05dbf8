"""Events from window scores: synthetic score arrays with known answers, and the thresholds file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audioclas.errors import OptionError
from audioclas.events import (
    EVENT_HOP,
    EVENT_WINDOW,
    Event,
    EventOptions,
    event_windows,
    find_events,
    read_thresholds,
    stretch_bounds,
)
from audioclas.windows import WindowRequest, WindowSettings

pytestmark = pytest.mark.unit

NAMES = ["Dog", "Bird"]
IDS = ["/m/dog", "/m/bird"]


def windows(count: int, window: float = 10.0, hop: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(count, dtype=np.float64) * hop
    return starts, starts + window


def events_of(scores: list[list[float]], options: EventOptions, hop: float = 1.0, window: float = 10.0) -> list[Event]:
    table = np.asarray(scores, dtype=np.float32)
    starts, ends = windows(len(table), window, hop)
    return find_events(starts, ends, float(ends[-1]), table, NAMES, IDS, options)


def spans(events: list[Event]) -> list[tuple[float, float, str]]:
    return [(e.start, e.end, e.label) for e in events]


def test_stretches_are_hop_long_centred_on_window_centres_and_tile_the_clip() -> None:
    starts, ends = windows(4)  # 10 s windows every 1 s over 13 s: centres 5, 6, 7, 8
    assert stretch_bounds(starts, ends, 13.0).tolist() == [0.0, 5.5, 6.5, 7.5, 13.0]


def test_a_run_in_the_middle_is_one_event_with_peak_and_mean() -> None:
    found = events_of([[0.1, 0], [0.6, 0], [0.9, 0], [0.7, 0], [0.2, 0], [0.1, 0]], EventOptions())
    assert spans(found) == [(5.5, 8.5, "Dog")]
    assert found[0].id == "/m/dog"
    assert found[0].score == pytest.approx(0.9)
    assert found[0].mean_score == pytest.approx((0.6 + 0.9 + 0.7) / 3)


def test_a_run_at_the_end_reaches_the_end_of_the_clip() -> None:
    found = events_of([[0.1, 0], [0.1, 0], [0.8, 0]], EventOptions())  # windows 0-10, 1-11, 2-12
    assert spans(found) == [(6.5, 12.0, "Dog")]


def test_a_run_at_the_start_begins_at_zero() -> None:
    assert spans(events_of([[0.8, 0], [0.1, 0], [0.1, 0]], EventOptions())) == [(0.0, 5.5, "Dog")]


def test_one_window_covers_the_whole_clip_never_past_its_duration() -> None:
    scores = np.asarray([[0.9, 0.2]], dtype=np.float32)  # a 3 s clip, looped into one window: ends at 3 s
    found = find_events(np.zeros(1), np.asarray([3.0]), 3.0, scores, NAMES, IDS, EventOptions())
    assert spans(found) == [(0.0, 3.0, "Dog")]


def test_threshold_is_inclusive() -> None:
    assert spans(events_of([[0.5, 0.49]], EventOptions(threshold=0.5), window=2.0)) == [(0.0, 2.0, "Dog")]


def test_runs_closer_than_the_merge_gap_are_merged_and_the_gap_does_not_count_in_the_mean() -> None:
    scores = [[0.8, 0], [0.1, 0], [0.1, 0], [0.6, 0], [0.1, 0], [0.1, 0], [0.1, 0], [0.7, 0]]
    apart = events_of(scores, EventOptions(merge_gap=0.0))
    assert spans(apart) == [(0.0, 5.5, "Dog"), (7.5, 8.5, "Dog"), (11.5, 17.0, "Dog")]
    merged = events_of(scores, EventOptions(merge_gap=2.0))  # gap 5.5-7.5 merged, gap 8.5-11.5 (3 s) not
    assert spans(merged) == [(0.0, 8.5, "Dog"), (11.5, 17.0, "Dog")]
    assert spans(events_of(scores, EventOptions())) == spans(merged)  # 2 s is the default (benchmarks/events.py)
    assert merged[0].mean_score == pytest.approx((0.8 + 0.6) / 2)


def test_events_shorter_than_min_duration_are_dropped_after_merging() -> None:
    scores = [[0.1, 0], [0.1, 0], [0.1, 0], [0.1, 0], [0.8, 0], [0.1, 0], [0.1, 0], [0.1, 0], [0.1, 0], [0.1, 0]]
    assert spans(events_of(scores, EventOptions(min_duration=1.0))) == [(8.5, 9.5, "Dog")]
    assert events_of(scores, EventOptions(min_duration=1.5)) == []


def test_per_label_thresholds_by_name_or_id_override_the_global_one() -> None:
    scores = [[0.3, 0.3], [0.1, 0.1]]
    assert events_of(scores, EventOptions()) == []
    options = EventOptions(thresholds={"bird": 0.25, "/m/dog": 0.3})  # names and ids, case-insensitive
    assert spans(events_of(scores, options, window=2.0)) == [(0.0, 1.5, "Bird"), (0.0, 1.5, "Dog")]


def test_events_are_sorted_by_start_then_label() -> None:
    found = events_of([[0.1, 0.9], [0.9, 0.9], [0.9, 0.1]], EventOptions(), window=2.0)
    assert spans(found) == [(0.0, 2.5, "Bird"), (1.5, 4.0, "Dog")]


def test_custom_model_classes_have_no_ids_and_a_class_mask_limits_the_labels() -> None:
    scores = np.asarray([[0.9, 0.9]], dtype=np.float32)
    found = find_events(np.zeros(1), np.ones(1), 1.0, scores, ["a", "b"], None, EventOptions())
    assert [(e.label, e.id) for e in found] == [("a", None), ("b", None)]
    only_b = find_events(
        np.zeros(1), np.ones(1), 1.0, scores, ["a", "b"], None, EventOptions(), np.asarray([0, 1], bool)
    )
    assert [e.label for e in only_b] == ["b"]


def test_a_threshold_for_a_label_the_model_lacks_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="unknown label"):
        events_of([[0.9, 0.9]], EventOptions(thresholds={"Cat": 0.2}))


@pytest.mark.parametrize(
    "options",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"threshold": True},
        {"threshold": float("nan")},
        {"min_duration": -1},
        {"merge_gap": float("inf")},
        {"thresholds": {"Dog": 2}},
        {"thresholds": {"": 0.5}},
        {"thresholds": [("Dog", 0.5)]},
    ],
)
def test_options_out_of_range_are_refused_on_construction(options: dict[str, object]) -> None:
    with pytest.raises(OptionError):
        EventOptions(**options)  # type: ignore[arg-type]


def test_options_are_immutable_even_their_thresholds() -> None:
    given = {"Dog": 0.3}
    options = EventOptions(thresholds=given)
    given["Dog"] = 0.9
    assert options.thresholds["Dog"] == 0.3
    with pytest.raises(TypeError):
        options.thresholds["Dog"] = 0.1  # type: ignore[index]


def test_thresholds_file_csv_and_tsv_with_header_comments_and_commas_in_names(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "label,threshold\n# tuned on site A\nDog,0.3\n\n"
        '"Bird vocalization, bird call, bird song",0.2\nBark, yip,0.4\n/m/09x0r\t0.7\n',
        encoding="utf-8",
    )
    assert read_thresholds(path) == {
        "Dog": 0.3,
        "Bird vocalization, bird call, bird song": 0.2,
        "Bark, yip": 0.4,
        "/m/09x0r": 0.7,
    }
    options = EventOptions.from_file(path, threshold=0.6, merge_gap=1.0)
    assert (options.threshold, options.merge_gap, options.thresholds["Dog"]) == (0.6, 1.0, 0.3)


def test_every_problem_of_a_thresholds_file_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("Dog\t0.3\nCat\tsecret-token\nBird\nDog\t0.5\n\t0.2\nOwl\t0\n", encoding="utf-8")
    with pytest.raises(OptionError) as caught:
        read_thresholds(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for line in ("line 2: the threshold", "line 3: expected two fields", "line 4: a label given twice"):
        assert line in message
    assert "line 5: no label" in message and "line 6: the threshold" in message
    assert "secret-token" not in message and "\n" not in message


def test_a_thresholds_file_that_is_not_a_regular_file_or_too_large_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="cannot read the thresholds file"):
        read_thresholds(tmp_path)
    big = tmp_path / "big.csv"
    big.write_bytes(b"Dog,0.5\n" * 200_000)
    with pytest.raises(OptionError, match="at most 1 MiB"):
        read_thresholds(big)


def test_audioset_events_default_to_the_windows_the_scene_benchmark_chose() -> None:
    """Without a window, 2 s windows every 0.5 s (a given hop is kept); a given window or settled windows are left."""
    assert event_windows(WindowRequest()) == WindowRequest(EVENT_WINDOW, EVENT_HOP) == WindowRequest(2.0, 0.5)
    assert event_windows(WindowRequest(hop=1.0, pad="zeros")) == WindowRequest(2.0, 1.0, "zeros")
    assert event_windows(WindowRequest(window=5.0)) == WindowRequest(window=5.0)
    assert event_windows(WindowSettings()) == WindowSettings()
