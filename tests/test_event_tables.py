"""Raven and Audacity writers on hand-made events: names that would break a row, file names, format inference."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from audioclas.errors import OptionError
from audioclas.event_tables import table_name, write_audacity, write_raven
from audioclas.events import Event
from audioclas.output import output_format
from audioclas.predictions import Prediction

pytestmark = pytest.mark.unit

HOSTILE = "bird\tcall\nSelection\r2"  # a custom class name with a tab and line breaks


def prediction(source: str, duration: float, events: list[Event]) -> Prediction:
    empty = np.zeros((0, 1), dtype=np.float32)
    return Prediction(source, duration, [], [], np.zeros(1, dtype=np.float32), empty, events=events)


def test_a_label_with_tabs_and_line_breaks_stays_one_row_of_the_columns() -> None:
    event = Event(1.0, 2.5, HOSTILE, None, 0.9, 0.8)
    raven = io.StringIO()
    write_raven(raven, [prediction("a.wav", 3.0, [event])])
    (row,) = csv.DictReader(io.StringIO(raven.getvalue()), delimiter="\t")
    assert row["Label"] == "bird call Selection 2" and row["Id"] == "" and row["Begin Time (s)"] == "1.000"
    audacity = io.StringIO()
    write_audacity(audacity, [event])
    assert audacity.getvalue() == "1.000\t2.500\tbird call Selection 2 0.9000\n"


def test_an_empty_table_still_has_its_header() -> None:
    raven = io.StringIO()
    write_raven(raven, [prediction("a.wav", 3.0, [])])
    assert raven.getvalue().startswith("Selection\tView\tChannel\tBegin Time (s)") and raven.getvalue().count("\n") == 1


def test_table_names_are_safe_base_names_numbered_on_collision() -> None:
    taken: set[str] = set()
    names = [
        table_name(source, "raven", taken)
        for source in ["a/night.wav", "b/night.flac", "x.zip!dir/c d.mp3", "https://h/p/e.ogg?x=1", "../..", ".wav"]
    ]
    assert names == [
        "night.selections.txt",
        "night-2.selections.txt",
        "c_d.selections.txt",
        "e.selections.txt",
        "input.selections.txt",
        "wav.selections.txt",
    ]
    assert table_name("night.wav", "audacity", set()) == "night.labels.txt"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("x.selections.txt", "raven"),
        ("x.Selections.TXT", "raven"),
        ("x.labels.txt", "audacity"),
        ("x.txt", "table"),
        ("x.csv", "csv"),
    ],
)
def test_the_format_follows_the_double_extension(name: str, fmt: str) -> None:
    assert output_format(None, Path(name)) == fmt


def test_an_unknown_extension_is_not_guessed() -> None:
    with pytest.raises(OptionError, match="give -f"):
        output_format(None, Path("x.tsv"))
