"""The optional parts of the install (``pip install 'audioclas[EXTRA]'``): whether one is there, and a one-line
error naming it when it is not.

A plain install tags, embeds and lists labels; training needs ``[train]`` (PyTorch, scikit-learn, Pillow). The
check looks the packages up without importing them, so asking costs nothing (importing torch takes a second).
"""

from __future__ import annotations

import importlib.util

from audioclas.errors import AudioclasError

# The modules each extra provides that the code needs, by the name of the package that installs them.
EXTRAS: dict[str, dict[str, str]] = {
    "train": {"torch": "torch", "sklearn": "scikit-learn", "PIL": "pillow"},
}


class MissingExtra(AudioclasError):
    """A command or route needs an extra that this install lacks."""


def missing_extra(extra: str, what: str) -> str | None:
    """Why ``what`` (e.g. "training") cannot run here: the extra and its missing packages, or None if installed."""
    missing = [package for module, package in EXTRAS[extra].items() if not _installed(module)]
    if not missing:
        return None
    return f"{what} needs the [{extra}] extra ({', '.join(missing)} not installed): pip install 'audioclas[{extra}]'"


def require_extra(extra: str, what: str) -> None:
    """Raise ``MissingExtra`` (one line naming the extra) unless the ``extra`` is installed."""
    problem = missing_extra(extra, what)
    if problem:
        raise MissingExtra(problem)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refused it, or a broken entry in sys.modules
        return False
