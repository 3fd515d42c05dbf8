"""The ONNX Runtime engine against the upstream reference outputs and against the PyTorch model.

The reference test runs in a subprocess in which ``import torch`` fails, so it proves the ONNX path needs no
PyTorch: reading the checkpoint, building the graph, caching it and running it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from audioclas.architecture import HOP_LENGTH, MIN_SAMPLES, N_FFT, N_MELS
from audioclas.engine.checkpoint import State, read_checkpoint, state_sha256
from audioclas.engine.frontend import mel_filterbank
from audioclas.engine.layout import state_layout
from audioclas.engine.onnx_engine import OnnxEngine, cached_graph_path
from audioclas.engine.onnx_frontend import frame_window, log_mel
from audioclas.engine.onnx_graph import build_model
from audioclas.engine.onnx_ops import Graph
from audioclas.weights import WEIGHTS_SHA256

WINDOW = 320000

WITHOUT_TORCH = """
import importlib.abc, json, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked: this process must not need PyTorch")
sys.meta_path.insert(0, NoTorch())
from pathlib import Path
import numpy as np
from audioclas.engine.onnx_engine import OnnxEngine
weights, sha256, reference = sys.argv[1:]
engine = OnnxEngine.pretrained(Path(weights), sha256, threads=1)
ref = np.load(reference)
worst = {}
for clip in ref["clip_ids"]:
    wave = ref[f"{clip}__wave_int16"].astype(np.float32) * ref["wave_scale"]
    logits, embedding = engine.run(wave[None])
    count = len(ref[f"{clip}__win_start"])
    windows = np.zeros(count * 320000, np.float32)
    windows[: len(wave)] = wave
    win_logits, win_embedding = engine.run(windows.reshape(count, 320000))
    worst[str(clip)] = [
        float(np.abs(logits[0] - ref[f"{clip}__logits"]).max()),
        float(np.abs(embedding[0] - ref[f"{clip}__embedding"]).max()),
        float(np.abs(win_logits - ref[f"{clip}__win_logits"]).max()),
        float(np.abs(win_embedding - ref[f"{clip}__win_embedding"]).max()),
    ]
print(json.dumps({"torch_imported": "torch" in sys.modules, "worst": worst}))
"""


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AUDIOCLAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_reference_clips_without_torch(weights_path, shared_dir, private_cache):
    """Whole clips and 10 s windows of every reference clip: logits and embeddings within 1e-4."""
    reference = shared_dir / "reference" / "efficientat_mn04.npz"
    args = [sys.executable, "-c", WITHOUT_TORCH, str(weights_path), WEIGHTS_SHA256, str(reference)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["torch_imported"] is False
    assert len(result["worst"]) == 10
    for clip, diffs in result["worst"].items():
        assert max(diffs) <= 1e-4, (clip, diffs)
    assert cached_graph_path(WEIGHTS_SHA256).is_file()


def test_blocking_torch_works(tmp_path):
    """The subprocess above would notice torch: the same finder makes ``import torch`` fail."""
    code = WITHOUT_TORCH.split("from pathlib")[0] + "import torch\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "torch is blocked" in run.stderr


@pytest.fixture(scope="module")
def pretrained_state(weights_path) -> State:
    return read_checkpoint(weights_path)


def test_front_end_in_the_graph(pretrained_state, reference):
    """The graph's log-mel against the reference mel of every whole clip (the tolerance of tests/test_model.py)."""
    graph = Graph()
    mel = log_mel(graph, graph.input("waveform", ["batch", "samples"]))
    model = graph.model({graph.rename(mel, "mel"): ["batch", 1, N_MELS, "frames"]})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for clip in reference["clip_ids"]:
        wave = reference[f"{clip}__wave_int16"].astype(np.float32) * reference["wave_scale"]
        (out,) = session.run(["mel"], {"waveform": wave[None]})
        np.testing.assert_allclose(out[0, 0], reference[f"{clip}__mel"], rtol=0, atol=1e-3, err_msg=clip)


def test_log_mel_input(pretrained_state, reference):
    """The graph fed the reference log-mel (B, 1, 128, T) directly: the network alone."""
    model = build_model(pretrained_state, inputs="log_mel")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for clip in ("robin", "pibble"):
        logits, embedding = session.run(["logits", "embedding"], {"log_mel": reference[f"{clip}__mel"][None, None]})
        np.testing.assert_allclose(logits[0], reference[f"{clip}__logits"], rtol=0, atol=1e-4, err_msg=clip)
        np.testing.assert_allclose(embedding[0], reference[f"{clip}__embedding"], rtol=0, atol=1e-4, err_msg=clip)


def _windows(reference, clips: tuple[str, ...]) -> np.ndarray:
    rows = []
    for clip in clips:
        wave = reference[f"{clip}__wave_int16"].astype(np.float32) * reference["wave_scale"]
        count = -(-len(wave) // WINDOW)
        rows.append(np.pad(wave, (0, count * WINDOW - len(wave))).reshape(count, WINDOW))
    return np.concatenate(rows)


def test_agrees_with_the_torch_model(weights_path, reference, private_cache):
    """Both backends give the same embeddings (within 1e-4), so the embedding cache holds whichever computed it."""
    torch = pytest.importorskip("torch")
    from audioclas.model import load_efficientat

    windows = _windows(reference, ("speech_198", "drumbass", "humpback"))
    with torch.inference_mode():
        expected_logits, expected = load_efficientat(weights_path)(torch.from_numpy(windows))
    logits, embeddings = OnnxEngine.pretrained(weights_path, WEIGHTS_SHA256, threads=1).run(windows)
    np.testing.assert_allclose(embeddings, expected.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits, expected_logits.numpy(), rtol=0, atol=1e-4)


def test_fine_tuned_state_agrees_with_torch(weights_path, reference, private_cache):
    """A changed backbone (as fine-tuning leaves it) through from_state, against the PyTorch model holding it."""
    torch = pytest.importorskip("torch")
    from audioclas.model import EfficientAT

    model = EfficientAT()
    model.net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.net.state_dict().items():
            if tensor.is_floating_point() and not name.endswith("running_var"):
                tensor.mul_(1 + 0.05 * torch.randn(tensor.shape, generator=generator))
    state = {name: tensor.numpy().copy() for name, tensor in model.net.state_dict().items()}
    windows = _windows(reference, ("trumpet", "pibble"))
    with torch.inference_mode():
        expected_logits, expected = model.eval()(torch.from_numpy(windows))
    engine = OnnxEngine.from_state(state, state_sha256(state), threads=1)
    logits, embeddings = engine.run(windows)
    np.testing.assert_allclose(embeddings, expected.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits, expected_logits.numpy(), rtol=0, atol=1e-4)
    assert engine.identity == state_sha256(state) and engine.backend == "onnxruntime"


def test_cache_is_reused_and_a_damaged_or_stale_one_rebuilt(weights_path, pretrained_state, private_cache, monkeypatch):
    from audioclas.engine import onnx_engine

    real_build, built = onnx_engine.build_graph, []

    def counting_build(state: State, identity: str) -> bytes:
        built.append(identity)
        return real_build(state, identity)

    monkeypatch.setattr(onnx_engine, "build_graph", counting_build)
    wave = 0.1 * np.sin(np.arange(48000, dtype=np.float32) / 7)[None]
    expected = OnnxEngine.pretrained(weights_path, WEIGHTS_SHA256, threads=1).run(wave)
    path = cached_graph_path(WEIGHTS_SHA256)
    assert built == [WEIGHTS_SHA256] and list(path.parent.iterdir()) == [path]  # no temporary file left behind
    OnnxEngine.pretrained(weights_path, WEIGHTS_SHA256, threads=1)
    assert len(built) == 1  # loaded from the cache

    path.write_bytes(path.read_bytes()[:100000])  # damaged
    engine = OnnxEngine.pretrained(weights_path, WEIGHTS_SHA256, threads=1)
    assert len(built) == 2
    for got, want in zip(engine.run(wave), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    OnnxEngine.pretrained(weights_path, WEIGHTS_SHA256, threads=1)
    assert len(built) == 2  # the rebuilt graph was written back

    stale = build_model(pretrained_state, "waveform", {"audioclas_graph": "0", "weights_sha256": WEIGHTS_SHA256})
    path.write_bytes(stale.SerializeToString())  # an older graph version
    OnnxEngine.pretrained(weights_path, WEIGHTS_SHA256, threads=1)
    other = "0" * 64  # a graph cached under another name than the weights it holds
    cached_graph_path(other).write_bytes(path.read_bytes())
    OnnxEngine.pretrained(weights_path, other, threads=1)
    assert built == [WEIGHTS_SHA256, WEIGHTS_SHA256, WEIGHTS_SHA256, other]


def test_input_checks_and_batch_independence(weights_path, private_cache):
    engine = OnnxEngine.pretrained(weights_path, WEIGHTS_SHA256, threads=2)
    logits, embeddings = engine.run(np.zeros((1, MIN_SAMPLES), np.float32))
    assert logits.shape == (1, 527) and embeddings.shape == (1, 384) and logits.dtype == np.float32
    for bad in (np.zeros((1, MIN_SAMPLES - 1), np.float32), np.zeros(48000, np.float32)):
        with pytest.raises(ValueError, match=f"at least {MIN_SAMPLES} samples"):
            engine.run(bad)
    rows = np.random.default_rng(0).uniform(-0.5, 0.5, (3, 40000)).astype(np.float32)
    batch = engine.run(rows)[1]
    single = np.concatenate([engine.run(row[None])[1] for row in rows])
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="hex sha256"):
        OnnxEngine.pretrained(weights_path, "../../etc/passwd", threads=1)


@pytest.mark.unit
def test_graph_from_any_state_is_valid_onnx():
    """Random weights of the right layout: a graph the ONNX checker accepts, with dynamic batch and length."""
    import onnx

    rng = np.random.default_rng(0)
    state = {name: rng.uniform(-0.2, 0.2, shape).astype(np.float32) for name, shape in state_layout().items()}
    state.update({name: np.ones(shape, np.float32) for name, shape in state_layout().items() if "running_var" in name})
    state.update({name: np.zeros((), np.int64) for name in state_layout() if name.endswith("tracked")})
    model = build_model(state)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    logits, embeddings = session.run(["logits", "embedding"], {"waveform": np.zeros((2, 5000), np.float32)})
    assert logits.shape == (2, 527) and embeddings.shape == (2, 384) and np.isfinite(logits).all()


@pytest.mark.unit
def test_front_end_frame_count_at_every_phase():
    """Lengths at every offset within a hop (the grid of 32-sample rows can yield one frame too many)."""
    graph = Graph()
    mel = log_mel(graph, graph.input("waveform", ["batch", "samples"]))
    model = graph.model({graph.rename(mel, "mel"): ["batch", 1, N_MELS, "frames"]})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for length in range(MIN_SAMPLES, MIN_SAMPLES + 2 * HOP_LENGTH, 7):
        wave = rng.uniform(-0.5, 0.5, (1, length)).astype(np.float32)
        (out,) = session.run(["mel"], {"waveform": wave})
        assert out.shape == (1, 1, N_MELS, 1 + (length - 1) // HOP_LENGTH), length
        if length % 5 == 0:  # the last frame against a NumPy STFT of the same definition
            emphasised = wave[0, 1:] - 0.97 * wave[0, :-1]
            padded = np.pad(emphasised.astype(np.float64), N_FFT // 2, mode="reflect")
            frame = padded[HOP_LENGTH * (out.shape[3] - 1) :][:N_FFT] * frame_window()
            power = np.abs(np.fft.rfft(frame)) ** 2
            expected = (np.log(mel_filterbank().astype(np.float32).astype(np.float64) @ power + 1e-5) + 4.5) / 5
            np.testing.assert_allclose(out[0, 0, :, -1], expected, rtol=0, atol=1e-3, err_msg=str(length))
