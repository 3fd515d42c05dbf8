"""Segments of recordings as audio sources: an annotation's example is the slice of its recording between its start
and end, decoded without holding the whole recording in memory.

``clip_sources`` streams each recording once for cuts in ascending order (``Embedder`` sorts them so): it keeps only
the audio from the current cut's start on, so memory is bounded by the longest cut plus one decoded chunk whatever the
recording's length. A cut that starts before the audio kept reopens the recording.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioclas.audio import SAMPLE_RATE, stream_audio
from audioclas.errors import InputError
from audioclas.inputs import AudioSource
from audioclas.training.dataset.base import Example

CHUNK_SECONDS = 30.0


@dataclass(frozen=True)
class Cut:
    """A segment of an audio file, embedded as a clip of its own (an annotation of a long recording)."""

    path: Path
    start: float  # seconds
    end: float

    def __str__(self) -> str:
        return f"{self.path}@{self.start:.3f}-{self.end:.3f}"


def clip_item(example: Example) -> Path | Cut:
    """What is embedded for ``example``: its file, or the cut of it that it is."""
    return example.path if example.segment is None else Cut(example.path, *example.segment)


class _Recording:
    """One recording decoded forward: ``samples(start, end)`` for ascending starts, keeping only what is still ahead."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._chunks = stream_audio(AudioSource(str(path), path=path), chunk_seconds=CHUNK_SECONDS)
        self._kept = np.zeros(0, np.float32)
        self._offset = 0  # the sample index of _kept[0]

    def samples(self, start: int, end: int) -> np.ndarray:
        if start < self._offset:
            raise LookupError("the audio before this cut was let go")
        while self._offset + len(self._kept) < end:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._kept = np.concatenate([self._kept, chunk])
        drop = start - self._offset
        self._kept, self._offset = self._kept[drop:], start
        return self._kept[: end - start].copy()


def clip_sources(items: list[Path | Cut]) -> Iterator[AudioSource]:
    """The sources of ``items``, made as the tagger's decoding thread asks for them; a recording that cannot be
    decoded is handed on as its file, for the tagger to report the error as it does for any file."""
    current: _Recording | None = None
    for item in items:
        if isinstance(item, Path):
            yield AudioSource(str(item), path=item)
            continue
        start, end = round(item.start * SAMPLE_RATE), round(item.end * SAMPLE_RATE)
        try:
            if current is None or current.path != item.path:
                current = _Recording(item.path)
            try:
                cut = current.samples(start, end)
            except LookupError:
                current = _Recording(item.path)
                cut = current.samples(start, end)
        except InputError:
            current = None
            yield AudioSource(str(item), path=item.path)
            continue
        yield AudioSource(str(item), array=cut, sample_rate=SAMPLE_RATE)
