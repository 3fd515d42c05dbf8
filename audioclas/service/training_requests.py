"""From a train request on a model's route to a queued job: the dataset checks, the options and the target name.

On the ``audioset`` route a job trains a new classifier on the AudioSet network's embeddings, saved under the
request's ``name`` (default: a timestamp and a random suffix, unique even for jobs started in the same second).
On a trained model's route it retrains that model: the options default to the ones it was trained with, and the
new model replaces it when the job succeeds. Paths must be absolute, exist and lie below the server's data roots
(when it has any); the worker checks every file of the dataset against the roots again, with links resolved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioclas.service.errors import RequestError
from audioclas.service.jobs import Job
from audioclas.service.predictor import AUDIOSET
from audioclas.service.schemas import TrainRequest
from audioclas.training.config import TrainConfig, make_config

if TYPE_CHECKING:
    from audioclas.service.context import Service
    from audioclas.service.settings import ServiceSettings


def start_job(svc: Service, name: str, request: TrainRequest) -> Job:
    """Queue the job of ``request`` on model ``name``'s route (409 while another job trains the same target)."""
    target, dataset, config = job_config(svc.settings, name, request)
    with svc.submit_lock:
        busy = [job.id for job in svc.store.with_status("queued", "running") if job.target == target]
        if busy:
            raise RequestError(409, f"job {busy[0]} is already training model {target!r}")
        job = svc.store.create(name, target, dataset, config.model_dump())
    svc.dispatcher.wake()
    return job


def job_config(settings: ServiceSettings, name: str, request: TrainRequest) -> tuple[str, str, TrainConfig]:
    """(target model, dataset path, options) of a train request on model ``name``'s route."""
    from audioclas.training.store import ModelExists, check_name, default_name, model_path

    body = request.model_dump(exclude_unset=True)
    if name == AUDIOSET:
        target = body.pop("name", None) or default_name()
        defaults: dict[str, Any] = {}
    else:
        target = body.pop("name", None) or name
        if target != name:
            raise RequestError(
                422, f"the route of model {name!r} retrains {name!r}: train new models on the {AUDIOSET!r} route"
            )
        defaults = _saved_options(model_path(name))
        body["overwrite"] = True
    check_name(target)  # ModelError: 422
    if target == AUDIOSET:
        raise RequestError(422, f"{AUDIOSET!r} is the name of the pretrained model: choose another name")
    dataset = body.pop("dataset", None) or defaults.pop("data", None)
    defaults.pop("data", None)
    if not dataset:
        raise RequestError(422, "dataset: give the path of a dataset on the server")
    dataset = dataset_path(settings, dataset)
    embeddings = {**defaults, **body}.get("from_embeddings")  # a retrained model's saved folder is checked too
    if embeddings:
        body["from_embeddings"] = dataset_path(settings, embeddings, "from_embeddings")
    config = make_config(**{**defaults, **body, "name": target, "data": dataset})  # ConfigError: 422
    if model_path(target).exists() and not config.overwrite:
        raise ModelExists(f"a model named {target!r} already exists: choose another name, or set overwrite")
    return target, dataset, config


def _saved_options(folder: Path) -> dict[str, Any]:
    """The options a saved model was trained with (those that are still options), or none."""
    try:
        saved = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict):
        return {}
    return {key: value for key, value in saved.items() if key in TrainConfig.model_fields}


def dataset_path(settings: ServiceSettings, given: str, field: str = "dataset") -> str:
    """The absolute path of a dataset (or embeddings folder), if it exists below one of the allowed roots."""
    from audioclas.training.dataset import path_problem

    problem = path_problem(given)
    if problem:
        raise RequestError(400, f"{field}: {problem}")
    path = Path(given).expanduser()
    if not path.is_absolute():
        raise RequestError(422, f"{field} must be an absolute path on the server, not {given!r}")
    try:
        path = path.resolve()
        roots = settings.data_roots
        if roots and not any(path.is_relative_to(root.resolve()) for root in roots):
            allowed = ", ".join(str(root) for root in roots)
            raise RequestError(400, f"{field} {given} is outside the folders this server trains from ({allowed})")
        if not path.exists():
            raise RequestError(400, f"{field} {given} does not exist on the server")
    except (OSError, RuntimeError) as error:  # a link loop, a name too long…
        reason = getattr(error, "strerror", None) or error
        raise RequestError(400, f"{field}: the path cannot be used ({reason})") from None
    return str(path)
