"""Start the real ``audioclas serve`` on a free loopback port for the service tests, and small test data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from no_torch import BLOCK_TORCH

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120  # importing torch on a busy 2-core machine is slow
RUN_AUDIOCLAS = "import runpy\nsys.argv = sys.argv[1:]\nrunpy.run_module(sys.argv[0], run_name='__main__')\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, seconds: float, what: str, log: Callable[[], str]) -> None:
    """Until ``url`` answers 200; a RuntimeError with the tail of ``log()`` when ``process`` exits first or
    ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer within {seconds} s:\n{log()}")


class Server:
    """``python -m audioclas serve --port N ARGS`` with its own home and cache folders, run in ``cwd`` (default:
    the checkout, whose code it runs either way); ``without_torch``: as on an install without the [train] extra
    (``import torch`` fails in the server, see ``no_torch``)."""

    def __init__(
        self,
        home: Path,
        *args: str,
        cache: Path | None = None,
        token: str | None = None,
        cwd: Path | None = None,
        without_torch: bool = False,
    ) -> None:
        self.home, self.args, self.cwd = Path(home), args, Path(cwd) if cwd else REPO
        self.without_torch = without_torch
        self.cache = Path(cache) if cache else self.home.parent / f"{self.home.name}-cache"
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.home.parent / f"{self.home.name}-server.log"

    def start(self) -> Server:
        env = {**os.environ, "AUDIOCLAS_HOME": str(self.home), "AUDIOCLAS_CACHE": str(self.cache)}
        env.pop("AUDIOCLAS_TOKEN", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        if self.token:
            env["AUDIOCLAS_TOKEN"] = self.token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        python = [sys.executable, "-c", BLOCK_TORCH + RUN_AUDIOCLAS] if self.without_torch else [sys.executable, "-m"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*python, "audioclas", "serve", "--port", str(self.port), *self.args],
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=log,
            )
        try:
            wait_until_serving(self.process, f"{self.url}/health", STARTUP_SECONDS, "the server", self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")[-5000:]

    def stop(self) -> None:
        """A graceful stop (SIGTERM, as a service manager does)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """A crash: SIGKILL, no chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kwargs)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tiny_dataset(shared: Path, folder: Path, classes: tuple[str, ...] = ("0", "1"), per_class: int = 6) -> Path:
    """One folder per class with ``per_class`` real FSDD recordings each (george's, speaker-consistent)."""
    names = {"0": "zero", "1": "one", "2": "two"}
    for digit in classes:
        target = folder / names[digit]
        target.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            shutil.copy(shared / "datasets" / "fsdd" / "recordings" / f"{digit}_george_{index}.wav", target)
    return folder


def george_split(shared: Path, root: Path, split: str, indices, classes: int = 2) -> None:
    """Split-file layout: George's recordings of digits ``0..classes-1`` at ``indices``, copied under root/audio
    and listed in root/SPLIT.txt with the digit as the label number."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for label in range(classes):
        for index in indices:
            name = f"{label}_george_{index}.wav"
            shutil.copy(shared / "datasets" / "fsdd" / "recordings" / name, root / "audio" / name)
            lines.append(f"audio/{name} {label}")
    (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def wait_for(predicate, timeout: float, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy; return that, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
