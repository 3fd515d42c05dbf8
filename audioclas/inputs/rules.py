"""The one home of the rules on names and files that every reader of user data follows: tagging inputs (folders,
globs, archive members) and training datasets alike.

- ``is_audio_name``: the audio extensions a folder walk, glob or archive takes (a file named explicitly is tried
  whatever its extension);
- ``is_hidden``: names skipped in folders and archives (``.*`` and macOS's ``__MACOSX``);
- ``unsafe_relative_path``: why a name from data (an archive member, a dataset line) must not be taken as a path
  below a folder;
- ``open_input_file``: only regular files are opened (``fileio.open_regular``), every problem an ``InputError``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from audioclas.errors import InputError
from audioclas.fileio import NotRegularFileError, open_regular

# Containers and codecs FFmpeg decodes, as their files are commonly named.
AUDIO_EXTENSIONS = frozenset(
    [
        ".wav",
        ".wave",
        ".w64",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".spx",
        ".m4a",
        ".aac",
        ".ac3",
        ".wma",
        ".aiff",
        ".aif",
        ".aifc",
        ".wv",
        ".ape",
        ".webm",
        ".mp4",
        ".mkv",
        ".mka",
        ".mov",
        ".avi",
        ".3gp",
        ".amr",
        ".caf",
        ".au",
        ".snd",
    ]
)
HIDDEN_FOLDERS = frozenset({"__MACOSX"})  # resource forks a zip made on macOS carries beside the real files
_SEPARATORS = re.compile(r"[/\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_audio_name(name: str | os.PathLike[str]) -> bool:
    """Whether ``name`` (a file name or path) ends with an audio extension, in any case."""
    return os.path.splitext(os.fspath(name))[1].lower() in AUDIO_EXTENSIONS


def is_hidden(name: str) -> bool:
    """Whether any part of ``name`` (split at ``/`` and ``\\``) is hidden: starts with a dot (``.`` and ``..`` are
    not hidden) or is ``__MACOSX``."""
    return any(
        (part.startswith(".") and part not in (".", "..")) or part in HIDDEN_FOLDERS for part in _SEPARATORS.split(name)
    )


def unsafe_relative_path(text: str) -> str | None:
    """Why ``text`` cannot stand for a path inside a folder, or None: it holds a NUL byte, is absolute (``/x``,
    ``\\\\server\\x``, ``C:x``) or has a ``..`` part (even one that would come back inside: the rule stays simple).
    Backslashes count as separators, so a name made on Windows is judged as Windows would read it."""
    if "\0" in text:
        return "contains a NUL byte"
    if PurePosixPath(text.replace("\\", "/")).is_absolute() or _DRIVE.match(text):
        return "absolute"
    if ".." in _SEPARATORS.split(text):
        return "contains '..'"
    return None


def open_input_file(path: Path, name: str) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (a FIFO or device could block a reader forever or never
    end); otherwise an ``InputError`` naming ``name``."""
    try:
        return open_regular(path)
    except IsADirectoryError:
        raise InputError(name, "is a folder, not a file") from None
    except FileNotFoundError:
        raise InputError(name, "no such file or directory") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except NotRegularFileError as error:
        raise InputError(name, error.strerror or str(error)) from None
    except OSError as error:
        raise InputError(name, f"cannot read ({error.strerror or error})") from None
