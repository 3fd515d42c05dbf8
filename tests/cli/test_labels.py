"""``audioclas labels``: where a class sits in the AudioSet ontology, and search over names and descriptions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def labels(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audioclas", "labels", *args], capture_output=True, text=True, timeout=120
    )


def test_search_dog_finds_the_sounds_dogs_make_with_parents_and_children() -> None:
    run = labels("dog", "--json")
    assert run.returncode == 0, run.stderr
    found = {x["name"]: x for x in json.loads(run.stdout)}
    assert {"Dog", "Bark", "Howl", "Growling", "Whimper (dog)", "Canidae, dogs, wolves"} <= set(found)
    dog = found["Dog"]
    assert (dog["index"], dog["id"], dog["match"]) == (74, "/m/0bt9lr", "name")
    assert dog["parents"] == ["Domestic animals, pets"] and "Growling" in dog["children"]
    assert found["Bark"]["match"] == "description" and found["Growling"]["match"] == "below"
    assert found["Howl"]["parents"] == ["Dog", "Canidae, dogs, wolves"]
    assert found["Bay"]["index"] is None  # in the ontology, not among the model's 527 classes


def test_table_shows_parents_children_and_where_it_was_found() -> None:
    run = labels("Whimper")
    assert run.returncode == 0, run.stderr
    assert "Whimper (dog)" in run.stdout and "Dog" in run.stdout and "found in" in run.stdout


def test_listing_without_search_is_the_models_classes_in_order() -> None:
    listed = json.loads(labels("--json").stdout)
    assert [x["index"] for x in listed] == list(range(527))
    assert listed[0]["name"] == "Speech" and listed[0]["parents"] == ["Human voice"] and "match" not in listed[0]


@pytest.mark.parametrize("search", [".*", "[", "(?i)dog", "\\d+", "\x1b[2J"])
def test_pattern_characters_are_literal_text(search: str) -> None:
    run = labels(search)
    assert run.returncode == 1 and "no AudioSet class matches" in run.stdout and run.stderr == ""
    assert json.loads(labels(search, "--json").stdout) == []
