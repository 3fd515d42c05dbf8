"""Datasets uploaded to the server as archives: stored under ``<first --data-root>/uploads/<name>/``.

A user of a deployed image has no shell on the server, so they upload a zip or tar of a dataset (any layout
``load_dataset`` reads). It is extracted by ``inputs.trees`` (predict's archive bounds and refusals) into a hidden
temporary folder beside the others, validated with ``load_dataset(..., roots=..., quote=False)`` (so nothing
outside it is read and no file's text is quoted back), and only then renamed to its name: a rename onto an existing
dataset fails, so one is never replaced, and a half-extracted one is never listed. Each dataset folder holds
``files/`` (the archive's contents) and ``dataset.json`` (its summary and the ``path`` to train on).

The operator bounds how many datasets are kept (``max_datasets``) and the bytes of all the files below
``uploads/`` (``max_datasets_bytes``, hidden temporary folders included). An upload holds a lock on the uploads
folder (``flock``: other threads and other servers sharing it wait) from the check of the room left until its
dataset is renamed into place, and extracts with its byte bounds lowered to that room, so that no archive ever
takes the uploads past their quota: it is stopped while extracting and removed (507 Insufficient Storage).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioclas.errors import AudioclasError, BytesOverLimit
from audioclas.inputs.types import MiB
from audioclas.service.errors import RequestError

if TYPE_CHECKING:
    from audioclas.service.settings import ServiceSettings

UPLOADS = "uploads"
SUMMARY = "dataset.json"
MAX_SUMMARY_BYTES = 64 * 1024
FULL = 507  # Insufficient Storage: the uploads are at one of their limits
FREE_ROOM = "delete a dataset (DELETE /v2/datasets/NAME) to make room"


def uploads_root(settings: ServiceSettings) -> Path:
    """Where uploaded datasets live; 403 when the server has no data root (it could then not train on them)."""
    if not settings.data_roots:
        raise RequestError(
            403,
            "this server keeps no uploaded datasets: its operator must start it with --data-root DIR "
            "(or $AUDIOCLAS_DATA_ROOT)",
        )
    return settings.data_roots[0] / UPLOADS


def dataset_folder(settings: ServiceSettings, name: str) -> Path:
    """The folder of the uploaded dataset ``name`` (checked like a model name; 404 when there is none)."""
    folder = uploads_root(settings) / _checked(name)
    if not (folder / SUMMARY).is_file():
        raise RequestError(404, f"no uploaded dataset named {name!r}")
    return folder


def uploaded_dataset_path(settings: ServiceSettings, name: str) -> str:
    """What a train request's ``dataset`` takes for the uploaded dataset ``name`` (404 when there is none)."""
    folder = dataset_folder(settings, name)
    return str(_public(folder.parent, name, _read_summary(folder) or {})["path"])


def add_dataset(settings: ServiceSettings, archive: Path, shown: str, name: str | None) -> dict[str, Any]:
    """Extract, validate and store the uploaded ``archive`` (``shown``: its upload name) as dataset ``name``
    (default: a fresh one); its summary. 409 for a name in use, 400 for a refused archive, 422 for one that is
    not a valid dataset, 507 when the uploads are full or the archive does not fit in the room left; nothing is
    left behind on any refusal."""
    from audioclas.inputs.trees import extract_tree
    from audioclas.training.store import default_name

    name = _checked(name or default_name())
    root = uploads_root(settings)
    final = root / name
    if final.exists():
        raise RequestError(409, f"a dataset named {name!r} already exists: choose another name, or delete it first")
    root.mkdir(exist_ok=True)
    with _locked(root):
        room = check_room(settings) - MAX_SUMMARY_BYTES  # what this dataset's files may take
        limits = settings.input_limits()
        limits = replace(
            limits,
            max_member_bytes=min(limits.max_member_bytes, room),
            max_archive_bytes=min(limits.max_archive_bytes, room),
        )
        temp = Path(tempfile.mkdtemp(prefix=".upload-", dir=root))
        try:
            files = temp / "files"
            files.mkdir()
            try:
                extract_tree(archive, shown, files, limits)  # InputError: 400
            except BytesOverLimit as error:
                if room >= settings.max_archive_bytes:
                    raise  # the archive's own bound: 413
                raise RequestError(
                    FULL,
                    f"the archive does not fit in the {_mb(room)} left for uploaded datasets ({error}): {FREE_ROOM}",
                ) from None
            relative = _dataset_entry(files).relative_to(temp)
            summary = _validated(temp, relative, name)
            (temp / SUMMARY).write_text(json.dumps(summary, indent=1), "utf-8")
            try:
                os.rename(temp, final)  # fails when final exists (a non-empty folder): never replaces a dataset
            except OSError:
                raise RequestError(409, f"a dataset named {name!r} already exists: choose another name") from None
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return _public(root, name, summary)


def usage(settings: ServiceSettings) -> dict[str, int]:
    """How many datasets are kept and the bytes below ``uploads/``, with their limits."""
    root = uploads_root(settings)
    return {
        "datasets": _count(root),
        "max_datasets": settings.max_datasets,
        "bytes": _stored_bytes(root),
        "max_bytes": settings.max_datasets_bytes,
    }


def check_room(settings: ServiceSettings) -> int:
    """The bytes a new dataset may still take; 507 when the uploads hold ``max_datasets`` datasets, or their files
    leave no room (checked by the upload route before it reads the body, and again under the lock)."""
    now = usage(settings)
    if now["datasets"] >= now["max_datasets"]:
        raise RequestError(
            FULL, f"this server keeps at most {now['max_datasets']} uploaded datasets and has them: {FREE_ROOM}"
        )
    room = now["max_bytes"] - now["bytes"]
    if room <= MAX_SUMMARY_BYTES:
        raise RequestError(
            FULL,
            f"uploaded datasets take {_mb(now['bytes'])} of the {_mb(now['max_bytes'])} this server allows: "
            f"{FREE_ROOM}",
        )
    return room


def list_datasets(settings: ServiceSettings) -> list[dict[str, Any]]:
    root = uploads_root(settings)
    found = []
    for folder in _dataset_folders(root):
        summary = _read_summary(folder)
        if summary is not None:
            found.append(_public(root, folder.name, summary))
    return found


def delete_dataset(settings: ServiceSettings, name: str, in_use: list[str]) -> None:
    """Remove dataset ``name`` unless one of the ``in_use`` paths (queued and running jobs' datasets) lies in it (409):
    renamed out of sight first, so that it is never listed half deleted."""
    folder = dataset_folder(settings, name)
    if any(Path(path).is_relative_to(folder) for path in in_use):
        raise RequestError(409, f"a queued or running training job uses dataset {name!r}: delete it once the job ends")
    doomed = Path(tempfile.mkdtemp(prefix=".deleting-", dir=folder.parent))
    os.rename(folder, doomed / "dataset")
    shutil.rmtree(doomed, ignore_errors=True)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold the uploads folder's lock: an ``flock`` on the folder itself (no lock file to list or leave), which
    threads of this server and other servers sharing the folder wait for alike."""
    handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _dataset_folders(root: Path) -> list[Path]:
    """The folders below ``root`` that may hold a dataset, in name order: hidden temporary ones and links aside."""
    if not root.is_dir():
        return []
    return [
        folder
        for folder in sorted(root.iterdir())
        if not folder.name.startswith(".") and folder.is_dir() and not folder.is_symlink()
    ]


def _count(root: Path) -> int:
    """The datasets kept: the folders with a summary."""
    return sum((folder / SUMMARY).is_file() for folder in _dataset_folders(root))


def _stored_bytes(root: Path) -> int:
    """The size of every regular file below ``root``, links not followed: what the uploads take, hidden temporary
    folders included (another server's upload under way, or one that a crash left behind)."""
    total = 0
    for folder, _, names in os.walk(root):  # os.walk follows no links to folders
        for name in names:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:  # removed meanwhile
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def _mb(count: int) -> str:
    return f"{count / MiB:.1f} MB"


def _checked(name: str) -> str:
    from audioclas.training.store import NAME_PATTERN

    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise RequestError(
            422,
            f"dataset name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def _dataset_entry(files: Path) -> Path:
    """What to train on in the extracted tree: the folder, or the one folder it holds (an archive of a folder),
    or the one ``.csv`` at its top when it has no split files (the CSV layouts)."""
    from audioclas.inputs.rules import is_hidden
    from audioclas.training.dataset.layout_split_files import SPLIT_FILE_NAMES

    entries = [entry for entry in files.iterdir() if not is_hidden(entry.name)]
    if len(entries) == 1 and entries[0].is_dir():
        return _dataset_entry(entries[0])
    tables = [entry for entry in entries if entry.is_file() and entry.suffix.lower() == ".csv"]
    if len(tables) == 1 and not any((files / split).is_file() for split in SPLIT_FILE_NAMES):
        return tables[0]
    return files


def _validated(temp: Path, relative: Path, name: str) -> dict[str, Any]:
    from audioclas.training.dataset import DatasetError, load_dataset

    try:
        dataset = load_dataset(temp / relative, roots=(temp,), quote=False)
    except DatasetError as error:  # its paths are of the hidden temporary folder: shown as in the dataset instead
        message = str(error).replace(f"{temp / 'files'}/", "").replace(str(temp / "files"), f"dataset {name!r}")
        raise RequestError(422, f"the archive is not a valid dataset: {message}") from None
    except AudioclasError as error:
        raise RequestError(422, f"the archive is not a valid dataset: {error}") from None
    audio = {example.recording for example in dataset.examples()}
    size = sum(path.stat().st_size for path in (temp / "files").rglob("*") if path.is_file())
    return {
        "path": relative.as_posix(),
        "layout": dataset.layout,
        "classes": dataset.classes,
        "multilabel": dataset.multilabel,
        "files": len(audio),
        "examples": {split: len(examples) for split, examples in dataset.splits.items()},
        "bytes": size,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _read_summary(folder: Path) -> dict[str, Any] | None:
    try:
        with open(folder / SUMMARY, "rb") as file:
            summary = json.loads(file.read(MAX_SUMMARY_BYTES))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _public(root: Path, name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """A dataset as the API shows it: ``path`` is what a train request's ``dataset`` takes."""
    return {"name": name, **summary, "path": str(root / name / summary.get("path", "files"))}
