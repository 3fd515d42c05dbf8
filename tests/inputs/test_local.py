"""Local inputs (``audioclas.inputs.local``): files, folders and globs, and only regular files ever opened."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from expand import expand, within

from audioclas.audio import load_audio
from audioclas.errors import InputError
from audioclas.inputs import AudioSource, InputLimits, open_sources

pytestmark = pytest.mark.unit


def test_a_file_given_explicitly_is_tried_whatever_its_extension(tmp_path: Path, robin_bytes: bytes) -> None:
    (tmp_path / "robin.data").write_bytes(robin_bytes)
    (tmp_path / "notes.txt").write_text("not audio")
    assert expand([str(tmp_path / "robin.data")]) == [(str(tmp_path / "robin.data"), "ok")]
    with open_sources(tmp_path / "notes.txt") as sources:  # a single input need not be in a list
        [source] = list(sources)
    with pytest.raises(InputError, match=re.escape("notes.txt: not a recognised audio or video format")):
        load_audio(source)


def test_missing_path() -> None:
    assert expand(["/no/such/file.wav"]) == [("/no/such/file.wav", "no such file or directory")]


def test_folder_is_recursive_sorted_and_audio_only(tmp_path: Path, robin_bytes: bytes) -> None:
    hidden = ["sub/.hidden.ogg", "__MACOSX/._b.ogg", ".git/e.ogg"]
    for name in ["b.ogg", "a.OGG", "sub/c.ogg", "sub/deeper/d.ogg", *hidden]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(robin_bytes)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "sub" / "cover.jpg").write_bytes(b"\xff\xd8")
    names = [name for name, status in expand([tmp_path]) if status == "ok"]
    assert names == [str(tmp_path / n) for n in ["a.OGG", "b.ogg", "sub/c.ogg", "sub/deeper/d.ogg"]]


def test_empty_folder_and_folder_without_audio(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    assert expand([tmp_path / "empty", tmp_path / "text"]) == [
        (str(tmp_path / "empty"), "no audio files in this folder"),
        (str(tmp_path / "text"), "no audio files in this folder"),
    ]


def test_folder_file_limit(tmp_path: Path, robin_bytes: bytes) -> None:
    for index in range(3):
        (tmp_path / f"{index}.ogg").write_bytes(robin_bytes)
    results = expand([tmp_path], InputLimits(max_folder_files=2))
    assert [status for _, status in results] == ["ok", "ok", "more than 2 audio files; the rest were skipped"]


def test_glob_patterns(tmp_path: Path, robin_bytes: bytes) -> None:
    for name in ["x1.ogg", "x2.ogg", "y.ogg", "deep/er/x3.ogg", "x4.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(robin_bytes)
    assert [n for n, _ in expand([f"{tmp_path}/x?.*"])] == [str(tmp_path / "x1.ogg"), str(tmp_path / "x2.ogg")]
    recursive = expand([f"{tmp_path}/**/x*"])
    assert [n for n, _ in recursive] == [str(tmp_path / n) for n in ["deep/er/x3.ogg", "x1.ogg", "x2.ogg"]]
    assert expand([f"{tmp_path}/[z]*.ogg"]) == [(f"{tmp_path}/[z]*.ogg", "no audio files match this pattern")]


def test_fifos_and_devices_are_refused_without_blocking(tmp_path: Path, robin_bytes: bytes) -> None:
    """Opening a FIFO waits for a writer and a device may never end: only regular files are ever opened, whether
    given by name, found in a folder, reached through a symlink, or passed as an AudioSource."""
    os.mkfifo(tmp_path / "pipe.ogg")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "folder" / "a-pipe.wav")
    (tmp_path / "folder" / "robin.ogg").write_bytes(robin_bytes)
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    inputs = [tmp_path / "pipe.ogg", "/dev/zero", tmp_path / "zero.wav", tmp_path / "folder"]
    assert within(10, lambda: expand(inputs)) == [
        (str(tmp_path / "pipe.ogg"), "not a regular file (a FIFO)"),
        ("/dev/zero", "not a regular file (a character device)"),
        (str(tmp_path / "zero.wav"), "not a regular file (a character device)"),
        (str(tmp_path / "folder" / "a-pipe.wav"), "not a regular file (a FIFO)"),
        (str(tmp_path / "folder" / "robin.ogg"), "ok"),
    ]
    with pytest.raises(InputError, match=r"pipe.ogg: not a regular file \(a FIFO\)$"):
        within(10, lambda: load_audio(AudioSource("pipe.ogg", path=tmp_path / "pipe.ogg")))
