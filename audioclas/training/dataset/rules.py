"""Which files a dataset may name: audio extensions, hidden names, and relative paths that stay inside the data.

Tagging applies the same kind of rules to its inputs (``audioclas.sources``); these are the dataset readers' copy,
kept here alone so that both can come to share one home.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

AUDIO_SUFFIXES = frozenset(
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .aac .wma .aif .aiff .aifc .au .snd .caf .amr .ac3 .mka "
    ".webm .mp4 .mkv .mov .avi .w64 .wv .ape .spx".split())


def is_hidden(name: str) -> bool:
    """A file or folder name that a folder walk skips (``.git``, ``.DS_Store``)."""
    return name.startswith(".")


def audio_files(folder: Path) -> list[Path]:
    """The audio files below ``folder`` (sorted), none of them hidden or in a hidden folder."""
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file()
                  and not any(is_hidden(part) for part in path.relative_to(folder).parts))


def inside(root: Path, relative: str) -> Path | None:
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
