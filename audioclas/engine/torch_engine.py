"""The PyTorch backend: an ``EfficientAT`` module (the pretrained one fused, or one being fine-tuned) as an ``Engine``.

Training and fine-tuning need it; inference uses it when ``backend="torch"`` is asked for (or ONNX Runtime is not
installed), and tests use it as the reference. Importing this module imports torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from audioclas.engine import Embeddings, Logits, Waveforms
from audioclas.model import EfficientAT


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` PyTorch threads, then restore the previous number.

    Measured on the 2-core target with other work on the machine: head training on FSDD took 8 s with one thread
    and 57-170 s with two (the threads of tiny matrix products spin and wait on each other), and extraction, whose
    decoder thread needs a core of its own, was 10x slower with two network threads than with one.
    """
    previous = torch.get_num_threads()
    count = max(1, count)
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != previous:
            torch.set_num_threads(previous)


class TorchEngine:
    """``module`` run in inference mode on NumPy windows; ``threads`` PyTorch threads per run (None: as set by the
    caller, e.g. fine-tuning inside its own ``torch_threads``)."""

    backend = "torch"

    def __init__(self, module: EfficientAT, identity: str, threads: int | None = None) -> None:
        self.module, self.identity, self.threads = module, identity, threads

    def run(self, waveforms: Waveforms) -> tuple[Logits, Embeddings]:
        with torch_threads(self.threads or torch.get_num_threads()), torch.inference_mode():
            logits, embeddings = self.module(torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32)))
        return logits.numpy(), embeddings.numpy()


def module_sha256(module: torch.nn.Module) -> str:
    """Identity of a network's weights (a fine-tuned backbone's): sha256 of names and bytes in state_dict order."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
