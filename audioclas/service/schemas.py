"""The typed bodies of the API, as ``/docs`` shows them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from audioclas.training.config import TrainOptions


class ErrorResponse(BaseModel):
    error: str = Field(description="what is wrong, in one line (validation errors: one line per problem)")
    status: int
    details: list[dict[str, Any]] | None = Field(None, description="per-field problems (422)")
    results: list[PredictionOut] | None = Field(None, description="per-input errors when every input failed")


class LabelOut(BaseModel):
    index: int = Field(description="position of the class in the model output")
    id: str | None = Field(description="AudioSet ontology id (null for a custom model)")
    name: str
    score: float = Field(description="0-1: sigmoid (AudioSet, multi-label models) or softmax (single-label models)")


class WindowOut(BaseModel):
    start: float = Field(description="seconds")
    end: float = Field(description="seconds")
    labels: list[LabelOut]


class EventOut(BaseModel):
    start: float = Field(description="seconds")
    end: float = Field(description="seconds")
    label: str
    id: str | None = Field(description="AudioSet ontology id (null for a custom model)")
    score: float = Field(description="the peak window score")
    mean_score: float = Field(description="the mean over the event's windows")


class PredictionOut(BaseModel):
    input: str = Field(description="the file name sent, archive!member, or the URL")
    duration: float | None = Field(None, description="seconds of audio")
    labels: list[LabelOut] | None = Field(None, description="clip-level labels, best first")
    windows: list[WindowOut] | None = Field(None, description="per-window labels, with timeline=true")
    events: list[EventOut] | None = Field(None, description="timed events, with events=true")
    audioset: PredictionOut | None = Field(None, description="AudioSet labels alongside a custom model's")
    error: str | None = Field(None, description="why this input could not be tagged")
    status: int | None = Field(None, description="the HTTP status this error alone would get")


class PredictResponse(BaseModel):
    model: str
    results: list[PredictionOut]
    failed: int = Field(description="inputs that could not be tagged (their results hold the error)")


class ModelInfo(BaseModel):
    name: str
    kind: Literal["audioset", "custom"]
    classes: list[str]
    metrics: dict[str, Any] = Field(description="AudioSet: the published evaluation; custom: validation/test metrics")
    metadata: dict[str, Any]
    problem: str | None = Field(None, description="why a saved model cannot be used")
    card: str | None = Field(
        None, description="a trained model's card (its README.md, Markdown): only when one model is described"
    )


class ModelList(BaseModel):
    models: list[ModelInfo]


class DeletedModel(BaseModel):
    name: str
    deleted: bool


class JobProgress(BaseModel):
    stage: str = Field(description="extract (files), train (epochs) or finetune (batches)")
    done: int
    total: int


class JobInfo(BaseModel):
    id: str
    model: str = Field(description="the model the train route was called on")
    target: str = Field(description="the name of the model the job saves")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    created: str
    started: str | None
    finished: str | None
    dataset: str
    config: dict[str, Any]
    progress: JobProgress | None
    metrics: dict[str, Any] | None = Field(description="the last epoch's while running; val/test metrics after")
    history: list[dict[str, Any]] = Field(description="one row per epoch")
    result: dict[str, Any] | None = Field(description="model saved, why training stopped, best epoch, timings")
    error: str | None
    cancel_requested: bool
    log: list[str] | None = Field(None, description="the last lines of the job's log (in the job's own view)")


class JobList(BaseModel):
    jobs: list[JobInfo]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    models: int
    jobs: dict[str, int] = Field(description="jobs queued and running")
    uptime_seconds: float


class TrainRequest(TrainOptions):
    """The body of a train request: every training option (checked as ``TrainConfig`` checks it; unknown names are
    refused) and the dataset's path on the server."""

    dataset: str | None = Field(
        None,
        description="the dataset's path on the server: a split-file folder "
        "(classes.txt, train.txt…), one folder per class, a CSV, or recordings with annotation files "
        "(Raven, Audacity, or a CSV file,start,end,label)",
    )
    name: str | None = Field(
        None,
        description="name of the saved model (default: a timestamp and a random suffix); "
        "on a custom model's route, that model is retrained",
    )


ErrorResponse.model_rebuild()
