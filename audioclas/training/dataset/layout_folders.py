"""The folder-per-class layout: ``ROOT/CLASS/**/file.wav``, or ``ROOT/train/CLASS/…`` with optional ``ROOT/val/``
and ``ROOT/test/`` beside it. Class names are the folder names, sorted."""

from __future__ import annotations

from pathlib import Path

from audioclas.inputs.local import walk_audio
from audioclas.inputs.rules import is_hidden
from audioclas.training.dataset.base import MAX_CLASSES, OUTSIDE, SPLIT_ALIASES, Dataset, Example, Policy, Problem


def _subfolders(folder: Path, policy: Policy, problems: list[Problem], root: Path) -> list[Path]:
    """The visible subfolders of ``folder``; one that links outside the allowed roots is a problem, not listed."""
    found = sorted(path for path in folder.iterdir() if path.is_dir() and not is_hidden(path.name))
    for path in found:
        if not policy.allows(path):
            problems.append(Problem(str(path.relative_to(root)), OUTSIDE))
    return [path for path in found if policy.allows(path)]


def read_folders(root: Path, policy: Policy) -> tuple[Dataset, list[Problem]]:
    problems: list[Problem] = []
    top = _subfolders(root, policy, problems, root)
    split_dirs = {SPLIT_ALIASES[d.name.lower()]: d for d in top if d.name.lower() in SPLIT_ALIASES}
    split_given = "train" in split_dirs
    if not split_given:
        split_dirs = {"train": root}
    class_dirs = {
        split: {d.name: d for d in (_subfolders(folder, policy, problems, root) if split_given else top)}
        for split, folder in split_dirs.items()
    }
    classes = sorted(class_dirs["train"])
    if not classes:
        problems.append(
            Problem(
                str(split_dirs["train"]), "no class folders: put each class's audio in a folder named after the class"
            )
        )
    index = {name: number for number, name in enumerate(classes)}
    splits: dict[str, list[Example]] = {}
    for split, folders in class_dirs.items():
        examples = splits[split] = []
        for name, folder in folders.items():
            files = sorted(walk_audio(folder))
            where = str(folder.relative_to(root))
            if name not in index:
                problems.append(Problem(where, f"class {name!r} has no folder in {split_dirs['train'].name}/"))
            elif not files:
                problems.append(Problem(where, "no audio files in this class folder"))
            else:
                examples += [Example(path, (index[name],), str(path.relative_to(root))) for path in files]
    if len(classes) > MAX_CLASSES:
        problems.append(Problem(str(root), f"more than {MAX_CLASSES} class folders"))
    return Dataset(root, "folders", classes, splits, split_given=split_given), problems
