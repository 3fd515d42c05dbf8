"""``/v2/models/``: list, show and delete models, and predict with them."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Json, ValidationError
from starlette.responses import JSONResponse, Response

from audioclas.errors import InputError, OptionError
from audioclas.events import EventOptions
from audioclas.inputs import HttpURL
from audioclas.output import EVENT_FORMATS, render
from audioclas.predictions import LabelQuery, Prediction
from audioclas.service.context import Service
from audioclas.service.errors import RequestError, http_status
from audioclas.service.routing import SlashRouter, error_responses, multipart_body, require_token, service
from audioclas.service.schemas import DeletedModel, ErrorResponse, ModelInfo, ModelList, PredictionOut, PredictResponse
from audioclas.service.uploads import read_form
from audioclas.windows import WindowRequest

router = SlashRouter(tags=["models"])
ERRORS = error_responses(400, 404, 413, 415, 422)


@router.get("/v2/models/", response_model=ModelList, summary="List the models: AudioSet and the trained ones")
def list_models(svc: Service = Depends(service)) -> ModelList:
    return ModelList(models=svc.catalogue.models())


@router.get("/v2/models/{name}/", response_model=ModelInfo, responses=ERRORS, summary="Describe one model")
def get_model(name: str, svc: Service = Depends(service)) -> ModelInfo:
    return svc.catalogue.describe(name)


@router.delete(
    "/v2/models/{name}/",
    response_model=DeletedModel,
    responses=error_responses(400, 404, 413, 415, 422, 401, 409),
    dependencies=[Depends(require_token)],
    summary="Delete a trained model (needs the token when the server has one)",
)
def delete_model(name: str, svc: Service = Depends(service)) -> DeletedModel:
    svc.catalogue.delete(name)
    return DeletedModel(name=name, deleted=True)


PREDICT_BODY = multipart_body(
    {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "audio files (any format FFmpeg reads) or archives (zip, tar, "
            "tar.gz/bz2/xz, .gz); any field name is accepted",
        },
        "url": {"type": "array", "items": {"type": "string"}, "description": "http(s) URL of audio"},
        "top_k": {"type": "integer", "default": 5, "minimum": 1, "maximum": 100},
        "threshold": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "only labels scoring at least this (default 0); with events, also "
            "the score an event needs (default 0.5)",
        },
        "labels": {
            "type": "array",
            "items": {"type": "string"},
            "description": "report only these labels (names or AudioSet ids)",
        },
        "exclude": {"type": "array", "items": {"type": "string"}},
        "exact": {
            "type": "boolean",
            "default": False,
            "description": "labels/exclude: the AudioSet class alone, not also the classes below it",
        },
        "specific": {
            "type": "boolean",
            "default": False,
            "description": "rank a confident specific AudioSet class above its ancestors",
        },
        "window": {
            "type": "number",
            "description": "seconds (default 10; a custom model uses its own, and refuses another)",
        },
        "hop": {
            "type": "number",
            "description": "seconds between windows (default: the window, or a custom model's own)",
        },
        "pad": {"type": "string", "enum": ["loop", "zeros"]},
        "aggregate": {"type": "string", "enum": ["max", "mean"], "default": "max"},
        "timeline": {"type": "boolean", "default": False, "description": "per-window labels"},
        "with_audioset": {
            "type": "boolean",
            "default": False,
            "description": "custom model: AudioSet labels too",
        },
        "events": {
            "type": "boolean",
            "default": False,
            "description": "timed events per label: runs of windows scoring at least the "
            "threshold, to the hop's resolution (any event option or format turns them on)",
        },
        "thresholds": {
            "type": "string",
            "description": 'per-label event thresholds as a JSON object: {"Dog": 0.3}',
        },
        "min_duration": {"type": "number", "description": "drop shorter events (seconds)"},
        "merge_gap": {"type": "number", "description": "merge events of a label this close (s)"},
        "format": {
            "type": "string",
            "enum": ["json", "csv", "raven", "audacity"],
            "default": "json",
            "description": "the answer as JSON, CSV, a Raven selection table or an Audacity "
            "label track (one input); an Accept of text/csv also asks for CSV",
        },
    },
    also={
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"url": {"type": "array", "items": {"type": "string"}}}}
        }
    },
)


class PredictForm(BaseModel):
    """The form fields of a predict request, parsed into their types; their values are checked by the objects they
    make (``LabelQuery``, ``WindowRequest``) and the service's own bounds by ``Predictor.check_options``."""

    model_config = ConfigDict(extra="forbid")
    top_k: int = 5
    threshold: float | None = None
    labels: list[str] = []
    exclude: list[str] = []
    exact: bool = False
    specific: bool = False
    window: float | None = None
    hop: float | None = None
    pad: str | None = None
    aggregate: str = "max"
    timeline: bool = False
    with_audioset: bool = False
    events: bool = False
    thresholds: Json[dict[str, float]] | None = None
    min_duration: float | None = None
    merge_gap: float | None = None
    format: Literal["json", "csv", "raven", "audacity"] | None = None


@dataclass(frozen=True)
class PredictRequest:
    """A predict request's options as the core takes them."""

    query: LabelQuery
    windows: WindowRequest
    timeline: bool
    with_audioset: bool
    events: EventOptions | None = None
    format: str = "json"


def parse_options(fields: dict[str, list[str]], accept: str = "") -> PredictRequest:
    """The options of the form fields (the ``format`` field, else CSV when ``accept`` asks for text/csv, else JSON);
    raises 422 naming every field of the wrong type, or the first bad value."""
    values: dict[str, Any] = {}
    for key, given in fields.items():
        if key == "url":
            continue
        if key in ("labels", "exclude"):  # repeated fields: label names may contain commas
            values[key] = [value for value in given if value.strip()]
        elif given and given[-1] != "":
            values[key] = given[-1]
    try:
        form = PredictForm(**values)
    except ValidationError as error:
        problems = [f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
        raise RequestError(422, "; ".join(problems)) from None
    aggregate: Any = form.aggregate  # checked by LabelQuery (OptionError: 422)
    threshold = 0.0 if form.threshold is None else form.threshold
    query = LabelQuery(
        form.top_k, threshold, tuple(form.labels), tuple(form.exclude), aggregate, form.exact, form.specific
    )
    pad: Any = form.pad  # checked by WindowRequest
    windows = WindowRequest(form.window, form.hop, pad)
    fmt = form.format or ("csv" if "text/csv" in accept else "json")
    events = None
    event_options = (form.thresholds, form.min_duration, form.merge_gap)
    if form.events or fmt in EVENT_FORMATS or any(value is not None for value in event_options):
        # checked by EventOptions (OptionError: 422); a thresholds field is a JSON object, never a server path
        events = EventOptions.given(form.threshold, form.thresholds or {}, form.min_duration, form.merge_gap)
    if events is not None and form.timeline and fmt == "csv":
        raise OptionError("CSV holds either the timeline's rows or the events' rows: give one (JSON holds both)")
    return PredictRequest(query, windows, form.timeline, form.with_audioset, events, fmt)


@router.post(
    "/v2/models/{name}/predict/",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=PREDICT_BODY,
    summary="Tag uploaded files, archives or URLs",
)
async def predict(name: str, request: Request, svc: Service = Depends(service)) -> Any:
    """Multipart upload of one or more files (or archives), and/or ``url`` fields; options as form fields.

    Every input (each archive member) gets a result; an input that fails gets an ``error`` while the others are
    still tagged (200). When every input fails, the answer is that error's status (413 too large, 415 not
    audio, 400 otherwise) with the per-input errors in ``results``.
    """
    svc.catalogue.require(name)  # 404 before reading a large body
    folder = Path(tempfile.mkdtemp(prefix="audioclas-upload-"))
    try:
        settings = svc.settings
        form = await read_form(request, folder, settings.max_upload_bytes, settings.max_files)
        options = parse_options(form.fields, request.headers.get("accept", ""))
        urls = [_http_url(url.strip()) for url in form.fields.get("url", []) if url.strip()]
        inputs: list[tuple[str, Path | HttpURL]] = [(upload.name, upload.path) for upload in form.files]
        inputs += [(url.url, url) for url in urls]
        if not inputs:
            raise RequestError(400, "nothing to tag: send one or more files, or a 'url' field")
        if len(inputs) > settings.max_files:
            raise RequestError(413, f"more than {settings.max_files} inputs in one request")
        await run_in_threadpool(  # OptionError: 422
            svc.predictor.check_options, name, options.query, options.windows, options.events
        )
        results = await run_in_threadpool(
            svc.predictor.predict, name, inputs, options.query, options.windows, options.with_audioset, options.events
        )
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)
    outputs = [_output(result, options.timeline) for result in results]
    failed = sum(1 for result in results if isinstance(result, InputError))
    if results and failed == len(results):
        statuses = {http_status(result) for result in results if isinstance(result, InputError)}  # as in outputs
        status = statuses.pop() if len(statuses) == 1 else 400
        message = str(results[0]) if len(outputs) == 1 else f"none of the {len(outputs)} inputs could be tagged"
        body = ErrorResponse(error=message, status=status, results=outputs)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=status)
    if options.format != "json":
        return _table(results, options)
    return PredictResponse(model=name, results=outputs, failed=failed)


MEDIA_TYPES = {"csv": "text/csv", "raven": "text/tab-separated-values", "audacity": "text/plain"}
FILE_NAMES = {"csv": "predictions.csv", "raven": "events.selections.txt", "audacity": "events.labels.txt"}


def _table(results: list[Prediction | InputError], options: PredictRequest) -> Response:
    """The results as a file to download, written by the command line's own writer; an Audacity label track holds
    one input (422 otherwise). Inputs that failed are in a CSV's rows; a Raven or Audacity table leaves them out."""
    tagged = sum(1 for result in results if isinstance(result, Prediction))
    if options.format == "audacity" and tagged > 1:
        raise RequestError(422, f"an Audacity label file holds one input's events, not {tagged}: ask for raven or csv")
    text = render(results, options.format, options.timeline, options.events is not None)
    headers = {"Content-Disposition": f'attachment; filename="{FILE_NAMES[options.format]}"'}
    return Response(text, media_type=MEDIA_TYPES[options.format], headers=headers)


def _http_url(text: str) -> HttpURL:
    """A ``url`` field as a URL that can only be downloaded; 400 for anything else (a path, a glob, file://)."""
    try:
        return HttpURL(text)
    except InputError as error:
        raise RequestError(400, f"url {error}") from None


def _output(result: Prediction | InputError, timeline: bool) -> PredictionOut:
    if isinstance(result, InputError):
        return PredictionOut(input=result.source, error=result.problem, status=http_status(result))
    return PredictionOut.model_validate(result.to_dict(timeline))
