"""``TrainConfig`` is the one description of the training options: every edge (CLI flags, TOML, REST body, job
worker, DEEPaaS) builds it or a model derived from it, and its checks and messages are the same everywhere."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from audioclas.training.config import ConfigError, TrainConfig, TrainOptions, make_config


def test_invalid_values_are_refused_on_construction_and_the_config_is_frozen() -> None:
    with pytest.raises(ValidationError, match="epochs must be 1..100000, not 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValidationError, match="finetune needs the audio: it cannot use from_embeddings"):
        TrainConfig(finetune=True, from_embeddings="/emb")
    with pytest.raises(ValidationError, match="hop must be 0.1 s..the window, not 0.5"):
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
    with pytest.raises(ValidationError, match="epochs must be 1..100000, not 0"):
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
