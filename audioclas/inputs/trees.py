"""Whole archives extracted as folder trees: an uploaded dataset keeps its member paths, with every bound and
refusal of predict's archives (``archives``: members, bytes, compression ratio, links, special files, ``..``,
absolute names, tar header bombs) and a few more that only matter once member names become paths.

    extract_tree(Path("upload"), "digits.zip", Path("/data/uploads/.tmp/files"), limits)
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from audioclas.errors import InputError
from audioclas.inputs.archives import expand_archive
from audioclas.inputs.types import InputLimits, Workspace

MAX_PATH_PART = 255  # bytes in one name (the usual file-system limit), so that long names fail here, clearly
MAX_DEPTH = 32


class TreeWorkspace(Workspace):
    """Extracts every file member (hidden files aside) to its own path below ``folder``, never twice."""

    def wants(self, member: str) -> bool:
        return True

    def new_path(self, member: str = "", name: str = "") -> Path:
        parts = PurePosixPath(member.replace("\\", "/")).parts
        if not parts or not all(part.isprintable() for part in parts):
            raise InputError(name, "member name is empty or holds control characters")
        if len(parts) > MAX_DEPTH or any(
            len(part.encode("utf-8", "surrogateescape")) > MAX_PATH_PART for part in parts
        ):
            raise InputError(name, f"member path is deeper than {MAX_DEPTH} folders or has a name over 255 bytes")
        target = self.folder.joinpath(*parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # a file of the same name as one of its folders
            raise InputError(name, "member path clashes with another member") from None
        if target.exists() or target.is_symlink():
            raise InputError(name, "member appears twice in the archive (or clashes with a folder)")
        self.file_count += 1
        return target


def extract_tree(archive: Path, name: str, folder: Path, limits: InputLimits) -> int:
    """Extract every file of the zip or tar ``archive`` (shown as ``name``) below the existing, empty ``folder``;
    the number of files. Any member refused refuses the whole archive (``InputError``, one line); the caller
    removes ``folder``."""
    workspace = TreeWorkspace(folder, limits)
    for item in expand_archive(archive, name, workspace):
        if isinstance(item, InputError):
            raise item
    if not workspace.file_count:
        raise InputError(name, "the archive holds no files")
    return workspace.file_count
