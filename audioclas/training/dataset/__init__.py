"""Training datasets in three layouts, validated completely before any audio is decoded.

Layouts (``load_dataset`` picks by what it finds at the path):

- **split files** (the old system's layout): a folder with ``classes.txt`` (line N names label N),
  ``train.txt`` (required), ``val.txt``, ``test.txt`` (optional), each line ``relative/path label_number``,
  and an optional free-text ``info.txt``.
- **folder per class**: ``ROOT/CLASS/**/file.wav``; or ``ROOT/train/CLASS/…`` with optional
  ``ROOT/val/`` and ``ROOT/test/`` beside it. Class names are the folder names, sorted.
- **CSV**: a ``.csv`` file with rows ``path,label[,split]`` (a header row ``path,label,split`` is optional);
  a multi-label row separates its labels with ``;``; ``split`` is train, val or test (empty means train).
- **annotations**: a folder of recordings with Raven selection tables (``*.selections.txt``) or Audacity label
  tracks (``*.labels.txt``, or ``rec.txt`` beside ``rec.wav`` when its first line is a label), or a ``.csv`` whose
  header is ``file,start,end,label[,split]``: each annotation is an example cut from its recording (see
  ``layout_annotations``).

Paths are relative to the data folder (the CSV's folder) and may not leave it. Every problem found (missing,
empty or unreadable file, bad or unknown label, class without examples, a file in two splits, a file listed
twice, the same audio under two names in different splits) is collected with its file and line, and
``DatasetError`` reports them all at once.

For a caller who does not own the data (the service), ``load_dataset(..., roots=..., quote=False)`` refuses
every file that resolves (links followed) outside the given folders, and leaves the text of the dataset's
files out of its messages: a file that is not a dataset cannot be read back through them.

Each layout has its own reader (``layout_split_files``, ``layout_folders``, ``layout_csv``, ``layout_annotations``); ``checks`` holds the
file checks every layout gets, ``base`` the types they share; file names follow ``audioclas.inputs.rules``.
"""

from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from audioclas.training.dataset.annotation_files import is_annotation_csv
from audioclas.training.dataset.base import (
    OUTSIDE,
    SPLITS,
    Dataset,
    DatasetError,
    Example,
    Policy,
    Problem,
    path_problem,
)
from audioclas.training.dataset.checks import check_examples, problem_order
from audioclas.training.dataset.layout_annotations import has_annotation_files, read_annotations
from audioclas.training.dataset.layout_csv import read_csv
from audioclas.training.dataset.layout_folders import read_folders
from audioclas.training.dataset.layout_split_files import SPLIT_FILE_NAMES, read_split_files

__all__ = [
    "OUTSIDE",
    "SPLITS",
    "Dataset",
    "DatasetError",
    "Example",
    "Policy",
    "Problem",
    "embedding_file",
    "embedding_name",
    "load_dataset",
    "path_problem",
    "stratified_holdout",
    "with_holdout",
]


def load_dataset(
    path: str | os.PathLike[str],
    *,
    multilabel: bool | None = None,
    embeddings: Path | None = None,
    hash_workers: int = 4,
    roots: Sequence[Path] = (),
    quote: bool = True,
    label_column: str | None = None,
    background: bool = False,
) -> Dataset:
    """Read and validate a dataset in any of the four layouts; raise ``DatasetError`` listing every problem.

    ``multilabel`` forces the task type (by default a dataset is multi-label when a CSV row has several labels).
    With ``embeddings`` (a folder of precomputed ``<relative path>.npy``), each example points at its embedding
    file instead of its audio, which then need not exist. With ``roots``, every file read (text files, audio,
    embeddings) must resolve below one of them; ``quote=False`` keeps the files' text out of the messages.
    ``label_column`` (the Raven column holding the labels) and ``background`` (unannotated stretches become examples)
    apply to the annotations layout.
    """
    policy = Policy(tuple(Path(os.path.realpath(root)) for root in roots), quote)
    refused = path_problem(os.fspath(path))
    if refused:
        raise DatasetError(repr(os.fspath(path)), [Problem("dataset", refused)])
    path = Path(path)
    given = [path]
    if embeddings is not None:
        from audioclas.training.embedding_cache import MANIFEST  # numpy and torch: only when embeddings are used

        given += [embeddings, embeddings / MANIFEST]
    for place in given:
        if not policy.allows(place):
            raise DatasetError(path, [Problem(str(place), OUTSIDE)])
    csv_file = path.is_file() and path.suffix.lower() == ".csv"
    if (csv_file and is_annotation_csv(path)) or (path.is_dir() and has_annotation_files(path, policy)):
        dataset, problems = read_annotations(path, policy, label_column, background, multilabel)
    elif csv_file:
        dataset, problems = read_csv(path, policy)
    elif path.is_dir() and any((path / name).is_file() for name in SPLIT_FILE_NAMES):
        dataset, problems = read_split_files(path, policy)
    elif path.is_dir():
        dataset, problems = read_folders(path, policy)
    elif path.exists():
        raise DatasetError(path, [Problem(str(path), "not a dataset: give a folder or a .csv file")])
    else:
        raise DatasetError(path, [Problem(str(path), "does not exist")])
    if multilabel is not None:
        if not multilabel and dataset.multilabel:
            problems.append(Problem(str(path), "rows carry several labels but single-label training was asked for"))
        dataset.multilabel = multilabel or dataset.multilabel
    if embeddings is not None:
        dataset.splits = {
            split: [
                replace(example, path=embedding_file(embeddings, dataset.root, example), origin=example.path)
                for example in examples
            ]
            for split, examples in dataset.splits.items()
        }
    problems += check_examples(dataset, hash_workers, policy)
    if problems:
        raise DatasetError(path, sorted(problems, key=problem_order))
    return dataset


def embedding_name(example: Example, root: Path) -> str:
    """The name of ``example``'s exported embedding, less ``.npy``: its file's path below ``root``, and for a segment
    of a recording ``@<start>-<end>`` (seconds, 3 decimals)."""
    relative = example.path.relative_to(root).as_posix()
    return relative if example.segment is None else f"{relative}@{example.segment[0]:.3f}-{example.segment[1]:.3f}"


def embedding_file(folder: Path, root: Path, example: Example) -> Path:
    """Where a precomputed embedding of ``example`` (a file under ``root``, or a segment of one) sits in ``folder``."""
    return folder / f"{embedding_name(example, root)}.npy"


def stratified_holdout(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Split ``examples`` into (train, val), taking ``fraction`` of each class (by its rarest label) into val.

    Examples of one file (the segments of an annotated recording) go together, so that no recording is both trained
    on and validated on: the units drawn are files, each stratified by the rarest label among its examples.
    Seeded and independent of the input order. A class with one file stays in train; a class with two or more
    gives at least one to val and keeps at least one.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, not {fraction}")
    frequency = Counter(label for example in examples for label in example.labels)
    files: dict[Path, list[Example]] = defaultdict(list)
    for example in sorted(examples, key=lambda e: (str(e.recording), e.segment or (0.0, 0.0))):
        files[example.recording].append(example)
    strata: dict[int, list[list[Example]]] = defaultdict(list)
    for members in files.values():
        labels = {label for example in members for label in example.labels}
        strata[min(labels, key=lambda label: (frequency[label], label), default=-1)].append(members)
    rng = random.Random(seed)
    train: list[Example] = []
    val: list[Example] = []
    for label in sorted(strata):
        groups = strata[label]
        rng.shuffle(groups)
        n_val = min(max(round(len(groups) * fraction), 1), len(groups) - 1) if len(groups) > 1 else 0
        val += [example for group in groups[:n_val] for example in group]
        train += [example for group in groups[n_val:] for example in group]
    return train, val


def with_holdout(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """The dataset with a validation split: its own ``val`` if it has one, else a stratified hold-out from train."""
    if dataset.splits.get("val") or fraction <= 0:
        return dataset
    train, val = stratified_holdout(dataset.splits["train"], fraction, seed)
    return replace(dataset, splits={**dataset.splits, "train": train, "val": val})
