"""Whole archives extracted as folder trees (uploaded datasets): member paths kept, every file member taken,
and predict's refusals and bounds applied, plus the ones that matter once member names become paths."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from audioclas.errors import InputError, InputTooLarge
from audioclas.inputs import InputLimits
from audioclas.inputs.trees import extract_tree

pytestmark = pytest.mark.unit


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_every_file_keeps_its_path_and_hidden_ones_are_skipped(tmp_path: Path) -> None:
    members = {"data/classes.txt": b"a\n", "data/a/x.wav": b"RIFF", "data/.DS_Store": b"", "__MACOSX/data/._x": b""}
    out = tmp_path / "out"
    out.mkdir()
    assert extract_tree(write_zip(tmp_path / "d.zip", members), "d.zip", out, InputLimits()) == 2
    assert tree(out) == {"data/classes.txt": b"a\n", "data/a/x.wav": b"RIFF"}


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ([("a/x.wav", b"1"), ("a/x.wav", b"2")], "appears twice"),
        ([("a", b"1"), ("a/x.wav", b"2")], "clashes"),
        ([("a/../../x.wav", b"1")], "unsafe member path"),
        ([("a/b\x07.wav", b"1")], "control characters"),
        ([(f"{'n' * 300}.wav", b"1")], "over 255 bytes"),
    ],
)
def test_member_paths_that_cannot_be_files_refuse_the_archive(
    tmp_path: Path, members: list[tuple[str, bytes]], fragment: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=fragment):
        extract_tree(write_tar(tmp_path / "d.tar.gz", members), "d.tar.gz", out, InputLimits())
    assert not (tmp_path / "x.wav").exists()


def test_bounds_apply_to_every_member(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bomb = write_zip(tmp_path / "bomb.zip", {"notes.txt": bytes(8 * 2**20)})  # not audio, still counted
    limits = InputLimits(max_compression_ratio=10, ratio_check_bytes=2**20)
    with pytest.raises(InputTooLarge, match="zip bomb"):
        extract_tree(bomb, "bomb.zip", out, limits)


def test_only_zip_and_tar_archives(tmp_path: Path) -> None:
    (tmp_path / "clip.gz").write_bytes(gzip.compress(b"RIFF"))
    (tmp_path / "plain.wav").write_bytes(b"RIFF")
    for name in ("clip.gz", "plain.wav"):
        with pytest.raises(InputError, match="not a zip or tar archive"):
            extract_tree(tmp_path / name, name, tmp_path, InputLimits())
    empty = write_zip(tmp_path / "empty.zip", {"folder/": b""})
    with pytest.raises(InputError, match="holds no files"):
        extract_tree(empty, "empty.zip", tmp_path, InputLimits())
