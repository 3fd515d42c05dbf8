"""``/v2/models/{name}/train/``: start training jobs, follow them, cancel them.

On the ``audioset`` route a job trains a new classifier; on a trained model's route it retrains that model
(``training_requests`` turns a request into a job).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Depends, Query
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from audioclas.extras import missing_extra
from audioclas.service.context import Service
from audioclas.service.errors import RequestError
from audioclas.service.jobs import Job
from audioclas.service.predictor import AUDIOSET
from audioclas.service.routing import SlashRouter, error_responses, require_token, service
from audioclas.service.schemas import JobInfo, JobList, TrainRequest
from audioclas.service.training_requests import start_job

router = SlashRouter(tags=["training"])
AUTH_ERRORS = error_responses(400, 404, 413, 415, 422, 401, 409)
CANCEL_WAIT = 5.0  # seconds the cancel route waits for a running job to stop before answering 202


def job_info(job: Job, log: list[str] | None = None) -> JobInfo:
    return JobInfo(
        id=job.id,
        model=job.base,
        target=job.target,
        status=job.status,
        created=job.created,
        started=job.started,
        finished=job.finished,
        dataset=job.dataset,
        config=job.config,
        progress=job.progress,
        metrics=job.metrics,
        history=job.history,
        result=job.result,
        error=job.error,
        cancel_requested=job.cancel_requested,
        log=log,
    )


def require_training(svc: Service = Depends(service)) -> None:
    """Refuse with 501 when this install cannot train (no [train] extra: PyTorch), and with 403 when this server
    does not train (see ``ServiceSettings.training_refusal``)."""
    missing = missing_extra("train", "training")
    if missing:
        raise RequestError(501, missing)
    refusal = svc.settings.training_refusal()
    if refusal:
        raise RequestError(403, refusal)


@router.post(
    "/v2/models/{name}/train/",
    status_code=202,
    response_model=JobInfo,
    responses=error_responses(400, 404, 413, 415, 422, 401, 409, 403, 501),
    dependencies=[Depends(require_token), Depends(require_training)],
    summary="Start a training job (queued; returns its id)",
)
def start_training(name: str, request: TrainRequest, svc: Service = Depends(service)) -> JobInfo:
    svc.catalogue.require(name)  # 404 for a model that does not exist
    return job_info(start_job(svc, name, request))


@router.get(
    "/v2/models/{name}/train/",
    response_model=JobList,
    responses=AUTH_ERRORS,
    dependencies=[Depends(require_token)],
    summary="Training history (it shows server paths: token)",
)
def training_history(name: str, limit: int = Query(100, ge=1, le=1000), svc: Service = Depends(service)) -> JobList:
    if name != AUDIOSET and not svc.store.history(name, 1):
        svc.catalogue.require(name)  # 404 for a name that is neither a model nor the target of a job
    return JobList(jobs=[job_info(job) for job in svc.store.history(name, limit)])


def _job(svc: Service, name: str, job_id: str) -> Job:
    job = svc.store.get(job_id)
    if job is None or name not in (job.base, job.target):
        raise RequestError(404, f"no training job {job_id!r} for model {name!r}")
    return job


@router.get(
    "/v2/models/{name}/train/{job_id}",
    response_model=JobInfo,
    responses=AUTH_ERRORS,
    dependencies=[Depends(require_token)],
    summary="A job's status, progress, metrics and log tail (token)",
)
def training_status(name: str, job_id: str, svc: Service = Depends(service)) -> JobInfo:
    job = _job(svc, name, job_id)
    return job_info(job, svc.store.log_tail(job.id))


@router.delete(
    "/v2/models/{name}/train/{job_id}",
    response_model=JobInfo,
    responses=AUTH_ERRORS,
    dependencies=[Depends(require_token)],
    summary="Cancel a job (200 once stopped, 202 while its process is still stopping)",
)
async def cancel_training(name: str, job_id: str, svc: Service = Depends(service)) -> Any:
    job = _job(svc, name, job_id)
    if job.final:
        raise RequestError(409, f"job {job_id} has already ended ({job.status})")
    job = await run_in_threadpool(svc.store.request_cancel, job_id)
    svc.dispatcher.wake()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANCEL_WAIT
    while not job.final and loop.time() < deadline:
        await asyncio.sleep(0.1)
        job = await run_in_threadpool(svc.store.require, job_id)
    info = job_info(job, await run_in_threadpool(svc.store.log_tail, job_id))
    return JSONResponse(info.model_dump(), status_code=200 if job.final else 202)
