"""Inputs already in memory: bytes, a file object read whole within the size bound (standard input is one: the
CLI passes ``sys.stdin.buffer`` for ``-``), and decoded samples as ``(array, sample_rate)``."""

from __future__ import annotations

from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeIs

from audioclas.errors import InputError, InputTooLarge
from audioclas.inputs.types import AudioSource


def is_array_input(item: object) -> TypeIs[tuple[npt.NDArray[Any], int]]:
    """Whether ``item`` is decoded audio given as ``(array, sample_rate)``."""
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], np.ndarray)


def from_bytes(data: bytes | bytearray | memoryview) -> AudioSource:
    return AudioSource("<bytes>", data=bytes(data))


def is_file_object(item: object) -> TypeIs[BinaryIO]:
    """Whether ``item`` is a file-like object: anything with a ``read`` method (what it returns is checked on reading)."""
    return hasattr(item, "read")


def from_array(item: tuple[npt.NDArray[Any], int]) -> AudioSource:
    return AudioSource("<array>", array=item[0], sample_rate=item[1])


def read_file_object(file: BinaryIO, limit: int) -> AudioSource:
    """The bytes of ``file``, read whole, or an ``InputError`` past ``limit`` bytes or for a text stream."""
    name = file.name if isinstance(getattr(file, "name", None), str) else "<file>"
    try:
        data = file.read(limit + 1)
    except (OSError, ValueError) as error:
        raise InputError(name, f"cannot read ({error})") from None
    if isinstance(data, str):
        raise InputError(name, "is a text stream; open the file in binary mode ('rb')")
    if len(data) > limit:
        raise InputTooLarge(name, f"larger than the limit of {limit} bytes")
    return AudioSource(name, data=bytes(data))
