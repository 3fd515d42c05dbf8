"""Predict throughput and latency of ``audioclas serve`` under concurrent clients (not a test).

    .venv/bin/python benchmarks/service_load.py [--clients 4] [--requests 200] [--slots 1 2]

Starts the real server on a free loopback port (one per ``--slots`` value, its ``--inference-slots``), warms
it up, then has ``--clients`` threads each POST the 10 s clip ``../shared/audio/metro_station-paris.wav``
(1.3 MB, 44.1 kHz 24-bit) to ``/v2/models/audioset/predict/`` until ``--requests`` answers came back.
Prints requests/s, seconds of audio tagged per second, and p50/p95 latency of one request.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests" / "support"))
os.environ.setdefault("AUDIOCLAS_WEIGHTS", str(SHARED / "weights" / "efficientat"))

from service_server import Server  # noqa: E402  (tests/support/service_server.py: starts `audioclas serve`)

CLIP = SHARED / "audio" / "metro_station-paris.wav"
CLIP_SECONDS = 10.0


def load(server: Server, clip: bytes, clients: int, requests: int) -> tuple[float, list[float]]:
    """(wall seconds, latency of each request) for ``requests`` predicts from ``clients`` threads."""
    latencies: list[float] = []
    remaining = [requests]
    lock = threading.Lock()

    def client() -> None:
        with server.client() as api:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                started = time.perf_counter()
                response = api.post("/v2/models/audioset/predict/", files={"files": (CLIP.name, clip)})
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or response.json()["results"][0]["labels"][0]["name"] != "Train":
                    raise RuntimeError(f"unexpected answer: {response.status_code} {response.text[:200]}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--slots", type=int, nargs="+", default=[1], help="--inference-slots values to compare")
    args = parser.parse_args()
    clip = CLIP.read_bytes()
    print(
        f"clip: {CLIP.name} ({CLIP_SECONDS:g} s, {len(clip) / 1e6:.1f} MB); {args.clients} clients, "
        f"{args.requests} requests; {os.cpu_count()} CPUs"
    )
    for slots in args.slots:
        with (
            tempfile.TemporaryDirectory() as folder,
            Server(Path(folder) / "home", "--inference-slots", str(slots)) as server,
        ):
            load(server, clip, args.clients, 4 * args.clients)  # warm-up
            wall, latencies = load(server, clip, args.clients, args.requests)
        p50, p95 = np.percentile(latencies, [50, 95])
        rate = len(latencies) / wall
        print(
            f"inference slots {slots}: {rate:.1f} requests/s ({rate * CLIP_SECONDS:.0f} s of audio/s), "
            f"latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
