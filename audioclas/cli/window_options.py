"""The window options that ``predict`` and ``embed`` share: one definition, so their help and defaults agree."""

from __future__ import annotations

import argparse


def add_window_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The "windows" group with ``--window``, ``--hop`` and ``--pad`` (None when not given: the model's, or the
    defaults of ``WindowRequest``); a command adds its own options to the group it returns."""
    windows = parser.add_argument_group("windows")
    windows.add_argument(
        "--window",
        type=float,
        default=None,
        help="window length in seconds (default 10, as trained; with --model: the model's, and no other)",
    )
    windows.add_argument(
        "--hop",
        type=float,
        default=None,
        help="seconds between window starts (default: the window; with --model: the model's)",
    )
    windows.add_argument(
        "--pad",
        choices=("loop", "zeros"),
        default=None,
        help="fill a clip shorter than a window by looping it (default) or with silence "
        "(with --model: the model's, and no other)",
    )
    return windows
