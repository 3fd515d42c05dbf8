"""Read mn04 weights as NumPy arrays without PyTorch: the upstream ``.pt`` and audioclas's fine-tuned safetensors.

A checkpoint is untrusted input even after its sha256 check, and a pickle can run any code it names. So the
``.pt`` reader (a zip holding ``data.pkl`` and one file per storage) is bounded and restricted: at most
``MAX_MEMBERS`` zip members and ``MAX_BYTES`` of data; the pickle may use only the opcodes a tensor dict needs
(``_OPCODES``: no BUILD, INST or OBJ, nothing that calls a method of an object it made) and only four globals
(``_rebuild_tensor_v2``, ``OrderedDict``, ``FloatStorage``, ``LongStorage``), each replaced by a NumPy stand-in;
every tensor's shape and strides must stay inside its storage. Whatever comes out must then match the
architecture's names, shapes and dtypes exactly (``layout.state_layout``). Errors are one ``WeightsError`` line
naming the file, never quoting its content.
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from audioclas.engine.layout import state_layout
from audioclas.errors import WeightsError
from audioclas.fileio import open_regular

State = dict[str, np.ndarray]  # MobileNetV3 names (``features.0.0.weight`` ...) -> arrays, state_dict order

MAX_MEMBERS = 4096  # the real checkpoint has 314
MAX_BYTES = 64 * 2**20  # file size, and the total of all members unpacked; the real one is 4 MB
MAX_PICKLE_BYTES = 4 * 2**20  # the real data.pkl is 35 kB
MAX_RANK = 8
BACKBONE_PREFIX = "net."  # EfficientAT.state_dict() names the network ``net``

_OPCODE_NAMES = (  # what a dict of tensors needs, in pickle protocols 2 to 5
    "PROTO FRAME STOP MARK EMPTY_DICT EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 SETITEM SETITEMS BINPUT LONG_BINPUT "
    "MEMOIZE BINGET LONG_BINGET BINUNICODE SHORT_BINUNICODE BININT BININT1 BININT2 LONG1 NEWTRUE NEWFALSE NONE "
    "GLOBAL STACK_GLOBAL REDUCE BINPERSID"
)
_OPCODES = frozenset(_OPCODE_NAMES.split())


class _Refused(Exception):
    """The checkpoint does something a tensor dict does not need; the message says what, without its content."""


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` / ``torch.LongStorage``: the dtype of a storage file."""

    def __init__(self, dtype: str) -> None:
        self.dtype = np.dtype(dtype)


class _Storage:
    def __init__(self, data: np.ndarray) -> None:
        self.data = data


def _rebuild_tensor_v2(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, metadata: Any = None
) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2``: a copy of the strided view, after checking it stays in bounds."""
    if not isinstance(storage, _Storage) or not isinstance(requires_grad, bool) or hooks:
        raise _Refused("a tensor record is malformed")
    dims = (offset, *size, *stride) if isinstance(size, tuple) and isinstance(stride, tuple) else (None,)
    if not all(type(value) is int and value >= 0 for value in dims) or len(size) != len(stride):
        raise _Refused("a tensor's shape or strides are malformed")
    if len(size) > MAX_RANK or math.prod(size) * storage.data.itemsize > MAX_BYTES:
        raise _Refused("a tensor is too large")
    if math.prod(size) == 0:
        return np.zeros(size, storage.data.dtype)
    if offset + sum((n - 1) * step for n, step in zip(size, stride, strict=True)) >= len(storage.data):
        raise _Refused("a tensor reaches past the end of its storage")
    itemsize = storage.data.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage.data[offset:], size, tuple(step * itemsize for step in stride), writeable=False
    )
    return np.array(view)  # contiguous, owns its memory


_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "FloatStorage"): _StorageType("<f4"),
    ("torch", "LongStorage"): _StorageType("<i8"),
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, folder: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.folder = archive, folder
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise _Refused("it names a Python object that tensors do not need") from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Refused("a storage record is malformed")
        _, kind, key, _location, count = pid
        if not isinstance(kind, _StorageType) or not (isinstance(key, str) and key.isdigit() and len(key) < 10):
            raise _Refused("a storage record is malformed")
        if key not in self.storages:
            if type(count) is not int or not 0 <= count <= MAX_BYTES // kind.dtype.itemsize:
                raise _Refused("a storage record is malformed")
            try:
                info = self.archive.getinfo(f"{self.folder}/data/{key}")
            except KeyError:
                raise _Refused("a storage file is missing") from None
            if info.file_size != count * kind.dtype.itemsize:
                raise _Refused("a storage file's size does not match its record")
            with self.archive.open(info) as member:
                data = member.read(info.file_size + 1)
            if len(data) != info.file_size:
                raise _Refused("a storage file is truncated")
            self.storages[key] = _Storage(np.frombuffer(data, kind.dtype))
        storage = self.storages[key]
        if storage.data.dtype != kind.dtype:
            raise _Refused("a storage is read as two types")
        return storage


def read_checkpoint(path: Path) -> State:
    """The state dict of the upstream mn04 ``.pt`` (a PyTorch zip checkpoint) as NumPy arrays, torch not needed."""
    try:
        with open_regular(path) as file:
            size = file.seek(0, io.SEEK_END)
            if size > MAX_BYTES:
                raise _Refused(f"it is larger than {MAX_BYTES // 2**20} MiB")
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                loaded = _load(archive)
    except _Refused as error:
        raise WeightsError(f"refusing checkpoint {path}: {error}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, TypeError, pickle.UnpicklingError):
        raise WeightsError(f"checkpoint {path} is damaged or not a PyTorch zip checkpoint") from None
    except (OSError, RuntimeError) as error:  # RuntimeError: zipfile's "not a zip member" family
        raise WeightsError(f"cannot read checkpoint {path}: {getattr(error, 'strerror', None) or error}") from None
    return _checked(loaded, path)


def _load(archive: zipfile.ZipFile) -> Any:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS or sum(member.file_size for member in members) > MAX_BYTES:
        raise _Refused("it holds too many or too large files")
    pickles = [member for member in members if member.filename.endswith("/data.pkl")]
    if len(pickles) != 1 or pickles[0].file_size > MAX_PICKLE_BYTES or pickles[0].filename.count("/") != 1:
        raise _Refused("it has no single data.pkl at its top level")
    with archive.open(pickles[0]) as member:
        data = member.read(MAX_PICKLE_BYTES + 1)
    if len(data) != pickles[0].file_size:
        raise _Refused("its data.pkl is truncated")
    if any(opcode.name not in _OPCODES for opcode, _, _ in pickletools.genops(data)):
        raise _Refused("its pickle uses an operation that tensors do not need")
    return _Unpickler(data, archive, pickles[0].filename.split("/")[0]).load()


def read_safetensors(path: Path) -> State:
    """A fine-tuned backbone saved by audioclas (``EfficientAT.state_dict()``, names prefixed ``net.``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        with open_regular(path) as file:
            data = file.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise WeightsError(f"refusing backbone {path}: it is larger than {MAX_BYTES // 2**20} MiB")
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError):
        raise WeightsError(f"backbone {path} is damaged or not a safetensors file") from None
    except OSError as error:
        raise WeightsError(f"cannot read backbone {path}: {error.strerror or error}") from None
    if not all(name.startswith(BACKBONE_PREFIX) for name in tensors):
        raise WeightsError(f"backbone {path} does not hold an EfficientAT network (names outside {BACKBONE_PREFIX})")
    return _checked({name.removeprefix(BACKBONE_PREFIX): array for name, array in tensors.items()}, path)


def _checked(loaded: Any, path: Path) -> State:
    """``loaded`` in state_dict order if it has exactly mn04's names, shapes and dtypes, else WeightsError."""
    layout = state_layout()
    if not isinstance(loaded, dict) or set(loaded) != set(layout):
        raise WeightsError(f"weights {path} are not EfficientAT mn04_as: the tensor names differ")
    state: State = {}
    for name, shape in layout.items():
        array = loaded[name]
        dtype = np.int64 if name.endswith("num_batches_tracked") else np.float32
        if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
            raise WeightsError(f"weights {path} are not EfficientAT mn04_as: tensor {name} has the wrong shape or type")
        state[name] = array
    return state


def state_sha256(state: State) -> str:
    """Identity of a network's weights, equal to ``training.store.folder.state_sha256`` of the ``EfficientAT``
    module holding them: sha256 of each name (``net.`` prefixed) and its little-endian bytes, in state_dict order."""
    digest = hashlib.sha256()
    for name in state_layout():
        digest.update((BACKBONE_PREFIX + name).encode())
        array = state[name]
        digest.update(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()
