"""The annotations layout: long recordings plus annotation files saying where each sound is (read by
``annotation_files``: Raven selection tables, Audacity label tracks, or a CSV ``file,start,end,label[,split]``).

Each annotation is one example, the segment of its recording (``Example.segment``), embedded as a clip of its own
and cached under the recording's content and the segment. An annotation overlapped by others for at least half of
its length also carries their labels (several rows with the same times make one example with all their labels), so
overlapping annotations make multi-label data. With ``background``, the stretches no annotation touches are cut
into pieces as long as the median annotation (0.5 to 10 s) and become examples of the class ``background`` in
single-label data, or examples with no label (explicit negatives for every class) in multi-label data.

Annotations are checked against the recordings: an unknown or ambiguous file, a negative or unparsable time, an end
not after the start, a segment past the end of its recording (beyond ``TOLERANCE``) are each a problem. Recordings
carry no split of their own unless the CSV gives one; ``with_holdout`` then holds out whole recordings, so segments
of one recording never sit in two splits (``checks`` refuses a recording in two splits).
"""

from __future__ import annotations

import bisect
import os
import statistics
from collections import defaultdict
from pathlib import Path

from audioclas.audio import SAMPLE_RATE, probe, stream_audio
from audioclas.errors import InputError
from audioclas.inputs import AudioSource
from audioclas.inputs.rules import is_audio_name, is_hidden
from audioclas.training.dataset.annotation_files import (
    AUDACITY_SUFFIX,
    RAVEN_SUFFIXES,
    Row,
    looks_like_label_track,
    read_annotation_csv,
    read_audacity,
    read_raven,
)
from audioclas.training.dataset.base import (
    MAX_CLASSES,
    MAX_EXAMPLES,
    OUTSIDE,
    Dataset,
    Example,
    Policy,
    Problem,
    inside,
)

BACKGROUND = "background"
TOLERANCE = 0.05  # seconds an annotation may run past the decoded end of its recording (rounding, encoder padding)
OVERLAP = 0.5  # an annotation takes the labels of those covering at least this fraction of it
Segment = tuple[str, float, float, frozenset[str]]  # where it was declared, start, end, labels


def has_annotation_files(folder: Path, policy: Policy) -> bool:
    """Whether a folder holds Raven tables or Audacity label tracks (at any depth)."""
    return bool(_annotation_files(folder, policy))


def read_annotations(
    path: Path, policy: Policy, label_column: str | None, background: bool, multilabel: bool | None
) -> tuple[Dataset, list[Problem]]:
    problems: list[Problem] = []
    root = path.parent if path.is_file() else path
    audio = [Path(folder, name) for folder, _, files in _walk(root) for name in files if is_audio_name(name)]
    if path.is_file():
        rows = read_annotation_csv(path, policy, problems)
    else:
        rows = _read_folder(root, label_column, policy, problems)
    by_recording: dict[Path, list[Row]] = defaultdict(list)
    for row in rows:
        found = _find(row, root, audio, policy)
        if isinstance(found, str):
            problems.append(Problem(row.where, found))
        else:
            by_recording[found].append(row)
    segments: dict[Path, list[Segment]] = {}
    splits_of: dict[Path, str] = {}
    for recording, found_rows in sorted(by_recording.items()):
        duration = _duration(recording)
        if isinstance(duration, str):
            problems.append(Problem(found_rows[0].where, f"{_shown(recording, root, policy)}{duration}"))
            continue
        kept = [row for row in found_rows if _in_recording(row, duration, problems)]
        segments[recording] = _examples(kept, duration)
        if background and kept:
            segments[recording] += _background(kept, duration, root, recording)
        splits_of[recording] = found_rows[0].split
        for row in found_rows:
            if row.split != found_rows[0].split:
                problems.append(
                    Problem(
                        row.where,
                        f"in two splits ({found_rows[0].split} and {row.split}): also at {found_rows[0].where}; "
                        "all annotations of a recording go to one split",
                    )
                )
    overlapping = any(len(labels) > 1 for cut in segments.values() for *_, labels in cut)
    is_multilabel = overlapping or bool(multilabel)  # forced single-label on overlaps: load_dataset reports it
    named = {label for cut in segments.values() for *_, labels in cut for label in labels}
    classes = sorted(named | ({BACKGROUND} if background and not is_multilabel else set()))
    if len(classes) > MAX_CLASSES:
        problems.append(Problem(str(root), f"more than {MAX_CLASSES} distinct labels"))
    index = {name: number for number, name in enumerate(classes)}
    splits: dict[str, list[Example]] = {"train": []}
    for recording, cut in segments.items():
        for where, start, end, labels in cut:
            numbers = tuple(sorted(index[name] for name in labels)) or (() if is_multilabel else (index[BACKGROUND],))
            example = Example(recording, numbers, where, segment=(start, end))
            splits.setdefault(splits_of[recording], []).append(example)
    if sum(len(examples) for examples in splits.values()) > MAX_EXAMPLES:
        problems.append(Problem(str(root), f"more than {MAX_EXAMPLES} examples"))
    given = path.is_file() and any(row.split != "train" for row in rows)
    dataset = Dataset(root, "annotations", classes, splits, multilabel=is_multilabel, split_given=given)
    if not rows and not problems:
        problems.append(Problem(str(path), "no annotations found"))
    return dataset, problems


def _walk(folder: Path) -> list[tuple[str, list[str], list[str]]]:
    """``os.walk`` of the visible folders and files, sorted, without following symlinked folders."""
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        found.append((current, dirs, sorted(f for f in files if not is_hidden(f))))
    return found


def _annotation_files(root: Path, policy: Policy) -> list[tuple[Path, str]]:
    """The annotation files under ``root`` and their kind ("raven" or "audacity"): by name, and ``rec.txt`` beside a
    recording ``rec.*`` when its first line is an Audacity label (so that notes or credits beside audio are not)."""
    found = []
    for folder, _, files in _walk(root):
        stems = {Path(name).stem for name in files if is_audio_name(name)}
        for name in files:
            lowered, file = name.lower(), Path(folder, name)
            if lowered.endswith(RAVEN_SUFFIXES):
                found.append((file, "raven"))
            elif lowered.endswith(AUDACITY_SUFFIX) or (
                lowered.endswith(".txt") and name[:-4] in stems and policy.allows(file) and looks_like_label_track(file)
            ):
                found.append((file, "audacity"))
    return found


def _read_folder(root: Path, label_column: str | None, policy: Policy, problems: list[Problem]) -> list[Row]:
    rows: list[Row] = []
    for file, kind in _annotation_files(root, policy):
        if kind == "raven":
            rows += read_raven(file, label_column, policy, problems)
        else:
            rows += read_audacity(file, policy, problems)
    return rows


def _find(row: Row, root: Path, audio: list[Path], policy: Policy) -> Path | str:
    """The recording an annotation row names, or why there is none."""
    if row.match == "path":
        file = inside(row.folder, row.file)
        if file is None:
            return f"file{policy.shown(row.file)} must be relative and stay inside {row.folder}"
        candidates = [file]
    elif row.match == "name":
        candidates = [path for path in audio if path.name == row.file]
    else:
        candidates = [path for path in audio if path.parent == row.folder and path.stem == row.file]
    if len(candidates) > 1:
        return f"several recordings match{policy.shown(row.file)}: rename them apart"
    if not candidates or not candidates[0].is_file():
        return f"no recording{policy.shown(row.file)} found in the data folder"
    return candidates[0] if policy.allows(candidates[0]) else OUTSIDE


def _shown(recording: Path, root: Path, policy: Policy) -> str:
    return f"{recording.relative_to(root).as_posix()}: " if policy.quote else ""


def _duration(recording: Path) -> float | str:
    """The recording's length in seconds (from its header, else by decoding it), or why it cannot be read."""
    source = AudioSource(str(recording), path=recording)
    try:
        duration = probe(source).duration_seconds
        if duration is None:
            duration = sum(len(chunk) for chunk in stream_audio(source)) / SAMPLE_RATE
    except InputError as error:
        return error.problem
    return duration


def _in_recording(row: Row, duration: float, problems: list[Problem]) -> bool:
    if row.end <= row.start:
        problems.append(Problem(row.where, f"ends ({row.end:g} s) before it starts ({row.start:g} s)"))
    elif row.start >= duration:
        problems.append(
            Problem(row.where, f"starts at {row.start:g} s, after the end of the recording ({duration:.3f} s)")
        )
    elif row.end > duration + TOLERANCE:
        problems.append(Problem(row.where, f"ends at {row.end:g} s, after the end of the recording ({duration:.3f} s)"))
    else:
        return True
    return False


def _examples(rows: list[Row], duration: float) -> list[Segment]:
    """One example per distinct segment, with the labels of the annotations covering at least half of it."""
    rows = sorted(rows, key=lambda row: (row.start, row.end))
    segments: dict[tuple[float, float], str] = {}
    for row in rows:
        segments.setdefault((row.start, min(row.end, round(duration, 3))), row.where)
    starts = [row.start for row in rows]
    longest = max((row.end - row.start for row in rows), default=0.0)
    examples = []
    for (start, end), where in segments.items():
        near = rows[bisect.bisect_left(starts, start - longest) : bisect.bisect_left(starts, end)]  # may overlap
        covering = frozenset(
            row.label for row in near if min(end, row.end) - max(start, row.start) >= OVERLAP * (end - start)
        )
        examples.append((where, start, end, covering))
    return examples


def _background(rows: list[Row], duration: float, root: Path, recording: Path) -> list[Segment]:
    """The stretches of the recording no annotation touches, cut into pieces of the median annotation's length."""
    length = min(max(statistics.median(row.end - row.start for row in rows), 0.5), 10.0)
    pieces: list[Segment] = []
    position = 0.0
    for start, end in [*sorted((row.start, row.end) for row in rows), (duration, duration)]:
        while start - position >= length / 2:
            piece_end = round(min(position + length, start), 3)
            name = f"{recording.relative_to(root).as_posix()}@{position:.3f}-{piece_end:.3f} (background)"
            pieces.append((name, round(position, 3), piece_end, frozenset()))
            position = piece_end
        position = max(position, end)
    return pieces
