"""``/v2/models/{name}/train/``: start training jobs, follow them, cancel them.

On the ``audioset`` route a job trains a new classifier on the AudioSet network's embeddings, saved under the
``name`` of the body (default: a timestamp and a random suffix, unique even for jobs started in the same second).
On a trained model's route it retrains that model: the options default to the ones it was trained with, and the
new model replaces it when the job succeeds.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import Depends, Query
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from audioclas.service.errors import RequestError
from audioclas.service.jobs import Job
from audioclas.service.predictor import AUDIOSET
from audioclas.service.routes.models import ERRORS
from audioclas.service.routing import SlashRouter, require_token, service
from audioclas.service.schemas import ErrorResponse, JobInfo, JobList, TrainRequest

router = SlashRouter(tags=["training"])
AUTH_ERRORS = {**ERRORS, 401: {"model": ErrorResponse}, 409: {"model": ErrorResponse}}
CANCEL_WAIT = 5.0  # seconds the cancel route waits for a running job to stop before answering 202


def job_info(job: Job, log: list[str] | None = None) -> JobInfo:
    return JobInfo(id=job.id, model=job.base, target=job.target, status=job.status, created=job.created,
                   started=job.started, finished=job.finished, dataset=job.dataset, config=job.config,
                   progress=job.progress, metrics=job.metrics, history=job.history, result=job.result,
                   error=job.error, cancel_requested=job.cancel_requested, log=log)  # fmt: skip


def _check_dataset(svc, given: str, field: str = "dataset") -> str:
    """The absolute path of a dataset (or embeddings folder), if it exists below one of the allowed roots. The
    worker checks every file of the dataset against the roots again, with links resolved."""
    from audioclas.training.dataset import path_problem

    problem = path_problem(given)
    if problem:
        raise RequestError(400, f"{field}: {problem}")
    path = Path(given).expanduser()
    if not path.is_absolute():
        raise RequestError(422, f"{field} must be an absolute path on the server, not {given!r}")
    try:
        path = path.resolve()
        roots = svc.settings.data_roots
        if roots and not any(path.is_relative_to(root.resolve()) for root in roots):
            allowed = ", ".join(str(root) for root in roots)
            raise RequestError(400, f"{field} {given} is outside the folders this server trains from ({allowed})")
        if not path.exists():
            raise RequestError(400, f"{field} {given} does not exist on the server")
    except (OSError, RuntimeError) as error:  # a link loop, a name too long…
        reason = getattr(error, "strerror", None) or error
        raise RequestError(400, f"{field}: the path cannot be used ({reason})") from None
    return str(path)


def _job_config(svc, name: str, body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(target model, dataset path, validated TrainConfig values) for a train request on model ``name``."""
    from audioclas.training.config import ConfigError, TrainConfig, make_config
    from audioclas.training.store import ModelError, check_name, default_name, model_path

    if name == AUDIOSET:
        target = body.pop("name", None) or default_name()
        defaults: dict[str, Any] = {}
    else:
        target = body.pop("name", None) or name
        if target != name:
            raise RequestError(422, f"the route of model {name!r} retrains {name!r}: train new models on the "
                                    f"{AUDIOSET!r} route")
        try:
            defaults = json.loads((model_path(name) / "config.json").read_text("utf-8"))
        except (OSError, ValueError):
            defaults = {}
        defaults = {key: value for key, value in defaults.items() if key in TrainConfig.__dataclass_fields__}
        body["overwrite"] = True
    try:
        check_name(target)
    except ModelError as error:
        raise RequestError(422, str(error)) from None
    if target == AUDIOSET:
        raise RequestError(422, f"{AUDIOSET!r} is the name of the pretrained model: choose another name")
    dataset = body.pop("dataset", None) or defaults.pop("data", None)
    defaults.pop("data", None)
    if not dataset:
        raise RequestError(422, "dataset: give the path of a dataset on the server")
    dataset = _check_dataset(svc, dataset)
    embeddings = {**defaults, **body}.get("from_embeddings")  # a retrained model's saved folder is checked too
    if embeddings:
        body["from_embeddings"] = _check_dataset(svc, embeddings, "from_embeddings")
    try:
        config = make_config(**{**defaults, **body, "name": target, "data": dataset})
    except ConfigError as error:
        raise RequestError(422, str(error)) from None
    if model_path(target).exists() and not config.overwrite:
        raise RequestError(409, f"a model named {target!r} already exists: choose another name, or set overwrite")
    return target, dataset, config.to_dict()


@router.post("/v2/models/{name}/train/", status_code=202, response_model=JobInfo, responses=AUTH_ERRORS,
             dependencies=[Depends(require_token)], summary="Start a training job (queued; returns its id)")
def start_training(name: str, request: TrainRequest, svc=Depends(service)) -> JobInfo:  # type: ignore[valid-type]
    refusal = svc.settings.training_refusal()
    if refusal:
        raise RequestError(403, refusal)
    svc.catalogue.require(name)
    target, dataset, config = _job_config(svc, name, request.model_dump(exclude_unset=True))
    with svc.submit_lock:
        busy = [job.id for job in svc.store.with_status("queued", "running") if job.target == target]
        if busy:
            raise RequestError(409, f"job {busy[0]} is already training model {target!r}")
        job = svc.store.create(name, target, dataset, config)
    svc.dispatcher.wake()
    return job_info(job)


@router.get("/v2/models/{name}/train/", response_model=JobList, responses=AUTH_ERRORS,
            dependencies=[Depends(require_token)], summary="Training history (it shows server paths: token)")
def training_history(name: str, limit: int = Query(100, ge=1, le=1000), svc=Depends(service)) -> JobList:
    if name != AUDIOSET and not svc.store.history(name, 1):
        svc.catalogue.require(name)  # 404 for a name that is neither a model nor the target of a job
    return JobList(jobs=[job_info(job) for job in svc.store.history(name, limit)])


def _job(svc, name: str, job_id: str) -> Job:
    job = svc.store.get(job_id)
    if job is None or name not in (job.base, job.target):
        raise RequestError(404, f"no training job {job_id!r} for model {name!r}")
    return job


@router.get("/v2/models/{name}/train/{job_id}", response_model=JobInfo, responses=AUTH_ERRORS,
            dependencies=[Depends(require_token)], summary="A job's status, progress, metrics and log tail (token)")
def training_status(name: str, job_id: str, svc=Depends(service)) -> JobInfo:
    job = _job(svc, name, job_id)
    return job_info(job, svc.store.log_tail(job.id))


@router.delete("/v2/models/{name}/train/{job_id}", response_model=JobInfo, responses=AUTH_ERRORS,
               dependencies=[Depends(require_token)],
               summary="Cancel a job (200 once stopped, 202 while its process is still stopping)")
async def cancel_training(name: str, job_id: str, svc=Depends(service)) -> Any:
    job = _job(svc, name, job_id)
    if job.final:
        raise RequestError(409, f"job {job_id} has already ended ({job.status})")
    job = await run_in_threadpool(svc.store.request_cancel, job_id)
    svc.dispatcher.wake()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANCEL_WAIT
    while not job.final and loop.time() < deadline:
        await asyncio.sleep(0.1)
        job = await run_in_threadpool(svc.store.get, job_id)
    info = job_info(job, await run_in_threadpool(svc.store.log_tail, job_id))
    return JSONResponse(info.model_dump(), status_code=200 if job.final else 202)
