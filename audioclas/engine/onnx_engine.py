"""The ONNX Runtime engine: the log-mel front end in NumPy (``engine.frontend``), the network as an ONNX graph; no
PyTorch.

The front end runs outside the graph because it measured faster there: 14 ms per 10 s window for the NumPy front
end and the network on log-mel input, 18.5 ms with the front end in the graph (``benchmarks/frontend_speed.py``,
one thread). The exported file (``engine.export``) keeps the front end in its graph, to be self-contained.

The graph is built from the weights (``onnx_graph``) once and kept in the user cache as ``onnx/<identity>.onnx``
(written atomically), so that later processes only load it. A cache file that cannot be loaded, or that a different
graph version or other weights wrote, is rebuilt. ONNX Runtime runs with full graph optimisation, one
inter-op thread and thread spinning off: the decoder thread shares the cores, and a spinning worker would steal
them while it waits. For the same reason the front end's BLAS (NumPy's OpenBLAS, whose idle threads spin) runs on
the engine's threads only: with its default of one thread per core, a 10-minute mp3 took 1.7 s and 3.3 s of CPU
on 2 cores, with one thread 1.05 s and 1.8 s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from threadpoolctl import ThreadpoolController

from audioclas.engine import Embeddings, Logits, Waveforms
from audioclas.engine.checkpoint import State, read_checkpoint
from audioclas.engine.frontend import NumpyLogMel
from audioclas.fileio import atomic_open, open_regular
from audioclas.settings import cache_dir

GRAPH_VERSION = "2"  # bump when the graph changes: cached files of another version are rebuilt
MAX_CACHED_BYTES = 64 * 2**20  # the graph is 4 MB
# Windows per session run: ONNX Runtime keeps the activations of the largest batch it ran (a batch of 16 windows of
# 10 s held 190 MiB more than one of 4, at the same speed per window), and the tagger batches 16.
ROWS_PER_RUN = 4
_IDENTITY = re.compile(r"[0-9a-f]{64}")


def cached_graph_path(identity: str) -> Path:
    return cache_dir() / "onnx" / f"{identity}.onnx"


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class OnnxEngine:
    """Engine (``audioclas.engine.Engine``) on ONNX Runtime: waveforms (B, N) -> (logits, embeddings)."""

    backend = "onnxruntime"

    def __init__(self, session: ort.InferenceSession, identity: str, threads: int) -> None:
        self.session = session
        self.identity = identity
        self.threads = threads
        self.front_end = NumpyLogMel()
        self.blas = ThreadpoolController()

    @classmethod
    def pretrained(cls, checkpoint: Path, identity: str, threads: int) -> OnnxEngine:
        """The upstream checkpoint (already checked against ``identity``, its sha256), built once and cached."""
        return cls._cached(lambda: read_checkpoint(checkpoint), identity, threads)

    @classmethod
    def from_state(cls, state: State, identity: str, threads: int) -> OnnxEngine:
        """A fine-tuned backbone (``checkpoint.read_safetensors``; ``identity`` is its ``state_sha256``)."""
        return cls._cached(lambda: state, identity, threads)

    @classmethod
    def _cached(cls, state: Callable[[], State], identity: str, threads: int) -> OnnxEngine:
        if not _IDENTITY.fullmatch(identity):
            raise ValueError(f"an engine's identity is a hex sha256, got {identity!r}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        options = session_options(threads)
        path = cached_graph_path(identity)
        session = _load_cached(path, identity, options)
        if session is None:
            data = build_graph(state(), identity)
            try:
                with atomic_open(path, "wb") as file:
                    file.write(data)
            except OSError:
                pass  # a read-only or full cache costs the next process a rebuild, nothing else
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return cls(session, identity, threads)

    def run(self, waveforms: Waveforms) -> tuple[Logits, Embeddings]:
        waveforms = np.asarray(waveforms, dtype=np.float32)
        outputs = [
            self._run(waveforms[row : row + ROWS_PER_RUN]) for row in range(0, max(len(waveforms), 1), ROWS_PER_RUN)
        ]
        if len(outputs) == 1:
            return outputs[0]
        return np.concatenate([logits for logits, _ in outputs]), np.concatenate([emb for _, emb in outputs])

    def _run(self, waveforms: Waveforms) -> tuple[Logits, Embeddings]:
        with self.blas.limit(limits=self.threads, user_api="blas"):  # 20 µs
            feed = {"log_mel": self.front_end(waveforms)}  # checks the shape
        logits, embeddings = self.session.run(["logits", "embedding"], feed)
        return logits, embeddings


def build_graph(state: State, identity: str) -> bytes:
    """The serialised graph (log-mel in, logits and embedding out), its metadata naming version and weights."""
    from audioclas.engine.onnx_graph import build_model  # imports onnx: only a process that builds pays for it

    metadata = {"audioclas_graph": GRAPH_VERSION, "weights_sha256": identity}
    data: bytes = build_model(state, "log_mel", metadata).SerializeToString()
    return data


def _load_cached(path: Path, identity: str, options: ort.SessionOptions) -> ort.InferenceSession | None:
    """A session on the cached graph, or None when there is none, or it is damaged or stale."""
    try:
        with open_regular(path) as file:
            data = file.read(MAX_CACHED_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_CACHED_BYTES:
        return None
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no base class but Exception
        return None
    meta = session.get_modelmeta().custom_metadata_map
    names = [value.name for value in session.get_inputs()], [value.name for value in session.get_outputs()]
    expected = {"audioclas_graph": GRAPH_VERSION, "weights_sha256": identity}
    if {key: meta.get(key) for key in expected} != expected or names != (["log_mel"], ["logits", "embedding"]):
        return None
    return session
