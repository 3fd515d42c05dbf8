"""Listing a job's inputs up front, and cutting them into shards.

An input is named by a path-based id: the absolute path of a local file (so that a re-run from another folder, or a
worker on another node of a cluster with the same shared storage, names it the same way) or the URL as given.
Archive members and URLs expand inside the worker (their rows are named ``archive!member``), so listing only walks
folders and globs and never reads a file: it stays cheap for a million files, and no input is read twice.
Content ids (sha256) were the alternative, but hashing the whole corpus on the driver before scheduling would read it
twice, and URLs and archive members have no content before they are fetched; each row carries its sha256 instead,
computed by the worker from the bytes it decodes, which also lets a resumed job copy the rows of audio it already did
under another name instead of computing them again (see ``reuse``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from audioclas.errors import InputError
from audioclas.inputs import AudioSource, InputLimits, open_sources
from audioclas.inputs.urls import URL_PATTERN


@dataclass(frozen=True, order=True)
class Item:
    """One input of a job: ``id`` names it; ``expand`` says how the worker opens it.

    ``expand=True`` for what the user named (a file, which may be an archive, or a URL): it is opened like
    ``audioclas predict`` opens its arguments. ``expand=False`` for a file found in a folder or by a glob: it is one
    audio file, whatever its first bytes, again as ``predict`` treats it.
    """

    id: str
    expand: bool

    def as_input(self) -> str | AudioSource:
        """What ``open_sources`` gets for this item."""
        return self.id if self.expand else AudioSource(self.id, path=Path(self.id))


@dataclass(frozen=True)
class Shard:
    """A group of items processed, written and committed together; ``id`` is a hash of its items."""

    id: str
    items: tuple[Item, ...]

    @classmethod
    def of(cls, items: Iterable[Item]) -> Shard:
        items = tuple(items)
        digest = hashlib.sha256(json.dumps([[i.id, i.expand] for i in items]).encode()).hexdigest()
        return cls(digest[:24], items)

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "items": [[i.id, i.expand] for i in self.items]})

    @classmethod
    def from_json(cls, text: str) -> Shard:
        data = json.loads(text)
        return cls(data["id"], tuple(Item(id_, expand) for id_, expand in data["items"]))


def list_inputs(inputs: Iterable[str], limits: InputLimits = InputLimits()) -> tuple[list[Item], list[InputError]]:
    """(items sorted by id without duplicates, errors for inputs that name nothing usable).

    Folders and globs are walked now (as ``predict`` walks them: recursive, audio extensions, no hidden files);
    files and URLs are taken as they are.
    """
    items: dict[str, Item] = {}
    errors: list[InputError] = []
    for given in inputs:
        given = os.fspath(given)
        if URL_PATTERN.match(given):
            items.setdefault(given, Item(given, True))
        elif os.path.isfile(given):
            path = os.path.abspath(given)
            items.setdefault(path, Item(path, True))
        else:
            with open_sources([os.path.abspath(given)], limits) as found:  # walks; opens no file
                for source in found:
                    if isinstance(source, InputError):
                        errors.append(source.renamed(given))
                    else:  # a file of the folder or glob (its path: the name is only for display)
                        path = str(source.path)
                        items.setdefault(path, Item(path, path == os.path.abspath(given)))
    return sorted(items.values()), errors


def make_shards(items: list[Item], size: int) -> list[Shard]:
    """Consecutive groups of ``size`` items (the last one may be smaller)."""
    if size < 1:
        raise ValueError(f"shard size must be at least 1, not {size}")
    return [Shard.of(items[start : start + size]) for start in range(0, len(items), size)]
