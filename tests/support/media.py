"""Make small media files for tests by encoding waveforms with PyAV (the same FFmpeg that decodes them)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

LAYOUTS = {1: "mono", 2: "stereo"}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A float32 sine of shape (channels, N); channel c has amplitude 0.5 / (c + 1), so a downmix is not trivial."""
    t = np.arange(round(seconds * rate)) / rate
    waves = [0.5 / (c + 1) * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.stack(waves).astype(np.float32)


def encode(
    path: Path,
    wave: np.ndarray | None,
    rate: int,
    codec: str,
    *,
    format: str | None = None,
    bit_rate: int | None = None,
    video_seconds: float = 0.0,
) -> Path:
    """Write ``wave`` (float32, (channels, N) or (N,)) as ``codec`` into ``path``, optionally with a tiny video track.

    ``wave=None`` writes a video-only file. ``video_seconds`` > 0 adds that much 16x16 mpeg4 video at 10 fps.
    PyAV converts the sample format and frame size to what the encoder needs.
    """
    with av.open(str(path), "w", format=format) as container:
        audio = video = None
        if wave is not None:
            wave = np.atleast_2d(np.asarray(wave, np.float32))
            if codec == "vorbis" and len(wave) == 1:  # FFmpeg's Vorbis encoder only writes stereo
                wave = np.concatenate([wave, wave])
            stream_rate = 48000 if codec == "libopus" and rate not in OPUS_RATES else rate  # PyAV resamples the frames
            audio = container.add_stream(codec, rate=stream_rate, layout=LAYOUTS[wave.shape[0]])
            if bit_rate:
                audio.bit_rate = bit_rate
            if codec == "vorbis":  # FFmpeg's own Vorbis encoder is marked experimental
                audio.codec_context.options = {"strict": "experimental"}
        if video_seconds > 0:
            video = container.add_stream("mpeg4", rate=10)
            video.width = video.height = 16
            video.pix_fmt = "yuv420p"
        if audio is not None:
            for start in range(0, wave.shape[1], 4096):
                block = np.ascontiguousarray(wave[:, start : start + 4096])
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=audio.layout.name)
                frame.rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
        if video is not None:
            gray = np.full((16, 16, 3), 128, np.uint8)
            for index in range(round(video_seconds * 10)):
                frame = av.VideoFrame.from_ndarray(gray, format="rgb24")
                frame.pts = index
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
    return path
