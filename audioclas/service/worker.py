"""Training jobs run in their own processes, so that a crash or a heavy job never takes predictions down.

The ``Dispatcher`` (a thread of the server) starts queued jobs, ``max_jobs`` at a time, each as
``python -m audioclas.service.worker DATABASE JOB_ID RUN_TOKEN [DATA_ROOT…]`` in a new session (process group).
The worker loads the dataset as a stranger's (every file must resolve below the server's data roots, and no
text of the dataset's files is quoted in errors), trains it through ``audioclas.training.train`` and writes its
progress, metrics and log to the job database itself. Cancelling sends SIGTERM to the group: the worker stops
training after the current batch (keeping the best epoch so far, as on Ctrl-C) and records ``cancelled``; a
worker that has not stopped after ``cancel_grace_seconds`` is killed. A worker that dies without recording an end is marked ``failed`` with its
exit status and the last lines it wrote to stderr. When the server shuts down, running jobs are marked
``interrupted`` and their processes killed; a worker whose server died without that notices that it was
orphaned and exits, and the next server marks its job interrupted on start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioclas.fileio import now_iso
from audioclas.service.jobs import Job, JobStore

if TYPE_CHECKING:
    from audioclas.training import TrainEvent

log = logging.getLogger("audioclas.service")
REPORT_EVERY = 0.5  # seconds between two progress writes of a worker
STDERR_TAIL = 20  # lines of a dead worker's stderr kept as its error


@dataclass
class _Running:
    job_id: str
    token: str
    process: subprocess.Popen[bytes]
    stderr_path: Path
    kill_at: float | None = None  # set once SIGTERM was sent for a cancel


class Dispatcher:
    """Starts, watches and stops the worker processes of one job database."""

    def __init__(
        self,
        store: JobStore,
        logs_dir: Path,
        max_jobs: int = 1,
        cancel_grace: float = 10.0,
        data_roots: tuple[Path, ...] = (),
    ) -> None:
        self.store, self.logs_dir, self.data_roots = store, Path(logs_dir), data_roots
        self.max_jobs, self.cancel_grace = max_jobs, cancel_grace
        self.running: dict[str, _Running] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="job-dispatcher", daemon=True)

    def start(self) -> None:
        """Mark jobs that were running when the last server stopped interrupted (killing any orphaned worker
        still alive), then start the queue."""
        restarted = now_iso("milliseconds")
        for job in self.store.interrupt_all(f"the server stopped while this job was running (restarted {restarted})"):
            _kill_orphan(job)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue and the cancel requests now rather than at the next tick."""
        self._wake.set()

    def stop(self, reason: str = "the server shut down while this job was running") -> None:
        self._stopping = True
        self.wake()
        self._thread.join(timeout=30)
        for run in list(self.running.values()):
            if self.store.end(run.job_id, "interrupted", reason, token=run.token):
                self.store.log(run.job_id, f"interrupted: {reason}")
            _signal_group(run.process, signal.SIGKILL)
            run.process.wait()
        self.running.clear()

    def _loop(self) -> None:
        while not self._stopping:
            try:
                self._tick()
            except Exception:  # the dispatcher must outlive any one bad job
                log.exception("job dispatcher")
            self._wake.wait(0.5)
            self._wake.clear()

    def _tick(self) -> None:
        for run in list(self.running.values()):
            if run.process.poll() is not None:
                self._finished(run)
        for job in self.store.with_status("running"):
            running = self.running.get(job.id)
            if running is not None and job.cancel_requested:
                self._cancel(running)
        while len(self.running) < self.max_jobs and not self._stopping:
            queued = self.store.with_status("queued")
            if not queued:
                break
            self._launch(queued[0])

    def _launch(self, job: Job) -> None:
        token = self.store.start(job.id)
        if token is None:  # cancelled in the meantime
            return
        stderr_path = self.logs_dir / f"{job.id}.stderr"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "audioclas.service.worker",
                    str(self.store.path),
                    job.id,
                    token,
                    *map(str, self.data_roots),
                ],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        self.store.set_pid(job.id, token, process.pid)
        self.store.log(job.id, f"started (worker process {process.pid})")
        self.running[job.id] = _Running(job.id, token, process, stderr_path)

    def _cancel(self, run: _Running) -> None:
        if run.kill_at is None:
            self.store.log(run.job_id, "cancel requested: stopping the worker")
            _signal_group(run.process, signal.SIGTERM)
            run.kill_at = time.monotonic() + self.cancel_grace
        elif time.monotonic() > run.kill_at:
            self.store.log(run.job_id, f"the worker did not stop within {self.cancel_grace:g} s: killed")
            _signal_group(run.process, signal.SIGKILL)
            run.process.wait()
            self.store.end(run.job_id, "cancelled", "cancelled (the worker was killed)", token=run.token)
            self._finished(run)

    def _finished(self, run: _Running) -> None:
        """Reap a worker; if it died without recording an end, record one for it."""
        self.running.pop(run.job_id, None)
        code = run.process.wait()
        how = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        if run.kill_at is not None:
            ended = self.store.end(run.job_id, "cancelled", f"cancelled (the worker {how})", token=run.token)
        else:
            tail = _tail(run.stderr_path, STDERR_TAIL)
            ended = self.store.end(
                run.job_id, "failed", f"the worker process {how}" + (f":\n{tail}" if tail else ""), token=run.token
            )
        if ended:
            self.store.log(run.job_id, f"the worker process {how}")
        self.wake()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _kill_orphan(job: Job) -> None:
    """Kill the worker of ``job`` if it still runs (checked by its command line, as the pid may be reused)."""
    if not job.pid:
        return
    try:
        command = Path(f"/proc/{job.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if b"audioclas.service.worker" in command and job.id.encode() in command:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGKILL)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# ------------------------------------------------------------------------------------------------ the worker


class _Reporter:
    """The worker's side: progress, metrics and log lines into the job database, progress at most every
    ``REPORT_EVERY`` seconds. When a write finds that the job is no longer ours, it sets ``cancel``."""

    def __init__(self, store: JobStore, job_id: str, token: str, cancel: threading.Event) -> None:
        self.store, self.job_id, self.token, self.cancel = store, job_id, token, cancel
        self.progress: dict[str, Any] = {}
        self.metrics: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.last_write = 0.0

    def event(self, event: TrainEvent) -> None:
        stage_changed = event.stage != self.progress.get("stage")
        self.progress = {"stage": event.stage, "done": event.done, "total": event.total}
        if event.stage == "train" and event.metrics:
            self.metrics = dict(event.metrics)
            self.history.append(self.metrics)
        if stage_changed or event.done >= event.total or time.monotonic() - self.last_write >= REPORT_EVERY:
            self.flush()

    def flush(self) -> None:
        self.last_write = time.monotonic()
        if self.progress and not self.store.report(self.job_id, self.token, self.progress, self.metrics, self.history):
            self.cancel.set()

    def log(self, message: str) -> None:
        self.store.log(self.job_id, message)


class _LogHandler(logging.Handler):
    """Warnings from the libraries (a file that fails to decode…) go to the job's log too."""

    def __init__(self, reporter: _Reporter) -> None:
        super().__init__(logging.WARNING)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        self.reporter.log(f"{record.levelname.lower()}: {record.getMessage()}")


def _watch_parent(parent: int) -> None:
    """Exit when the server that started us is gone (we were re-parented): the next server marks the job
    interrupted. Models and cache entries are written atomically, so stopping anywhere is safe."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def run_worker(database: Path, job_id: str, token: str, data_roots: tuple[Path, ...] = ()) -> int:
    """Train the job ``job_id`` on files below ``data_roots`` (empty: anywhere); returns the process exit status."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    store = JobStore(database)
    job = store.get(job_id)
    if job is None or job.run_token != token or job.status != "running":
        return 2
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    reporter = _Reporter(store, job_id, token, cancel)
    logging.getLogger().addHandler(_LogHandler(reporter))
    try:
        from audioclas.training import Cancelled, TrainConfig, load_dataset, train
        from audioclas.training.summary import summary

        config = TrainConfig.model_validate(job.config)  # as the route checked it
        embeddings = Path(config.from_embeddings) if config.from_embeddings else None
        dataset = load_dataset(
            job.dataset,
            multilabel=config.multilabel,
            embeddings=embeddings,
            roots=data_roots,
            quote=False,
            label_column=config.label_column,
            background=config.background,
        )
        result = train(dataset, config, on_event=reporter.event, cancel=cancel, log=reporter.log)
    except Cancelled as error:
        reporter.flush()
        store.end(job_id, "cancelled", str(error), token=token)
        return 0
    except Exception as error:
        traceback.print_exc()
        reporter.flush()
        store.end(job_id, "failed", str(error) or type(error).__name__, token=token)
        return 1
    reporter.flush()
    status = "cancelled" if result.stopped == "cancelled" else "succeeded"
    store.end(
        job_id,
        status,
        "cancelled; the best epoch so far was saved" if status == "cancelled" else None,
        token=token,
        result=summary(result),
        metrics=result.metrics,
        history=result.history,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_worker(Path(sys.argv[1]), sys.argv[2], sys.argv[3], tuple(map(Path, sys.argv[4:]))))
