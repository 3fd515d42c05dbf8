"""Progress displays on stderr: audio being tagged (``predict``, a local batch job) and the stages of training
(``train``, ``evaluate``). Each has a Rich ``live`` to enter around the work and a method to pass as its hook."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from audioclas.cli.console import stderr

if TYPE_CHECKING:
    from audioclas.pipeline import Progress as PipelineProgress
    from audioclas.training.trainer import TrainEvent

NAME_CHARS = 40  # of the file being tagged, shown by its end


class AudioProgress:
    """Files of audio done, seconds heard and speed relative to real time. With ``per_file`` the bar counts files
    (of ``total`` when known) and names the current one; else its owner advances it (a batch job's shards)."""

    def __init__(
        self,
        enabled: bool,
        description: str = "files",
        total: int | None = None,
        *,
        per_file: bool = True,
        console: Console = stderr,
    ) -> None:
        self.live = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[audio]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not enabled,
        )
        self.task = self.live.add_task(description, total=total, audio="")
        self.per_file = per_file
        self.started = time.perf_counter()
        self.files, self.seconds = 0, 0.0

    def restart(self, description: str, total: int | None) -> None:
        """Count the bar towards ``total`` from now on, and the speed too (after a batch job's planning)."""
        self.started = time.perf_counter()
        self.live.update(self.task, description=description, total=total)

    def advance(self) -> None:
        self.live.advance(self.task)

    def update(self, event: PipelineProgress) -> None:
        heard = self.seconds + event.seconds  # with the part of the current file heard so far
        if event.done:
            self.files += 1
            self.seconds += event.seconds
            if self.per_file:
                self.advance()
        speed = heard / max(time.perf_counter() - self.started, 1e-6)
        audio = ("" if self.per_file else f"{self.files} files, ") + f"{heard:,.0f} s audio, {speed:,.0f}× real time"
        if self.per_file:
            name = event.source if len(event.source) <= NAME_CHARS else "…" + event.source[1 - NAME_CHARS :]
            self.live.update(self.task, description=name, audio=audio)
        else:
            self.live.update(self.task, audio=audio)


METRIC_LABELS = {
    "train_loss": "loss",
    "loss": "loss",
    "val_loss": "val loss",
    "val_accuracy": "val acc",
    "val_mAP": "val mAP",
}


class TrainProgress:
    """Files embedded, then epochs with the latest metrics (or fine-tuning batches)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.live = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, event: TrainEvent) -> None:
        names = {"extract": "embeddings", "train": "epochs", "finetune": "fine-tuning"}
        if event.stage not in self.tasks:
            name = names.get(event.stage, event.stage)
            self.tasks[event.stage] = self.live.add_task(name, total=event.total, detail="")
        metrics = event.metrics
        detail = "  ".join(f"{label} {metrics[key]:.3f}" for key, label in METRIC_LABELS.items() if key in metrics)
        if event.stage == "finetune" and "epoch" in metrics:
            detail = f"epoch {metrics['epoch']}  {detail}"
        self.live.update(self.tasks[event.stage], completed=event.done, total=event.total, detail=detail)
