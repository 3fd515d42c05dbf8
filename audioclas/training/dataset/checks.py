"""Checks common to every layout, run over a loaded dataset: each file regular, non-empty and inside the allowed
roots, listed once and in one split, the same audio not in two splits, every class with training examples; the
content sha256 of every file (remembered between runs by ``HashMemo``)."""

from __future__ import annotations

import os
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from audioclas.fileio import file_sha256
from audioclas.training.content_hashes import HashMemo
from audioclas.training.dataset.base import MAX_EXAMPLES, OUTSIDE, SPLITS, Dataset, Example, Policy, Problem


def _regular_file(path: Path, policy: Policy) -> os.stat_result | Problem:
    if not policy.allows(path):
        return Problem("", OUTSIDE)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return Problem("", "file not found")
    except OSError as error:
        return Problem("", f"cannot be read ({error.strerror or error})")
    if not stat.S_ISREG(status.st_mode):
        return Problem("", "not a file")
    return status if status.st_size else Problem("", "file is empty (0 bytes)")


def _hash_one(path: Path) -> str | Problem:
    try:
        return file_sha256(path)
    except OSError as error:
        return Problem("", f"cannot be read ({error.strerror or error})")


def _hash_files(paths: list[Path], workers: int, policy: Policy) -> list[str | Problem]:
    """The sha256 of every file (files remembered unchanged are not read again), or the problem that stopped it.

    Each file's status is taken before it is read, so a file changed while being read is hashed again next run.
    """
    problems: dict[Path, Problem] = {}
    statuses: dict[Path, os.stat_result] = {}
    for path in paths:
        checked = _regular_file(path, policy)
        if isinstance(checked, Problem):
            problems[path] = checked
        else:
            statuses[path] = checked
    memo = HashMemo()
    digests = memo.known(statuses)
    unknown = [path for path in statuses if path not in digests]
    fresh = []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for path, hashed in zip(unknown, pool.map(_hash_one, unknown)):
            if isinstance(hashed, Problem):
                problems[path] = hashed
            else:
                digests[path] = hashed
                fresh.append((path, statuses[path], hashed))
    memo.remember(fresh)
    return [problems.get(path) or digests[path] for path in paths]


def check_examples(dataset: Dataset, workers: int, policy: Policy) -> list[Problem]:
    """File-level checks (readable, non-empty, listed once, in one split) and per-class counts; fills sha256."""
    problems: list[Problem] = []
    examples = dataset.examples()
    if len(examples) > MAX_EXAMPLES:
        return [Problem(str(dataset.root), f"more than {MAX_EXAMPLES} examples")]
    if "train" in dataset.splits and not dataset.splits["train"]:
        problems.append(Problem(str(dataset.root), "the train split has no examples"))
    minimum = 1 if dataset.multilabel else 2
    if 0 < len(dataset.classes) < minimum:
        problems.append(
            Problem(str(dataset.root), f"single-label training needs at least 2 classes, found {len(dataset.classes)}")
        )
    first_seen: dict[tuple[Path, tuple[float, float] | None], str] = {}
    split_of: dict[Path, tuple[str, str]] = {}  # segments of one recording must stay in one split
    for split in SPLITS:
        for example in dataset.splits.get(split, []):
            other_split, other_where = split_of.setdefault(example.recording, (split, example.where))
            if other_split != split:
                problems.append(
                    Problem(example.where, f"in two splits ({other_split} and {split}): also at {other_where}")
                )
            elif (example.path, example.segment) in first_seen:
                problems.append(
                    Problem(example.where, f"listed twice: also at {first_seen[example.path, example.segment]}")
                )
            first_seen.setdefault((example.path, example.segment), example.where)
    digests = _hash_files([example.path for example in examples], workers, policy)
    by_content: dict[str, tuple[str, Example]] = {}
    hashed: dict[str, list[Example]] = {split: [] for split in dataset.splits}
    position = 0
    for split in SPLITS:
        for example in dataset.splits.get(split, []):
            digest = digests[position]
            position += 1
            if isinstance(digest, Problem):
                shown = f"{example.path}: " if policy.quote else ""
                problems.append(Problem(example.where, f"{shown}{digest.message}"))
                continue
            other = by_content.get(digest)
            if other and other[0] != split and other[1].path != example.path:
                problems.append(
                    Problem(
                        example.where,
                        f"same audio as {other[1].where} ({other[0]} split): "
                        "a test or validation file must not also be trained on",
                    )
                )
            by_content.setdefault(digest, (split, example))
            hashed[split].append(replace(example, sha256=digest))
    counts = Counter(label for example in dataset.splits.get("train", []) for label in example.labels)
    if dataset.splits.get("train"):
        source = "classes.txt" if dataset.layout == "split-files" else str(dataset.root)
        for index, name in enumerate(dataset.classes):
            if (
                name and dataset.classes.index(name) == index and not counts[index] and dataset.layout != "folders"
            ):  # empty class folders are reported when read
                shown = f" ({name!r})" if policy.quote else ""
                problems.append(Problem(source, f"class {index}{shown} has no examples in the train split"))
    dataset.splits = hashed
    return problems


def problem_order(problem: Problem) -> tuple[str, int]:
    name, _, line = problem.where.rpartition(":")
    return (name, int(line)) if line.isdigit() else (problem.where, 0)
