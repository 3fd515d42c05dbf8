"""Decode any audio source to mono float32 at 32 kHz, in a stream: PyAV (FFmpeg) decodes, soxr resamples.

The resampler is soxr at quality ``HQ``, as in the reference decode of the model (librosa's ``soxr_hq``). With
FFmpeg's decoders in place of libsndfile, the reference ``.ogg`` clips decode to within the int16 quantisation step
of the stored model inputs. The output length is ceil(N * 32000 / rate), like librosa's.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import format_dtypes

from audioclas.errors import InputError, UnsupportedInput
from audioclas.inputs import AudioSource
from audioclas.inputs.rules import open_input_file
from audioclas.resampling import RESAMPLE_BLOCK_SECONDS, Mono, rechunk, resample

SAMPLE_RATE = 32000
MIN_RATE, MAX_RATE = 1000, 1_000_000  # a rate outside this is a broken or hostile header
MAX_ARRAY_CHANNELS = 64  # the shorter axis of a 2-D array is channels only if it is this short
MAX_BAD_PACKETS = 100  # packets that fail to decode before we give up on a file
# FFmpeg reads 5 MB of a file by default to learn its streams; a WAV header says it all (the probe of a 10-minute
# WAV took 140 ms, against 1 ms with this). Other formats keep the default: some need frames to know their streams.
WAV_PROBE_BYTES = 4096


FRAME_DTYPES = {name: np.dtype(code) for name, code in format_dtypes.items()}  # PyAV sample format -> NumPy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioInfo:
    duration_seconds: float | None  # None when the container does not say
    sample_rate: int
    channels: int
    codec: str


def stream_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE, chunk_seconds: float = 60.0) -> Iterator[Mono]:
    """Yield the audio as mono float32 chunks of exactly ``round(chunk_seconds * sample_rate)`` samples (the last
    one shorter), decoding, downmixing (mean of the channels) and resampling as it goes, so memory stays bounded
    whatever the length of the file.

    Packets that fail to decode are skipped (at most ``MAX_BAD_PACKETS``); if the container itself breaks off
    mid-file, the audio decoded so far is kept, with a warning in the log. Raises ``InputError`` for anything
    else wrong with the source; on a failure mid-file, the chunks before it have already been yielded.
    """
    chunk_samples = max(1, round(chunk_seconds * sample_rate))
    blocks = _array_blocks(source) if source.array is not None else _decoded_blocks(source)
    total = 0
    for chunk in rechunk(resample(blocks, sample_rate), chunk_samples):
        if not np.isfinite(chunk).all():
            raise InputError(source.name, "contains NaN or infinite samples")
        total += len(chunk)
        yield chunk
    if total == 0:
        raise InputError(source.name, "contains no audio (0 samples)")


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE) -> Mono:
    """The whole source as one mono float32 array; for clips that fit in memory."""
    return np.concatenate(list(stream_audio(source, sample_rate)))


def probe(source: AudioSource) -> AudioInfo:
    """Duration, rate, channels and codec from the headers, without decoding (for progress bars)."""
    if source.array is not None:
        channels_first = _channels_first(source)
        rate = _checked_rate(source.sample_rate, source.name)
        return AudioInfo(channels_first.shape[1] / rate, rate, channels_first.shape[0], str(source.array.dtype))
    with _open_container(source) as container:
        stream = _first_audio_stream(container, source.name)
        duration: float | None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = container.duration / av.time_base if container.duration is not None else None
        context = stream.codec_context
        return AudioInfo(duration, context.sample_rate, context.channels, context.name)


# Decoding -------------------------------------------------------------------------------------------------------


@contextmanager
def _open_container(source: AudioSource) -> Iterator[av.container.InputContainer]:
    """Open the source with PyAV from a Python file object, so FFmpeg never interprets the name (``concat:``,
    ``http:``), and refuse every other file the media asks to open (playlists such as HLS could read local files)."""

    def refuse_nested(url: str, flags: int, options: dict[str, str]) -> BinaryIO:
        raise UnsupportedInput(source.name, f"refers to another file or URL ({url}); playlists are not supported")

    with _open_binary(source) as file:
        options = {"probesize": str(WAV_PROBE_BYTES)} if _is_wav(file) else {}
        try:
            container = av.open(file, "r", metadata_errors="replace", io_open=refuse_nested, options=options)
        except av.error.InvalidDataError:
            raise UnsupportedInput(source.name, "not a recognised audio or video format, or corrupt") from None
        except av.error.EOFError:
            raise InputError(source.name, "truncated or corrupt (the data ends too early)") from None
        except av.error.FFmpegError as error:
            raise InputError(source.name, f"cannot open ({error.strerror})") from None
        with container:
            yield container


def _is_wav(file: BinaryIO) -> bool:
    """Whether the file starts as a RIFF (or RF64, BW64) WAVE file; leaves the file at its start."""
    head = file.read(12)
    file.seek(0)
    return head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE"


@contextmanager
def _open_binary(source: AudioSource) -> Iterator[BinaryIO]:
    if source.data is not None:
        if not source.data:
            raise InputError(source.name, "file is empty (0 bytes)")
        yield io.BytesIO(source.data)
        return
    assert source.path is not None  # an AudioSource holds exactly one payload, and arrays are never opened
    with open_input_file(source.path, source.name) as file:
        if file.seek(0, io.SEEK_END) == 0:
            raise InputError(source.name, "file is empty (0 bytes)")
        file.seek(0)
        yield file


def _first_audio_stream(container: av.container.InputContainer, name: str) -> av.audio.AudioStream:
    if not container.streams.audio:
        raise UnsupportedInput(name, "has no audio stream (video only?)")
    stream = container.streams.audio[0]
    context = stream.codec_context
    if context.channels < 1:
        raise InputError(name, f"audio stream claims {context.channels} channels")
    _checked_rate(context.sample_rate, name)
    return stream


def _decoded_blocks(source: AudioSource) -> Iterator[tuple[Mono, int]]:
    """(mono float32 samples, rate) in blocks of about ``RESAMPLE_BLOCK_SECONDS`` of the first audio stream; video
    is never decoded. Frames are gathered first and downmixed a block at a time: per frame (an mp3 frame is 26 ms),
    the stacking and averaging cost a third of the decoding."""
    with _open_container(source) as container:
        stream = _first_audio_stream(container, source.name)
        packets = container.demux(stream)
        bad_packets, decoded = 0, 0
        last_error: str | None = ""
        block = _Block()
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as error:
                if decoded == 0:
                    raise InputError(source.name, f"corrupt, no decodable audio ({error.strerror})") from None
                log.warning("%s: stopped at a read error after %d samples (%s)", source.name, decoded, error.strerror)
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError as error:
                bad_packets, last_error = bad_packets + 1, error.strerror
                if bad_packets > MAX_BAD_PACKETS:
                    problem = f"corrupt, more than {MAX_BAD_PACKETS} packets fail to decode ({last_error})"
                    raise InputError(source.name, problem) from None
                continue
            for frame in frames:
                rate = _checked_rate(frame.sample_rate, source.name)
                if not block.fits(frame, rate):
                    yield block.mono(), block.rate
                    block = _Block()
                block.add(frame, rate)
                decoded += frame.samples
                if block.samples >= RESAMPLE_BLOCK_SECONDS * rate:
                    yield block.mono(), block.rate
                    block = _Block()
        if block.samples:
            yield block.mono(), block.rate
        if bad_packets:
            if decoded == 0:
                raise InputError(source.name, f"corrupt, no decodable audio ({last_error})")
            log.warning("%s: skipped %d packets that failed to decode (%s)", source.name, bad_packets, last_error)


class _Block:
    """Decoded frames of one rate and sample layout, read in place (``to_ndarray`` would stack copies of each
    frame), downmixed together."""

    def __init__(self) -> None:
        self.pieces: list[list[npt.NDArray[Any]]] = []  # per frame: one array per plane
        self.layout: tuple[str, int] | None = None  # (sample format, channels); the format says if it is planar
        self.rate = self.samples = 0

    def fits(self, frame: av.AudioFrame, rate: int) -> bool:
        return self.layout is None or (
            self.layout == (frame.format.name, frame.layout.nb_channels) and self.rate == rate
        )

    def add(self, frame: av.AudioFrame, rate: int) -> None:
        dtype, count, channels = FRAME_DTYPES[frame.format.name], frame.samples, frame.layout.nb_channels
        if frame.format.is_planar:
            planes = [np.frombuffer(memoryview(plane), dtype, count) for plane in frame.planes[:channels]]
        else:  # interleaved
            planes = [np.frombuffer(memoryview(frame.planes[0]), dtype, count * channels)]
        self.pieces.append(planes)
        self.layout, self.rate, self.samples = (frame.format.name, channels), rate, self.samples + count

    def mono(self) -> Mono:
        assert self.layout is not None  # only a block with frames is downmixed
        channels = self.layout[1]
        if len(self.pieces[0]) == channels:  # planar (one plane per channel), or a single channel
            samples = np.empty((channels, self.samples), self.pieces[0][0].dtype)
            for channel, row in enumerate(samples):
                np.concatenate([planes[channel] for planes in self.pieces], out=row)
        else:
            samples = np.concatenate([planes[0] for planes in self.pieces]).reshape(self.samples, channels).T
        return _mono_float32(samples)


def _array_blocks(source: AudioSource) -> Iterator[tuple[Mono, int]]:
    """The array in blocks of about a second, so that scaling to float32 never copies the whole of it."""
    samples = _channels_first(source)
    rate = _checked_rate(source.sample_rate, source.name)
    for start in range(0, samples.shape[1], rate):
        yield _mono_float32(samples[:, start : start + rate]), rate


def _channels_first(source: AudioSource) -> npt.NDArray[Any]:
    samples = np.asarray(source.array)
    shape = samples.shape
    if samples.dtype.kind not in "iuf":
        raise InputError(source.name, f"array of {samples.dtype} is not audio samples (need integers or floats)")
    if samples.ndim == 1:
        return samples[None]
    if samples.ndim != 2:
        raise InputError(source.name, f"array has {samples.ndim} dimensions; need (N,), (N, channels) or (channels, N)")
    if samples.shape[0] > samples.shape[1]:
        samples = samples.T
    if samples.shape[0] > MAX_ARRAY_CHANNELS:
        problem = f"array of shape {shape} has more than {MAX_ARRAY_CHANNELS} channels on either axis"
        raise InputError(source.name, problem)
    return samples


def _mono_float32(samples: npt.NDArray[Any]) -> Mono:
    """(channels, n) samples of any PCM dtype -> (n,) float32 in [-1, 1], the mean of the channels.

    Floats beyond float32's range become inf, quietly (as may a mean of huge samples): ``stream_audio`` refuses
    non-finite samples with one line.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if samples.dtype.kind == "f":
            samples = samples.astype(np.float32, copy=False)
        else:
            half_range = 2.0 ** (8 * samples.dtype.itemsize - 1)
            offset = half_range if samples.dtype.kind == "u" else 0.0  # unsigned PCM (u8) is centred on half its range
            samples = (samples.astype(np.float32) - np.float32(offset)) / np.float32(half_range)
        if samples.shape[0] == 1:
            mono: Mono = samples[0]
            return mono
        # Row by row, as ``mean(axis=0)`` adds them, but 6x faster on interleaved samples (a transposed view).
        mono = samples[0] + samples[1]
        for row in samples[2:]:
            mono += row
        mono /= np.float32(samples.shape[0])
        return mono


def _checked_rate(rate: object, name: str) -> int:
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool):
        raise InputError(name, f"sample rate must be a whole number of Hz, not {rate!r}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InputError(name, f"sample rate {rate} Hz is outside the supported {MIN_RATE} to {MAX_RATE} Hz")
    return int(rate)
