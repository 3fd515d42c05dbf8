"""Resampling and chunking of the decoded stream (``audioclas.audio``): soxr HQ in about one-second pieces, then
pieces regrouped into chunks of a fixed size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soxr

Mono = npt.NDArray[np.float32]  # one channel of float32 samples in [-1, 1]

RESAMPLE_BLOCK_SECONDS = 1.0  # decoded frames are gathered into blocks this long before they go to soxr


class _Resampler(Protocol):
    """What ``soxr.ResampleStream`` offers (soxr has no type information)."""

    def resample_chunk(self, x: Mono, last: bool = False) -> Mono: ...


class _RateConverter:
    """soxr HQ from one input rate to ``out_rate``; the total output length is ceil(N_in * out_rate / in_rate),
    as librosa makes it (soxr itself may give one sample less), so decodes line up with the reference waveforms."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self.soxr: _Resampler | None = None
        if in_rate != out_rate:
            self.soxr = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        self.samples_in = self.samples_out = 0

    def push(self, samples: Mono, last: bool = False) -> Mono:
        self.samples_in += len(samples)
        resampled = samples if self.soxr is None else self.soxr.resample_chunk(samples, last=last)
        if last:
            missing = -(-self.samples_in * self.out_rate // self.in_rate) - self.samples_out - len(resampled)
            resampled = np.pad(resampled, (0, missing)) if missing > 0 else resampled[: len(resampled) + missing]
        self.samples_out += len(resampled)
        return resampled


def resample(blocks: Iterable[tuple[Mono, int]], out_rate: int) -> Iterator[Mono]:
    """Resample (samples, rate) blocks in about one-second pieces; a change of rate mid-stream starts a new stream."""
    converter: _RateConverter | None = None
    pending: list[Mono] = []
    pending_samples = 0
    for samples, rate in blocks:
        if converter is not None and rate != converter.in_rate:
            yield converter.push(join(pending), last=True)
            converter, pending, pending_samples = None, [], 0
        if converter is None:
            converter = _RateConverter(rate, out_rate)
        pending.append(samples)
        pending_samples += len(samples)
        if pending_samples >= RESAMPLE_BLOCK_SECONDS * rate:
            yield converter.push(join(pending))
            pending, pending_samples = [], 0
    if converter is not None:
        yield converter.push(join(pending), last=True)


def rechunk(pieces: Iterable[Mono], size: int) -> Iterator[Mono]:
    """Regroup pieces of any length into chunks of exactly ``size`` samples, the last one shorter."""
    pending: list[Mono] = []
    pending_samples = 0
    for piece in pieces:
        pending.append(piece)
        pending_samples += len(piece)
        if pending_samples >= size:
            joined, start = join(pending), 0
            while len(joined) - start >= size:
                yield joined[start : start + size]
                start += size
            pending, pending_samples = [joined[start:]], len(joined) - start
    if pending_samples:
        yield join(pending)


def join(pieces: list[Mono]) -> Mono:
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
