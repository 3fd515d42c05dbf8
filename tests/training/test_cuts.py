"""Cuts of a recording decoded in one forward pass: the same samples as slicing the whole decoded recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from annotated import recording

from audioclas.audio import SAMPLE_RATE, load_audio
from audioclas.inputs import AudioSource
from audioclas.training import cuts
from audioclas.training.cuts import Cut, clip_sources


@pytest.mark.unit
def test_cuts_are_the_slices_of_the_recording(tmp_path: Path, shared_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(cuts, "CHUNK_SECONDS", 1.0)  # several chunks, and cuts across their boundaries
    path = tmp_path / "a.wav"
    recording(shared_dir / "datasets" / "fsdd", path, [(0, 0), (1, 0), (0, 1), (1, 1)])
    whole = load_audio(AudioSource("a.wav", path=path))
    spans = [(0.2, 0.9), (0.5, 1.7), (1.69, 2.4), (3.0, 3.05), (0.1, 0.4), (2.0, 4.0)]  # overlapping, then back
    items: list[Path | Cut] = [Cut(path, start, end) for start, end in spans]
    items.insert(2, path)  # a whole file between cuts
    sources = list(clip_sources(items))
    assert sources[2].path == path
    del sources[2]
    for (start, end), source in zip(spans, sources):
        expected = whole[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
        assert source.sample_rate == SAMPLE_RATE and np.array_equal(source.array, expected), (start, end)


@pytest.mark.unit
def test_an_undecodable_recording_is_handed_on_as_its_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF not really a wave file")
    (source,) = clip_sources([Cut(path, 0.0, 1.0)])
    assert source.path == path and source.array is None
