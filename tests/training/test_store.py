"""Saved-model names: concurrent saves never replace each other, default names are unique, and a name is only
ever looked up under the models folder (never in the current directory)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from service_server import tiny_dataset

from audioclas.cli import main
from audioclas.training import TrainConfig, train
from audioclas.training.store import (
    NAME_PATTERN,
    ModelError,
    ModelExists,
    ModelNotFound,
    default_name,
    load_model,
    model_ref,
    models_dir,
    resolve_model,
    save_model,
)


@pytest.fixture
def leaves_no_models():
    """Remove what a test saved (and left in temporary folders) from the session's models folder."""
    yield
    for pattern in ("contested", ".tmp-contested-*", "replaced"):
        for folder in models_dir().glob(pattern):
            shutil.rmtree(folder)


def race(name: str, overwrite: bool) -> dict[str, object]:
    """Two saves of ``name`` that both pass the up-front existence check before either renames its folder."""
    both_written = threading.Barrier(2, timeout=30)
    outcomes: dict[str, object] = {}

    def save(who: str) -> None:
        def write(folder: Path) -> None:
            (folder / "model.json").write_text(who)
            both_written.wait()

        try:
            outcomes[who] = save_model(name, write, overwrite=overwrite)
        except ModelError as error:
            outcomes[who] = error

    threads = [threading.Thread(target=save, args=(who,)) for who in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.mark.usefixtures("leaves_no_models")
def test_concurrent_saves_of_one_name_keep_the_first_and_refuse_the_other() -> None:
    outcomes = race("contested", overwrite=False)
    winners = [who for who, outcome in outcomes.items() if isinstance(outcome, Path)]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, ModelExists)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert (models_dir() / "contested" / "model.json").read_text() == winners[0]  # the winner's files, intact
    message = str(losers[0])
    assert "'contested' was saved by another run meanwhile" in message
    kept = Path(message.split("this run's model is in ")[1].split(":")[0])  # the loser's work is not lost
    assert kept.parent == models_dir() and (kept / "model.json").read_text() != winners[0]


@pytest.mark.usefixtures("leaves_no_models")
def test_concurrent_overwrites_both_succeed_and_leave_one_whole_model() -> None:
    outcomes = race("replaced", overwrite=True)
    assert all(isinstance(outcome, Path) for outcome in outcomes.values()), outcomes
    assert (models_dir() / "replaced" / "model.json").read_text() in ("first", "second")
    assert not list(models_dir().glob(".trash-*")) and not list(models_dir().glob(".tmp-replaced-*"))


def test_default_names_are_unique_and_valid() -> None:
    names = [default_name() for _ in range(50)]
    assert len(set(names)) == 50
    assert all(NAME_PATTERN.fullmatch(name) for name in names)


def test_a_name_is_never_looked_up_in_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "model.json").write_text("{}")
    with pytest.raises(ModelNotFound, match="no saved model named 'here'"):
        resolve_model("here")
    with pytest.raises(ModelNotFound, match="no saved model named 'here'"):
        load_model("here")
    for name in ("./here", "here/", "../here", "..", "a\0b", str(tmp_path / "here"), ""):
        with pytest.raises(ModelError, match="not allowed"):
            load_model(name)


def test_the_command_line_reads_a_path_as_a_folder_and_a_name_as_a_name() -> None:
    assert model_ref("birds") == "birds" and model_ref("birds.v2") == "birds.v2"
    assert model_ref("./birds") == Path("birds") and model_ref("/srv/models/birds") == Path("/srv/models/birds")
    with pytest.raises(ModelError, match="is not a saved model folder"):
        load_model(Path("definitely-not-here"))


def test_the_command_line_uses_a_model_folder_given_as_a_path(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    data = tiny_dataset(shared_dir, tmp_path / "data")
    train(
        data,
        TrainConfig(name="moved-away", head="linear", epochs=3, early_stopping=0, val_fraction=0.0, tensorboard=False),
    )
    shutil.move(models_dir() / "moved-away", tmp_path / "mine")  # a model folder of the user's own
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "./mine", str(data), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 12
    assert main(["models", "show", "./mine", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == "mine"
    assert main(["models", "show", "mine"]) != 0  # a name: only looked up under the models folder
    assert "no saved model named 'mine'" in capsys.readouterr().err
