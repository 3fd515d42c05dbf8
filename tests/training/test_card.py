"""Model cards: the README.md every saved model gets, checked on a real model trained on FSDD digits (with
validation and test splits, fine-tuned, so both networks' metrics are on the card), read back by ``audioclas
models show`` (a process) and by ``GET /v2/models/NAME/`` (the real server on loopback); a model saved before
cards (no README.md) still has one, and a class name holding Markdown or HTML is shown as text."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from service_server import Server, george_split

from audioclas.training import TrainConfig, train
from audioclas.training.store import CARD_FILE, ModelError, model_card, read_card
from audioclas.training.store.card import escape, format_metric

HOSTILE = "<img src=x onerror=alert(1)> [click](http://evil.example) *one*"  # a class name: user input
DIGITS = ("zero", HOSTILE)
SPLITS = {"train": range(0, 5), "val": range(5, 8), "test": range(8, 11)}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A fine-tuned model on two of George's digits (split files: 5 train, 3 val, 3 test each), one of its classes
    named with Markdown and HTML."""
    root = tmp_path_factory.mktemp("card-digits")
    for split, indices in SPLITS.items():
        george_split(shared_dir, root, split, indices, len(DIGITS))
    (root / "classes.txt").write_text("\n".join(DIGITS) + "\n")
    config = TrainConfig(
        name="carded", finetune=True, finetune_epochs=1, finetune_batch_size=10, epochs=10, early_stopping=0
    )
    return train(root, config.model_copy(update={"tensorboard": False})).model.path


def _section(card: str, title: str) -> str:
    """The text of one ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.M | re.S)
    assert match, f"no section {title!r} in\n{card}"
    return match.group(1)


def _table(section: str) -> list[list[str]]:
    """The rows of the first Markdown table in ``section`` (header included), cells split on unescaped bars."""
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_the_card_is_saved_with_the_model_and_matches_model_json(model: Path) -> None:
    info = json.loads((model / "model.json").read_text())
    card = (model / CARD_FILE).read_text("utf-8")
    for title in ("Classes", "Data", "Training", "Metrics", "Backbone", "Intended use and limits"):
        _section(card, title)
    assert card.startswith("# carded\n") and "single-label classifier of 2 classes" in card
    assert "fine-tuned backbone" in card if info["backbone"]["finetuned"] else "frozen backbone" in card
    # classes with their examples per split, as model.json counts them
    header, *rows = _table(_section(card, "Classes"))
    assert header == ["class", "train examples", "val examples", "test examples"]
    counts = info["dataset"]["counts"]
    assert rows == [
        [escape(name), *(str(counts[split][index]) for split in ("train", "val", "test"))]
        for index, name in enumerate(DIGITS)
    ]
    assert counts["train"] == [5, 5] and counts["test"] == [3, 3]
    assert "- test: 6 examples from 6 audio files" in _section(card, "Data")
    # every split's metrics, and both networks' (model.json's numbers, to four decimals)
    header, *rows = _table(_section(card, "Metrics"))
    by_split = {row[0]: dict(zip(header[1:], row[1:])) for row in rows}
    expected = {split: info["metrics"][split] for split in ("val", "test")}
    expected |= {
        f"{net} {split}": info["metrics"][net][split] for net in ("frozen", "finetuned") for split in ("val", "test")
    }
    assert set(by_split) == set(expected)
    for split, values in expected.items():
        for name, value in values.items():
            assert by_split[split][escape(name)] == format_metric(value), (split, name)
    assert "0.0000" not in by_split["test"]["accuracy"]
    # the options that matter, the backbone, its licence and the limits
    training = _section(card, "Training")
    assert (
        "| finetune_epochs | 1 |" in training and "| epochs | 10 |" in training and "| head | attention |" in training
    )
    assert f"- kept the frozen head: {escape(info['finetune']['selection'])}" in training
    backbone = _section(card, "Backbone")
    assert info["backbone"]["sha256"] in backbone and "MIT" in backbone and "CC BY 4.0" in backbone
    limits = _section(card, "Intended use and limits")
    assert f"Reads {info['window']['window']:g} s windows" in limits and "only on this dataset" in limits


def test_a_class_name_cannot_inject_markdown_or_html(model: Path) -> None:
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render((model / CARD_FILE).read_text("utf-8"))
    assert "<img" not in html and "<a " not in html and "<em>one</em>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; [click](http://evil.example) *one*" in html  # shown as typed


@pytest.mark.unit
def test_escaping_keeps_every_character_literal() -> None:
    from markdown_it import MarkdownIt

    name = "a|b `c` <d> [e](f) _g_ #h \\i &amp; ![j](k)\nnext line"
    card = model_card({"name": name, "classes": [name], "dataset": {"counts": {"train": [1]}}})
    rendered = MarkdownIt("commonmark").enable("table").render(card)
    assert (
        "<a " not in rendered and "<img" not in rendered and "<code>c</code>" not in rendered and "<em>" not in rendered
    )
    assert "<h1>a|b `c` &lt;d&gt; [e](f) _g_ #h \\i &amp;amp; ![j](k) next line</h1>" in rendered
    assert "<td>a|b `c` &lt;d&gt;" in rendered  # one cell: the bar is escaped too


@pytest.mark.unit
def test_a_multilabel_card_shows_each_class_threshold() -> None:
    info = {
        "name": "tags",
        "multilabel": True,
        "classes": ["bird", "dog"],
        "thresholds": [0.25, 0.625],
        "dataset": {"counts": {"train": [4, 3], "test": [2, 1]}},
        "metrics": {"test": {"examples": 3, "mAP": 0.875, "micro_f1": 0.5}},
    }
    card = model_card(info)
    assert "multi-label classifier of 2 classes" in card and "still gets no label or a wrong one" in card
    assert _table(_section(card, "Classes")) == [
        ["class", "train examples", "test examples", "threshold"],
        ["bird", "4", "2", "0.2500"],
        ["dog", "3", "1", "0.6250"],
    ]
    assert _table(_section(card, "Metrics")) == [
        ["split", "examples", "mAP", "micro\\_f1"],
        ["test", "3", "0.8750", "0.5000"],
    ]


def test_a_model_without_a_card_gets_one_built(model: Path, tmp_path: Path) -> None:
    old = tmp_path / "old-model"
    shutil.copytree(model, old)
    (old / CARD_FILE).unlink()  # as a model saved before cards
    assert read_card(old) == (model / CARD_FILE).read_text("utf-8")
    (old / CARD_FILE).mkdir()  # not a regular file: ignored, built again
    assert read_card(old) == (model / CARD_FILE).read_text("utf-8")
    info = json.loads((old / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({**info, "dataset": {"counts": {"train": 3}}}))
    with pytest.raises(ModelError, match=re.escape("old-model is damaged (TypeError in model.json)")):
        read_card(old)  # one line naming the folder, as for any damaged model.json


def _show(home: Path, name: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "audioclas", "models", "show", name],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AUDIOCLAS_HOME": str(home), "COLUMNS": "200"},
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
    return run.stdout


def test_models_show_prints_the_card(model: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(model, home / "models" / "carded")
    shutil.copytree(model, home / "models" / "uncarded")
    (home / "models" / "uncarded" / CARD_FILE).unlink()
    for name in ("carded", "uncarded"):
        out = _show(home, name)
        for text in ("Classes", "Metrics", "Intended use and limits", "EfficientAT mn04_as", HOSTILE, "zero"):
            assert text in out, (name, text)
        assert f"path {home / 'models' / name}" in out and "test per class" in out
        assert "\\" not in out  # rendered, not the Markdown source


def test_the_model_route_returns_the_card(model: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(model, home / "models" / "carded")
    shutil.copytree(model, home / "models" / "uncarded")
    (home / "models" / "uncarded" / CARD_FILE).unlink()
    card = (model / CARD_FILE).read_text("utf-8")
    with Server(home) as server, server.client() as api:
        for name in ("carded", "uncarded"):
            answer = api.get(f"/v2/models/{name}/")
            assert answer.status_code == 200 and answer.json()["card"] == card
        assert all(entry["card"] is None for entry in api.get("/v2/models/").json()["models"])  # one at a time
        assert api.get("/v2/models/audioset/").json()["card"] is None
