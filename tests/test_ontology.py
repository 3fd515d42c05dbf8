"""The AudioSet ontology shipped with the package: its graph, its search, and that it loads without PyTorch."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from no_torch import run_without_torch

from audioclas.labels import audioset_labels
from audioclas.ontology import audioset_ontology

pytestmark = pytest.mark.unit


def names(nodes: list) -> list[str]:
    return [node.name for node in nodes]


def test_every_model_class_is_in_the_graph_with_its_index() -> None:
    ontology = audioset_ontology()
    assert len(ontology) == 632
    predicted = sorted((node.index, node.id, node.name) for node in ontology if node.index is not None)
    assert predicted == [(x.index, x.id, x.name) for x in audioset_labels()]
    voice = ontology.find("human voice")
    assert voice is not None and voice.index is None and voice.restrictions == ("abstract",)


def test_parents_children_and_descendants_of_dog() -> None:
    ontology = audioset_ontology()
    dog = ontology.find(" DOG ")
    assert dog is not None and dog.id == "/m/0bt9lr" and ontology.find("/m/0bt9lr") == dog
    assert names(ontology.parents(dog.id)) == ["Domestic animals, pets"]
    assert names(ontology.ancestors(dog.id)) == ["Domestic animals, pets", "Animal"]
    assert names(ontology.children(dog.id)) == ["Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)", "Bay"]
    animal = ontology.find("Animal")
    assert animal is not None and ontology.depth(animal.id) == 0 and ontology.depth(dog.id) == 2
    below_animal = ontology.descendants(animal.id)
    assert {"Dog", "Bark", "Growling", "Bird", "Chirp, tweet"} <= set(names(below_animal))
    assert len(below_animal) == len({node.id for node in below_animal})  # each once, though the graph is no tree


def test_a_class_with_several_parents() -> None:
    ontology = audioset_ontology()
    growling = ontology.find("Growling")
    assert growling is not None
    assert names(ontology.parents(growling.id)) == [
        "Dog",
        "Cat",
        "Roaring cats (lions, tigers)",
        "Canidae, dogs, wolves",
    ]
    assert all(ontology.depth(growling.id) > ontology.depth(node.id) for node in ontology.ancestors(growling.id))


def test_search_finds_names_descriptions_and_what_sits_below() -> None:
    hits = {hit.node.name: hit.match for hit in audioset_ontology().search("dog")}
    assert hits["Dog"] == "name" and hits["Canidae, dogs, wolves"] == "name"
    assert hits["Bark"] == hits["Howl"] == "description"
    assert hits["Growling"] == "below"  # its description speaks of animals; it sits below Dog
    assert [hit.match for hit in audioset_ontology().search("/M/0BT9LR")] == ["id"] + ["below"] * 7


@pytest.mark.parametrize("query", [".*", "[", "(dog|cat)", "\\", "%s", "*", "a" * 10_000, "\x00", "\x1b[2J"])
def test_search_text_is_plain_text(query: str) -> None:
    """Pattern syntax is not interpreted: nothing in the ontology contains these."""
    assert audioset_ontology().search(query) == []


def test_search_empty_or_blank_finds_every_class() -> None:
    ontology = audioset_ontology()
    assert len(ontology.search("")) == len(ontology.search("   ")) == 632


def test_literal_punctuation_is_found() -> None:
    assert "Roaring cats (lions, tigers)" in [hit.node.name for hit in audioset_ontology().search("(lions,")]


def test_close_matches_for_a_typo() -> None:
    assert audioset_ontology().close_matches("Dgo")[0] == "Dog"
    assert audioset_ontology().close_matches("x" * 100_000) == []


def test_shipped_file_keeps_only_the_fields_used_and_its_notice() -> None:
    data = resources.files("audioclas.data")
    entries = json.loads(data.joinpath("ontology.json").read_text("utf-8"))
    assert {tuple(entry) for entry in entries} == {("id", "name", "description", "child_ids", "restrictions")}
    notice = data.joinpath("ONTOLOGY-NOTICE.md").read_text("utf-8")
    assert "CC BY-SA 4.0" in notice and "Google" in notice


def test_loads_without_torch() -> None:
    run = run_without_torch(
        "from audioclas.ontology import audioset_ontology\n"
        "ontology = audioset_ontology()\n"
        "print(len(ontology), 'torch' in sys.modules, 'numpy' in sys.modules)\n"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["632", "False", "False"]
