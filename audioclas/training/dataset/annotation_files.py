"""Reading annotation files into rows (file, start, end, label), each with its file and line for messages.

- **Raven** selection tables (``*.selections.txt``, also BirdNET's ``*.selection.table.txt``): tab-separated with a
  header; ``Begin Time (s)`` and ``End Time (s)``; the label from ``label_column`` or the first of
  ``LABEL_COLUMNS`` present; the recording from ``Begin File`` (its base name) or else the table's own name
  (``rec.selections.txt`` and Raven's ``rec.Table.1.selections.txt`` annotate ``rec.*``). With ``File Offset (s)``
  (a table over several files, as audioclas and Raven write it) the start within the file is the offset and the end
  the offset plus the selection's length. A selection Raven lists once per view (same ``Selection`` number) counts
  once.
- **Audacity** label tracks (``*.labels.txt``, or ``rec.txt`` beside ``rec.wav`` when its first line is a label):
  ``start<TAB>end<TAB>label``; the ``\\`` lines of a spectral selection are skipped, and a trailing score as
  audioclas writes it (``Dog 0.8123``) is not part of the label.
- **CSV**: a ``.csv`` with the header ``file,start,end,label`` (optional ``split``), paths relative to its folder.
"""

from __future__ import annotations

import csv
import io
import math
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from audioclas.training.dataset.base import MAX_CLASS_NAME_CHARS, SPLIT_ALIASES, Policy, Problem, read_text

RAVEN_SUFFIXES = (".selections.txt", ".selection.table.txt")
AUDACITY_SUFFIX = ".labels.txt"
# label columns, most specific first: Raven's default annotation column, then what annotators and BirdNET name it
LABEL_COLUMNS = ("Annotation", "Label", "Species", "Class", "Common Name", "Sound Type", "Call Type", "Type")
_RAVEN_TABLE = re.compile(r"\.Table\.\d+$", re.IGNORECASE)
_AUDIOCLAS_SCORE = re.compile(r" (?:0\.\d{4}|1\.0000)$")  # the score audioclas appends to an Audacity label


@dataclass(frozen=True)
class Row:
    where: str  # "rec.selections.txt:3"
    file: str  # as the annotation names it
    match: str  # how ``file`` is found: "path" (relative to ``folder``), "name" (anywhere in the data), "stem" (of
    # an audio file in ``folder``: the annotation file is named after it)
    folder: Path  # the annotation file's folder
    start: float
    end: float
    label: str
    split: str = "train"


def looks_like_label_track(path: Path) -> bool:
    """Whether the first line of a regular file reads ``start<TAB>end…``, as an Audacity label track's does."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return False
        with path.open("rb") as stream:
            first = stream.read(4096).split(b"\n", 1)[0].split(b"\t")
        return len(first) >= 2 and all(math.isfinite(float(cell)) for cell in first[:2])
    except (OSError, ValueError):
        return False


def recording_stem(name: str) -> str:
    """The stem of the recording an annotation file is named after: ``rec`` for ``rec.Table.1.selections.txt``."""
    lowered = name.lower()
    for suffix in (*RAVEN_SUFFIXES, AUDACITY_SUFFIX, ".txt"):
        if lowered.endswith(suffix):
            return _RAVEN_TABLE.sub("", name[: -len(suffix)])
    return name


def _seconds(text: str, column: str, where: str, policy: Policy, problems: list[Problem]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(Problem(where, f"{column}{policy.shown(text)} is not a number"))
        return None
    if not math.isfinite(value) or value < 0:
        problems.append(Problem(where, f"{column}{policy.shown(text)} is not a time in seconds (finite, at least 0)"))
        return None
    return round(value, 3)


def _label(text: str, where: str, problems: list[Problem]) -> str | None:
    label = text.strip()
    if not label:
        problems.append(Problem(where, "empty label"))
    elif len(label) > MAX_CLASS_NAME_CHARS:
        problems.append(Problem(where, f"label longer than {MAX_CLASS_NAME_CHARS} characters"))
    else:
        return label
    return None


def read_raven(path: Path, label_column: str | None, policy: Policy, problems: list[Problem]) -> list[Row]:
    lines = read_text(path, problems, policy)
    if not lines:
        if lines is not None:
            problems.append(Problem(path.name, "is empty: a Raven selection table starts with a header line"))
        return []
    header = [cell.strip() for cell in lines[0].split("\t")]
    wanted = [label_column] if label_column else list(LABEL_COLUMNS)
    label_at = next((header.index(name) for name in wanted if name in header), None)
    missing = [name for name in ("Begin Time (s)", "End Time (s)") if name not in header]
    if label_at is None:
        missing.append(label_column or f"a label column ({', '.join(LABEL_COLUMNS)})")
    if missing or label_at is None:
        problems.append(Problem(f"{path.name}:1", f"header lacks column(s) {', '.join(missing)}"))
        return []
    column = {
        name: header.index(name)
        for name in ("Begin Time (s)", "End Time (s)", "Begin File", "File Offset (s)", "Selection")
        if name in header
    }
    rows, seen = [], set()
    for number, line in enumerate(lines[1:], 2):
        where = f"{path.name}:{number}"
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < len(header):
            problems.append(Problem(where, f"has {len(cells)} columns, the header {len(header)}"))
            continue
        if "Selection" in column:
            selection = cells[column["Selection"]].strip()
            if selection in seen:  # the same selection in another view (Waveform 1, Spectrogram 1)
                continue
            seen.add(selection)
        begin = _seconds(cells[column["Begin Time (s)"]].strip(), "Begin Time (s)", where, policy, problems)
        end = _seconds(cells[column["End Time (s)"]].strip(), "End Time (s)", where, policy, problems)
        offset = begin
        if "File Offset (s)" in column:
            offset = _seconds(cells[column["File Offset (s)"]].strip(), "File Offset (s)", where, policy, problems)
        label = _label(cells[label_at], where, problems)
        file = cells[column["Begin File"]].strip() if "Begin File" in column else ""
        if begin is None or end is None or offset is None or label is None:
            continue
        name, match = (Path(file.replace("\\", "/")).name, "name") if file else (recording_stem(path.name), "stem")
        rows.append(Row(where, name, match, path.parent, offset, round(offset + end - begin, 3), label))
    return rows


def read_audacity(path: Path, policy: Policy, problems: list[Problem]) -> list[Row]:
    rows = []
    for number, line in enumerate(read_text(path, problems, policy) or [], 1):
        where = f"{path.name}:{number}"
        if not line.strip() or line.startswith("\\"):  # "\" lines: the frequency range of the label above
            continue
        cells = line.split("\t")
        if len(cells) < 2:
            problems.append(Problem(where, "expected 'start<TAB>end<TAB>label'"))
            continue
        start = _seconds(cells[0].strip(), "start", where, policy, problems)
        end = _seconds(cells[1].strip(), "end", where, policy, problems)
        label = _label(_AUDIOCLAS_SCORE.sub("", cells[2].strip()) if len(cells) > 2 else "", where, problems)
        if start is not None and end is not None and label is not None:
            rows.append(Row(where, recording_stem(path.name), "stem", path.parent, start, end, label))
    return rows


def is_annotation_csv(path: Path) -> bool:
    """Whether the first line of a CSV names start and end columns (this layout) rather than ``path,label``."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as stream:
            first = stream.readline(4096)
    except OSError:
        return False
    header = {cell.strip().lower() for cell in first.split(",")}
    return {"start", "end"} <= header


def read_annotation_csv(path: Path, policy: Policy, problems: list[Problem]) -> list[Row]:
    lines = read_text(path, problems, policy) or []
    table = list(csv.reader(io.StringIO("\n".join(lines))))
    header = [cell.strip().lower() for cell in table[0]] if table else []
    missing = [name for name in ("file", "start", "end", "label") if name not in header]
    if missing:
        problems.append(Problem(f"{path.name}:1", f"header lacks column(s) {', '.join(missing)}"))
        return []
    at = {name: header.index(name) for name in ("file", "start", "end", "label", "split") if name in header}
    rows = []
    for number, cells in enumerate(table[1:], 2):
        where = f"{path.name}:{number}"
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            problems.append(Problem(where, f"has {len(cells)} columns, the header {len(header)}"))
            continue
        start = _seconds(cells[at["start"]].strip(), "start", where, policy, problems)
        end = _seconds(cells[at["end"]].strip(), "end", where, policy, problems)
        label = _label(cells[at["label"]], where, problems)
        split_text = cells[at["split"]].strip().lower() if "split" in at else ""
        split = SPLIT_ALIASES.get(split_text or "train")
        if split is None:
            problems.append(Problem(where, f"split{policy.shown(split_text)} is not one of train, val, test"))
        elif not cells[at["file"]].strip():
            problems.append(Problem(where, "empty file"))
        elif start is not None and end is not None and label is not None:
            rows.append(Row(where, cells[at["file"]].strip(), "path", path.parent, start, end, label, split))
    return rows
