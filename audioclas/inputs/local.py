"""Local paths: a file given explicitly (tried whatever its extension, expanded if it is an archive), a folder
(walked recursively) or a glob pattern (``**`` recursive); folders and patterns give only audio files, bounded
by ``InputLimits.max_folder_files``."""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from audioclas.errors import InputError, InputTooLarge
from audioclas.inputs.archives import expand_file
from audioclas.inputs.rules import is_audio_name, is_hidden
from audioclas.inputs.types import AudioSource, Workspace

GLOB_CHARS = re.compile(r"[*?[]")


def expand_path(name: str, workspace: Workspace) -> Iterator[AudioSource | InputError]:
    """The sources of the path ``name``: a folder's audio files (sorted, files of a folder before its subfolders,
    hidden ones skipped), an existing file, or the audio files a glob pattern matches (sorted)."""
    path, limit = Path(name), workspace.limits.max_folder_files
    try:
        is_dir, exists = path.is_dir(), path.exists() or path.is_symlink()
    except OSError as error:
        raise InputError(name, f"cannot read ({error.strerror or error})") from None
    if is_dir:
        yield from _files(walk_audio(path), name, limit, "no audio files in this folder")
    elif exists:
        yield from expand_file(path, name, workspace)
    elif GLOB_CHARS.search(name):
        matches = (Path(match) for match in glob.iglob(name, recursive=True))
        audio = (match for match in matches if is_audio_name(match) and match.is_file())
        first = sorted(itertools.islice(audio, limit + 1))
        yield from _files(first, name, limit, "no audio files match this pattern")
    else:
        raise InputError(name, "no such file or directory")


def walk_audio(folder: Path) -> Iterator[Path]:
    """Audio files under ``folder`` in sorted order, without following symlinked folders (no loops)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        for file in sorted(files):
            if is_audio_name(file) and not is_hidden(file):
                yield Path(root, file)


def _files(paths: Iterable[Path], name: str, limit: int, none_found: str) -> Iterator[AudioSource | InputError]:
    count = 0
    for count, path in enumerate(paths, start=1):
        if count > limit:
            raise InputTooLarge(name, f"more than {limit} audio files; the rest were skipped")
        yield AudioSource(str(path), path=path)
    if count == 0:
        raise InputError(name, none_found)
