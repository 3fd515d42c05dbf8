"""Writing predictions for people (a Rich table) and for scripts (JSON, JSON Lines, CSV).

Machine formats share one schema per input (see the README, "Output formats"):
``{"input", "duration", "labels": [{"index", "id", "name", "score"}], "windows": [{"start", "end",
"labels"}]}`` — ``windows`` only with the timeline; an input that failed is ``{"input", "error"}``.

CSV has one row per label: ``input, duration, [start, end,] rank, index, id, label, score, error``. ``start`` and
``end`` (seconds) come with the timeline: each input's clip-level rows come first, with ``start`` and ``end``
empty, then the rows of each window. A clip or window with no label above the threshold still has one row, its
label columns empty; an input that failed has one row with only ``input`` and ``error``.

Without ``-f``, the format of an output file follows its extension (``EXTENSIONS``); another extension is a
usage error rather than a guess.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, cast

from rich.console import Console
from rich.table import Table

from audioclas.errors import AudioclasError, InputError, OptionError
from audioclas.fileio import atomic_open
from audioclas.predictions import LabelScore, Prediction

Format = Literal["table", "json", "jsonl", "csv"]
FORMATS: tuple[str, ...] = ("table", "json", "jsonl", "csv")
EXTENSIONS: dict[str, Format] = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "table"}


def output_format(given: str | None, output: Path | None) -> Format:
    """The format asked for with ``-f``; else the one of the output file's extension; else the table."""
    if given is not None:
        if given not in FORMATS:
            raise OptionError(f"format must be one of {', '.join(FORMATS)}, not {given!r}")
        return cast(Format, given)  # one of FORMATS, checked above
    if output is None:
        return "table"
    try:
        return EXTENSIONS[output.suffix.lower()]
    except KeyError:
        known = ", ".join(EXTENSIONS)
        raise OptionError(f"cannot tell the format of {output} from its extension ({known}): give -f") from None


@contextmanager
def open_output(path: Path | None) -> Iterator[IO[str]]:
    """Standard output, or ``path``, written completely or not at all; a failed write (a full disk) is one line
    naming the file. A closed pipe (``BrokenPipeError``) goes through: the command line stops quietly on it."""
    if path is None:
        yield sys.stdout
        return
    try:
        with atomic_open(path, encoding="utf-8", newline="") as stream:
            yield stream
    except BrokenPipeError:
        raise
    except OSError as error:
        raise AudioclasError(f"cannot write {path}: {error.strerror or error}") from None


def result_dict(result: Prediction | InputError, timeline: bool) -> dict[str, Any]:
    if isinstance(result, InputError):
        return {"input": result.source, "error": result.problem}
    return result.to_dict(timeline)


class _Console(Console):
    """Lets a closed pipe through as ``BrokenPipeError``, as the other formats do; Rich itself would exit with
    status 1, which says that an input failed."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class ResultWriter:
    """Writes results one at a time as they arrive; ``close()`` finishes the document."""

    def __init__(self, stream: IO[str], fmt: Format, timeline: bool, console: Console | None = None) -> None:
        self.stream, self.fmt, self.timeline = stream, fmt, timeline
        self.console = console or _Console(file=stream, highlight=False, soft_wrap=True)
        self._json_items: list[dict[str, Any]] = []
        self._csv = csv.writer(stream) if fmt == "csv" else None
        if self._csv is not None:
            start = ["input", "duration", "start", "end"] if timeline else ["input", "duration"]
            self._csv.writerow([*start, "rank", "index", "id", "label", "score", "error"])

    def write(self, result: Prediction | InputError) -> None:
        if self.fmt == "json":
            self._json_items.append(result_dict(result, self.timeline))
        elif self.fmt == "jsonl":
            self.stream.write(json.dumps(result_dict(result, self.timeline), ensure_ascii=False) + "\n")
            self.stream.flush()
        elif self.fmt == "csv":
            self._write_csv(result)
        elif not isinstance(result, InputError):  # table: errors go to stderr only
            self._write_table(result)

    def close(self) -> None:
        if self.fmt == "json":
            json.dump(self._json_items, self.stream, ensure_ascii=False, indent=2)
            self.stream.write("\n")
        self.stream.flush()

    def _write_csv(self, result: Prediction | InputError) -> None:
        assert self._csv is not None
        empty = ["", ""] if self.timeline else []  # start and end of the clip-level rows
        if isinstance(result, InputError):
            self._csv.writerow([result.source, "", *empty, "", "", "", "", "", result.problem])
            return
        rows: list[tuple[list[Any], list[LabelScore]]] = [(empty, result.labels)]
        if self.timeline:
            rows += [([round(w.start, 3), round(w.end, 3)], w.labels) for w in result.windows]
        start = [result.source, round(result.duration, 3)]
        for prefix, labels in rows:
            if not labels:  # nothing above the threshold: the clip or window is still listed
                self._csv.writerow([*start, *prefix, "", "", "", "", "", ""])
            for rank, label in enumerate(labels, 1):
                self._csv.writerow(
                    [*start, *prefix, rank, label.index, label.id or "", label.name, f"{label.score:.6f}", ""]
                )

    def _write_table(self, result: Prediction) -> None:
        table = Table(title=f"{result.source}  ({_clock(result.duration)})", title_justify="left", expand=False)
        table.add_column("label")
        table.add_column("score", justify="right")
        table.add_column("", min_width=20)
        for label in result.labels:
            table.add_row(label.name, f"{label.score:.3f}", _bar(label.score))
        if not result.labels:
            table.add_row("[dim](no label above the threshold)[/]", "", "")
        self.console.print(table)
        if result.audioset is not None:
            self._write_table(result.audioset)
        if self.timeline:
            timeline = Table(title="timeline", title_justify="left")
            timeline.add_column("window")
            timeline.add_column("top labels")
            for window in result.windows:
                tags = ", ".join(f"{x.name} {x.score:.2f}" for x in window.labels) or "[dim]-[/]"
                timeline.add_row(f"{_clock(window.start)}–{_clock(window.end)}", tags)
            self.console.print(timeline)


def _bar(score: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, score)) * width)
    return "[green]" + "█" * filled + "[/][dim]" + "·" * (width - filled) + "[/]"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"
