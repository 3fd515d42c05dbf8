"""``/v2/datasets/``: upload a dataset as an archive, list the uploaded ones, delete one (all need the token: they
show and change server paths). The work is done by ``service.datasets``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from audioclas.service.context import Service
from audioclas.service.datasets import add_dataset, check_room, delete_dataset, list_datasets, usage
from audioclas.service.errors import RequestError
from audioclas.service.routing import SlashRouter, error_responses, multipart_body, require_token, service
from audioclas.service.uploads import read_form

router = SlashRouter(tags=["datasets"])
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 507)

UPLOAD_BODY = multipart_body(
    {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "the dataset as a zip or tar archive (tar.gz/bz2/xz too); any field name",
        },
        "name": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
            "description": "the dataset's name (default: a timestamp and a random suffix)",
        },
    },
    required=["file"],
)


class DatasetInfo(BaseModel):
    name: str
    path: str = Field(description="the dataset on the server: give it as a train request's 'dataset'")
    layout: str
    classes: list[str]
    multilabel: bool
    files: int = Field(description="audio files")
    examples: dict[str, int] = Field(description="examples per split")
    bytes: int = Field(description="size of the extracted files")
    created: str


class DatasetUsage(BaseModel):
    datasets: int = Field(description="uploaded datasets kept")
    max_datasets: int = Field(description="the most this server keeps; an upload past it is refused (507)")
    bytes: int = Field(description="the files of the uploaded datasets together (hidden uploads under way too)")
    max_bytes: int = Field(description="the most they may take; an archive that does not fit is refused (507)")


class DatasetList(BaseModel):
    datasets: list[DatasetInfo]
    usage: DatasetUsage = Field(description="how full the uploads are: delete a dataset to make room")


class DeletedDataset(BaseModel):
    name: str
    deleted: bool


@router.post(
    "/v2/datasets/",
    status_code=201,
    response_model=DatasetInfo,
    responses=ERRORS,
    dependencies=[Depends(require_token)],
    openapi_extra=UPLOAD_BODY,
    summary="Upload a dataset: a zip or tar archive (optionally compressed) in any dataset layout",
)
async def upload_dataset(request: Request, svc: Service = Depends(service)) -> Any:
    """Multipart: one ``file`` (the archive) and an optional ``name`` (default: a fresh one). The archive is
    extracted within the server's archive bounds and checked as a dataset; a refused one leaves nothing behind."""
    settings = svc.settings
    await run_in_threadpool(check_room, settings)  # 403, or 507 when full, before reading a large body
    folder = Path(tempfile.mkdtemp(prefix="audioclas-upload-"))
    try:
        form = await read_form(request, folder, settings.max_upload_bytes, 1)
        if len(form.files) != 1:
            raise RequestError(400, "send the dataset as one archive file ('file' field)")
        names = [value.strip() for value in form.fields.get("name", []) if value.strip()]
        if len(names) > 1:
            raise RequestError(422, "name: give one name")
        upload = form.files[0]
        return await run_in_threadpool(add_dataset, settings, upload.path, upload.name, names[0] if names else None)
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)


@router.get(
    "/v2/datasets/",
    response_model=DatasetList,
    responses=ERRORS,
    dependencies=[Depends(require_token)],
    summary="The uploaded datasets and how full the uploads are (they show server paths: token)",
)
def datasets(svc: Service = Depends(service)) -> DatasetList:
    entries = [DatasetInfo(**entry) for entry in list_datasets(svc.settings)]
    return DatasetList(datasets=entries, usage=DatasetUsage(**usage(svc.settings)))


@router.delete(
    "/v2/datasets/{name}",
    response_model=DeletedDataset,
    responses=ERRORS,
    dependencies=[Depends(require_token)],
    summary="Delete an uploaded dataset (models trained on it stay)",
)
def remove_dataset(name: str, svc: Service = Depends(service)) -> DeletedDataset:
    in_use = [job.dataset for job in svc.store.with_status("queued", "running")]
    delete_dataset(svc.settings, name, in_use)
    return DeletedDataset(name=name, deleted=True)
