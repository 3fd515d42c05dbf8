"""Reading mn04 weights without PyTorch: the restricted ``.pt`` reader, safetensors backbones, state_sha256.

The hostile checkpoints are written by hand here, opcode by opcode, in the PyTorch zip layout (``archive/data.pkl``
plus ``archive/data/<key>`` storages), so that these tests need neither torch nor the real weights.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from audioclas.engine.checkpoint import MAX_MEMBERS, read_checkpoint, read_safetensors, state_sha256
from audioclas.engine.layout import state_layout
from audioclas.errors import WeightsError


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _ints(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(b"\x8a\x08" + struct.pack("<q", v) for v in values) + b"t"  # MARK, LONG1 ..., TUPLE


def _tensor(key: str, kind: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...], offset: int = 0) -> bytes:
    """_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()) as pickle opcodes."""
    storage = b"(" + _text("storage") + f"ctorch\n{kind}\n".encode() + _text(key) + _text("cpu")
    storage += b"\x8a\x08" + struct.pack("<q", numel) + b"tQ"  # TUPLE, BINPERSID
    hooks = b"ccollections\nOrderedDict\n)R"
    args = b"(" + storage + b"\x8a\x08" + struct.pack("<q", offset) + _ints(shape) + _ints(stride) + b"\x89" + hooks
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"tR"


def _strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))


def write_checkpoint(
    path: Path, tensors: dict[str, bytes] | None = None, storages: dict[str, bytes] | None = None, tail: bytes = b""
) -> Path:
    """A zip checkpoint: by default all of mn04's tensors (zeros, 1 for running_var); ``tensors`` replaces the
    pickled record of a name, ``storages`` adds or replaces storage files, ``tail`` goes before the final STOP."""
    records, files = {}, {}
    for i, (name, shape) in enumerate(state_layout().items()):
        counter = name.endswith("num_batches_tracked")
        numel = int(np.prod(shape))
        array = np.full(numel, 1.0 if name.endswith("running_var") else 0.0, "<i8" if counter else "<f4")
        files[str(i)] = array.tobytes()
        records[name] = _tensor(str(i), "LongStorage" if counter else "FloatStorage", numel, shape, _strides(shape))
    records.update(tensors or {})
    files.update(storages or {})
    pickled = b"\x80\x02}(" + b"".join(_text(name) + record for name, record in records.items()) + b"u" + tail + b"."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        for key, data in files.items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")
    return path


@pytest.mark.unit
def test_handwritten_checkpoint_reads(tmp_path):
    """The positive control for the hostile cases below: the same writer, nothing hostile, reads."""
    state = read_checkpoint(write_checkpoint(tmp_path / "ok.pt"))
    assert list(state) == list(state_layout())
    assert state["features.0.1.running_var"].tolist() == [1.0] * 8
    assert state["features.0.1.num_batches_tracked"].dtype == np.int64


def _refused(path: Path, problem: str) -> None:
    with pytest.raises(WeightsError, match=problem) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    assert "system" not in message and "pwned" not in message  # never quotes the content


@pytest.mark.unit
def test_refuses_a_global_it_does_not_need(tmp_path, capfd):
    evil = b"cposix\nsystem\n(" + _text("echo pwned") + b"tR"  # os.system("echo pwned")
    _refused(write_checkpoint(tmp_path / "evil.pt", {"features.0.0.weight": evil}), "names a Python object")
    _refused(write_checkpoint(tmp_path / "evil2.pt", tail=_text("x") + evil + b"s"), "names a Python object")  # SETITEM
    assert "pwned" not in capfd.readouterr().out


@pytest.mark.unit
def test_refuses_opcodes_beyond_a_tensor_dict(tmp_path):
    build = b"ccollections\nOrderedDict\n)R}b0"  # OrderedDict().__setstate__-style BUILD with a dict
    _refused(write_checkpoint(tmp_path / "build.pt", tail=build), "uses an operation")


@pytest.mark.unit
def test_refuses_huge_and_out_of_bounds_shapes(tmp_path):
    huge = _tensor("0", "FloatStorage", 72, (2**20, 2**20, 2**10), (0, 0, 0))  # 4 PiB as a zero-stride view
    _refused(write_checkpoint(tmp_path / "huge.pt", {"features.0.0.weight": huge}), "too large")
    past_end = _tensor("0", "FloatStorage", 72, (8, 1, 3, 3), (9, 9, 3, 1), offset=1)
    _refused(write_checkpoint(tmp_path / "past.pt", {"features.0.0.weight": past_end}), "past the end")
    negative = _tensor("0", "FloatStorage", 72, (8, 1, 3, 3), (9, 9, -3, 1))
    _refused(write_checkpoint(tmp_path / "negative.pt", {"features.0.0.weight": negative}), "malformed")
    lying = _tensor("0", "FloatStorage", 2**40, (8, 1, 3, 3), (9, 9, 3, 1))  # claims a terabyte of storage
    _refused(write_checkpoint(tmp_path / "lying.pt", {"features.0.0.weight": lying}), "malformed")
    short = write_checkpoint(tmp_path / "short.pt", storages={"0": b"\0" * 100})  # 25 floats, record says 72
    _refused(short, "size does not match")


@pytest.mark.unit
def test_refuses_wrong_layout(tmp_path):
    extra = _tensor("0", "FloatStorage", 72, (8, 1, 3, 3), (9, 9, 3, 1))
    wrong_shape = _tensor("0", "FloatStorage", 72, (72,), (1,))
    _refused(write_checkpoint(tmp_path / "shape.pt", {"features.0.0.weight": wrong_shape}), "wrong shape")
    _refused(write_checkpoint(tmp_path / "extra.pt", {"extra.weight": extra}), "names differ")


@pytest.mark.unit
def test_refuses_damaged_and_oversized_archives(tmp_path):
    good = write_checkpoint(tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    _refused(tmp_path / "truncated.pt", "damaged")
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x02}q\x00.")  # a legacy, non-zip torch.save
    _refused(tmp_path / "pickle.pt", "damaged")
    with zipfile.ZipFile(tmp_path / "many.pt", "w") as archive:
        for i in range(MAX_MEMBERS + 1):
            archive.writestr(f"archive/data/{i}", b"")
    _refused(tmp_path / "many.pt", "too many")
    os.mkfifo(tmp_path / "fifo.pt")
    _refused(tmp_path / "fifo.pt", "not a regular file")


@pytest.mark.unit
def test_safetensors_backbone(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    state = {
        name: rng.integers(0, 9, shape).astype(np.int64) if name.endswith("tracked") else rng.random(shape, np.float32)
        for name, shape in state_layout().items()
    }
    save_file({f"net.{name}": array for name, array in state.items()}, tmp_path / "backbone.safetensors")
    loaded = read_safetensors(tmp_path / "backbone.safetensors")
    assert list(loaded) == list(state) and all(np.array_equal(loaded[k], v) for k, v in state.items())
    save_file(dict(state), tmp_path / "unprefixed.safetensors")
    with pytest.raises(WeightsError, match="does not hold an EfficientAT network"):
        read_safetensors(tmp_path / "unprefixed.safetensors")
    (tmp_path / "damaged.safetensors").write_bytes((tmp_path / "backbone.safetensors").read_bytes()[:1000])
    with pytest.raises(WeightsError, match="damaged"):
        read_safetensors(tmp_path / "damaged.safetensors")


def test_checkpoint_equals_torch_load(weights_path):
    torch = pytest.importorskip("torch")
    expected = torch.load(weights_path, map_location="cpu", weights_only=True)
    state = read_checkpoint(weights_path)
    assert list(state) == list(expected)
    for name, tensor in expected.items():
        assert state[name].dtype == tensor.numpy().dtype and np.array_equal(state[name], tensor.numpy()), name


def test_state_sha256_matches_the_model_folder(weights_path, tmp_path):
    """Equal to training.store's hash of the EfficientAT module, for the pretrained and for changed weights."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from audioclas.engine.torch_engine import module_sha256
    from audioclas.model import EfficientAT

    model = EfficientAT()
    model.net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    assert state_sha256(read_checkpoint(weights_path)) == module_sha256(model)
    with torch.no_grad():
        model.net.features[3].block[1][0].weight.add_(0.01)  # as fine-tuning would
        model.net.features[3].block[1][1].num_batches_tracked.add_(5)
    save_file(model.state_dict(), tmp_path / "backbone.safetensors")
    tuned = read_safetensors(tmp_path / "backbone.safetensors")
    assert state_sha256(tuned) == module_sha256(model) != state_sha256(read_checkpoint(weights_path))
