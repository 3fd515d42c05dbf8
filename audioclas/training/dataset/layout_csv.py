"""The CSV layout: a ``.csv`` file with rows ``path,label[,split]`` (a header row ``path,label,split`` is optional);
a multi-label row separates its labels with ``;``; ``split`` is train, val or test (empty means train)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from audioclas.training.dataset.base import (
    MAX_CLASS_NAME_CHARS,
    MAX_CLASSES,
    SPLIT_ALIASES,
    Dataset,
    Example,
    Policy,
    Problem,
    inside,
    read_text,
)


def read_csv(path: Path, policy: Policy) -> tuple[Dataset, list[Problem]]:
    problems: list[Problem] = []
    root = path.parent
    lines = read_text(path, problems, policy) or []
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    columns = {"path": 0, "label": 1, "split": 2}
    first = 0
    if rows and rows[0] and rows[0][0].strip().lower() == "path":
        header = [cell.strip().lower() for cell in rows[0]]
        missing = {"path", "label"} - set(header)
        if missing:
            problems.append(Problem(f"{path.name}:1", f"header lacks column(s) {', '.join(sorted(missing))}"))
        columns = {name: header.index(name) for name in ("path", "label", "split") if name in header}
        first = 1
    parsed: list[tuple[str, str, list[str], str]] = []  # where, relative path, label names, split
    for number, row in enumerate(rows[first:], first + 1):
        where = f"{path.name}:{number}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or len(row) > max(columns.values()) + 1:
            problems.append(Problem(where, f"expected 'path,label[,split]'{policy.shown(','.join(row), ', got ')}"))
            continue
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in columns.items()}
        names = [name.strip() for name in cells.get("label", "").split(";")]
        split = SPLIT_ALIASES.get(cells.get("split", "").lower() or "train")
        if not cells.get("path"):
            problems.append(Problem(where, "empty path"))
        elif not all(names):
            problems.append(Problem(where, f"empty label{policy.shown(cells.get('label', ''), ' in ')}"))
        elif any(len(name) > MAX_CLASS_NAME_CHARS for name in names):
            problems.append(Problem(where, f"label longer than {MAX_CLASS_NAME_CHARS} characters"))
        elif split is None:
            problems.append(Problem(where, f"split{policy.shown(cells['split'])} is not one of train, val, test"))
        else:
            parsed.append((where, cells["path"], names, split))
    classes = sorted({name for _, _, names, _ in parsed for name in names})
    if len(classes) > MAX_CLASSES:
        problems.append(Problem(path.name, f"more than {MAX_CLASSES} distinct labels"))
    index = {name: number for number, name in enumerate(classes)}
    splits: dict[str, list[Example]] = {"train": []}
    for where, relative, names, split in parsed:
        file = inside(root, relative)
        if file is None:
            problems.append(Problem(where, f"path{policy.shown(relative)} must be relative and stay inside {root}"))
        elif len(set(names)) != len(names):
            problems.append(Problem(where, f"a label is repeated{policy.shown(';'.join(names), ' in ')}"))
        else:
            splits.setdefault(split, []).append(Example(file, tuple(sorted(index[n] for n in names)), where))
    multilabel = any(len(example.labels) > 1 for examples in splits.values() for example in examples)
    return Dataset(root, "csv", classes, splits, multilabel=multilabel), problems
