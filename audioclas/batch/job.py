"""What a batch job computes (``JobSpec``) and the folder it writes (``OutputFolder``).

Layout of an output folder::

    job.json                  what was computed: task, backbone sha256, window settings, label options, the
                              custom model (--model: name, sha256 of its files, its backbone's sha256)
    clips/<shard>.parquet     one row per clip; a shard's clips file is its commit marker
    windows/<shard>.parquet   one row per window (with --timeline)
    failures/<shard>.parquet  inputs that failed, with the reason
    failures/listing.parquet  inputs that named nothing usable (missing file, empty folder), from the latest run
    _journal/<shard>.jsonl    while a shard is in progress: which input each attempt was reading
    .lock                     held (flock) by the run in progress
    _retry/clips, _retry/windows   --retry-failed: the tables of shards uncommitted to run their failures again,
                              kept until those shards are committed again (see ``reuse``)

A shard writes its windows and failures first and its clips file last, each atomically (temporary file, then
rename), and the clips file's metadata lists the shard's items. So a shard is done exactly when its clips file
exists: a killed worker leaves at most files of a shard that is not done, which the retry overwrites (same name)
or the next run removes, and a re-run schedules only the items of no committed shard.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq

from audioclas import __version__
from audioclas.batch.models import JobModel
from audioclas.errors import AudioclasError
from audioclas.fileio import atomic_open
from audioclas.options import resolve_options
from audioclas.predictions import LabelQuery
from audioclas.weights import WEIGHTS_SHA256
from audioclas.windows import WindowSettings

FORMAT_VERSION = 1
BACKBONE = "EfficientAT mn04_as"
TABLES = ("clips", "windows", "failures")
ITEMS_KEY = b"audioclas.items"  # clips file metadata: the JSON list of the shard's item ids
PRODUCER_KEY = b"audioclas.producer"  # every table file's metadata: the JSON of ``JobSpec.producer``
LISTING = "listing"  # failures/listing.parquet
Task = Literal["predict", "embed"]


@dataclass(frozen=True)
class JobSpec:
    """Everything that decides a job's results, and how its work is cut up and run.

    ``windows`` and ``query`` (predict only: which labels each clip and window reports) are the objects the worker
    hands to ``Tagger`` as they are; ``job.json`` records them with their ``to_dict``. ``model``: a custom
    classifier (predict: its classes; embed: the embeddings its head reads, from its own backbone if fine-tuned),
    whose windows ``windows`` must be (``prediction_windows`` chooses them).
    """

    task: Task
    windows: WindowSettings = field(default_factory=WindowSettings)
    query: LabelQuery = field(default_factory=LabelQuery)  # predict only
    timeline: bool = False
    # how the work runs
    shard_size: int = 16  # inputs per shard: the unit of scheduling, retry and commit
    batch_size: int = 1  # windows per network call; 1 keeps the results bit-identical everywhere, see below
    weights: str | None = None  # the checkpoint; None: resolved as usual on every worker
    model: JobModel | None = None

    # Why one window per network call: PyTorch's CPU kernels round differently with the batch's size (scores move by
    # about 1e-6), and the streaming pipeline batches whatever windows are decoded when the network is free, which
    # depends on timing. One window per call, on one thread per worker, gives the same bits in both engines, on every
    # retry and every re-run; on one thread a window costs the same alone as in a batch of 16 (13 ms, measured).

    def __post_init__(self) -> None:
        if self.task not in ("predict", "embed"):
            raise ValueError(f"task must be 'predict' or 'embed', not {self.task!r}")
        if self.shard_size < 1 or self.batch_size < 1:
            raise AudioclasError("--shard-size and --batch-size must be at least 1")
        model = self.model
        if model is None:
            if self.task == "predict":
                resolve_options(None, self.query, self.windows)  # raises for an unknown label name, before any work
            return
        model.check_windows(self.windows)
        if not model.finetuned and model.backbone_sha256 != WEIGHTS_SHA256:
            raise AudioclasError(
                f"model {model.name!r} was trained on another backbone "
                f"({model.backbone_sha256[:12]}…, this one is {WEIGHTS_SHA256[:12]}…)"
            )
        if self.task == "predict":
            self.query.resolve(model.classes, None)  # raises for a class the model does not have

    @property
    def backbone_sha256(self) -> str:
        """The network whose outputs the tables hold: the pretrained one, or a fine-tuned model's own."""
        return self.model.backbone_sha256 if self.model else WEIGHTS_SHA256

    def producer(self) -> dict[str, Any]:
        """What produced a table's rows, as each table file's metadata records it (``PRODUCER_KEY``)."""
        return {"backbone_sha256": self.backbone_sha256, "model": self.model.manifest() if self.model else None}

    def manifest(self) -> dict[str, Any]:
        """The content of ``job.json``: what a resumed run must agree on, and what readers need to know."""
        result = {
            "format": FORMAT_VERSION,
            "task": self.task,
            "backbone": BACKBONE,
            "backbone_sha256": self.backbone_sha256,
            **self.windows.to_dict(),
            "timeline": self.timeline,
        }
        if self.task == "predict":
            result["labels"] = self.query.to_dict()
        if self.model is not None:  # absent without one: folders written before --model resume as they were
            result["model"] = self.model.manifest()
        return result


class OutputFolder:
    """A job's output folder: its tables, its commit markers and its manifest."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()

    def table_path(self, table: str, shard_id: str) -> Path:
        return self.root / table / f"{shard_id}.parquet"

    def journal_path(self, shard_id: str) -> Path:
        return self.root / "_journal" / f"{shard_id}.jsonl"

    def manifest(self) -> dict[str, Any]:
        path = self.root / "job.json"
        try:
            manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
            return manifest
        except FileNotFoundError:
            raise AudioclasError(f"{self.root}: not the output of an audioclas batch job (no job.json)") from None
        except (OSError, ValueError) as error:
            raise AudioclasError(f"{path}: unreadable ({error})") from None

    def prepare(self, spec: JobSpec) -> None:
        """Create the folder for ``spec``, or check that the job already in it computed the same thing."""
        wanted = spec.manifest()
        if (self.root / "job.json").exists():
            found = {key: value for key, value in self.manifest().items() if key not in ("created_by",)}
            if found.get("model") != wanted.get("model"):
                raise AudioclasError(
                    f"{self.root} holds the results of {_model_text(found.get('model'))}, not of "
                    f"{_model_text(wanted.get('model'))}: resume it with the same model, or write to another --out folder"
                )
            if found != wanted:
                differs = sorted(key for key in wanted.keys() | found.keys() if wanted.get(key) != found.get(key))
                raise AudioclasError(
                    f"{self.root} holds a job with other settings ({', '.join(differs)} differ): "
                    "resume it with the same settings, or write to another --out folder"
                )
            return
        if any(path.name != ".lock" for path in self.root.iterdir()):
            raise AudioclasError(f"{self.root} is not empty and holds no batch job: choose another --out folder")
        with atomic_open(self.root / "job.json", encoding="utf-8") as stream:
            json.dump({**wanted, "created_by": f"audioclas {__version__}"}, stream, indent=2)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for one driver: two runs of a job at once could both take the same pending shard."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AudioclasError(f"{self.root} is in use by another running job") from None
            yield

    def committed(self) -> dict[str, list[str]]:
        """Item ids of every committed shard, by shard id."""
        done = {}
        for path in sorted((self.root / "clips").glob("*.parquet")):
            metadata = pq.read_schema(path).metadata or {}
            done[path.stem] = json.loads(metadata[ITEMS_KEY])
        return done

    def is_committed(self, shard_id: str) -> bool:
        return self.table_path("clips", shard_id).exists()

    def remove_uncommitted(self) -> None:
        """Delete what killed attempts left: temporary files, and tables and journals of shards that are not done.

        Only the driver calls this, holding the lock, before it schedules anything.
        """
        committed = {path.stem for path in (self.root / "clips").glob("*.parquet")}
        for folder in [*(self.root / table for table in TABLES), self.root / "_journal"]:
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)
        for table in ("windows", "failures"):
            for path in (self.root / table).glob("*.parquet"):
                if path.stem not in committed and path.stem != LISTING:
                    path.unlink(missing_ok=True)
        for path in (self.root / "_journal").glob("*.jsonl"):
            if path.stem in committed:
                path.unlink(missing_ok=True)


def _model_text(model: dict[str, Any] | None) -> str:
    """A manifest's model, for a one-line message."""
    if not isinstance(model, dict):
        return "the AudioSet network (no --model)"
    digest = "".join(char for char in str(model.get("sha256"))[:12] if char in "0123456789abcdef")  # from a file
    return f"model {str(model.get('name'))!r} (sha256 {digest}…)"
