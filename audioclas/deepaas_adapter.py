"""audioclas as a DEEPaaS v2 model, served by DEEPaaS's own ``deepaas-run`` (``pip install 'audioclas[deepaas]'``).

Registered through the entry point ``[project.entry-points."deepaas.v2.model"] audioclas =
"audioclas.deepaas_adapter"``; ``deepaas-run`` then serves ``/v2/models/audioclas/predict/`` and ``/train/``
(tests/test_deepaas_server.py runs it). DEEPaaS calls these functions in its own spawned worker processes:
``warm`` loads the network once per worker, ``predict`` reuses the service's ``Predictor`` (the same bounds and
URL policy as ``audioclas serve``), ``train`` checks a request as ``audioclas serve``'s train route does
(``job_config``) and runs ``audioclas.training.train``.

DEEPaaS has no token, and the adapter cannot tell where ``deepaas-run`` listens, so training follows the data-root
policy without the loopback exception: datasets must be absolute paths below ``$AUDIOCLAS_DATA_ROOT`` (or the name
of a dataset that ``audioclas serve`` keeps in that root's ``uploads/``); without the variable, training is off
unless the operator sets ``$AUDIOCLAS_ALLOW_ANY_DATASET=1``. What DEEPaaS itself does differently from ``audioclas
serve``: it reads a whole upload into memory before the model sees it (bounded only by its ``--client-max-size``,
unlimited by default), keeps training jobs in memory (they vanish on restart) and runs them in its prediction worker
pool, and has no web page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioclas import __version__
from audioclas.errors import AudioclasError
from audioclas.service.settings import DATA_ROOT_VARIABLE

if TYPE_CHECKING:
    from audioclas.service.predictor import Predictor
    from audioclas.service.settings import ServiceSettings

_predictor: Predictor | None = None


def _shared_predictor() -> Predictor:
    global _predictor
    if _predictor is None:
        from audioclas.service.predictor import Predictor
        from audioclas.service.settings import ServiceSettings

        # the defaults: predictions take no token (DEEPaaS has none) and no data root (a bad $AUDIOCLAS_DATA_ROOT
        # turns training off, not predictions)
        _predictor = Predictor(ServiceSettings())
    return _predictor


def get_metadata() -> dict[str, Any]:
    return {
        "id": "audioclas",
        "name": "audioclas",
        "version": __version__,
        "license": "MIT",
        "description": "AudioSet tagging (527 classes) with EfficientAT mn04, and custom classifiers trained on "
        "its embeddings. Predict with model=audioset or the name of a trained model.",
        "author": "audioclas",
        "url": "https://github.com/fschmid56/EfficientAT (backbone)",
    }


def warm() -> None:
    _shared_predictor()


def get_predict_args() -> dict[str, Any]:
    """DEEPaaS's form of the predict options; the ranges are the service's (``Predictor.check_options``, the core's
    objects), declared here too so that DEEPaaS's page shows them and refuses what is out of range itself."""
    from webargs import fields, validate

    from audioclas.service.predictor import MAX_TOP_K, MIN_WINDOW_SECONDS
    from audioclas.windows import MAX_WINDOW_SECONDS

    return {
        "data": fields.Raw(
            required=False,
            metadata={"type": "file", "location": "form", "description": "an audio file or an archive of them"},
        ),
        "url": fields.Str(required=False, metadata={"description": "or: an http(s) URL of audio (public addresses)"}),
        "model": fields.Str(load_default="audioset", metadata={"description": "audioset, or a trained model's name"}),
        "top_k": fields.Int(load_default=5, validate=validate.Range(1, MAX_TOP_K)),
        "threshold": fields.Float(
            load_default=None,
            allow_none=True,
            validate=validate.Range(0.0, 1.0),
            metadata={
                "description": "only labels scoring at least this (default 0); with events, also the "
                "score an event needs (default 0.5)"
            },
        ),
        "window": fields.Float(
            load_default=None,
            allow_none=True,
            validate=validate.Range(MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS),
            metadata={"description": "seconds (default 10; a trained model uses its own)"},
        ),
        "hop": fields.Float(
            load_default=None, allow_none=True, validate=validate.Range(MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS)
        ),
        "aggregate": fields.Str(load_default="max", validate=validate.OneOf(["max", "mean"])),
        "timeline": fields.Bool(load_default=False, metadata={"description": "per-window labels too"}),
        "events": fields.Bool(load_default=False, metadata={"description": "timed events per label too"}),
        "min_duration": fields.Float(load_default=None, allow_none=True, metadata={"description": "events: seconds"}),
        "merge_gap": fields.Float(load_default=None, allow_none=True, metadata={"description": "events: seconds"}),
        "specific": fields.Bool(
            load_default=False,
            metadata={"description": "rank a confident specific AudioSet class above its ancestors"},
        ),
    }


def predict(**args: Any) -> dict[str, Any]:
    """Tag the upload (``data``) and/or the ``url``; a refused request is answered with its ``error`` (DEEPaaS
    would answer any exception with a bare 500 that drops its message)."""
    try:
        with _errors_sent_back_plain():
            return _predict(**args)
    except ValueError as error:
        return {"model": args.get("model"), "error": str(error), "results": []}


def _predict(**args: Any) -> dict[str, Any]:
    from audioclas.errors import InputError, OptionError
    from audioclas.events import EventOptions
    from audioclas.inputs import HttpURL
    from audioclas.predictions import LabelQuery
    from audioclas.windows import WindowRequest

    inputs: list[tuple[str, Path | HttpURL]] = []
    refused: list[InputError] = []
    if args.get("data") is not None:  # DEEPaaS's UploadedFile: the upload saved to a temporary file
        upload = args["data"]
        inputs.append((upload.original_filename or "upload", Path(upload.filename)))
    if args.get("url"):
        try:  # only ever downloaded, never taken for a path on the server
            inputs.append((args["url"], HttpURL(args["url"])))
        except InputError as error:
            refused.append(error)
    if not inputs and not refused:
        raise OptionError("send a file (data) or a url")
    predictor = _shared_predictor()
    threshold = args.get("threshold")
    query = LabelQuery(
        args["top_k"], threshold or 0.0, aggregate=args["aggregate"], specific=args.get("specific", False)
    )
    windows = WindowRequest(args["window"], args["hop"])
    events = None
    if args.get("events") or args.get("min_duration") is not None or args.get("merge_gap") is not None:
        events = EventOptions.given(threshold, None, args.get("min_duration"), args.get("merge_gap"))
    predictor.check_options(args["model"], query, windows, events)
    results = (predictor.predict(args["model"], inputs, query, windows, events=events) if inputs else []) + refused
    return {
        "model": args["model"],
        "results": [
            {"input": result.source, "error": result.problem}
            if not hasattr(result, "to_dict")
            else result.to_dict(args["timeline"])
            for result in results
        ],
    }


@contextmanager
def _errors_sent_back_plain() -> Iterator[None]:
    """Only a ``ValueError`` (a refusal: its one-line message) or a ``RuntimeError`` (anything else, logged here
    with its traceback) leaves ``predict`` and ``train``. DEEPaaS runs them in a worker process and sends an
    exception back pickled; one whose constructor takes more than its message (``DatasetError``, ``InputError``,
    ``RequestError``) cannot be unpickled there, which kills the pool's result thread: that request and every later
    one would wait for ever."""
    from audioclas.service.errors import RequestError

    try:
        yield
    except RequestError as error:
        raise ValueError(error.message) from None
    except (AudioclasError, ValueError) as error:  # ours, and refusals such as pydantic's (not picklable either)
        raise ValueError(str(error)) from None
    except Exception as error:
        logging.getLogger(__name__).exception("audioclas: unexpected error")
        raise RuntimeError(f"unexpected {type(error).__name__} (see deepaas-run's log)") from None


def get_train_args() -> dict[str, Any]:
    """DEEPaaS's form of ``TrainOptions``: a webargs field per option, parsed only; ``train`` builds the one
    ``TrainConfig`` (whose checks and messages are the CLI's and the REST route's)."""
    from webargs import fields

    from audioclas.training.config import TrainOptions, base_type

    kinds = {bool: fields.Bool, int: fields.Int, float: fields.Float}
    dataset = fields.Str(
        required=True,
        metadata={
            "description": f"the dataset's absolute path on the server, below ${DATA_ROOT_VARIABLE}, or the name "
            "of a dataset uploaded to audioclas serve (kept in that folder's uploads/)"
        },
    )
    arguments: dict[str, Any] = {"dataset": dataset}
    for name, option in TrainOptions.model_fields.items():
        kind = kinds.get(base_type(option.annotation), fields.Str)
        arguments[name] = kind(
            load_default=option.default,
            allow_none=option.default is None,
            metadata={"description": option.description or ""},
        )
    return arguments


def train(**args: Any) -> dict[str, Any]:
    """Train a new model as ``audioclas serve``'s ``audioset`` route does (the same checks of the name, the dataset
    and the options, in ``job_config``), on datasets below ``$AUDIOCLAS_DATA_ROOT`` only. DEEPaaS shows a
    refusal's message (``str`` of the ``ValueError``) as the job's ``message``."""
    from audioclas.extras import require_extra

    with _errors_sent_back_plain():
        require_extra("train", "training")  # one line naming the extra, before anything is read
        return _train(**args)


def _train(**args: Any) -> dict[str, Any]:
    from audioclas.service.predictor import AUDIOSET
    from audioclas.service.schemas import TrainRequest
    from audioclas.service.training_requests import job_config
    from audioclas.training import load_dataset
    from audioclas.training import train as train_model
    from audioclas.training.summary import summary

    settings = _training_settings()
    args["dataset"] = _uploaded_dataset(settings, args.get("dataset"))
    # unvalidated here: make_config, in job_config, checks every option with the CLI's messages
    _, dataset_path, config = job_config(settings, AUDIOSET, TrainRequest.model_construct(**args))
    embeddings = Path(config.from_embeddings) if config.from_embeddings else None
    # a remote caller: every file is checked against the roots again (links resolved), and the errors name a
    # dataset's files and lines, never quote their text
    dataset = load_dataset(
        dataset_path,
        multilabel=config.multilabel,
        embeddings=embeddings,
        roots=settings.data_roots,
        quote=False,
        label_column=config.label_column,
        background=config.background,
    )
    result = train_model(dataset, config)
    return {**summary(result), "metrics": result.metrics}


def _training_settings() -> ServiceSettings:
    """The data roots of ``$AUDIOCLAS_DATA_ROOT``; without any, training is off unless the operator opts in to any
    path: the adapter cannot tell whether ``deepaas-run`` listens beyond loopback (and DEEPaaS has no token)."""
    from audioclas.service.settings import ANY_DATASET_VARIABLE, ServiceSettings

    settings = ServiceSettings.from_environment()
    if not settings.data_roots and not settings.allow_any_dataset:
        raise ValueError(
            f"training is off: deepaas-run trains only on datasets below the folders of ${DATA_ROOT_VARIABLE}, "
            f"which is not set (or set {ANY_DATASET_VARIABLE}=1 to allow any path on the server)"
        )
    return settings


def _uploaded_dataset(settings: ServiceSettings, given: Any) -> Any:
    """The path of the uploaded dataset named ``given`` (a bare name, not a path), else ``given`` unchanged."""
    from audioclas.service.datasets import uploaded_dataset_path
    from audioclas.service.errors import RequestError
    from audioclas.training.store import NAME_PATTERN

    if not (isinstance(given, str) and settings.data_roots and NAME_PATTERN.fullmatch(given)):
        return given
    try:
        return uploaded_dataset_path(settings, given)
    except RequestError:
        raise ValueError(
            f"dataset {given!r} is neither an absolute path on the server nor the name of an uploaded dataset"
        ) from None
