"""``audioclas train`` on annotated recordings: the annotation options reach the dataset from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from annotated import raven, recording

from audioclas.training import load_model


def audioclas(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audioclas", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )


def test_train_a_folder_of_annotated_recordings(shared_dir: Path, tmp_path: Path) -> None:
    fsdd = shared_dir / "datasets" / "fsdd"
    for number in range(3):
        digits = [(digit, 20 + 3 * number + k) for k, digit in enumerate([1, 0, 1])]
        raven(tmp_path / f"rec{number}.selections.txt", recording(fsdd, tmp_path / f"rec{number}.wav", digits), "Sound")
    run = audioclas("train", tmp_path, "--name", "words", "--no-progress")
    assert run.returncode == 1
    assert [line.strip() for line in run.stderr.splitlines()[1:]] == [
        f"{tmp_path}: the train split has no examples",
        *(
            f"rec{n}.selections.txt:1: header lacks column(s) a label column (Annotation, Label, Species, Class, "
            "Common Name, Sound Type, Call Type, Type)"
            for n in range(3)
        ),
    ]
    args = ["--label-column", "Sound", "--background", "--epochs", "20", "--no-progress", "--json"]
    run = audioclas("train", tmp_path, "--name", "words", *args)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["model"] == "words"
    assert load_model("words").classes == ["background", "one", "zero"]
