"""``export_onnx``: the exported file, run in a fresh ONNX Runtime session, against the package's own results.

Windows are cut as the documentation tells an edge user to (``windows.iter_windows``: the model's window and hop,
a short clip looped), and the file's window and clip scores are compared with ``Tagger().predict``'s, for the
AudioSet tagger and for the real tiny models of tests/support/tiny_models.py (a frozen linear head, and a
fine-tuned network with an attention head).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tiny_models import tiny_models

from audioclas import __version__
from audioclas.architecture import EMBEDDING_DIM, SAMPLE_RATE
from audioclas.engine.export import METADATA_KEYS, ExportError, classifier_head, export_onnx
from audioclas.engine.onnx_ops import Graph
from audioclas.labels import audioset_labels
from audioclas.tagger import Tagger
from audioclas.training.store import SavedModel, load_model
from audioclas.training.store.numpy_head import LAYERS, NumpyHead
from audioclas.weights import WEIGHTS_SHA256
from audioclas.windows import WindowSettings, iter_windows

WINDOW = 10 * SAMPLE_RATE


def _wave(reference: np.lib.npyio.NpzFile, clip: str) -> np.ndarray:
    return reference[f"{clip}__wave_int16"].astype(np.float32) * reference["wave_scale"]


def _cut(wave: np.ndarray, settings: WindowSettings) -> np.ndarray:
    size, hop = settings.in_samples(SAMPLE_RATE)
    return np.stack([window.samples for window in iter_windows([wave], size, hop, settings.pad)])


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _metadata(path: Path) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def audioset_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "audioset.onnx"
    exported = export_onnx(path)
    assert exported.path == path and exported.size == path.stat().st_size and exported.classes == 527
    return path


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


def test_audioset_file_matches_the_reference(audioset_file, reference):
    """The two full 10 s windows of a reference clip: probabilities and embeddings within 1e-4 of upstream's."""
    wave = _wave(reference, "drumbass")
    scores, clip, embedding = _session(audioset_file).run(
        ["scores", "clip_scores", "embedding"], {"waveform": wave[: 2 * WINDOW].reshape(2, WINDOW)}
    )
    np.testing.assert_allclose(scores, reference["drumbass__win_probs"][:2], rtol=0, atol=1e-4)
    np.testing.assert_allclose(embedding, reference["drumbass__win_embedding"][:2], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(clip, scores.max(axis=0, keepdims=True))


@pytest.mark.parametrize("clip", ["robin", "drumbass"])
def test_audioset_file_matches_the_tagger(audioset_file, reference, tagger, clip):
    """A short clip (looped to one window) and a long one (windows every 10 s, the last flush with the end)."""
    wave = _wave(reference, clip)
    expected = tagger.predict((wave, SAMPLE_RATE))
    scores, clip_scores = _session(audioset_file).run(
        ["scores", "clip_scores"], {"waveform": _cut(wave, WindowSettings())}
    )
    assert scores.shape == expected.window_scores.shape
    np.testing.assert_allclose(scores, expected.window_scores, rtol=0, atol=1e-4)
    np.testing.assert_allclose(clip_scores[0], expected.scores, rtol=0, atol=1e-4)  # --aggregate max, the default


def test_audioset_metadata(audioset_file):
    meta = _metadata(audioset_file)
    assert tuple(meta) == METADATA_KEYS
    assert json.loads(meta["classes"]) == [{"index": x.index, "id": x.id, "name": x.name} for x in audioset_labels()]
    assert (meta["sample_rate"], meta["window_seconds"], meta["hop_seconds"], meta["pad"]) == (
        "32000",
        "10.0",
        "10.0",
        "loop",
    )
    assert meta["backbone_sha256"] == meta["pretrained_sha256"] == WEIGHTS_SHA256
    assert (meta["model"], meta["multilabel"], meta["activation"], meta["clip_pooling"]) == (
        "audioset",
        "true",
        "sigmoid",
        "max",
    )
    assert meta["audioclas_version"] == __version__ and "MIT" in meta["licence"] and "CC BY 4.0" in meta["licence"]
    model = onnx.load(str(audioset_file))
    assert [value.name for value in model.graph.input] == ["waveform"]
    assert [value.name for value in model.graph.output] == ["scores", "clip_scores", "embedding"]


@pytest.fixture(scope="module")
def models(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SavedModel]:
    frozen, finetuned = tiny_models(shared_dir, tmp_path_factory.mktemp("models"))
    return {"frozen": load_model(frozen), "finetuned": load_model(finetuned)}


@pytest.mark.parametrize("kind", ["frozen", "finetuned"])
def test_custom_model_file_matches_the_tagger(models, reference, tagger, tmp_path, kind):
    model = models[kind]
    path = tmp_path / f"{kind}.onnx"
    export_onnx(path, model)
    wave = _wave(reference, "robin")
    expected = tagger.predict((wave, SAMPLE_RATE), model=model)
    settings = WindowSettings(model.window, model.hop, model.pad)
    scores, clip_scores, embedding = _session(path).run(None, {"waveform": _cut(wave, settings)})
    assert scores.shape == expected.window_scores.shape and len(scores) > 1, scores.shape
    np.testing.assert_allclose(scores, expected.window_scores, rtol=0, atol=1e-4)
    np.testing.assert_allclose(clip_scores[0], expected.scores, rtol=0, atol=1e-4)
    assert embedding.shape == (len(scores), EMBEDDING_DIM)

    meta = _metadata(path)
    assert tuple(meta) == METADATA_KEYS
    assert [x["name"] for x in json.loads(meta["classes"])] == model.classes
    assert (meta["model"], meta["finetuned"], meta["backbone_sha256"]) == (
        model.name,
        json.dumps(model.finetuned),
        model.backbone_sha256,
    )
    assert meta["pretrained_sha256"] == WEIGHTS_SHA256
    assert (float(meta["window_seconds"]), float(meta["hop_seconds"]), meta["pad"]) == (
        settings.window,
        settings.hop_seconds,
        settings.pad,
    )
    assert meta["activation"] == ("sigmoid" if model.multilabel else "softmax")
    assert meta["clip_pooling"] == {"linear": "mean", "mlp": "mean", "attention": "attention"}[model.head.kind]
    assert json.loads(meta["thresholds"]) == (None if model.thresholds is None else model.thresholds.tolist())
    if kind == "finetuned":  # its own network: the AudioSet embedding of the same windows differs
        assert meta["backbone_sha256"] != WEIGHTS_SHA256


def test_a_backbone_that_does_not_match_is_refused(models, tmp_path):
    finetuned = dataclasses.replace(models["finetuned"], backbone_sha256="0" * 64)
    with pytest.raises(ExportError, match="does not match its sha256"):
        export_onnx(tmp_path / "x.onnx", finetuned)
    frozen = dataclasses.replace(models["frozen"], backbone_sha256="0" * 64)
    with pytest.raises(ExportError, match="trained on another backbone"):
        export_onnx(tmp_path / "x.onnx", frozen)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_unless_forced(audioset_file, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"mine")
    with pytest.raises(ExportError, match="exists: use --force"):
        export_onnx(path)
    assert path.read_bytes() == b"mine"
    export_onnx(path, force=True)
    assert path.read_bytes() == audioset_file.read_bytes()  # the build is deterministic
    assert sorted(tmp_path.iterdir()) == [path]  # no temporary file left behind
    with pytest.raises(ExportError, match="is a folder"):
        export_onnx(tmp_path, force=True)


@pytest.mark.unit
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_head_in_the_graph_matches_the_numpy_head(kind):
    """Every head kind with random weights, the batch taken as one clip's windows, against ``NumpyHead.forward``."""
    rng = np.random.default_rng(0)
    dim, classes, hidden, windows = EMBEDDING_DIM, 5, 16, 7
    tensors = {"mean": rng.normal(0, 1, dim), "std": rng.uniform(0.5, 2, dim)}
    for layer in LAYERS[kind]:
        rows, columns = (hidden, dim) if layer == "hidden.0" else (classes, dim if kind == "linear" else hidden)
        tensors[f"{layer}.weight"], tensors[f"{layer}.bias"] = (
            rng.normal(0, columns**-0.5, (rows, columns)),
            rng.normal(0, 1, rows),
        )
    head = NumpyHead(kind, {key: value.astype(np.float32) for key, value in tensors.items()})
    model = SavedModel(
        "random", Path("."), [str(c) for c in range(classes)], False, 1.0, None, "loop", None, "", "", False, head, {}
    )
    graph = Graph()
    window_logits, clip_logits, _ = classifier_head(graph, model, graph.input("embedding", ["batch", dim]))
    proto = graph.model(
        {graph.rename(window_logits, "window"): ["batch", classes], graph.rename(clip_logits, "clip"): [1, classes]}
    )
    x = rng.normal(0, 1, (windows, dim)).astype(np.float32)
    got_window, got_clip = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"embedding": x}
    )
    want_window, want_clip = head.forward(x[None], np.ones((1, windows), bool))
    np.testing.assert_allclose(got_window, want_window[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got_clip[0], want_clip[0], rtol=0, atol=1e-5)
