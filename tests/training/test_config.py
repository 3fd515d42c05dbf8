"""``TrainConfig`` is the one description of the training options: every edge (CLI flags, TOML, REST body, job
worker, DEEPaaS) builds it or a model derived from it, and its checks and messages are the same everywhere."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from audioclas.training.config import ConfigError, TrainConfig, TrainOptions, make_config, read_config_file

pytestmark = pytest.mark.unit


def test_invalid_values_are_refused_on_construction_and_the_config_is_frozen() -> None:
    with pytest.raises(ValidationError, match=re.escape("epochs must be 1..100000, not 0")):
        TrainConfig(epochs=0)
    with pytest.raises(ValidationError, match="finetune needs the audio: it cannot use from_embeddings"):
        TrainConfig(finetune=True, from_embeddings="/emb")
    with pytest.raises(ValidationError, match=re.escape("hop must be 0.1 s..the window, not 0.5")):
        TrainConfig(window=0.3, hop=0.5)
    config = TrainConfig(head="mlp")
    with pytest.raises(ValidationError):
        config.epochs = 0  # type: ignore[misc]
    assert config.head_dropout == 0.2 and TrainConfig(head="linear").head_dropout == 0.0


def test_every_problem_is_one_line_naming_the_option() -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(epochz=3, head="transformer", dropout=1, lr=0.0, early_stopping=-1, multilabel="yes")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("invalid training options: ")
    for problem in (
        "unknown option 'epochz' (did you mean 'epochs'?)",
        "head must be linear, mlp or attention, not 'transformer'",
        "dropout must be in [0, 1), not 1.0",
        "lr must be in (0, 10], not 0.0",
        "early_stopping must be 0 (off) or more, not -1",
        "multilabel = 'yes' has the wrong type (true or false expected)",
    ):
        assert problem in message
    assert len(make_config(name="x" * 500).name or "") == 500  # long values are fine; only a refused one is cut
    with pytest.raises(ConfigError) as caught:
        make_config(head="x" * 10_000)
    assert len(str(caught.value)) < 200  # a refused value is quoted in part only


def test_the_config_crosses_a_process_boundary_whole() -> None:
    config = make_config(data="/data", head="linear", window=0.3, hop=0.1, pad="zeros", lr=0.5)
    assert TrainConfig.model_validate(config.model_dump()) == config
    assert TrainConfig.model_validate_json(config.model_dump_json()) == config


def test_the_rest_body_is_the_options_model() -> None:
    from audioclas.service.schemas import TrainRequest

    assert issubclass(TrainRequest, TrainOptions)
    with pytest.raises(ValidationError, match=re.escape("epochs must be 1..100000, not 0")):
        TrainRequest(dataset="/data", epochs=0)
    with pytest.raises(ValidationError, match="unknown option 'data' \\(did you mean 'dataset'\\?\\)"):
        TrainRequest(data="/data")
    epochs = TrainRequest.model_json_schema()["properties"]["epochs"]  # the bounds /docs shows
    assert (epochs["minimum"], epochs["maximum"], epochs["default"]) == (1, 100_000, 100)


def test_the_cli_and_deepaas_offer_every_option() -> None:
    pytest.importorskip("webargs")
    from audioclas import deepaas_adapter
    from audioclas.cli import build_parser
    from audioclas.cli.train import OPTION_NAMES, config_from_args

    options = set(TrainOptions.model_fields)
    assert set(OPTION_NAMES) == options
    args = build_parser().parse_args(["train", "/data", "--head", "mlp", "--lr", "0.01", "--no-tensorboard"])
    assert config_from_args(args) == TrainConfig(data="/data", head="mlp", lr=0.01, tensorboard=False)
    arguments = deepaas_adapter.get_train_args()
    assert set(arguments) == options | {"dataset"}
    given = {"epochs": "3", "lr": "0.5", "finetune": "true"}  # as a form sends them
    assert {name: arguments[name].deserialize(value) for name, value in given.items()} == {
        "epochs": 3,
        "lr": 0.5,
        "finetune": True,
    }


def test_config_file_and_flags(tmp_path) -> None:
    path = tmp_path / "train.toml"
    path.write_text('data = "clips"\nhead = "mlp"\nlr = 1\nlr-step-every = 5\n')
    values = read_config_file(path)
    assert (
        values["data"] == str((tmp_path / "clips").resolve()) and values["lr"] == 1.0 and values["lr_step_every"] == 5
    )
    config = make_config(path, lr=0.5, epochs=None)
    assert (config.head, config.lr, config.epochs) == ("mlp", 0.5, TrainConfig().epochs)
    path.write_text('[project]\nname = "x"\n[train]\nhead = "attention"\n')  # a [train] table among others
    assert make_config(path).head == "attention"


@pytest.mark.parametrize(
    "text, message",
    [
        ('heda = "mlp"', "unknown option 'heda' (did you mean 'head'?)"),
        ("epochs = 1.5", "epochs = 1.5 has the wrong type"),
        ('multilabel = "yes"', "wrong type"),
        ("epochs = [", "not valid TOML"),
        ('head = "transformer"', "head must be linear, mlp or attention"),
        ("val_fraction = 1.0\nl2 = -1", "l2 must be 0 or more, not -1.0; val_fraction must be in [0, 1), not 1.0"),
        (
            "speed = 1.0\nnoise_snr = -3\nspec_masks = 20",
            "speed must be in [0, 1), not 1.0; noise_snr must be 0 (off) or more, "
            "not -3.0; spec_masks must be 0..10, not 20",
        ),
    ],
)
def test_config_errors_name_the_problem(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        make_config(path)
    assert message in str(caught.value)


def test_device_is_not_a_training_option(tmp_path, capsys) -> None:
    """It was accepted everywhere and never used: every way of giving it is now refused."""
    from pydantic import ValidationError

    from audioclas.cli import build_parser
    from audioclas.service.schemas import TrainRequest

    path = tmp_path / "old.toml"
    path.write_text('head = "mlp"\ndevice = "cpu"\n')
    with pytest.raises(ConfigError, match="unknown option 'device'"):
        make_config(path)
    with pytest.raises(ConfigError, match="unknown option 'device'"):
        make_config(device="cpu")
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["train", str(tmp_path), "--device", "cpu"])
    assert exited.value.code == 2 and "unrecognized arguments: --device cpu" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="device"):
        TrainRequest(dataset="/data", device="cpu")


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        make_config(tmp_path / "nope.toml")
