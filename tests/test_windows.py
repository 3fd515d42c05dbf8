"""Cutting audio into windows: exact sample positions, padding of short clips, the end-aligned tail."""

import numpy as np
import pytest

from audioclas.errors import OptionError
from audioclas.windows import WindowRequest, WindowSettings, iter_windows

pytestmark = pytest.mark.unit


def windows_of(total: int, size: int, hop: int, chunk: int, pad: str = "loop") -> list:
    audio = np.arange(total, dtype=np.float32)
    return list(iter_windows((audio[i : i + chunk] for i in range(0, total, chunk)), size, hop, pad))


@pytest.mark.parametrize("chunk", [1, 3, 7, 10, 1000])
def test_windows_do_not_depend_on_chunking(chunk: int) -> None:
    windows = windows_of(25, 10, 10, chunk)
    assert [w.start for w in windows] == [0, 10, 15]  # the last is flush with the end, not padded
    for w in windows:
        np.testing.assert_array_equal(w.samples, np.arange(w.start, w.start + 10))
        assert w.length == 10


def test_hop_shorter_than_window_overlaps_and_covers_the_end() -> None:
    assert [w.start for w in windows_of(25, 10, 4, chunk=6)] == [0, 4, 8, 12, 15]


def test_exact_multiple_needs_no_extra_window() -> None:
    assert [w.start for w in windows_of(30, 10, 10, chunk=4)] == [0, 10, 20]


def test_short_clip_is_looped_by_default() -> None:
    (window,) = windows_of(4, 10, 10, chunk=4)
    assert window.start == 0 and window.length == 4
    np.testing.assert_array_equal(window.samples, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])


def test_short_clip_zero_padding() -> None:
    (window,) = windows_of(4, 10, 10, chunk=4, pad="zeros")
    np.testing.assert_array_equal(window.samples, [0, 1, 2, 3, 0, 0, 0, 0, 0, 0])


def test_no_audio_gives_no_window() -> None:
    assert windows_of(0, 10, 10, chunk=4) == []


def test_long_stream_keeps_memory_bounded() -> None:
    """An hour at 32 kHz in 60 s chunks: every window is a copy of at most one window's length."""
    chunk = np.zeros(32000 * 60, dtype=np.float32)
    count = 0
    for window in iter_windows((chunk for _ in range(60)), 320000, 320000):
        assert window.samples.shape == (320000,) and window.samples.base is None
        count += 1
    assert count == 360


@pytest.mark.parametrize(
    "kwargs", [{"window": 0}, {"window": 10, "hop": 11}, {"window": 10, "hop": 0}, {"pad": "wrap"}]
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WindowSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"window": 0}, "window must be"),
        ({"window": float("nan")}, "window must be"),
        ({"window": "10"}, "window must be"),
        ({"window": 10, "hop": 11}, "hop must be"),
        ({"hop": 0}, "hop must be"),
        ({"hop": 61}, "hop must be"),
        ({"pad": "wrap"}, "pad must be"),
    ],
)
def test_a_window_request_checks_what_it_is_given(kwargs: dict, fragment: str) -> None:
    with pytest.raises(OptionError, match=fragment):
        WindowRequest(**kwargs)


def test_a_window_request_leaves_out_what_is_not_given() -> None:
    assert WindowRequest(hop=20) == WindowRequest(None, 20, None)  # checked against the window once that is known


def test_window_settings_as_a_batch_job_records_them() -> None:
    settings = WindowSettings(2.0, None, "zeros")
    assert settings.to_dict() == {"window": 2.0, "hop": 2.0, "pad": "zeros"}
    assert WindowSettings.from_dict(settings.to_dict()).in_samples(32000) == settings.in_samples(32000)
