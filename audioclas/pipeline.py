"""Streaming inference: decode in a background thread, batch windows across clips through the network.

Decoding (PyAV, soxr) releases the GIL, so it overlaps with the network on the other core. Windows of
consecutive clips share batches, which matters for many short clips; a queue of bounded size keeps
memory flat on hour-long files. Results come back in input order, one per input, and an input that
fails comes back as its ``InputError`` without stopping the others.

A second network may run ``beside`` the first on windows of its own (e.g. AudioSet tags on the pretrained
network's 10 s windows beside a custom model's 0.3 s ones): each clip is decoded once, and both windowings of
the same decoded chunks are interleaved by position, so memory stays as flat as with one.
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from audioclas.audio import SAMPLE_RATE, stream_audio
from audioclas.engine import Engine
from audioclas.errors import InputError
from audioclas.inputs import AudioSource
from audioclas.windows import Window, WindowSettings, iter_windows

QUEUE_WINDOWS = 16  # decoded windows waiting for the network (10 s windows: about 20 MB; 160 s of audio ahead)
STOP_WAIT_SECONDS = 2.0  # how long a consumer that stops early waits for the decoder thread to notice

# What the decoder thread tells the network loop, in order: each clip's name, its windows (with the windowing they
# belong to), then its length in samples or its error; "done" after the last clip, "fatal" if the inputs broke.
_Message = (
    tuple[Literal["clip"], str]
    | tuple[Literal["window"], tuple[int, Window]]
    | tuple[Literal["end"], int]
    | tuple[Literal["error"], InputError]
    | tuple[Literal["done"], None]
    | tuple[Literal["fatal"], Exception]
)


def network_threads() -> int:
    """Compute threads for the network while a decoder thread runs beside it: every usable core but one."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


@dataclass
class ClipOutput:
    """Network outputs for every window of one input."""

    source: str
    duration: float  # seconds of decoded audio
    starts: npt.NDArray[np.float64]  # (windows,) seconds
    ends: npt.NDArray[np.float64]  # (windows,) seconds, at most the duration
    logits: npt.NDArray[np.float32]  # (windows, 527)
    embeddings: npt.NDArray[np.float32]  # (windows, 384)
    beside: ClipOutput | None = None  # the outputs of the network run beside, on its own windows


@dataclass(frozen=True)
class Progress:
    """Reported after every batch, and when an input is finished."""

    source: str
    seconds: float  # audio of this input processed so far
    done: bool = False
    failed: bool = False


@dataclass
class _Track:
    """What one network produced for one clip."""

    starts: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    logits: list[npt.NDArray[np.float32]] = field(default_factory=list)
    embeddings: list[npt.NDArray[np.float32]] = field(default_factory=list)


@dataclass(eq=False)  # compared and hashed by identity
class _Clip:
    source: str
    tracks: tuple[_Track, ...] = ()
    pending: int = 0  # windows queued but not yet through a network
    heard: int = 0  # samples of this clip through a network so far
    total_samples: int | None = None  # set when decoding finished
    error: InputError | None = None

    @property
    def finished(self) -> bool:
        return self.error is not None or (self.total_samples is not None and self.pending == 0)

    def result(self) -> ClipOutput | InputError:
        """The clip's outputs, or its error: the decoder's, or non-finite network outputs.

        Finite samples far outside [-1, 1] (1e30) overflow the network's spectrogram into NaN scores, which no
        output format can carry (JSON has no NaN); every caller (CLI, Python, service, batch) gets them here.
        """
        if self.error is not None:
            return self.error
        assert self.total_samples is not None  # finished without an error: decoding ran to the end
        outputs = [self._track_output(track, self.total_samples) for track in self.tracks]
        for output in outputs:
            if not (np.isfinite(output.logits).all() and np.isfinite(output.embeddings).all()):
                return InputError(self.source, "gives NaN or infinite scores (samples far outside -1 to 1?)")
        return replace(outputs[0], beside=outputs[1] if len(outputs) > 1 else None)

    def _track_output(self, track: _Track, total_samples: int) -> ClipOutput:
        starts = np.asarray(track.starts, dtype=np.float64)
        ends = starts + np.asarray(track.lengths, dtype=np.float64)
        return ClipOutput(
            self.source,
            total_samples / SAMPLE_RATE,
            starts / SAMPLE_RATE,
            ends / SAMPLE_RATE,
            np.concatenate(track.logits),
            np.concatenate(track.embeddings),
        )


def _windows(source: AudioSource, settings: list[WindowSettings]) -> Iterator[tuple[int, Window]]:
    """(track, window) for every window of every windowing of one decoded stream, in order of their ends."""
    streams = itertools.tee(stream_audio(source), len(settings)) if len(settings) > 1 else [stream_audio(source)]
    windowings = [
        zip(itertools.repeat(track), iter_windows(stream, *setting.in_samples(SAMPLE_RATE), setting.pad))
        for track, (stream, setting) in enumerate(zip(streams, settings))
    ]
    return heapq.merge(*windowings, key=lambda pair: pair[1].start + pair[1].length)


def _decode(
    items: Iterable[AudioSource | InputError],
    settings: list[WindowSettings],
    out: queue.Queue[_Message],
    stop: threading.Event,
) -> None:
    """Producer: ("clip", name) then ("window", (track, Window))… then ("end", samples) or ("error", InputError)."""

    def put(message: _Message) -> None:
        while not stop.is_set():
            try:
                out.put(message, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    try:
        for item in items:
            if isinstance(item, InputError):
                put(("clip", item.source))
                put(("error", item))
                continue
            put(("clip", item.name))
            total = 0
            try:
                for track, window in _windows(item, settings):
                    put(("window", (track, window)))
                    total = max(total, window.start + window.length)
            except InputError as error:
                put(("error", error))
            except Exception as error:  # a decoder bug must not sink the rest of the batch
                put(("error", InputError(item.name, f"could not be decoded ({type(error).__name__}: {error})")))
            else:
                put(("end", total) if total else ("error", InputError(item.name, "contains no audio (0 samples)")))
        put(("done", None))
    except _Stopped:
        return
    except Exception as error:  # expanding the inputs itself failed: report it, end the stream
        put(("fatal", error))


class _Stopped(Exception):
    pass


def run_network(
    engine: Engine,
    items: Iterable[AudioSource | InputError],
    settings: WindowSettings,
    batch_size: int = 16,
    progress: Callable[[Progress], None] | None = None,
    beside: tuple[Engine, WindowSettings] | None = None,
) -> Iterator[ClipOutput | InputError]:
    """Run ``engine`` over every window of every input; yield one result per input, in order.

    With ``beside`` (engine, settings), that engine also runs over its own windows of each input: its outputs
    are the result's ``beside``."""
    networks = [engine] + ([beside[0]] if beside else [])
    windowings = [settings] + ([beside[1]] if beside else [])
    messages: queue.Queue[_Message] = queue.Queue(maxsize=QUEUE_WINDOWS)
    stop = threading.Event()
    producer = threading.Thread(target=_decode, args=(items, windowings, messages, stop), daemon=True)
    producer.start()
    clips: list[_Clip] = []  # unfinished clips, oldest first
    batches: list[list[tuple[_Clip, Window]]] = [[] for _ in networks]  # windows of equal size per network
    producer_done = False

    def run_batch(track: int) -> None:
        batch = batches[track]
        logits, embeddings = networks[track].run(np.stack([window.samples for _, window in batch]))
        for i, (clip, window) in enumerate(batch):
            clip.tracks[track].logits.append(logits[i : i + 1])
            clip.tracks[track].embeddings.append(embeddings[i : i + 1])
            clip.pending -= 1
            clip.heard = max(clip.heard, window.start + window.length)
        if progress is not None:
            for clip in dict.fromkeys(clip for clip, _ in batch):
                progress(Progress(clip.source, clip.heard / SAMPLE_RATE))
        batch.clear()

    try:
        while clips or not producer_done:
            # Emit finished clips in input order.
            while clips and clips[0].finished:
                clip = clips.pop(0)
                result = clip.result()
                if progress is not None:
                    seconds = (clip.total_samples or 0) / SAMPLE_RATE
                    progress(Progress(clip.source, seconds, done=True, failed=isinstance(result, InputError)))
                yield result
            if producer_done and not any(batches):
                if clips:  # only possible if the producer died mid-clip
                    clips[0].error = clips[0].error or InputError(clips[0].source, "decoding stopped unexpectedly")
                continue
            try:
                message = messages.get_nowait()
            except queue.Empty:
                waiting = [track for track, batch in enumerate(batches) if batch]
                if waiting:  # the network is idle: run what we have rather than wait for the decoder
                    run_batch(waiting[0])
                    continue
                message = messages.get()
            match message:
                case ("clip", source):
                    clips.append(_Clip(source, tuple(_Track() for _ in networks)))
                case ("window", (track, window)):
                    clip = clips[-1]
                    clip.tracks[track].starts.append(window.start)
                    clip.tracks[track].lengths.append(window.length)
                    clip.pending += 1
                    batches[track].append((clip, window))
                    if len(batches[track]) == batch_size:
                        run_batch(track)
                case ("end", total_samples):
                    clips[-1].total_samples = total_samples
                case ("error", error):
                    clips[-1].error = error
                    for batch in batches:
                        batch[:] = [(c, w) for c, w in batch if c is not clips[-1]]
                case ("done", _):
                    producer_done = True
                    for track, batch in enumerate(batches):
                        if batch:
                            run_batch(track)
                case ("fatal", failure):
                    raise failure
    finally:
        # Let the decoder finish its current step before the caller removes the inputs' temporary files or the
        # process exits (a daemon thread killed inside soxr makes nanobind print leak reports); a download stuck in
        # a slow read is not waited for.
        stop.set()
        producer.join(STOP_WAIT_SECONDS)
