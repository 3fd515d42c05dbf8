"""Our EfficientAT mn04 against the upstream reference outputs in shared/reference/efficientat_mn04.npz."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from audioclas.architecture import EMBEDDING_DIM, MIN_SAMPLES, NUM_CLASSES, make_divisible
from audioclas.engine.frontend import mel_filterbank, num_frames
from audioclas.features import LogMelFrontEnd
from audioclas.model import MobileNetV3, load_efficientat

LABELS_CSV = Path(__file__).resolve().parents[1] / "audioclas" / "data" / "class_labels_indices.csv"
LABELS_SHA256 = "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429"  # upstream metadata file
WINDOW = 320000

# docs/efficientat-mn04.md section 8: whole-clip top-5 (label, probability rounded to 3 decimals).
TOP5 = {
    "robin": [
        ("Bird", 0.821),
        ("Chirp, tweet", 0.717),
        ("Bird vocalization, bird call, bird song", 0.670),
        ("Domestic animals, pets", 0.098),
        ("Outside, rural or natural", 0.025),
    ],
    "trumpet": [
        ("Trumpet", 0.939),
        ("Music", 0.734),
        ("Brass instrument", 0.582),
        ("Musical instrument", 0.518),
        ("Trombone", 0.133),
    ],
    "metro": [
        ("Train", 0.727),
        ("Rail transport", 0.578),
        ("Railroad car, train wagon", 0.560),
        ("Subway, metro, underground", 0.493),
        ("Vehicle", 0.241),
    ],
    "speech_198": [
        ("Speech", 0.847),
        ("Female speech, woman speaking", 0.468),
        ("Narration, monologue", 0.394),
        ("Conversation", 0.152),
        ("Speech synthesizer", 0.122),
    ],
    "speech_3436": [
        ("Speech", 0.844),
        ("Speech synthesizer", 0.725),
        ("Narration, monologue", 0.332),
        ("Male speech, man speaking", 0.143),
        ("Conversation", 0.032),
    ],
    "speech_5703": [
        ("Speech synthesizer", 0.838),
        ("Speech", 0.788),
        ("Narration, monologue", 0.153),
        ("Male speech, man speaking", 0.064),
        ("Conversation", 0.022),
    ],
    "drumbass": [
        ("Music", 0.864),
        ("Musical instrument", 0.363),
        ("Guitar", 0.224),
        ("Bass guitar", 0.213),
        ("Plucked string instrument", 0.195),
    ],
    "pibble": [("Plop", 0.723), ("Animal", 0.333), ("Domestic animals, pets", 0.303), ("Dog", 0.287), ("Bark", 0.122)],
    "humpback": [
        ("Whale vocalization", 0.709),
        ("Animal", 0.671),
        ("Domestic animals, pets", 0.223),
        ("Wild animals", 0.176),
        ("Cat", 0.146),
    ],
    "hungarian": [
        ("Music", 0.769),
        ("Violin, fiddle", 0.379),
        ("Orchestra", 0.310),
        ("Musical instrument", 0.280),
        ("Bowed string instrument", 0.262),
    ],
}


def waveform(reference, clip: str) -> torch.Tensor:
    return torch.from_numpy(reference[f"{clip}__wave_int16"].astype(np.float32) / 32768)


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "fused"])
def model(request, weights_path):
    return load_efficientat(weights_path, fuse=request.param)


@pytest.fixture(scope="module")
def whole_clips(model, reference) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(logits, embedding) of each reference clip run as one input."""
    with torch.inference_mode():
        outputs = {clip: model(waveform(reference, clip)[None]) for clip in reference["clip_ids"]}
    return {clip: (logits[0].numpy(), embedding[0].numpy()) for clip, (logits, embedding) in outputs.items()}


@pytest.mark.unit
def test_mel_filterbank(reference):
    expected = reference["mel_filterbank"]
    np.testing.assert_allclose(mel_filterbank().astype(np.float32), expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(LogMelFrontEnd().mel_filterbank.numpy(), expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(LogMelFrontEnd().window.numpy(), reference["stft_window"])


@pytest.mark.unit
def test_mel_whole_clip(reference):
    front_end = LogMelFrontEnd()
    for clip in reference["clip_ids"]:
        wave = waveform(reference, clip)
        mel = front_end(wave[None])
        assert mel.shape == (1, 1, 128, num_frames(len(wave))), clip
        np.testing.assert_allclose(mel[0, 0].numpy(), reference[f"{clip}__mel"], rtol=0, atol=1e-3, err_msg=clip)


def test_shortest_input(model):
    with torch.inference_mode():
        logits, embedding = model(torch.zeros(1, MIN_SAMPLES))
    assert logits.shape == (1, NUM_CLASSES) and embedding.shape == (1, EMBEDDING_DIM)
    assert num_frames(MIN_SAMPLES) == 2
    with pytest.raises(ValueError, match=f"at least {MIN_SAMPLES} samples"):
        model(torch.zeros(1, MIN_SAMPLES - 1))


def test_whole_clip_outputs(whole_clips, reference):
    for clip, (logits, embedding) in whole_clips.items():
        np.testing.assert_allclose(logits, reference[f"{clip}__logits"], rtol=0, atol=1e-4, err_msg=clip)
        np.testing.assert_allclose(embedding, reference[f"{clip}__embedding"], rtol=0, atol=1e-5, err_msg=clip)
        probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
        np.testing.assert_allclose(probs, reference[f"{clip}__probs"], rtol=0, atol=1e-5, err_msg=clip)


def test_window_outputs(model, reference):
    """All 10 s windows of all clips (zero padded at the end) in one batch."""
    windows, owners = [], []
    for clip in reference["clip_ids"]:
        wave = waveform(reference, clip)
        count = len(reference[f"{clip}__win_start"])
        windows += torch.nn.functional.pad(wave, (0, count * WINDOW - len(wave))).reshape(count, WINDOW)
        owners += [clip] * count
    with torch.inference_mode():
        logits, embeddings = model(torch.stack(windows))
    for clip in reference["clip_ids"]:
        rows = [i for i, owner in enumerate(owners) if owner == clip]
        np.testing.assert_allclose(
            logits[rows].numpy(), reference[f"{clip}__win_logits"], rtol=0, atol=1e-4, err_msg=clip
        )
        np.testing.assert_allclose(
            embeddings[rows].numpy(), reference[f"{clip}__win_embedding"], rtol=0, atol=1e-5, err_msg=clip
        )
        np.testing.assert_allclose(
            torch.sigmoid(logits[rows]).numpy(), reference[f"{clip}__win_probs"], rtol=0, atol=1e-5, err_msg=clip
        )


def test_top5_labels(whole_clips):
    assert hashlib.sha256(LABELS_CSV.read_bytes()).hexdigest() == LABELS_SHA256
    with LABELS_CSV.open(encoding="utf-8", newline="") as file:
        names = [row["display_name"] for row in csv.DictReader(file)]
    assert len(names) == NUM_CLASSES
    for clip, expected in TOP5.items():
        probs = torch.sigmoid(torch.from_numpy(whole_clips[clip][0]))
        top = torch.topk(probs, 5)
        assert [names[i] for i in top.indices] == [name for name, _ in expected], clip
        np.testing.assert_allclose(top.values.numpy(), [p for _, p in expected], rtol=0, atol=5e-4, err_msg=clip)


def test_checkpoint_loads_strict(weights_path):
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    net = MobileNetV3()
    net.load_state_dict(state, strict=True)
    assert len(state) == 312
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 983_599
    assert all(bn.eps == 1e-3 for bn in net.modules() if isinstance(bn, torch.nn.BatchNorm2d))


def test_fused_model_has_no_batchnorm(weights_path):
    fused = load_efficientat(weights_path)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in fused.modules())
    assert not fused.training


@pytest.mark.unit
def test_make_divisible():
    # Examples from docs/efficientat-mn04.md section 3.2.
    assert [make_divisible(v * 0.4) for v in (16, 24, 64, 72, 184, 672, 960, 1280)] == [
        8,
        16,
        24,
        32,
        72,
        272,
        384,
        512,
    ]
    assert [make_divisible(c // 4) for c in (32, 48, 192, 272, 384)] == [8, 16, 48, 72, 96]
