"""Writing predictions for people (a Rich table) and for scripts (JSON, JSON Lines, CSV).

Machine formats share one schema per input (see the README, "Output formats"):
``{"input", "duration", "labels": [{"index", "id", "name", "score"}], "windows": [{"start", "end",
"labels"}]}`` — ``windows`` only with the timeline; an input that failed is ``{"input", "error"}``.

CSV has one row per label: ``input, duration, [start, end,] rank, index, id, label, score, error``. ``start`` and
``end`` (seconds) come with the timeline: each input's clip-level rows come first, with ``start`` and ``end``
empty, then the rows of each window. A clip or window with no label above the threshold still has one row, its
label columns empty; an input that failed has one row with only ``input`` and ``error``.

With events (``--events``), JSON and JSON Lines add ``"events": [{"start", "end", "label", "id", "score",
"mean_score"}]`` to each input, and CSV has one row per event instead of the label rows: ``input, start, end, label,
id, score, mean_score, error`` (an input with no event still has one row, its event columns empty). ``raven`` and
``audacity`` are event tables (``event_tables``); the table for people lists the events under the labels.

Without ``-f``, the format of an output file follows its extension (``EXTENSIONS``: ``.selections.txt`` is a Raven
table, ``.labels.txt`` an Audacity label file, any other ``.txt`` the table for people); another extension is a
usage error rather than a guess.
"""

from __future__ import annotations

import csv
import errno
import io
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
from audioclas.event_tables import table_name, write_audacity, write_raven
from audioclas.fileio import atomic_open
from audioclas.predictions import LabelScore, Prediction

Format = Literal["table", "json", "jsonl", "csv", "raven", "audacity"]
FORMATS: tuple[str, ...] = ("table", "json", "jsonl", "csv", "raven", "audacity")
EVENT_FORMATS = ("raven", "audacity")  # tables of events only: asking for one turns events on
EXTENSIONS: dict[str, Format] = {
    ".selections.txt": "raven",
    ".labels.txt": "audacity",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "table",
}
EVENT_CSV_COLUMNS = ("input", "start", "end", "label", "id", "score", "mean_score", "error")


def output_format(given: str | None, output: Path | None) -> Format:
    """The format asked for with ``-f``; else the one of the output file's extension; else the table."""
    if given is not None:
        if given not in FORMATS:
            raise OptionError(f"format must be one of {', '.join(FORMATS)}, not {given!r}")
        return cast(Format, given)  # one of FORMATS, checked above
    if output is None:
        return "table"
    name = output.name.lower()
    for extension, fmt in EXTENSIONS.items():  # the double extensions first
        if name.endswith(extension):
            return fmt
    known = ", ".join(EXTENSIONS)
    raise OptionError(f"cannot tell the format of {output} from its extension ({known}): give -f")


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


class TableFolder:
    """``--tables DIR``: each input's events as a table of its own in ``folder`` (``event_tables.table_name``), each
    file written completely or not at all; the folder is made if missing."""

    def __init__(self, folder: Path, fmt: Format) -> None:
        if fmt not in EVENT_FORMATS:
            raise OptionError(f"--tables writes Raven or Audacity tables, not {fmt}: give -f raven or -f audacity")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AudioclasError(f"cannot make the folder {folder}: {error.strerror or error}") from None
        self.folder, self.fmt = folder, fmt
        self._taken: set[str] = set()

    def write(self, result: Prediction | InputError) -> None:
        if isinstance(result, InputError):
            return
        path = self.folder / table_name(result.source, self.fmt, self._taken)
        with open_output(path) as stream:
            if self.fmt == "raven":
                write_raven(stream, [result])
            else:
                write_audacity(stream, result.events or ())


def result_dict(result: Prediction | InputError, timeline: bool) -> dict[str, Any]:
    if isinstance(result, InputError):
        return {"input": result.source, "error": result.problem}
    return result.to_dict(timeline)


def render(results: list[Prediction | InputError], fmt: str, timeline: bool, events: bool) -> str:
    """``results`` as one document in ``fmt`` (not the table), as the command line writes it: for the service."""
    if fmt not in FORMATS or fmt == "table":
        raise OptionError(f"format must be one of json, jsonl, csv, raven, audacity, not {fmt!r}")
    stream = io.StringIO()
    writer = ResultWriter(stream, cast(Format, fmt), timeline, events=events)
    for result in results:
        writer.write(result)
    writer.close()
    return stream.getvalue()


class _Console(Console):
    """Lets a closed pipe through as ``BrokenPipeError``, as the other formats do; Rich itself would exit with
    status 1, which says that an input failed."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class ResultWriter:
    """Writes results one at a time as they arrive; ``close()`` finishes the document (a Raven table, which numbers
    its selections through every input, is written then)."""

    def __init__(
        self, stream: IO[str], fmt: Format, timeline: bool, console: Console | None = None, events: bool = False
    ) -> None:
        if events and timeline and fmt == "csv":
            raise OptionError("CSV holds either the timeline's rows or the events' rows: give one (JSON holds both)")
        self.stream, self.fmt, self.timeline, self.events = stream, fmt, timeline, events or fmt in EVENT_FORMATS
        self.console = console or _Console(file=stream, highlight=False, soft_wrap=True)
        self._json_items: list[dict[str, Any]] = []
        self._predictions: list[Prediction] = []  # raven: written at close; audacity: at most one
        self._csv = csv.writer(stream) if fmt == "csv" else None
        if self._csv is not None and self.events:
            self._csv.writerow(EVENT_CSV_COLUMNS)
        elif self._csv is not None:
            start = ["input", "duration", "start", "end"] if timeline else ["input", "duration"]
            self._csv.writerow([*start, "rank", "index", "id", "label", "score", "error"])

    def write(self, result: Prediction | InputError) -> None:
        if self.fmt == "json":
            self._json_items.append(result_dict(result, self.timeline))
        elif self.fmt == "jsonl":
            self.stream.write(json.dumps(result_dict(result, self.timeline), ensure_ascii=False) + "\n")
            self.stream.flush()
        elif self.fmt == "csv" and self.events:
            self._write_event_csv(result)
        elif self.fmt == "csv":
            self._write_csv(result)
        elif isinstance(result, InputError):  # table, raven, audacity: errors go to stderr only
            return
        elif self.fmt == "raven":
            self._predictions.append(result)
        elif self.fmt == "audacity":
            if self._predictions:
                raise AudioclasError("an Audacity label file holds one input's events: give one input, or --tables DIR")
            self._predictions.append(result)
            write_audacity(self.stream, result.events or ())
        else:
            self._write_table(result)

    def close(self) -> None:
        if self.fmt == "raven":
            write_raven(self.stream, self._predictions)
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

    def _write_event_csv(self, result: Prediction | InputError) -> None:
        assert self._csv is not None
        if isinstance(result, InputError):
            self._csv.writerow([result.source, "", "", "", "", "", "", result.problem])
            return
        if not result.events:  # no event: the input is still listed
            self._csv.writerow([result.source, "", "", "", "", "", "", ""])
        for event in result.events or ():
            score, mean = f"{event.score:.6f}", f"{event.mean_score:.6f}"
            start, end = round(event.start, 3), round(event.end, 3)
            self._csv.writerow([result.source, start, end, event.label, event.id or "", score, mean, ""])

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
        if result.events is not None:
            events = Table(title="events", title_justify="left")
            for column in ("start", "end", "label", "score", "mean"):
                events.add_column(column, justify="left" if column == "label" else "right")
            for event in result.events:
                times = (_clock(event.start), _clock(event.end))
                events.add_row(*times, event.label, f"{event.score:.3f}", f"{event.mean_score:.3f}")
            if not result.events:
                events.add_row("", "", "[dim](no event above the threshold)[/]", "", "")
            self.console.print(events)


def _bar(score: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, score)) * width)
    return "[green]" + "█" * filled + "[/][dim]" + "·" * (width - filled) + "[/]"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"
