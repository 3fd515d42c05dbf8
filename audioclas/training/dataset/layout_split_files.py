"""The split-files layout (the old system's): ``classes.txt`` (line N names label N), ``train.txt`` (required),
``val.txt`` and ``test.txt`` (optional), each line ``relative/path label_number``, and an optional ``info.txt``."""

from __future__ import annotations

from pathlib import Path

from audioclas.training.dataset.base import (
    MAX_CLASS_NAME_CHARS,
    MAX_CLASSES,
    MAX_LINE_CHARS,
    SPLITS,
    Dataset,
    Example,
    Policy,
    Problem,
    inside,
    read_text,
)

SPLIT_FILE_NAMES = ("classes.txt", "train.txt", "val.txt", "test.txt")  # any of them makes a folder this layout


def _read_classes(root: Path, problems: list[Problem], policy: Policy) -> list[str]:
    path = root / "classes.txt"
    if not path.is_file():
        problems.append(Problem("classes.txt", "missing: it must list the class names, line N naming label N"))
        return []
    lines = read_text(path, problems, policy) or []
    while lines and not lines[-1].strip():
        lines.pop()
    classes: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        name = line.strip()
        where = f"classes.txt:{number}"
        if not name:
            problems.append(Problem(where, "empty class name"))
        elif len(name) > MAX_CLASS_NAME_CHARS:
            problems.append(Problem(where, f"class name longer than {MAX_CLASS_NAME_CHARS} characters"))
        elif name in seen:
            problems.append(Problem(where, f"class{policy.shown(name)} is already named on line {seen[name]}"))
        seen.setdefault(name, number)
        classes.append(name)
    if len(classes) > MAX_CLASSES:
        problems.append(Problem("classes.txt", f"more than {MAX_CLASSES} classes"))
    return classes


def read_split_files(root: Path, policy: Policy) -> tuple[Dataset, list[Problem]]:
    problems: list[Problem] = []
    classes = _read_classes(root, problems, policy)
    if not (root / "train.txt").is_file():
        problems.append(Problem("train.txt", "missing: it must list the training files, lines 'relative/path label'"))
    splits: dict[str, list[Example]] = {}
    for split in SPLITS:
        name = f"{split}.txt"
        if not (root / name).is_file():
            continue
        examples = splits[split] = []
        for number, line in enumerate(read_text(root / name, problems, policy) or [], 1):
            where = f"{name}:{number}"
            if not line.strip():
                continue
            if len(line) > MAX_LINE_CHARS:
                problems.append(Problem(where, f"line longer than {MAX_LINE_CHARS} characters"))
                continue
            fields = line.strip().rsplit(maxsplit=1)
            if len(fields) != 2:
                got = policy.shown(line.strip(), ", got ")
                problems.append(Problem(where, f"expected 'relative/path label_number'{got}"))
                continue
            relative, label_text = fields
            try:
                label = int(label_text)
            except ValueError:
                problems.append(Problem(where, f"label{policy.shown(label_text)} is not an integer"))
                continue
            if classes and not 0 <= label < len(classes):
                shown = f" {label}" if policy.quote else ""
                problems.append(
                    Problem(
                        where,
                        f"label{shown} is not in 0..{len(classes) - 1} (classes.txt names {len(classes)} classes)",
                    )
                )
                continue
            path = inside(root, relative)
            if path is None:
                problems.append(Problem(where, f"path{policy.shown(relative)} must be relative and stay inside {root}"))
                continue
            examples.append(Example(path, (label,), where))
    info_lines = read_text(root / "info.txt", problems, policy) if (root / "info.txt").is_file() else []
    dataset = Dataset(root, "split-files", classes, splits, info="\n".join(info_lines or []).strip())
    return dataset, problems
