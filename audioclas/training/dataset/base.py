"""What every layout reader and the checks share: the dataset types, the limits, and who may read what (``Policy``)."""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from audioclas.errors import AudioclasError
from audioclas.inputs.rules import unsafe_relative_path

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "eval": "test",
}

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
    segment: tuple[float, float] | None = None  # (start, end) seconds: a clip cut from a recording, not the file
    origin: Path | None = None  # the audio file, when ``path`` is its precomputed embedding

    @property
    def recording(self) -> Path:
        """The audio file the example comes from: what must stay in one split."""
        return self.origin or self.path

    @property
    def label(self) -> int:
        return self.labels[0]

    @property
    def key(self) -> str:
        """What the example's embeddings are cached and found under: the file's content, and the segment cut."""
        if self.segment is None:
            return self.sha256
        return f"{self.sha256}-{self.segment[0]:.3f}-{self.segment[1]:.3f}"

    @property
    def name(self) -> str:
        """The file, and the segment when it is one, for messages and exported embedding names."""
        return str(self.path) if self.segment is None else f"{self.path}@{self.segment[0]:.3f}-{self.segment[1]:.3f}"


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


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` for a path from a dataset file that is safe below ``root`` (see
    ``inputs.rules.unsafe_relative_path``: relative, no ``..``, no NUL), else None."""
    if unsafe_relative_path(relative):
        return None
    return root / PurePosixPath(relative.replace("\\", "/"))


@dataclass
class Dataset:
    root: Path
    layout: str  # "split-files", "folders", "csv" or "annotations"
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


def read_text(path: Path, problems: list[Problem], policy: Policy) -> list[str] | None:
    """Lines of a small text file, or None (with a problem recorded) when it cannot be used."""
    if not policy.allows(path):
        problems.append(Problem(path.name, OUTSIDE))
        return None
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO or device would block or never end
            problems.append(Problem(path.name, "not a file"))
            return None
        if status.st_size > MAX_TEXT_BYTES:
            problems.append(Problem(path.name, f"larger than {MAX_TEXT_BYTES // 2**20} MiB"))
            return None
        return path.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        problems.append(Problem(path.name, "is not UTF-8 text"))
    except OSError as error:
        problems.append(Problem(path.name, f"cannot be read ({error.strerror or error})"))
    return None
