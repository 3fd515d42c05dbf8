"""Training jobs kept in SQLite, so their history survives restarts of the server.

A job moves ``queued → running → succeeded | failed | cancelled | interrupted``; a queued job can also be
``cancelled``. Every move is one conditional ``UPDATE`` (``WHERE status = …``), so two processes never both
move the same job. The server's dispatcher and the job's worker process write to the same database (WAL mode).
A worker writes only while the job is running *and* still carries the ``run_token`` it was started with:
once the server has marked a job cancelled or interrupted, a late write from its worker changes nothing,
and the worker learns from that (``RunHandle.alive``) that it should stop.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioclas.fileio import now_iso

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATUSES = frozenset(STATUSES[2:])
LOG_LINES = 200  # lines of log kept per job
LOG_LINE_CHARS = 2000
HISTORY_EPOCHS = 1000  # epoch rows kept per job (the last ones)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    base TEXT NOT NULL,              -- the model the train route was called on
    target TEXT NOT NULL,            -- the name of the model the job saves
    dataset TEXT NOT NULL,
    config TEXT NOT NULL,            -- JSON: the TrainConfig values
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    progress TEXT,                   -- JSON: {"stage", "done", "total"}
    metrics TEXT,                    -- JSON: the last epoch's metrics while running, the final metrics after
    history TEXT,                    -- JSON: one row per epoch
    result TEXT,                     -- JSON: model, stopped, best_epoch, timings
    error TEXT,
    run_token TEXT,
    pid INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created);
CREATE TABLE IF NOT EXISTS job_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    time TEXT NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_log_by_job ON job_log (job_id, seq);
"""


def _now() -> str:
    return now_iso("milliseconds")  # jobs created in the same second keep their order


@dataclass(frozen=True)
class Job:
    id: str
    base: str
    target: str
    dataset: str
    config: dict[str, Any]
    status: str
    created: str
    started: str | None
    finished: str | None
    progress: dict[str, Any] | None
    metrics: dict[str, Any] | None
    history: list[dict[str, Any]]
    result: dict[str, Any] | None
    error: str | None
    pid: int | None
    cancel_requested: bool
    run_token: str | None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        base=row["base"],
        target=row["target"],
        dataset=row["dataset"],
        config=json.loads(row["config"]),
        status=row["status"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        progress=_loads(row["progress"]),
        metrics=_loads(row["metrics"]),
        history=_loads(row["history"]) or [],
        result=_loads(row["result"]),
        error=row["error"],
        pid=row["pid"],
        cancel_requested=bool(row["cancel_requested"]),
        run_token=row["run_token"],
    )


class JobStore:
    """The job table of one database file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # reading --------------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def require(self, job_id: str) -> Job:
        """The job ``job_id``, known to exist (jobs are never deleted); ``KeyError`` otherwise."""
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        return job

    def history(self, model: str, limit: int = 100) -> list[Job]:
        """Jobs started on ``model`` or saving a model of that name, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE base = ? OR target = ? ORDER BY created DESC, rowid DESC LIMIT ?",
                (model, model, limit),
            ).fetchall()
        return [_job(row) for row in rows]

    def with_status(self, *statuses: str) -> list[Job]:
        marks = ",".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created, rowid", statuses)
            return [_job(row) for row in rows.fetchall()]

    def log_tail(self, job_id: str, lines: int = LOG_LINES) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT time, line FROM job_log WHERE job_id = ? ORDER BY seq DESC LIMIT ?", (job_id, lines)
            ).fetchall()
        return [f"{row['time'][11:19]} {row['line']}" for row in reversed(rows)]

    # moves made by the server ---------------------------------------------------------------------------------

    def create(self, base: str, target: str, dataset: str, config: dict[str, Any]) -> Job:
        job_id = uuid.uuid4().hex
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, base, target, dataset, config, status, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, base, target, dataset, json.dumps(config), "queued", _now()),
            )
        self.log(job_id, f"queued: train {target!r} on {dataset}")
        return self.require(job_id)

    def start(self, job_id: str) -> str | None:
        """queued → running; returns the run token the worker must show, or None if the job was not queued."""
        token = uuid.uuid4().hex
        with self._transaction() as db:
            moved = db.execute(
                "UPDATE jobs SET status = 'running', started = ?, run_token = ? WHERE id = ? AND status = 'queued'",
                (_now(), token, job_id),
            ).rowcount
        return token if moved else None

    def set_pid(self, job_id: str, token: str, pid: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET pid = ? WHERE id = ? AND run_token = ?", (pid, job_id, token))

    def request_cancel(self, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one is flagged for the dispatcher to stop."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'cancelled', finished = ?, error = 'cancelled before it started' "
                "WHERE id = ? AND status = 'queued'",
                (_now(), job_id),
            )
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", (job_id,))
        return self.require(job_id)

    def end(self, job_id: str, status: str, error: str | None = None, token: str | None = None, **values: Any) -> bool:
        """running → ``status`` (with ``token``: only for that run); False if the job was not running."""
        assert status in FINAL_STATUSES
        columns = {
            "status": status,
            "finished": _now(),
            "error": error,
            **{key: json.dumps(value) for key, value in values.items()},
        }
        sets = ", ".join(f"{column} = ?" for column in columns)
        where = "id = ? AND status = 'running'" + (" AND run_token = ?" if token else "")
        with self._transaction() as db:
            moved = db.execute(
                f"UPDATE jobs SET {sets} WHERE {where}", (*columns.values(), job_id, *([token] if token else []))
            ).rowcount
        return bool(moved)

    def interrupt_all(self, reason: str) -> list[Job]:
        """Mark every running job interrupted (a server that starts finds them so after a crash)."""
        running = self.with_status("running")
        for job in running:
            if self.end(job.id, "interrupted", reason):
                self.log(job.id, f"interrupted: {reason}")
        return running

    # writes from the worker -----------------------------------------------------------------------------------

    def report(
        self,
        job_id: str,
        token: str,
        progress: dict[str, Any],
        metrics: dict[str, Any] | None,
        history: list[dict[str, Any]],
    ) -> bool:
        """Progress of a running job; False when the job is no longer this run's (cancelled, interrupted)."""
        with self._transaction() as db:
            return bool(
                db.execute(
                    "UPDATE jobs SET progress = ?, metrics = COALESCE(?, metrics), history = ? "
                    "WHERE id = ? AND run_token = ? AND status = 'running'",
                    (
                        json.dumps(progress),
                        json.dumps(metrics) if metrics else None,
                        json.dumps(history[-HISTORY_EPOCHS:]),
                        job_id,
                        token,
                    ),
                ).rowcount
            )

    def log(self, job_id: str, message: str) -> None:
        """Append lines to the job's log, keeping the last ``LOG_LINES``."""
        stamp = _now()
        lines = [line[:LOG_LINE_CHARS] for line in str(message).splitlines() or [""]]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO job_log (job_id, time, line) VALUES (?, ?, ?)", [(job_id, stamp, line) for line in lines]
            )
            db.execute(
                "DELETE FROM job_log WHERE job_id = ? AND seq <= "
                "(SELECT seq FROM job_log WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (job_id, job_id, LOG_LINES),
            )
