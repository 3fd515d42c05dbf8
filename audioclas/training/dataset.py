"""Training datasets in three layouts, validated completely before any audio is decoded.

Layouts (``load_dataset`` picks by what it finds at the path):

- **split files** (the old system's layout): a folder with ``classes.txt`` (line N names label N),
  ``train.txt`` (required), ``val.txt``, ``test.txt`` (optional), each line ``relative/path label_number``,
  and an optional free-text ``info.txt``.
- **folder per class**: ``ROOT/CLASS/**/file.wav``; or ``ROOT/train/CLASS/…`` with optional
  ``ROOT/val/`` and ``ROOT/test/`` beside it. Class names are the folder names, sorted.
- **CSV**: a ``.csv`` file with rows ``path,label[,split]`` (a header row ``path,label,split`` is optional);
  a multi-label row separates its labels with ``;``; ``split`` is train, val or test (empty means train).

Paths are relative to the data folder (the CSV's folder) and may not leave it. Every problem found (missing,
empty or unreadable file, bad or unknown label, class without examples, a file in two splits, a file listed
twice, the same audio under two names in different splits) is collected with its file and line, and
``DatasetError`` reports them all at once.

For a caller who does not own the data (the service), ``load_dataset(..., roots=..., quote=False)`` refuses
every file that resolves (links followed) outside the given folders, and leaves the text of the dataset's
files out of its messages: a file that is not a dataset cannot be read back through them.
"""

from __future__ import annotations

import csv
import io
import os
import random
import stat
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from audioclas.errors import AudioclasError
from audioclas.fileio import file_sha256
from audioclas.training.content_hashes import HashMemo

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test", "eval": "test"}
AUDIO_SUFFIXES = frozenset(
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .aac .wma .aif .aiff .aifc .au .snd .caf .amr .ac3 .mka "
    ".webm .mp4 .mkv .mov .avi .w64 .wv .ape .spx".split())

SPLIT_FILE_NAMES = ("classes.txt", "train.txt", "val.txt", "test.txt")
MAX_EXAMPLES = 1_000_000
MAX_CLASSES = 10_000
MAX_TEXT_BYTES = 64 * 2**20  # a split file, CSV or classes.txt
MAX_LINE_CHARS = 4096
MAX_CLASS_NAME_CHARS = 200


@dataclass(frozen=True)
class Example:
    path: Path  # absolute
    labels: tuple[int, ...]  # class indices; one for single-label data
    where: str  # "train.txt:12" — where the example was declared, for messages
    sha256: str = ""  # of the file's bytes; filled by validation

    @property
    def label(self) -> int:
        return self.labels[0]


@dataclass(frozen=True)
class Problem:
    where: str  # "train.txt:12", "classes.txt" or a folder
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class DatasetError(AudioclasError):
    """The dataset has problems; ``problems`` lists every one of them."""

    def __init__(self, root: Path | str, problems: list[Problem]) -> None:
        self.root = str(root)
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"dataset {self.root} has {len(problems)} {noun}:\n{lines}")


@dataclass(frozen=True)
class Policy:
    """Who reads the dataset: ``roots`` (resolved folders; empty: anywhere) that every file must resolve into,
    and whether messages may ``quote`` text read from the dataset's files."""

    roots: tuple[Path, ...] = ()
    quote: bool = True

    def allows(self, path: Path) -> bool:
        """Whether ``path``, with every link resolved, lies below one of the roots."""
        if not self.roots:
            return True
        real = Path(os.path.realpath(path))
        return any(real.is_relative_to(root) for root in self.roots)

    def shown(self, text: str, prefix: str = " ") -> str:
        """``text`` of a dataset file quoted after ``prefix`` for the data's owner, or nothing."""
        return f"{prefix}{text!r}" if self.quote else ""


OUTSIDE = "is outside the folders allowed for training data"


def path_problem(text: str) -> str | None:
    """Why ``text`` cannot be a path at all (the OS refuses NUL bytes), or None."""
    return "a path cannot contain a NUL byte" if "\0" in text else None


@dataclass
class Dataset:
    root: Path
    layout: str  # "split-files", "folders" or "csv"
    classes: list[str]
    splits: dict[str, list[Example]]  # keys among SPLITS; "train" always present
    multilabel: bool = False
    info: str = ""
    split_given: bool = True  # False when the layout had no notion of splits (all examples sit in "train")

    def examples(self, split: str | None = None) -> list[Example]:
        """One split's examples, or every example for ``None``."""
        if split is None:
            return [example for name in SPLITS for example in self.splits.get(name, [])]
        return self.splits.get(split, [])

    def counts(self) -> dict[str, list[int]]:
        """Examples per class in each split."""
        result = {}
        for name, examples in self.splits.items():
            per_class = Counter(label for example in examples for label in example.labels)
            result[name] = [per_class[index] for index in range(len(self.classes))]
        return result


def load_dataset(path: str | os.PathLike, *, multilabel: bool | None = None, embeddings: Path | None = None,
                 hash_workers: int = 4, roots: Sequence[Path] = (), quote: bool = True) -> Dataset:
    """Read and validate a dataset in any of the three layouts; raise ``DatasetError`` listing every problem.

    ``multilabel`` forces the task type (by default a dataset is multi-label when a CSV row has several labels).
    With ``embeddings`` (a folder of precomputed ``<relative path>.npy``), each example points at its embedding
    file instead of its audio, which then need not exist. With ``roots``, every file read (text files, audio,
    embeddings) must resolve below one of them; ``quote=False`` keeps the files' text out of the messages.
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
    if path.is_file() and path.suffix.lower() == ".csv":
        dataset, problems = _read_csv(path, policy)
    elif path.is_dir() and any((path / name).is_file() for name in SPLIT_FILE_NAMES):
        dataset, problems = _read_split_files(path, policy)
    elif path.is_dir():
        dataset, problems = _read_folders(path, policy)
    elif path.exists():
        raise DatasetError(path, [Problem(str(path), "not a dataset: give a folder or a .csv file")])
    else:
        raise DatasetError(path, [Problem(str(path), "does not exist")])
    if multilabel is not None:
        if not multilabel and dataset.multilabel:
            problems.append(Problem(str(path), "rows carry several labels but single-label training was asked for"))
        dataset.multilabel = multilabel or dataset.multilabel
    if embeddings is not None:
        dataset.splits = {split: [replace(example, path=embedding_file(embeddings, dataset.root, example.path))
                                  for example in examples] for split, examples in dataset.splits.items()}
    problems += _check_examples(dataset, hash_workers, policy)
    if problems:
        raise DatasetError(path, sorted(problems, key=_problem_order))
    return dataset


def embedding_file(folder: Path, root: Path, audio: Path) -> Path:
    """Where a precomputed embedding of ``audio`` (a file under ``root``) sits in ``folder``."""
    return folder / f"{audio.relative_to(root).as_posix()}.npy"


def stratified_holdout(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Split ``examples`` into (train, val), taking ``fraction`` of each class (by its rarest label) into val.

    Seeded and independent of the input order. A class with one example stays in train; a class with two or more
    gives at least one example to val and keeps at least one.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, not {fraction}")
    frequency = Counter(label for example in examples for label in example.labels)
    strata: dict[int, list[Example]] = defaultdict(list)
    for example in sorted(examples, key=lambda e: str(e.path)):
        strata[min(example.labels, key=lambda label: (frequency[label], label))].append(example)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(strata):
        members = strata[label]
        rng.shuffle(members)
        n_val = min(max(round(len(members) * fraction), 1), len(members) - 1) if len(members) > 1 else 0
        val += members[:n_val]
        train += members[n_val:]
    return train, val


def with_holdout(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """The dataset with a validation split: its own ``val`` if it has one, else a stratified hold-out from train."""
    if dataset.splits.get("val") or fraction <= 0:
        return dataset
    train, val = stratified_holdout(dataset.splits["train"], fraction, seed)
    return replace(dataset, splits={**dataset.splits, "train": train, "val": val})


# ---------------------------------------------------------------- layouts


def _read_text(path: Path, problems: list[Problem], policy: Policy) -> list[str] | None:
    """Lines of a small text file, or None (with a problem recorded) when it cannot be used."""
    if not policy.allows(path):
        problems.append(Problem(path.name, OUTSIDE))
        return None
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            problems.append(Problem(path.name, f"larger than {MAX_TEXT_BYTES // 2**20} MiB"))
            return None
        return path.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        problems.append(Problem(path.name, "is not UTF-8 text"))
    except OSError as error:
        problems.append(Problem(path.name, f"cannot be read ({error.strerror or error})"))
    return None


def _inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` if ``relative`` is a relative path that stays inside ``root`` (lexically), else None."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or (len(relative) > 1 and relative[1] == ":"):
        return None
    depth = 0
    for part in pure.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return None
    return root / pure


def _read_classes(root: Path, problems: list[Problem], policy: Policy) -> list[str]:
    path = root / "classes.txt"
    if not path.is_file():
        problems.append(Problem("classes.txt", "missing: it must list the class names, line N naming label N"))
        return []
    lines = _read_text(path, problems, policy) or []
    while lines and not lines[-1].strip():
        lines.pop()
    classes, seen = [], {}
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


def _read_split_files(root: Path, policy: Policy) -> tuple[Dataset, list[Problem]]:
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
        for number, line in enumerate(_read_text(root / name, problems, policy) or [], 1):
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
                problems.append(Problem(where, f"label{shown} is not in 0..{len(classes) - 1} "
                                               f"(classes.txt names {len(classes)} classes)"))
                continue
            path = _inside(root, relative)
            if path is None:
                problems.append(Problem(where, f"path{policy.shown(relative)} must be relative and stay inside {root}"))
                continue
            examples.append(Example(path, (label,), where))
    info_lines = _read_text(root / "info.txt", problems, policy) if (root / "info.txt").is_file() else []
    dataset = Dataset(root, "split-files", classes, splits, info="\n".join(info_lines or []).strip())
    return dataset, problems


def _audio_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file()
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def _subfolders(folder: Path, policy: Policy, problems: list[Problem], root: Path) -> list[Path]:
    """The visible subfolders of ``folder``; one that links outside the allowed roots is a problem, not listed."""
    found = sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))
    for path in found:
        if not policy.allows(path):
            problems.append(Problem(str(path.relative_to(root)), OUTSIDE))
    return [path for path in found if policy.allows(path)]


def _read_folders(root: Path, policy: Policy) -> tuple[Dataset, list[Problem]]:
    problems: list[Problem] = []
    top = _subfolders(root, policy, problems, root)
    split_dirs = {SPLIT_ALIASES[d.name.lower()]: d for d in top if d.name.lower() in SPLIT_ALIASES}
    split_given = "train" in split_dirs
    if not split_given:
        split_dirs = {"train": root}
    class_dirs = {split: {d.name: d for d in (_subfolders(folder, policy, problems, root) if split_given else top)}
                  for split, folder in split_dirs.items()}
    classes = sorted(class_dirs["train"])
    if not classes:
        problems.append(Problem(str(split_dirs["train"]), "no class folders: put each class's audio in a folder "
                                                          "named after the class"))
    index = {name: number for number, name in enumerate(classes)}
    splits: dict[str, list[Example]] = {}
    for split, folders in class_dirs.items():
        examples = splits[split] = []
        for name, folder in folders.items():
            files = _audio_files(folder)
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


def _read_csv(path: Path, policy: Policy) -> tuple[Dataset, list[Problem]]:
    problems: list[Problem] = []
    root = path.parent
    lines = _read_text(path, problems, policy) or []
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
        file = _inside(root, relative)
        if file is None:
            problems.append(Problem(where, f"path{policy.shown(relative)} must be relative and stay inside {root}"))
        elif len(set(names)) != len(names):
            problems.append(Problem(where, f"a label is repeated{policy.shown(';'.join(names), ' in ')}"))
        else:
            splits.setdefault(split, []).append(Example(file, tuple(sorted(index[n] for n in names)), where))
    multilabel = any(len(example.labels) > 1 for examples in splits.values() for example in examples)
    return Dataset(root, "csv", classes, splits, multilabel=multilabel), problems


# ---------------------------------------------------------------- checks common to every layout


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


def _check_examples(dataset: Dataset, workers: int, policy: Policy) -> list[Problem]:
    """File-level checks (readable, non-empty, listed once, in one split) and per-class counts; fills sha256."""
    problems: list[Problem] = []
    examples = dataset.examples()
    if len(examples) > MAX_EXAMPLES:
        return [Problem(str(dataset.root), f"more than {MAX_EXAMPLES} examples")]
    if "train" in dataset.splits and not dataset.splits["train"]:
        problems.append(Problem(str(dataset.root), "the train split has no examples"))
    minimum = 1 if dataset.multilabel else 2
    if 0 < len(dataset.classes) < minimum:
        problems.append(Problem(str(dataset.root), f"single-label training needs at least 2 classes, "
                                                   f"found {len(dataset.classes)}"))
    first_seen: dict[Path, tuple[str, str]] = {}
    for split in SPLITS:
        for example in dataset.splits.get(split, []):
            if example.path in first_seen:
                other_split, other_where = first_seen[example.path]
                kind = "listed twice" if other_split == split else f"in two splits ({other_split} and {split})"
                problems.append(Problem(example.where, f"{kind}: also at {other_where}"))
            first_seen.setdefault(example.path, (split, example.where))
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
                problems.append(Problem(example.where, f"same audio as {other[1].where} ({other[0]} split): "
                                                       "a test or validation file must not also be trained on"))
            by_content.setdefault(digest, (split, example))
            hashed[split].append(replace(example, sha256=digest))
    counts = Counter(label for example in dataset.splits.get("train", []) for label in example.labels)
    if dataset.splits.get("train"):
        source = "classes.txt" if dataset.layout == "split-files" else str(dataset.root)
        for index, name in enumerate(dataset.classes):
            if name and dataset.classes.index(name) == index and not counts[index] and dataset.layout != "folders":  # empty class folders are reported when read
                shown = f" ({name!r})" if policy.quote else ""
                problems.append(Problem(source, f"class {index}{shown} has no examples in the train split"))
    dataset.splits = hashed
    return problems


def _problem_order(problem: Problem) -> tuple[str, int]:
    name, _, line = problem.where.rpartition(":")
    return (name, int(line)) if line.isdigit() else (problem.where, 0)
