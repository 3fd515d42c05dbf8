"""The ``audioclas`` command as a user runs it: a real process, real files, its output and exit status."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from media import encode
from no_torch import run_without_torch
from tiny_models import tiny_models

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"


def audioclas(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audioclas", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_table_for_people(audio_dir: Path) -> None:
    run = audioclas("predict", audio_dir / ROBIN, "--timeline")
    assert run.returncode == 0, run.stderr
    assert "Bird" in run.stdout and "Chirp, tweet" in run.stdout and "timeline" in run.stdout
    assert "Traceback" not in run.stderr


def test_json_schema_with_timeline(audio_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    run = audioclas(
        "predict", audio_dir / ROBIN, empty, audio_dir / "pibble.ogg", "-f", "json", "--timeline", "-k", "2"
    )
    assert run.returncode == 1  # one input failed
    robin, bad, pibble = json.loads(run.stdout)
    assert robin["input"].endswith(ROBIN) and robin["duration"] == pytest.approx(2.699, abs=1e-3)
    assert [x["name"] for x in robin["labels"]] == ["Bird", "Chirp, tweet"]
    assert robin["labels"][0] == {
        "index": 111,
        "id": "/m/015p6",
        "name": "Bird",
        "score": pytest.approx(0.83, abs=0.02),
    }
    assert bad == {"input": str(empty), "error": "file is empty (0 bytes)"}
    assert [w["start"] for w in pibble["windows"]] == [0, 10, 20, 30, 36.955]
    assert all(len(w["labels"]) == 2 for w in pibble["windows"])
    assert run.stderr.count("error:") == 1 and "empty.ogg" in run.stderr and "Traceback" not in run.stderr


def test_jsonl_and_csv_to_files(audio_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tags.jsonl"
    run = audioclas("predict", audio_dir / ROBIN, audio_dir / TRUMPET, "-f", "jsonl", "-o", out, "--no-progress")
    assert run.returncode == 0 and run.stdout == ""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["labels"][0]["name"] for x in lines] == ["Bird", "Trumpet"]

    out = tmp_path / "tags.csv"
    run = audioclas("predict", audio_dir / TRUMPET, "-f", "csv", "-o", out, "-k", "3", "--timeline")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))  # the clip's rows, then its one window's
    assert [r["label"] for r in rows] == ["Trumpet", "Music", "Brass instrument"] * 2
    assert [(r["start"], r["end"]) for r in rows] == [("", "")] * 3 + [("0.0", rows[0]["duration"])] * 3
    assert rows[3]["id"] == "/m/07gql" and rows[3]["rank"] == "1"


def test_failed_run_leaves_no_half_written_output(tmp_path: Path) -> None:
    out = tmp_path / "tags.json"
    run = audioclas("predict", tmp_path / "missing.wav", "-f", "json", "-o", out, "--labels", "Unicorn")
    assert run.returncode == 2 and "Unicorn" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_labels_dog_brings_the_sounds_below_it_and_specific_ranks_them_first(audio_dir: Path) -> None:
    run = audioclas("predict", audio_dir / "pibble.ogg", "--labels", "Dog", "--specific", "-k", "3", "-f", "json")
    assert run.returncode == 0, run.stderr
    assert [x["name"] for x in json.loads(run.stdout)[0]["labels"]] == ["Bark", "Howl", "Dog"]
    run = audioclas("predict", audio_dir / "pibble.ogg", "--labels", "Dgo")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        "error: unknown label(s) 'Dgo' (did you mean 'Dog'?): 'audioclas labels SEARCH' lists the names"
    ]


def test_every_input_bad_exits_1_with_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "noise.mp3").write_bytes(b"\x00\x01garbage" * 100)
    run = audioclas("predict", tmp_path / "missing.wav", tmp_path / "noise.mp3", "-f", "jsonl")
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "missing.wav" in errors[0] and "noise.mp3" in errors[1]
    assert [json.loads(line)["input"] for line in run.stdout.splitlines()] == [
        str(tmp_path / "missing.wav"),
        str(tmp_path / "noise.mp3"),
    ]


def test_labels_search_and_help() -> None:
    run = audioclas("labels", "dog", "--json")
    found = [{key: x[key] for key in ("index", "id", "name")} for x in json.loads(run.stdout)]  # and where it sits
    assert {"index": 74, "id": "/m/0bt9lr", "name": "Dog"} in found
    run = audioclas("predict", "--help")
    assert run.returncode == 0 and "--timeline" in run.stdout and "examples:" in run.stdout


TRAINING_STACK = ("torch", "sklearn", "PIL", "tensorboard")  # what only the [train] extra installs


def training_stack_loaded(argv: list[str] | None) -> list[str]:
    """The training stack's modules that running ``audioclas ARGV`` in a fresh interpreter loaded (``None``: only
    ``import audioclas``). The command must succeed."""
    code = (
        "import sys\n"
        "import audioclas\n"
        "from audioclas.cli import main\n"
        "try:\n"
        f"    status = main({argv!r}) if {argv!r} is not None else 0\n"
        "except SystemExit as done:\n"
        "    status = done.code\n"
        "assert status == 0, status\n"
        f"print('loaded:', *(name for name in {TRAINING_STACK!r} if name in sys.modules), file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    loaded = run.stderr.strip().splitlines()[-1].split()
    assert loaded[0] == "loaded:", run.stderr
    return loaded[1:]


@pytest.mark.parametrize(
    "argv",
    [
        None,
        ["--help"],
        ["--version"],
        ["predict", "--help"],
        ["embed", "--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["serve", "--help"],
        ["export", "--help"],
        ["labels", "dog"],
        ["models", "list"],
    ],
)
def test_commands_that_run_no_network_never_import_torch(argv: list[str] | None) -> None:
    """``import audioclas``, help, the version, the label list and the saved models answer without loading PyTorch
    or the training stack (the [train] extra, and about a second of start-up and teardown): the sub-commands
    import the network, the store and the training stack only when they run."""
    assert training_stack_loaded(argv) == []


def test_predict_and_embed_never_import_torch(audio_dir: Path, tmp_path: Path) -> None:
    """Tagging a real clip and embedding it into Parquet run on ONNX Runtime: no PyTorch, no training stack."""
    clip = str(audio_dir / ROBIN)
    assert training_stack_loaded(["predict", clip, "-f", "json", "-o", str(tmp_path / "tags.json")]) == []
    assert json.loads((tmp_path / "tags.json").read_text())[0]["labels"][0]["name"] == "Bird"
    assert training_stack_loaded(["embed", clip, "--out", str(tmp_path / "emb"), "--no-progress"]) == []
    assert list((tmp_path / "emb").rglob("*.parquet"))


def test_export_never_imports_torch(shared_dir: Path, tmp_path: Path) -> None:
    """Exporting the AudioSet tagger and a fine-tuned classifier (its backbone read from safetensors, its head
    from NumPy) builds the ONNX file without PyTorch or the training stack."""
    _, finetuned = tiny_models(shared_dir, tmp_path / "data")
    assert training_stack_loaded(["export", "-o", str(tmp_path / "audioset.onnx")]) == []
    assert training_stack_loaded(["export", "--model", finetuned, "-o", str(tmp_path / "tiny.onnx")]) == []
    assert (tmp_path / "audioset.onnx").is_file() and (tmp_path / "tiny.onnx").is_file()


@pytest.mark.unit
@pytest.mark.parametrize(("command", "what"), [("train", "training"), ("evaluate", "evaluation")])
def test_training_commands_without_torch_name_the_extra(command: str, what: str, tmp_path: Path) -> None:
    """On an install without the [train] extra (``import torch`` blocked in the subprocess): one line naming the
    extra to install, exit status 2, no traceback."""
    argv = [command, str(tmp_path)] if command == "train" else [command, "some-model", str(tmp_path)]
    run = run_without_torch(f"from audioclas.cli import main\nsys.exit(main({argv!r}))\n")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert (
        run.stderr.strip()
        == f"error: {what} needs the [train] extra (torch not installed): pip install 'audioclas[train]'"
    )


def test_undecodable_and_escape_sequence_names_are_shown_safely(audio_dir: Path, tmp_path: Path) -> None:
    """Member names with a byte that is not UTF-8 and a terminal escape sequence (clear screen, bell): shown with
    visible escapes on the screen and in the output file, and every member still gets its result."""
    archive = tmp_path / "names.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.GNU_FORMAT) as tar:  # names stored as raw bytes
        for name, data in [
            ("bad\udcff\x1b[2J.ogg", (audio_dir / ROBIN).read_bytes()),
            ("junk\udcfe\x07.wav", b"not audio" * 100),
            ("good.ogg", (audio_dir / TRUMPET).read_bytes()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "tags.json"
    run = audioclas("predict", archive, "-f", "json", "-o", out, "--no-progress")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr  # one member is not audio
    bad, junk, good = json.loads(out.read_text())
    assert (bad["input"], bad["labels"][0]["name"]) == (f"{archive}!bad\\xff\\x1b[2J.ogg", "Bird")
    assert junk["input"] == f"{archive}!junk\\xfe\\x07.wav" and "not a recognised" in junk["error"]
    assert (good["input"], good["labels"][0]["name"]) == (f"{archive}!good.ogg", "Trumpet")
    shown = audioclas("predict", archive)
    assert "bad\\xff\\x1b[2J.ogg" in shown.stdout and "junk\\xfe\\x07.wav" in shown.stderr
    for text in (run.stderr, shown.stdout, shown.stderr):
        assert "\x1b[2J" not in text and "\x07" not in text and "\ufffd" not in text


def test_non_finite_scores_give_an_error_entry_and_valid_json(audio_dir: Path, tmp_path: Path) -> None:
    huge = encode(
        tmp_path / "huge.wav", np.random.default_rng(0).standard_normal(16000) * 1e30, 16000, "pcm_f32le", format="wav"
    )
    run = audioclas("predict", huge, audio_dir / ROBIN, "-f", "json", "--no-progress")
    assert run.returncode == 1
    bad, robin = json.loads(run.stdout)
    assert bad["input"] == str(huge) and "NaN or infinite scores" in bad["error"] and "labels" not in bad
    assert robin["labels"][0]["name"] == "Bird"
    assert run.stderr.count("error:") == 1 and "huge.wav" in run.stderr


# ---------------------------------------------------------------- conventions: version, usage errors, pipes, disks


def test_version() -> None:
    from audioclas import __version__

    run = audioclas("--version")
    assert run.returncode == 0 and run.stdout == f"audioclas {__version__}\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--window", "0"], "window must be between"),
        (["--window", "100"], "window must be between"),
        (["--window", "nan"], "window must be between"),
        (["--hop", "0"], "hop must be between"),
        (["--hop", "20"], "hop must be between"),
        (["-f", "xml"], "invalid choice: 'xml'"),
        (["-k", "-3"], "top_k must be"),
        (["-t", "2"], "threshold must be between 0 and 1"),
        (["--batch-size", "0"], "batch size must be at least 1"),
        (["-o", "tags.tsv"], "cannot tell the format"),
        (["--top-k", "many"], "invalid int value"),
    ],
)
def test_usage_errors_exit_2_with_one_line(audio_dir: Path, tmp_path: Path, args: list[str], fragment: str) -> None:
    run = audioclas("predict", audio_dir / ROBIN, "--no-progress", *args, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.splitlines()) == 1 and fragment in run.stderr, run.stderr
    assert list(tmp_path.iterdir()) == []


def test_embed_and_bare_command_usage_errors(audio_dir: Path, tmp_path: Path) -> None:
    run = audioclas("embed", audio_dir / ROBIN, "--out", tmp_path / "out", "--hop", "0")
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "hop must be between" in run.stderr
    run = audioclas()
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "COMMAND" in run.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_a_reader_that_stops_early_gets_no_traceback(audio_dir: Path, fmt: str) -> None:
    """``audioclas predict … | head -1``: the pipe closes after one line; we stop quietly with 141, like SIGPIPE."""
    clips = sorted(audio_dir.glob("*.ogg"))
    process = subprocess.Popen(
        [sys.executable, "-m", "audioclas", "predict", *map(str, clips), "-f", fmt, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141
    assert stderr == "", stderr  # no BrokenPipeError traceback, no report of a thread killed at exit


def test_output_into_a_fifo_is_written_not_replaced(audio_dir: Path, tmp_path: Path) -> None:
    """A non-regular ``-o`` target (a FIFO, /dev/stdout, /dev/full) is written into: renaming a temporary file over
    it, as for a regular file, would destroy it."""
    fifo = tmp_path / "tags.jsonl"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    run = audioclas("predict", audio_dir / ROBIN, "-o", fifo, "--no-progress")
    reader.join(timeout=30)
    assert run.returncode == 0, run.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(received[0])["labels"][0]["name"] == "Bird"


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 256 KiB tmpfs filled to the last byte (mounting needs root: skipped otherwise)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs to fill up needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        try:
            with open(mount / "filler", "wb", buffering=0) as filler:
                while True:
                    filler.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line(audio_dir: Path, tmp_path: Path, full_disk: Path, shared_dir: Path) -> None:
    out = full_disk / "tags.json"
    run = audioclas("predict", audio_dir / ROBIN, "-o", out, "--no-progress")
    assert run.returncode == 2 and run.stderr == f"error: cannot write {out}: No space left on device\n"
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]

    data = tmp_path / "digits"
    for digit, name in ((0, "zero"), (1, "one")):
        (data / name).mkdir(parents=True)
        for index in range(10, 13):
            shutil.copy(shared_dir / "datasets" / "fsdd" / "recordings" / f"{digit}_george_{index}.wav", data / name)
    home = full_disk / "home"
    run = audioclas(
        "train",
        data,
        "--name",
        "tiny",
        "--epochs",
        "2",
        "--val-fraction",
        "0",
        "--no-progress",
        env={"AUDIOCLAS_HOME": str(home)},
    )
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith(": No space left on device") and str(home) in errors[0]
    assert "Traceback" not in run.stderr and "Exception" not in run.stderr
    assert not (home / "models").exists() or not list((home / "models").iterdir())


# ---------------------------------------------------------------- output formats and standard input


def test_format_follows_the_output_file_extension(audio_dir: Path, tmp_path: Path) -> None:
    for name, parse in (
        ("tags.csv", lambda text: next(iter(csv.DictReader(io.StringIO(text))))["label"]),
        ("tags.ndjson", lambda text: json.loads(text.splitlines()[0])["labels"][0]["name"]),
        ("tags.JSON", lambda text: json.loads(text)[0]["labels"][0]["name"]),
    ):
        run = audioclas("predict", audio_dir / ROBIN, "-o", tmp_path / name, "--no-progress")
        assert run.returncode == 0, run.stderr
        assert parse((tmp_path / name).read_text()) == "Bird", name
    run = audioclas("predict", audio_dir / ROBIN, "-o", tmp_path / "forced.csv", "-f", "json", "--no-progress")
    assert json.loads((tmp_path / "forced.csv").read_text())[0]["labels"][0]["name"] == "Bird"


def test_audio_from_standard_input(audio_dir: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "audioclas", "predict", "-", "-f", "json", "-k", "1"],
        input=(audio_dir / ROBIN).read_bytes(),
        capture_output=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [
        {
            "input": "<stdin>",
            "duration": 2.699,
            "labels": [{"index": 111, "id": "/m/015p6", "name": "Bird", "score": pytest.approx(0.83, abs=0.02)}],
        }
    ]
    run = subprocess.run(
        [sys.executable, "-m", "audioclas", "predict", "-", "-f", "jsonl"],
        input=b"",
        capture_output=True,
        text=False,
        timeout=300,
    )
    assert run.returncode == 1 and json.loads(run.stdout) == {"input": "<stdin>", "error": "file is empty (0 bytes)"}


def test_csv_lists_inputs_without_labels_and_keeps_clip_rows_beside_windows(audio_dir: Path, tmp_path: Path) -> None:
    run = audioclas(
        "predict", audio_dir / ROBIN, audio_dir / "pibble.ogg", "-f", "csv", "-t", "0.5", "--timeline", "--no-progress"
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    robin = [r for r in rows if r["input"].endswith(ROBIN)]
    birds = ["Bird", "Chirp, tweet", "Bird vocalization, bird call, bird song"]
    assert [(r["start"], r["label"]) for r in robin] == [("", x) for x in birds] + [("0.0", x) for x in birds]
    pibble = [r for r in rows if r["input"].endswith("pibble.ogg")]
    starts = [r["start"] for r in pibble]
    assert starts[0] == "" and sorted(set(starts) - {""}, key=float) == ["0.0", "10.0", "20.0", "30.0", "36.955"]
    quiet = [r for r in pibble if r["label"] == ""]  # windows with no label above 0.5 still have their row
    assert quiet and all(r["rank"] == r["score"] == r["error"] == "" for r in quiet)
    run = audioclas("predict", audio_dir / ROBIN, "-f", "csv", "-t", "0.99", "--no-progress")
    (only,) = csv.DictReader(io.StringIO(run.stdout))
    assert only["input"].endswith(ROBIN) and only["duration"] == "2.699" and only["label"] == only["score"] == ""
