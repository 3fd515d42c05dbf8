"""Inputs and checks shared by the batch-job tests (tests/batch/test_local.py, test_ray.py)."""

from __future__ import annotations

import collections
import json
import shutil
import zipfile
from pathlib import Path

import pyarrow as pa

from audioclas.batch import read_table

CLIPS = [  # real recordings from ../shared/audio, 2.7 to 25 s
    "198-209-0000.ogg",
    "3436-172162-0000.ogg",
    "456440__inspectorj__bird-whistling-robin-single-13.ogg",
    "5703-47212-0000.ogg",
    "admiralbob77_-_Choice_-_Drum-bass.ogg",
    "sorohanro_-_solo-trumpet-06.ogg",
]
CORRUPT = "corrupt.wav"
ARCHIVE = "pair.zip"  # two of the clips, as archive members


def make_inputs(folder: Path, audio_dir: Path, clips: list[str] = CLIPS) -> Path:
    """A folder of the real clips, a corrupt file and a zip holding the first two clips; returns the folder."""
    folder.mkdir(parents=True)
    for name in clips:
        shutil.copy(audio_dir / name, folder / name)
    (folder / CORRUPT).write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 20)
    with zipfile.ZipFile(folder / ARCHIVE, "w") as archive:
        for name in clips[:2]:
            archive.write(audio_dir / name, f"members/{name}")
    return folder


def expected_inputs(folder: Path, clips: list[str] = CLIPS) -> tuple[set[str], set[str]]:
    """(inputs that must have a clip row, inputs that must fail) for ``[folder, folder/pair.zip]``."""
    good = {str(folder / name) for name in clips} | {f"{folder / ARCHIVE}!members/{name}" for name in clips[:2]}
    return good, {str(folder / CORRUPT)}


def assert_exactly_once(out_dir: Path, good: set[str], failed: set[str]) -> None:
    """Every good input has exactly one clip row, every bad one exactly one failure row, and nothing else."""
    clips = collections.Counter(read_table(out_dir, "clips").column("input").to_pylist())
    failures = collections.Counter(read_table(out_dir, "failures").column("input").to_pylist())
    assert clips == dict.fromkeys(good, 1)
    assert failures == dict.fromkeys(failed, 1)


def tables(out_dir: Path) -> dict[str, pa.Table]:
    return {name: read_table(out_dir, name) for name in ("clips", "windows", "failures")}


def set_faults(path: Path, faults: dict[str, int]) -> None:
    """Arm the worker's test hook (``AUDIOCLAS_BATCH_TEST_FAULTS``): kill the process reading input X, n times."""
    path.write_text(json.dumps(faults), "utf-8")
