"""The real ``deepaas-run`` (DEEPaaS 2.6, the [deepaas] extra) on a free loopback port, running this checkout's
code: started by the DEEPaaS tests and by the tests that check a trained model predicts through DEEPaaS."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from service_server import REPO, free_port, wait_until_serving

DEEPAAS_RUN = Path(sys.executable).parent / "deepaas-run"
STARTUP_SECONDS = 120  # the workers import the network and warm it on a busy 2-core machine


def _die_with_the_tests() -> None:
    """In the child, before ``exec``: SIGKILL it when the test process dies, even by a signal that skips the
    fixtures' teardown (Linux's ``PR_SET_PDEATHSIG``); its spawned workers then see their pipes close and exit."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


class DeepaasServer:
    """``deepaas-run --listen-ip 127.0.0.1 --listen-port N`` in its own process group (its worker pool is killed
    with it), running this checkout's code, with ``env`` added to the environment."""

    def __init__(self, folder: Path, env: dict[str, str], home: Path | None = None) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "deepaas.log"
        # its own cache: what it computes (embeddings, the ONNX graph) is never found ready by another test's run
        places = {"AUDIOCLAS_HOME": str(home or folder / "home"), "AUDIOCLAS_CACHE": str(folder / "cache")}
        environment = {**os.environ, **places, **env}
        for name in ("AUDIOCLAS_DATA_ROOT", "AUDIOCLAS_ALLOW_ANY_DATASET"):
            if name not in env:
                environment.pop(name, None)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
        assert DEEPAAS_RUN.is_file(), f"{DEEPAAS_RUN} is missing: pip install 'audioclas[deepaas]'"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(DEEPAAS_RUN), "--listen-ip", "127.0.0.1", "--listen-port", str(self.port)],
                cwd=folder,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_the_tests,
            )
        try:
            wait_until_serving(self.process, f"{self.url}/v2/models/", STARTUP_SECONDS, "deepaas-run", self.log)
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")[-5000:]

    def stop(self) -> None:
        """SIGTERM to the whole group (the server, its spawned workers), SIGKILL if it lingers."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers left behind, if any
        self.process.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)
