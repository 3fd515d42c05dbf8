"""Dataset layouts and validation on real FSDD recordings: every problem is reported, with file and line."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from audioclas.training.dataset import OUTSIDE, DatasetError, load_dataset, stratified_holdout, with_holdout

pytestmark = pytest.mark.unit

DIGITS = ["zero", "one", "two"]


@pytest.fixture(scope="module")
def fsdd(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "fsdd"


def recordings(fsdd: Path, digit: int, count: int, speaker: str = "george") -> list[Path]:
    return [fsdd / "recordings" / f"{digit}_{speaker}_{index}.wav" for index in range(count)]


def split_files(root: Path, fsdd: Path, per_class: int = 4, classes: list[str] = DIGITS) -> Path:
    """A split-file dataset: recordings copied under root/audio/, 3 per class in train, 1 in test."""
    (root / "audio").mkdir(parents=True)
    train, test = [], []
    for label in range(len(classes)):
        for number, source in enumerate(recordings(fsdd, label, per_class)):
            shutil.copy(source, root / "audio" / source.name)
            (test if number == 0 else train).append(f"audio/{source.name} {label}")
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "test.txt").write_text("\n".join(test) + "\n")
    return root


def problems_of(path: Path, **options) -> list[str]:
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, **options)
    assert str(caught.value).count("\n") == len(caught.value.problems)  # the message lists them all
    return [str(problem) for problem in caught.value.problems]


def test_the_fsdd_split_files(fsdd: Path) -> None:
    dataset = load_dataset(fsdd)
    assert dataset.layout == "split-files"
    assert dataset.classes[:3] == DIGITS and len(dataset.classes) == 10
    assert (len(dataset.splits["train"]), len(dataset.splits["test"])) == (2700, 300)
    assert dataset.counts()["test"] == [30] * 10
    assert all(len(example.sha256) == 64 for example in dataset.examples())


def test_every_problem_of_a_split_file_dataset_is_listed(tmp_path: Path, fsdd: Path) -> None:
    root = split_files(tmp_path / "data", fsdd)
    (root / "classes.txt").write_text("zero\none\ntwo\none\n\nthree\n")
    (root / "audio" / "empty.wav").write_bytes(b"")
    (root / "audio" / "folder.wav").mkdir()
    shutil.copy(root / "audio" / "0_george_1.wav", root / "audio" / "copy_of_0_george_1.wav")
    train = (root / "train.txt").read_text().splitlines()
    train += [
        "audio/0_george_1.wav 0",  # line 10: listed twice
        "audio/missing.wav 1",  # 11
        "audio/0_george_2.wav two",  # 12
        "audio/0_george_3.wav 9",  # 13
        "audio/empty.wav 1",  # 14
        "../outside.wav 1",  # 15
        "/etc/passwd 1",  # 16
        "just-a-path",  # 17
        "audio/folder.wav 2",  # 18
    ]
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "test.txt").write_text(
        (root / "test.txt").read_text() + "audio/1_george_1.wav 1\naudio/copy_of_0_george_1.wav 0\n"
    )
    found = problems_of(root)
    expected = [
        "classes.txt: class 5 ('three') has no examples in the train split",
        "classes.txt:4: class 'one' is already named on line 2",
        "classes.txt:5: empty class name",
        "test.txt:4: in two splits (train and test): also at train.txt:4",
        "test.txt:5: same audio as train.txt:1 (train split)",
        "train.txt:10: listed twice: also at train.txt:1",
        "train.txt:11: ",
        "train.txt:12: label 'two' is not an integer",
        "train.txt:13: label 9 is not in 0..5 (classes.txt names 6 classes)",
        "train.txt:14: ",
        "train.txt:15: path '../outside.wav' must be relative and stay inside",
        "train.txt:16: path '/etc/passwd' must be relative and stay inside",
        "train.txt:17: expected 'relative/path label_number', got 'just-a-path'",
        "train.txt:18: ",
    ]
    assert len(found) == len(expected), "\n".join(found)
    for problem, start in zip(found, expected):
        assert problem.startswith(start), (problem, start)
    assert "missing.wav: file not found" in found[6]
    assert "empty.wav: file is empty (0 bytes)" in found[9]
    assert "folder.wav: not a file" in found[13]


def test_a_split_file_dataset_without_classes_or_train(tmp_path: Path, fsdd: Path) -> None:
    root = split_files(tmp_path / "data", fsdd)
    (root / "classes.txt").unlink()
    (root / "train.txt").unlink()
    found = problems_of(root)
    assert found[0].startswith("classes.txt: missing") and found[1].startswith("train.txt: missing"), found


def test_folder_per_class(tmp_path: Path, fsdd: Path) -> None:
    for label, name in enumerate(DIGITS):
        (tmp_path / name).mkdir()
        for source in recordings(fsdd, label, 3):
            shutil.copy(source, tmp_path / name / source.name)
    (tmp_path / "notes.txt").write_text("not audio, ignored")
    dataset = load_dataset(tmp_path)
    assert dataset.layout == "folders" and dataset.classes == sorted(DIGITS) and not dataset.split_given
    assert Counter(dataset.classes[e.label] for e in dataset.splits["train"]) == {name: 3 for name in DIGITS}
    (tmp_path / "three").mkdir()
    assert problems_of(tmp_path) == ["three: no audio files in this class folder"]


def test_folder_per_class_with_split_folders(tmp_path: Path, fsdd: Path) -> None:
    for split, indices in (("train", range(1, 4)), ("test", range(0, 1))):
        for label, name in enumerate(DIGITS[:2]):
            (tmp_path / split / name).mkdir(parents=True)
            for index in indices:
                source = fsdd / "recordings" / f"{label}_george_{index}.wav"
                shutil.copy(source, tmp_path / split / name / source.name)
    dataset = load_dataset(tmp_path)
    assert dataset.split_given and {s: len(e) for s, e in dataset.splits.items()} == {"train": 6, "test": 2}
    (tmp_path / "test" / "two").mkdir()
    shutil.copy(fsdd / "recordings" / "2_george_0.wav", tmp_path / "test" / "two")
    assert problems_of(tmp_path) == ["test/two: class 'two' has no folder in train/"]


def test_csv_with_multiple_labels(tmp_path: Path, fsdd: Path) -> None:
    for source in recordings(fsdd, 0, 3) + recordings(fsdd, 1, 3):
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "data.csv").write_text(
        "path,label,split\n"
        "0_george_0.wav,zero,train\n"
        "0_george_1.wav,zero;speech,train\n"
        "1_george_0.wav,one;speech,\n"
        '"1_george_1.wav",one,val\n'
        "0_george_2.wav,zero,test\n"
        "1_george_2.wav,one;speech,test\n"
    )
    dataset = load_dataset(tmp_path / "data.csv")
    assert dataset.layout == "csv" and dataset.multilabel
    assert dataset.classes == ["one", "speech", "zero"]
    assert {s: len(e) for s, e in dataset.splits.items()} == {"train": 3, "val": 1, "test": 2}
    assert dataset.splits["train"][1].labels == (1, 2)


def test_every_problem_of_a_csv(tmp_path: Path, fsdd: Path) -> None:
    for source in recordings(fsdd, 0, 2):
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "data.csv").write_text(
        "0_george_0.wav,zero\n"
        "0_george_1.wav,zero;;one\n"  # 2
        "0_george_1.wav,zero,holdout\n"  # 3
        "0_george_0.wav,one;one\n"  # 4
        "only-one-column\n"  # 5
        "nothing.wav,one\n"  # 6
        "../up.wav,one\n"  # 7
    )
    found = problems_of(tmp_path / "data.csv")
    assert [problem.split(": ")[0] for problem in found] == [f"data.csv:{n}" for n in (2, 3, 4, 5, 6, 7)]
    assert "empty label" in found[0] and "split 'holdout' is not one of" in found[1]
    assert "a label is repeated" in found[2] and "expected 'path,label[,split]'" in found[3]
    assert "file not found" in found[4] and "must be relative" in found[5]
    assert problems_of(tmp_path / "data.csv", multilabel=False)  # asking for single-label on rows with two labels


def test_single_label_csv_refuses_forced_single_label_on_multi_label_rows(tmp_path: Path, fsdd: Path) -> None:
    for source in recordings(fsdd, 0, 2):
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "data.csv").write_text("0_george_0.wav,zero;speech\n0_george_1.wav,zero\n")
    found = problems_of(tmp_path / "data.csv", multilabel=False)
    assert any("single-label training was asked for" in problem for problem in found)


def test_not_a_dataset(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nowhere")[0].endswith("does not exist")
    (tmp_path / "file.txt").write_text("x")
    assert "not a dataset" in problems_of(tmp_path / "file.txt")[0]
    (tmp_path / "empty").mkdir()
    assert "no class folders" in problems_of(tmp_path / "empty")[0]


def test_stratified_holdout_is_seeded_and_stratified(fsdd: Path) -> None:
    dataset = load_dataset(fsdd)
    train, val = stratified_holdout(dataset.splits["train"], 0.1, seed=7)
    assert len(train) + len(val) == 2700 and not {e.path for e in train} & {e.path for e in val}
    assert Counter(e.label for e in val) == {label: 27 for label in range(10)}
    _again, val_again = stratified_holdout(list(reversed(dataset.splits["train"])), 0.1, seed=7)
    assert [e.path for e in val_again] == [e.path for e in val]  # independent of the input order
    _, other = stratified_holdout(dataset.splits["train"], 0.1, seed=8)
    assert {e.path for e in other} != {e.path for e in val}
    assert with_holdout(dataset, 0.1, 7).splits["val"] == val
    tiny = [*[e for e in dataset.splits["train"] if e.label in (0, 1)][:2], dataset.splits["train"][-1]]
    kept, _held = stratified_holdout(tiny, 0.5, 0)  # a class of one example stays in train
    assert dataset.splits["train"][-1] in kept


def test_content_hashes_are_remembered_until_a_file_changes(tmp_path: Path, fsdd: Path, monkeypatch) -> None:
    import hashlib
    import os

    from audioclas.training.dataset import checks as dataset_checks

    root = split_files(tmp_path / "data", fsdd)
    first = {example.path.name: example.sha256 for example in load_dataset(root).examples()}
    reads: list[Path] = []
    real_sha256 = dataset_checks.file_sha256
    monkeypatch.setattr(dataset_checks, "file_sha256", lambda path: (reads.append(path), real_sha256(path))[1])  # a spy

    assert {example.path.name: example.sha256 for example in load_dataset(root).examples()} == first
    assert reads == []  # nothing read again

    changed = root / "audio" / "1_george_2.wav"
    data = bytearray(changed.read_bytes())
    data[-1] ^= 0xFF  # same size, other content, and a new modification time
    changed.write_bytes(bytes(data))
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 1_000_000))
    again = {example.path.name: example.sha256 for example in load_dataset(root).examples()}
    assert reads == [changed]
    assert again["1_george_2.wav"] == hashlib.sha256(bytes(data)).hexdigest() != first["1_george_2.wav"]
    assert {name: digest for name, digest in again.items() if name != changed.name} == {
        name: digest for name, digest in first.items() if name != changed.name
    }


def test_an_unusable_hash_memo_only_costs_time(tmp_path: Path, fsdd: Path, monkeypatch) -> None:
    root = split_files(tmp_path / "data", fsdd)
    expected = {example.path.name: example.sha256 for example in load_dataset(root).examples()}
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("AUDIOCLAS_CACHE", str(blocked))
    assert {example.path.name: example.sha256 for example in load_dataset(root).examples()} == expected


def test_roots_refuse_every_file_that_links_outside_them(tmp_path: Path, fsdd: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    split_files(root / "data", fsdd)
    outside.mkdir()
    shutil.copy(fsdd / "recordings" / "2_george_5.wav", outside / "secret.wav")
    (root / "data" / "audio" / "link.wav").symlink_to(outside / "secret.wav")
    (root / "data" / "train.txt").write_text((root / "data" / "train.txt").read_text() + "audio/link.wav 1\n")
    assert len(load_dataset(root / "data").splits["train"]) == 10  # without roots (the CLI) the link is followed
    found = problems_of(root / "data", roots=[root])
    assert len(found) == 1 and found[0].startswith("train.txt:10: ") and found[0].endswith(OUTSIDE), found
    assert problems_of(root / "data", roots=[root], quote=False) == [f"train.txt:10: {OUTSIDE}"]

    (root / "data" / "info.txt").symlink_to(outside / "secret.wav")  # a text file of the layout, through a link
    assert "info.txt: is outside the folders allowed" in problems_of(root / "data", roots=[root])[0]
    assert problems_of(root / "data", roots=[outside]) == [
        f"{root / 'data'}: is outside the folders allowed for training data"
    ]

    folders = root / "folders"  # folder per class: a linked class folder is refused without being listed
    (folders / "zero").mkdir(parents=True)
    shutil.copy(fsdd / "recordings" / "0_george_0.wav", folders / "zero")
    shutil.copy(fsdd / "recordings" / "0_george_1.wav", folders / "zero")
    (folders / "one").symlink_to(outside, target_is_directory=True)
    (folders / "zero" / "2.wav").symlink_to(outside / "secret.wav")
    found = problems_of(folders, roots=[root])
    assert f"one: {OUTSIDE}" in found and "secret" not in "".join(found), found
    assert any(problem.startswith("zero/2.wav: ") and problem.endswith(OUTSIDE) for problem in found), found


def test_without_quoting_no_text_of_the_files_is_shown(tmp_path: Path) -> None:
    secrets = "user,hunter2\nroot:x:0:0:root:/root:/bin/bash\nadmin,,pass;pass\nkey,value,holdout\n"
    (tmp_path / "secrets.csv").write_text(secrets)
    quoted = "\n".join(problems_of(tmp_path / "secrets.csv"))
    assert "root:x" in quoted and "holdout" in quoted  # the CLI shows its owner the offending lines
    found = problems_of(tmp_path / "secrets.csv", quote=False)
    assert [problem.split(": ")[0] for problem in found] == [str(tmp_path)] + [f"secrets.csv:{n}" for n in range(1, 5)]
    words = {word for line in secrets.splitlines() for word in line.replace(";", ",").replace(":", ",").split(",")}
    shown = "\n".join(problems_of(tmp_path / "secrets.csv", quote=False))
    assert not {word for word in words if len(word) > 3 and word in shown} - {"root"}, shown  # tmp_path holds "root"

    split = tmp_path / "split"
    split.mkdir()
    (split / "classes.txt").write_text("password123\npassword123\n")
    (split / "train.txt").write_text("top secret line\nsecret.wav 1\nsecret.wav x9\n")
    shown = "\n".join(problems_of(split, quote=False))
    assert "secret" not in shown and "password" not in shown and "x9" not in shown, shown
    assert "train.txt:1: label is not an integer" in shown and "train.txt:2: file not found" in shown


def test_a_nul_byte_in_the_path_is_one_clear_problem(tmp_path: Path) -> None:
    assert problems_of(str(tmp_path / "data\0.csv")) == ["dataset: a path cannot contain a NUL byte"]


def test_datasets_follow_the_input_rules_of_tagging(tmp_path: Path, fsdd: Path) -> None:
    """One set of rules (``inputs.rules``) for tagging and training: a macOS ``__MACOSX`` folder is hidden, not a
    class; a path with a ``..`` part is refused even when it would come back inside the data."""
    folders = tmp_path / "folders"
    for label, name in enumerate(DIGITS):
        (folders / name).mkdir(parents=True)
        for source in recordings(fsdd, label, 2):
            shutil.copy(source, folders / name / source.name)
    (folders / "__MACOSX" / "zero").mkdir(parents=True)
    (folders / "__MACOSX" / "zero" / "._0_george_0.wav").write_bytes(b"\0\5\26\7 resource fork")
    assert load_dataset(folders).classes == sorted(DIGITS)

    root = split_files(tmp_path / "split", fsdd)
    (root / "audio" / "sub").mkdir()
    (root / "train.txt").write_text((root / "train.txt").read_text() + "audio/sub/../0_george_1.wav 0\n")
    (problem,) = problems_of(root)
    assert "train.txt:10:" in problem and "must be relative and stay inside" in problem
