"""How the decoder reads: frames downmixed a block at a time, and a short probe of WAV files (tests/test_audio.py
holds what it decodes to and every way that can go wrong)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soxr
from media import encode, tone

import audioclas.audio
from audioclas.audio import SAMPLE_RATE, _decoded_blocks, load_audio, probe
from audioclas.inputs import AudioSource
from audioclas.resampling import RESAMPLE_BLOCK_SECONDS

pytestmark = pytest.mark.unit

STEREO = [  # (file name, codec): planar and interleaved, float and integer samples
    ("stereo.mp3", "libmp3lame"),  # fltp
    ("stereo.ogg", "vorbis"),  # fltp
    ("stereo.m4a", "aac"),  # fltp
    ("stereo.flac", "flac"),  # s16, interleaved
    ("stereo.wav", "pcm_s16le"),  # s16, interleaved
    ("stereo-f32.wav", "pcm_f32le"),  # flt, interleaved
]


def file_source(path: Path) -> AudioSource:
    return AudioSource(path.name, path=path)


def pyav_mean(path: Path) -> np.ndarray:
    """The file decoded frame by frame with PyAV's own conversion to planar float, the mean of the channels, and
    soxr HQ to 32 kHz in one call: what the decoder's blocks must add up to."""
    converter = av.AudioResampler(format="fltp")
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].codec_context.sample_rate
        frames = [out.to_ndarray() for frame in container.decode(audio=0) for out in converter.resample(frame)]
    return soxr.resample(np.concatenate(frames, axis=1).mean(axis=0), rate, SAMPLE_RATE, quality="HQ")


@pytest.mark.parametrize(("file_name", "codec"), STEREO)
def test_stereo_in_every_sample_layout_is_the_mean_of_its_channels(tmp_path: Path, file_name: str, codec: str) -> None:
    path = encode(tmp_path / file_name, tone(3.0, 44100, channels=2), 44100, codec)
    decoded, expected = load_audio(file_source(path)), pyav_mean(path)
    assert abs(len(decoded) - len(expected)) <= 1
    n = min(len(decoded), len(expected))
    np.testing.assert_allclose(decoded[:n], expected[:n], rtol=0, atol=1e-5)


def test_frames_are_downmixed_in_blocks_not_one_by_one(tmp_path: Path) -> None:
    """An mp3 frame is 26 ms: 10 s are 383 frames, and 10 blocks of a second (and a rest)."""
    path = encode(tmp_path / "ten.mp3", tone(10.0, 44100, channels=2), 44100, "libmp3lame")
    blocks = list(_decoded_blocks(file_source(path)))
    assert {rate for _, rate in blocks} == {44100}
    assert len(blocks) <= 11
    assert all(len(samples) >= RESAMPLE_BLOCK_SECONDS * 44100 for samples, _ in blocks[:-1])


@pytest.mark.parametrize("codec", ["pcm_s16le", "pcm_s24le", "pcm_f32le"])
def test_probing_a_wav_reads_only_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
    """FFmpeg's default probe reads 5 MB; a WAV needs its header only. The file is real; the wrapper only counts
    what is read before the first packet (probe reads no packet)."""
    path = encode(tmp_path / "long.wav", tone(30.0, 44100, channels=2), 44100, codec)  # 5 to 10 MB
    reads: list[int] = []
    real_open = audioclas.audio.open_input_file

    class Counting:
        def __init__(self, file) -> None:
            self.file = file

        def read(self, size: int = -1) -> bytes:
            data = self.file.read(size)
            reads.append(len(data))
            return data

        def __getattr__(self, name: str):
            return getattr(self.file, name)

    def counting_open(*args, **kwargs):
        manager = real_open(*args, **kwargs)

        class Manager:
            def __enter__(self):
                return Counting(manager.__enter__())

            def __exit__(self, *exc):
                return manager.__exit__(*exc)

        return Manager()

    monkeypatch.setattr(audioclas.audio, "open_input_file", counting_open)
    info = probe(file_source(path))
    assert (info.sample_rate, info.channels) == (44100, 2) and info.duration_seconds == pytest.approx(30.0)
    assert sum(reads) < 256 * 1024, f"read {sum(reads)} bytes to probe"  # PyAV reads in 32 KiB pieces
    assert len(load_audio(file_source(path))) == 30 * SAMPLE_RATE
