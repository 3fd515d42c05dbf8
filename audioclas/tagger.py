"""The Python API: ``Tagger().predict("file.mp3")`` and ``Tagger().embed(...)``.

A ``Tagger`` loads the network once; every call streams its inputs through it (see ``pipeline``).
Inputs are anything ``sources.open_sources`` accepts: paths, folders, globs, archives, URLs, bytes,
binary file objects, or ``(array, sample_rate)`` tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from audioclas.errors import AudioclasError, InputError, OptionError
from audioclas.labels import audioset_labels, resolve_label_names
from audioclas.model import load_efficientat
from audioclas.pipeline import ClipOutput, Progress, network_threads, run_network
from audioclas.predictions import Aggregate, LabelFilter, Prediction, aggregate_windows, make_prediction
from audioclas.sources import InputLimits, open_sources
from audioclas.weights import WEIGHTS_SHA256, resolve_weights
from audioclas.windows import PadMode, WindowSettings


@dataclass
class ClipEmbedding:
    """Embeddings of one input: one 384-d vector per window, and their mean for the clip."""

    source: str
    duration: float
    starts: np.ndarray  # (windows,) seconds
    windows: np.ndarray  # (windows, 384) float32
    clip: np.ndarray  # (384,) float32


class Classifier(Protocol):
    """A custom classifier trained on window embeddings (``audioclas.training.store.SavedModel``)."""

    name: str
    classes: list[str]
    window: float
    hop: float | None
    pad: PadMode
    backbone_sha256: str
    finetuned: bool

    def load_backbone(self) -> torch.nn.Module | None:
        """The fine-tuned network whose embeddings the classifier reads, or None for the pretrained one."""
        ...

    def classify(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window scores (windows, classes), clip scores (classes,)) from (windows, 384) embeddings."""
        ...


class Tagger:
    """AudioSet tagging (527 classes) with EfficientAT mn04, or a custom classifier on its embeddings."""

    def __init__(
        self,
        weights: str | Path | None = None,
        batch_size: int = 16,
        limits: InputLimits | None = None,
        threads: int | None = None,
    ) -> None:
        """``threads``: PyTorch's intra-op threads; by default all cores but one, which the decoder uses.

        On 2 cores that is one network thread, and end-to-end tagging runs 1.4x faster than with two
        (755x against 535x real time on a 10-minute mp3): two network threads and the decoder thread
        would fight for the two cores.
        """
        if batch_size < 1:
            raise OptionError(f"batch size must be at least 1, not {batch_size}")
        torch.set_num_threads(threads or network_threads())
        self.weights_path = resolve_weights(weights)
        self.model = load_efficientat(self.weights_path)
        self.batch_size = batch_size
        self.limits = limits or InputLimits()
        labels = audioset_labels()
        self.labels = labels
        self._names = [label.name for label in labels]
        self._ids = [label.id for label in labels]

    @property
    def model_id(self) -> str:
        """Identity of the backbone: the sha256 of its checkpoint (``resolve_weights`` verified it)."""
        return WEIGHTS_SHA256

    def outputs(
        self,
        inputs: Any,
        settings: WindowSettings = WindowSettings(),
        progress: Callable[[Progress], None] | None = None,
        network: torch.nn.Module | None = None,
    ) -> Iterator[ClipOutput | InputError]:
        """Raw outputs (logits and embeddings per window) of ``network`` (default: the pretrained one)."""
        with open_sources(inputs, self.limits) as items:
            yield from run_network(network or self.model, items, settings, self.batch_size, progress)

    def predict_many(
        self,
        inputs: Any,
        *,
        top_k: int = 5,
        threshold: float = 0.0,
        labels: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        window: float = 10.0,
        hop: float | None = None,
        pad: PadMode = "loop",
        aggregate: Aggregate = "max",
        model: Classifier | None = None,
        with_audioset: bool = False,
        progress: Callable[[Progress], None] | None = None,
    ) -> Iterator[Prediction | InputError]:
        """Labels for each input, in order; an input that cannot be read yields its ``InputError``.

        ``labels``/``exclude`` keep or drop classes by name or id. With ``model``, the labels are
        that classifier's classes (its window settings are used), and ``with_audioset`` adds the
        AudioSet tags alongside.
        """
        network = None
        if model is not None:
            names, ids = list(model.classes), None
            window, hop, pad = model.window, model.hop, model.pad
            network = self._network_for(model, with_audioset)
        else:
            names, ids = self._names, self._ids
        label_filter = LabelFilter(
            top_k=top_k,
            threshold=threshold,
            include=resolve_label_names(labels, names, ids) if labels else None,
            exclude=resolve_label_names(exclude, names, ids),
        )
        settings = WindowSettings(window, hop, pad)
        for output in self.outputs(inputs, settings, progress, network):
            if isinstance(output, InputError):
                yield output
                continue
            audioset: Prediction | None = None
            if model is None or with_audioset:
                window_scores = torch.sigmoid(torch.from_numpy(output.logits)).numpy()
                audioset = make_prediction(
                    output.source, output.duration, output.starts, output.ends, window_scores,
                    aggregate_windows(window_scores, aggregate), self._names, self._ids,
                    label_filter if model is None else LabelFilter(top_k),
                )  # fmt: skip
            if model is None:
                yield audioset
                continue
            window_scores, clip_scores = model.classify(output.embeddings)
            custom = make_prediction(
                output.source, output.duration, output.starts, output.ends, window_scores, clip_scores,
                names, None, label_filter,
            )  # fmt: skip
            custom.audioset = audioset
            yield custom

    def _network_for(self, model: Classifier, with_audioset: bool) -> torch.nn.Module:
        """The network whose embeddings ``model`` was trained on; its logits give the AudioSet tags."""
        if model.backbone_sha256 != self.model_id:
            raise AudioclasError(f"model {model.name!r} was trained on another backbone ({model.backbone_sha256[:12]}…)")
        backbone = model.load_backbone()
        if backbone is None:
            return self.model
        return _AudioSetBeside(self.model, backbone) if with_audioset else backbone

    def predict(self, audio: Any, **options: Any) -> Prediction:
        """Labels for one input; raises ``InputError`` if it cannot be read. Options as ``predict_many``."""
        return _single(audio, self.predict_many([audio], **options))

    def embed_many(
        self,
        inputs: Any,
        *,
        window: float = 10.0,
        hop: float | None = None,
        pad: PadMode = "loop",
        progress: Callable[[Progress], None] | None = None,
    ) -> Iterator[ClipEmbedding | InputError]:
        """Window and clip embeddings (384-d) for each input, in order."""
        for output in self.outputs(inputs, WindowSettings(window, hop, pad), progress):
            if isinstance(output, InputError):
                yield output
            else:
                embeddings = output.embeddings
                yield ClipEmbedding(output.source, output.duration, output.starts, embeddings, embeddings.mean(axis=0))

    def embed(self, audio: Any, **options: Any) -> ClipEmbedding:
        """Embeddings of one input; raises ``InputError`` if it cannot be read."""
        return _single(audio, self.embed_many([audio], **options))



def _single(audio: Any, results: Iterable[Any]) -> Any:
    """The one result of a one-input call, or its error."""
    results = list(results)
    if len(results) != 1:
        raise AudioclasError(f"{audio} holds {len(results)} audio inputs: use the *_many method for several")
    if isinstance(results[0], InputError):
        raise results[0]
    return results[0]


class _AudioSetBeside(torch.nn.Module):
    """AudioSet logits from the pretrained network beside a fine-tuned network's embeddings."""

    def __init__(self, pretrained: torch.nn.Module, finetuned: torch.nn.Module) -> None:
        super().__init__()
        self.pretrained, self.finetuned = pretrained, finetuned

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pretrained(waveform)[0], self.finetuned(waveform)[1]
