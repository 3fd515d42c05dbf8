"""Decoding real and generated media to mono float32 at 32 kHz, and every way that can go wrong."""

from __future__ import annotations

import hashlib
import math
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soxr
from media import encode, tone

from audioclas.audio import SAMPLE_RATE, AudioInfo, load_audio, probe, stream_audio
from audioclas.errors import InputError
from audioclas.inputs import AudioSource

pytestmark = pytest.mark.unit

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
HUMPBACK = "glacier-bay-humpback.ogg"


def file_source(path: Path) -> AudioSource:
    return AudioSource(path.name, path=path)


def problem(source: AudioSource) -> str:
    with pytest.raises(InputError) as caught:
        load_audio(source)
    assert caught.value.source == source.name
    return caught.value.problem


def best_alignment(decoded: np.ndarray, original: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, correlation) of the best match of ``decoded`` against ``original`` within ±max_lag samples."""
    size = 2 ** math.ceil(math.log2(len(decoded) + len(original)))
    cross = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(original, size)), size)
    lags = np.r_[0 : max_lag + 1, -max_lag:0]
    lag = int(lags[np.argmax(cross[lags])])
    a, b = (decoded[lag:], original) if lag >= 0 else (decoded, original[-lag:])
    n = min(len(a), len(b))
    return lag, float(np.corrcoef(a[:n], b[:n])[0, 1])


def wav_bytes(channels: int, rate: int, data: bytes = b"", bits: int = 16) -> bytes:
    """A PCM WAV file written by hand, so that its header can say anything."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture(scope="module")
def robin_22k(audio_dir: Path) -> np.ndarray:
    """The robin call decoded at its own rate (22.05 kHz), to re-encode into other formats."""
    return load_audio(file_source(audio_dir / ROBIN), sample_rate=22050)


# Real files against the reference decode ---------------------------------------------------------------------------


def test_reference_clips_decode_like_the_reference(audio_dir: Path, reference) -> None:
    """FFmpeg + soxr HQ against the stored model inputs (libsndfile + soxr HQ, then int16): within the int16 step.

    FFmpeg's Vorbis decoder differs from libvorbis by a few float32 ulps; the stored waveform is rounded to int16
    (error up to 1.53e-5), so the bound is that rounding plus a small margin. The WAV clip is bit-identical.
    """
    for clip in reference["clip_ids"]:
        decoded = load_audio(file_source(audio_dir / str(reference[f"{clip}__file"])))
        expected = reference[f"{clip}__wave_int16"] / np.float32(32768)
        assert decoded.dtype == np.float32 and decoded.shape == expected.shape, clip
        assert np.abs(decoded - expected).max() < 2e-5, clip
    metro = load_audio(file_source(audio_dir / "metro_station-paris.wav"))
    assert hashlib.sha256(metro.astype("<f4").tobytes()).hexdigest() == str(reference["metro__fdec_sha256"])


def test_chunks_have_the_asked_size_and_add_up(audio_dir: Path) -> None:
    source = file_source(audio_dir / HUMPBACK)
    chunks = list(stream_audio(source, chunk_seconds=10.0))
    assert [len(c) for c in chunks[:-1]] == [320_000] * 6 and 0 < len(chunks[-1]) <= 320_000
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), load_audio(source))


def test_probe_reads_the_headers(audio_dir: Path) -> None:
    info = probe(file_source(audio_dir / "metro_station-paris.wav"))
    assert info == AudioInfo(duration_seconds=10.0, sample_rate=44100, channels=1, codec="pcm_s24le")
    robin = probe(file_source(audio_dir / ROBIN))
    assert (robin.sample_rate, robin.channels, robin.codec) == (22050, 1, "vorbis")
    assert robin.duration_seconds == pytest.approx(2.699, abs=1e-3)


# Formats and containers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "codec", "container_format", "video_seconds"),
    [
        ("robin.mp3", "libmp3lame", None, 0),
        ("robin.ogg", "vorbis", None, 0),
        ("robin.flac", "flac", None, 0),
        ("robin.m4a", "aac", None, 0),
        ("robin.opus", "libopus", None, 0),
        ("robin-opus.ogg", "libopus", "ogg", 0),
        ("robin.wav", "pcm_s16le", None, 0),
        ("robin.mp4", "aac", None, 3.0),  # audio track of a video: the video stream is skipped
        ("robin.mkv", "libopus", None, 3.0),
    ],
)
def test_formats_decode_to_the_same_audio(
    tmp_path: Path, robin_22k: np.ndarray, reference, file_name: str, codec: str, container_format, video_seconds
) -> None:
    path = encode(tmp_path / file_name, robin_22k, 22050, codec, format=container_format, video_seconds=video_seconds)
    decoded = load_audio(file_source(path))
    original = reference["robin__wave_int16"] / np.float32(32768)
    assert abs(len(decoded) - len(original)) < 0.05 * SAMPLE_RATE  # AAC pads its last frame: +41 ms here
    lag, correlation = best_alignment(decoded, original, max_lag=SAMPLE_RATE // 10)
    assert abs(lag) < 0.01 * SAMPLE_RATE and correlation > 0.99


def test_stereo_44k_is_the_mean_of_its_channels_at_32k(tmp_path: Path) -> None:
    wave = tone(1.5, 44100, channels=2)  # the two channels differ in amplitude and frequency
    path = encode(tmp_path / "stereo.wav", wave, 44100, "pcm_f32le")
    decoded = load_audio(file_source(path))
    expected = soxr.resample(wave.mean(axis=0), 44100, SAMPLE_RATE, quality="HQ")
    assert len(decoded) == math.ceil(wave.shape[1] * SAMPLE_RATE / 44100) == len(expected)
    np.testing.assert_allclose(decoded, expected, atol=1e-6)
    assert probe(file_source(path)).channels == 2


def test_silence_and_a_tenth_of_a_second(tmp_path: Path) -> None:
    silence = load_audio(file_source(encode(tmp_path / "silence.flac", np.zeros(44100), 44100, "flac")))
    assert len(silence) == SAMPLE_RATE and not silence.any()
    short = load_audio(file_source(encode(tmp_path / "short.wav", tone(0.1, 48000), 48000, "pcm_s16le")))
    assert len(short) == 3200 and np.abs(short).max() == pytest.approx(0.5, abs=0.01)


def test_the_rate_is_left_alone_when_it_already_matches(tmp_path: Path) -> None:
    wave = tone(0.5, SAMPLE_RATE)
    decoded = load_audio(file_source(encode(tmp_path / "32k.wav", wave, SAMPLE_RATE, "pcm_f32le")))
    np.testing.assert_array_equal(decoded, wave[0])


def test_bytes_decode_like_the_file(audio_dir: Path) -> None:
    data = (audio_dir / ROBIN).read_bytes()
    from_bytes = load_audio(AudioSource("<bytes>", data=data))
    np.testing.assert_array_equal(from_bytes, load_audio(file_source(audio_dir / ROBIN)))


# Arrays ------------------------------------------------------------------------------------------------------------


def test_arrays_of_any_layout_and_sample_type() -> None:
    wave = tone(1.0, 16000, channels=2)  # (2, N) float32
    expected = soxr.resample(wave.mean(axis=0), 16000, SAMPLE_RATE, quality="HQ")
    as_int16 = np.round(wave * 32767).astype(np.int16)
    for array, tolerance in [(wave, 1e-6), (wave.T, 1e-6), (wave.astype(np.float64), 1e-6), (as_int16.T, 1e-4)]:
        decoded = load_audio(AudioSource("<array>", array=array, sample_rate=16000))
        assert decoded.dtype == np.float32
        np.testing.assert_allclose(decoded, expected, atol=tolerance)
    as_uint8 = np.array([0, 128, 255], np.uint8)  # unsigned 8-bit PCM is centred on 128
    decoded = load_audio(AudioSource("<array>", array=as_uint8, sample_rate=SAMPLE_RATE))
    np.testing.assert_allclose(decoded, [-1.0, 0.0, 127 / 128])


@pytest.mark.parametrize(
    ("array", "rate", "expected"),
    [
        (np.zeros((2, 3, 4)), 16000, "3 dimensions"),
        (np.zeros(10, bool), 16000, "not audio samples"),
        (np.zeros((100, 100)), 16000, "more than 64 channels"),
        (np.array([0.0, np.nan]), 16000, "NaN or infinite"),
        (np.zeros(0, np.float32), 16000, "contains no audio (0 samples)"),
        (np.zeros(100), 0, "outside the supported"),
        (np.zeros(100), 16000.5, "whole number of Hz"),
    ],
)
def test_bad_arrays(array: np.ndarray, rate, expected: str) -> None:
    assert expected in problem(AudioSource("<array>", array=array, sample_rate=rate))


# Broken and hostile files ------------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").touch()
    assert problem(file_source(tmp_path / "empty.wav")) == "file is empty (0 bytes)"
    assert problem(AudioSource("<bytes>", data=b"")) == "file is empty (0 bytes)"


def test_random_bytes_are_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    assert problem(file_source(path)) == "not a recognised audio or video format, or corrupt"


def test_truncated_files(audio_dir: Path) -> None:
    """Cut inside the headers: an error. Cut halfway: the first half, as decoded from the whole file."""
    data = (audio_dir / HUMPBACK).read_bytes()
    assert "truncated or corrupt" in problem(AudioSource("cut.ogg", data=data[:5000]))
    whole = load_audio(file_source(audio_dir / HUMPBACK))
    half = load_audio(AudioSource("half.ogg", data=data[: len(data) // 2]))
    assert 0.4 * len(whole) < len(half) < 0.6 * len(whole)
    np.testing.assert_allclose(half[: len(half) - SAMPLE_RATE], whole[: len(half) - SAMPLE_RATE], atol=1e-6)


def test_garbage_in_the_middle_is_skipped(tmp_path: Path, caplog) -> None:
    """An MP3 with 2000 random bytes over its middle: the packets hit are skipped with a warning, what precedes
    them decodes as before, and decoding resumes after them (it loses about the damaged span, not the rest)."""
    noise = np.random.default_rng(5).standard_normal(3 * 22050).astype(np.float32) * 0.1
    path = encode(tmp_path / "noise.mp3", noise, 22050, "libmp3lame")
    data = bytearray(path.read_bytes())
    middle, damaged_bytes = len(data) // 2, 2000
    data[middle : middle + damaged_bytes] = np.random.default_rng(1).bytes(damaged_bytes)
    whole = load_audio(file_source(path), sample_rate=22050)  # no resampling: samples before the damage are equal
    damaged = load_audio(AudioSource("damaged.mp3", data=bytes(data)), sample_rate=22050)
    np.testing.assert_array_equal(damaged[: len(whole) // 3], whole[: len(whole) // 3])
    damaged_seconds = damaged_bytes / len(data) * 3.0
    assert 0 < (len(whole) - len(damaged)) / 22050 < damaged_seconds + 0.15  # 0.15 s: two MP3 frames either side
    assert "damaged.mp3: skipped" in caplog.text and "failed to decode" in caplog.text


def test_video_without_audio(tmp_path: Path) -> None:
    path = encode(tmp_path / "video.mp4", None, 0, "", video_seconds=1.0)
    assert problem(file_source(path)) == "has no audio stream (video only?)"
    with pytest.raises(InputError, match="no audio stream"):
        probe(file_source(path))


def test_zero_length_audio(tmp_path: Path) -> None:
    path = encode(tmp_path / "nothing.flac", np.zeros((1, 0)), 44100, "flac")
    assert problem(file_source(path)) == "contains no audio (0 samples)"
    assert problem(AudioSource("header-only.wav", data=wav_bytes(1, 44100))) == "contains no audio (0 samples)"


def test_absurd_stream_parameters() -> None:
    no_channels = AudioSource("no-channels.wav", data=wav_bytes(0, 44100, bytes(100)))
    assert problem(no_channels) == "audio stream claims 0 channels"
    assert "1 Hz is outside" in problem(AudioSource("1hz.wav", data=wav_bytes(1, 1, bytes(100))))
    problem(AudioSource("0hz.wav", data=wav_bytes(1, 0, bytes(100))))  # FFmpeg refuses it; any InputError will do


def test_playlists_cannot_reach_other_files(tmp_path: Path) -> None:
    """An HLS playlist would make FFmpeg read the files it names: the decoder refuses to open anything else."""
    encode(tmp_path / "segment.ts", tone(1.0, 48000), 48000, "mp2", format="mpegts")
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{tmp_path / 'segment.ts'}\n#EXT-X-ENDLIST\n")
    assert "playlists are not supported" in problem(file_source(playlist))


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path, audio_dir: Path) -> None:
    (tmp_path / "empty.wav").touch()
    sources = [file_source(audio_dir / ROBIN), file_source(tmp_path / "empty.wav"), file_source(audio_dir / ROBIN)]
    results = []
    for source in sources:
        try:
            results.append(len(load_audio(source)))
        except InputError as error:
            results.append(str(error))
    assert results == [86357, "empty.wav: file is empty (0 bytes)", 86357]


# Memory ------------------------------------------------------------------------------------------------------------


def test_a_long_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    """20 minutes (38.4 M samples at 32 kHz, 154 MB as float32) decode in 60 s chunks; at no time is much more
    than a chunk or two held (numpy's allocations are traced by tracemalloc)."""
    minutes = 20
    path = encode(tmp_path / "long.flac", tone(minutes * 60, 8000, freq=300), 8000, "flac")
    chunk_samples = 60 * SAMPLE_RATE
    sizes = []
    tracemalloc.start()
    try:
        for chunk in stream_audio(file_source(path), chunk_seconds=60.0):
            sizes.append(len(chunk))
            del chunk
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sizes == [chunk_samples] * minutes
    assert peak < 5 * chunk_samples * 4, f"peak {peak / 2**20:.1f} MiB"
