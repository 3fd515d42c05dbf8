"""In-memory inputs (``audioclas.inputs.memory``): bytes, file objects and arrays; one bad input in a batch does
not stop the others; an ``AudioSource`` holds exactly one payload."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from expand import ROBIN, ROBIN_SAMPLES, expand

from audioclas.audio import load_audio
from audioclas.errors import InputError
from audioclas.inputs import AudioSource, InputLimits, open_sources

pytestmark = pytest.mark.unit


def test_bytes_file_objects_and_arrays(tmp_path: Path, audio_dir: Path, robin_bytes: bytes) -> None:
    waveform = load_audio(AudioSource("robin", path=audio_dir / ROBIN))
    with open(audio_dir / ROBIN, "rb") as file:
        results = expand([robin_bytes, bytearray(robin_bytes), io.BytesIO(robin_bytes), file, (waveform, 32000)])
    names = ["<bytes>", "<bytes>", "<file>", str(audio_dir / ROBIN), "<array>"]
    assert results == [(name, "ok") for name in names]
    (tmp_path / "a.txt").write_text("text")
    with open(tmp_path / "a.txt") as text:
        results = expand([text, io.BytesIO(robin_bytes), 42], InputLimits(max_download_bytes=100))
    assert results == [
        (str(tmp_path / "a.txt"), "is a text stream; open the file in binary mode ('rb')"),
        ("<file>", "larger than the limit of 100 bytes"),
        ("42", "unsupported input type int"),
    ]


def test_one_bad_input_does_not_stop_the_others(tmp_path: Path, audio_dir: Path) -> None:
    (tmp_path / "empty.wav").touch()
    shutil.copy(audio_dir / ROBIN, tmp_path / "robin.ogg")
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04junk")
    inputs = [tmp_path / "missing.wav", tmp_path / "robin.ogg", tmp_path / "junk.zip", "ftp://x/y.wav"]
    inputs.append(tmp_path / "robin.ogg")
    outcomes = []
    with open_sources(inputs) as sources:
        for item in sources:
            try:
                if isinstance(item, InputError):
                    raise item
                outcomes.append(len(load_audio(item)))
            except InputError as error:
                outcomes.append(str(error).split(": ", 1)[1])
        with pytest.raises(InputError, match=re.escape("empty.wav: file is empty")):
            load_audio(AudioSource(str(tmp_path / "empty.wav"), path=tmp_path / "empty.wav"))
    assert outcomes == [
        "no such file or directory",
        ROBIN_SAMPLES,
        "corrupt zip archive (File is not a zip file)",
        "only http and https URLs are supported, not ftp",
        ROBIN_SAMPLES,
    ]


def test_audio_source_holds_exactly_one_payload() -> None:
    with pytest.raises(ValueError):
        AudioSource("x")
    with pytest.raises(ValueError):
        AudioSource("x", path=Path("a"), data=b"b")
    with pytest.raises(ValueError):
        AudioSource("x", array=np.zeros(3))
