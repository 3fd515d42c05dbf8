"""TensorBoard event files of a training run, written only when asked and when tensorboard is installed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("audioclas.training")


class TensorBoard:
    """TensorBoard event files under ``folder``, or nothing when disabled or tensorboard is not installed.

    A write that fails (a full disk) raises ``OSError`` naming the folder, once: the broken writer is dropped.
    """

    def __init__(self, folder: Path | None) -> None:
        self.writer = None
        self.folder = folder
        if folder is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
            return
        _quiet_tensorboard_threads()
        with self._writing():
            self.writer = SummaryWriter(str(folder))

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            self.writer = None
            raise OSError(error.errno, error.strerror, str(self.folder)) from None

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer:
            with self._writing():
                for tag, value in values.items():
                    self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, image: Any, step: int) -> None:
        if self.writer:
            with self._writing():
                self.writer.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        if self.writer:
            with self._writing():
                self.writer.close()


def _quiet_tensorboard_threads() -> None:
    """tensorboard's writer thread keeps its error (a full disk) for the writer, which raises it in our thread,
    and re-raises it too, so Python would also print the thread's traceback: the one report is ours."""
    previous = threading.excepthook
    if getattr(previous, "quiets_tensorboard", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError)):
            previous(args)

    hook.quiets_tensorboard = True  # type: ignore[attr-defined]  # a mark on the function, to install it once
    threading.excepthook = hook
