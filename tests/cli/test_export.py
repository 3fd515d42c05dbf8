"""``audioclas export`` as a user runs it: a real process, the file it writes, its errors and exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from tiny_models import tiny_models


def audioclas(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audioclas", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_export_writes_once_and_replaces_only_when_forced(tmp_path: Path) -> None:
    out = tmp_path / "edge" / "audioset.onnx"  # the folder is made
    run = audioclas("export", "-o", out)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"wrote {out} (") and "527 classes" in run.stdout
    model = onnx.load(str(out))
    assert [value.name for value in model.graph.output] == ["scores", "clip_scores", "embedding"]
    written = out.read_bytes()

    out.write_bytes(b"the user's own file")
    again = audioclas("export", "-o", out)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == f"error: {out} exists: use --force to replace it\n"
    assert out.read_bytes() == b"the user's own file"

    forced = audioclas("export", "-o", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes() == written and sorted(os.listdir(out.parent)) == ["audioset.onnx"]


def test_export_of_a_model_by_name_and_by_folder(shared_dir: Path, tmp_path: Path) -> None:
    from audioclas.training.store import model_path

    frozen, finetuned = tiny_models(shared_dir, tmp_path / "data")
    by_name = audioclas("export", "--model", finetuned, "-o", tmp_path / "by_name.onnx")
    assert by_name.returncode == 0, by_name.stderr
    assert f"model {finetuned!r}, 2 classes" in by_name.stdout
    by_folder = audioclas("export", "--model", model_path(frozen), "-o", tmp_path / "by_folder.onnx")
    assert by_folder.returncode == 0, by_folder.stderr
    meta = {prop.key: prop.value for prop in onnx.load(str(tmp_path / "by_folder.onnx")).metadata_props}
    assert meta["model"] == frozen and meta["finetuned"] == "false"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "no-such-model"], "no-such-model"),
        (["--weights", "missing.pt"], "missing.pt"),
    ],
)
def test_errors_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], fragment: str) -> None:
    out = tmp_path / "x.onnx"
    run = audioclas("export", *args, "-o", out)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1 and fragment in run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_output_is_required() -> None:
    run = audioclas("export")
    assert run.returncode == 2 and "the following arguments are required: -o/--output" in run.stderr
