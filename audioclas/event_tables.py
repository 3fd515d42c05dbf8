"""Events as the tables review tools open: Raven Pro selection tables and Audacity label tracks.

**Raven** (``.selections.txt``): tab-separated, one selection per event, the columns Raven needs (``Selection``,
``View``, ``Channel``, ``Begin Time (s)``, ``End Time (s)``, ``Low Freq (Hz)``, ``High Freq (Hz)``) then ``Label``,
``Id`` (the AudioSet id; empty for a custom model), ``Score`` (the peak) and ``Mean Score``. An event spans the whole
band the network hears: 0 to 16000 Hz (half its 32 kHz sample rate). A table of several inputs also has
``Begin File`` (the input as given) and ``File Offset (s)`` (the start within that file), and its begin and end
times run on one timeline through the inputs in order, as Raven shows a file list opened in that order.

**Audacity** (``.labels.txt``): a label track, ``start<TAB>end<TAB>label score`` a line, times in seconds. Audacity
imports one track per file, so a label file holds one input's events.

Every text field has its tabs and line breaks replaced by spaces, so that a row is always one line of the columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import IO

from audioclas.events import Event
from audioclas.predictions import Prediction

RAVEN_COLUMNS = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
)
RAVEN_FILE_COLUMNS = ("Begin File", "File Offset (s)")
RAVEN_EVENT_COLUMNS = ("Label", "Id", "Score", "Mean Score")
HIGH_FREQ_HZ = 16000  # the Nyquist frequency of the 32 kHz audio the network hears
SUFFIXES = {"raven": ".selections.txt", "audacity": ".labels.txt"}
_BREAKS = re.compile(r"[\t\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def write_raven(stream: IO[str], predictions: list[Prediction]) -> None:
    """One selection table of the events of ``predictions`` (with ``Begin File`` when there are several)."""
    several = len(predictions) > 1
    header = [*RAVEN_COLUMNS, *(RAVEN_FILE_COLUMNS if several else ()), *RAVEN_EVENT_COLUMNS]
    stream.write("\t".join(header) + "\n")
    selection, offset = 0, 0.0
    for prediction in predictions:
        for event in prediction.events or ():
            selection += 1
            begin, end = offset + event.start, offset + event.end
            row = [str(selection), "Spectrogram 1", "1", _seconds(begin), _seconds(end), "0", str(HIGH_FREQ_HZ)]
            if several:
                row += [_field(prediction.source), _seconds(event.start)]
            row += [_field(event.label), event.id or "", _score(event.score), _score(event.mean_score)]
            stream.write("\t".join(row) + "\n")
        offset += prediction.duration


def write_audacity(stream: IO[str], events: Iterable[Event]) -> None:
    """One input's events as an Audacity label track."""
    for event in events:
        label = f"{_field(event.label)} {_score(event.score)}"
        stream.write(f"{_seconds(event.start)}\t{_seconds(event.end)}\t{label}\n")


def table_name(source: str, fmt: str, taken: set[str]) -> str:
    """A file name for the table of input ``source``: its base name (an archive member's, a URL's last part) without
    the extension, anything but letters, digits, ``.``, ``-`` and ``_`` made ``_``, and the format's suffix; ``-2``,
    ``-3`` … when two inputs share a base name. The name chosen is added to ``taken``."""
    base = PurePosixPath(source.replace("\\", "/").split("!")[-1].split("?")[0]).name
    stem = re.sub(r"[^\w.-]", "_", base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base, flags=re.ASCII)
    stem = stem.lstrip(".")[:100] or "input"
    name, count = stem + SUFFIXES[fmt], 1
    while name.casefold() in taken:
        count += 1
        name = f"{stem}-{count}{SUFFIXES[fmt]}"
    taken.add(name.casefold())
    return name


def _field(text: str) -> str:
    return _BREAKS.sub(" ", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _score(value: float) -> str:
    return f"{value:.4f}"
