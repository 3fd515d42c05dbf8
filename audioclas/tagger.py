"""The Python API: ``Tagger().predict("file.mp3")`` and ``Tagger().embed(...)``.

A ``Tagger`` loads the network once; every call streams its inputs through it (see ``pipeline``).
Inputs are anything ``inputs.open_sources`` accepts: paths, folders, globs, archives, URLs, bytes,
binary file objects, or ``(array, sample_rate)`` tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from audioclas.engine import Backend, Engine, load_engine
from audioclas.errors import AudioclasError, InputError, OptionError
from audioclas.events import EventOptions, event_windows, find_events
from audioclas.inputs import InputLimits, open_sources
from audioclas.inputs.types import Input, OpenedSources
from audioclas.labels import audioset_labels
from audioclas.options import Classifier, class_names, given_or_built, resolve_options
from audioclas.pipeline import ClipOutput, Progress, run_network
from audioclas.predictions import (
    Aggregate,
    LabelFilter,
    LabelQuery,
    Prediction,
    aggregate_windows,
    make_prediction,
)
from audioclas.windows import PadMode, WindowRequest, WindowSettings


@dataclass
class ClipEmbedding:
    """Embeddings of one input: one 384-d vector per window, and their mean for the clip."""

    source: str
    duration: float
    starts: npt.NDArray[np.float64]  # (windows,) seconds
    windows: npt.NDArray[np.float32]  # (windows, 384)
    clip: npt.NDArray[np.float32]  # (384,)


class Tagger:
    """AudioSet tagging (527 classes) with EfficientAT mn04, or a custom classifier on its embeddings."""

    def __init__(
        self,
        weights: str | Path | None = None,
        batch_size: int = 16,
        limits: InputLimits | None = None,
        threads: int | None = None,
        backend: Backend = "auto",
        *,
        wrap: Callable[[Engine], Engine] | None = None,
    ) -> None:
        """``threads``: the network's compute threads; by default all cores but one, which the decoder uses.

        On 2 cores that is one network thread, and end-to-end tagging runs 1.4x faster than with two
        (755x against 535x real time on a 10-minute mp3): two network threads and the decoder thread
        would fight for the two cores.

        ``backend``: "onnxruntime", "torch", or "auto" (ONNX Runtime when installed). ``wrap`` is applied to every
        engine the tagger builds, the pretrained one and fine-tuned backbones alike (the service puts them behind
        its inference slots).
        """
        if batch_size < 1:
            raise OptionError(f"batch size must be at least 1, not {batch_size}")
        self.backend, self.threads = backend, threads
        self._wrap: Callable[[Engine], Engine] = wrap or (lambda engine: engine)
        self.engine: Engine = self._wrap(load_engine(weights, backend, threads))
        self.batch_size = batch_size
        self.limits = limits or InputLimits()
        labels = audioset_labels()
        self.labels = labels
        self._names = [label.name for label in labels]
        self._ids = [label.id for label in labels]
        # The fine-tuned backbone in use, by its sha256; one at a time, so that memory stays bounded.
        self.backbones: dict[str, Engine] = {}

    @property
    def model_id(self) -> str:
        """Identity of the backbone: the sha256 of its checkpoint (``resolve_weights`` verified it)."""
        return self.engine.identity

    def outputs(
        self,
        inputs: Input | Iterable[Input] | OpenedSources,
        settings: WindowSettings = WindowSettings(),
        progress: Callable[[Progress], None] | None = None,
        network: Engine | None = None,
        beside: tuple[Engine, WindowSettings] | None = None,
    ) -> Iterator[ClipOutput | InputError]:
        """Raw outputs (logits and embeddings per window) of ``network`` (default: the pretrained one), and of an
        engine run ``beside`` it on its own windows (see ``run_network``)."""
        if isinstance(inputs, OpenedSources):
            yield from run_network(network or self.engine, inputs.items, settings, self.batch_size, progress, beside)
            return
        with open_sources(inputs, self.limits) as items:
            yield from run_network(network or self.engine, items, settings, self.batch_size, progress, beside)

    def predict_many(
        self,
        inputs: Input | Iterable[Input] | OpenedSources,
        query: LabelQuery | None = None,
        windows: WindowRequest | WindowSettings | None = None,
        *,
        model: Classifier | None = None,
        backbone: Engine | None = None,
        with_audioset: bool = False,
        progress: Callable[[Progress], None] | None = None,
        events: EventOptions | bool = False,
        top_k: int | None = None,
        threshold: float | None = None,
        labels: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        aggregate: Aggregate | None = None,
        exact: bool | None = None,
        specific: bool | None = None,
        window: float | None = None,
        hop: float | None = None,
        pad: PadMode | None = None,
    ) -> Generator[Prediction | InputError, None, None]:
        """Labels for each input, in order; an input that cannot be read yields its ``InputError``, options that
        cannot be used raise ``AudioclasError`` (``OptionError`` when out of range) at the call.

        ``query`` says which labels to report (``LabelQuery``), ``windows`` how to cut the audio (see
        ``prediction_windows``). ``top_k``, ``threshold``, ``labels``, ``exclude``, ``aggregate``, ``exact``, ``specific`` and ``window``,
        ``hop``, ``pad`` are the same options as keywords, for when no object is given. With ``model``, the labels
        are that classifier's classes, and ``with_audioset`` adds the AudioSet tags alongside, computed as without a
        model: by the pretrained network on its own 10 s windows. ``backbone``: the engine of a fine-tuned model's
        own network, already loaded (checked against the model's ``backbone_sha256``); by default the tagger loads
        it.

        ``events``: ``True`` or ``EventOptions`` puts the timed events of each input's labels on its
        ``Prediction.events`` (see ``audioclas.events``): for the classes ``labels``/``exclude`` let through, whatever
        ``top_k``; a custom model's events are those of its classes.
        """
        event_options = _event_options(events)
        query = given_or_built(
            query,
            LabelQuery,
            top_k=top_k,
            threshold=threshold,
            labels=labels,
            exclude=exclude,
            aggregate=aggregate,
            exact=exact,
            specific=specific,
        )
        request = given_or_built(windows, WindowRequest, (WindowSettings,), window=window, hop=hop, pad=pad)
        if event_options is not None and model is None:
            request = event_windows(request)
        settings, label_filter = resolve_options(model, query, request)  # option errors here, before any input
        if event_options is not None:  # a per-label threshold for a class the model lacks: refused here
            event_options.class_thresholds(*class_names(model))
        network = None if model is None else self._network_for(model, backbone)
        return self._predict(
            inputs, query, settings, label_filter, model, network, with_audioset, progress, event_options
        )

    def _predict(
        self,
        inputs: Input | Iterable[Input] | OpenedSources,
        query: LabelQuery,
        settings: WindowSettings,
        label_filter: LabelFilter,
        model: Classifier | None,
        network: Engine | None,
        with_audioset: bool,
        progress: Callable[[Progress], None] | None,
        events: EventOptions | None = None,
    ) -> Generator[Prediction | InputError, None, None]:
        beside, audioset_filter = None, label_filter
        if model is not None:
            if with_audioset and (model.finetuned or (settings.window, settings.pad) != (10.0, "loop")):
                beside = (self.engine, WindowSettings())
            audioset_query = LabelQuery(query.top_k, specific=query.specific)  # as many AudioSet tags, any
            audioset_filter = audioset_query.resolve(self._names, self._ids)
        for output in self.outputs(inputs, settings, progress, network, beside):
            if isinstance(output, InputError):
                yield output
                continue
            if model is None:
                tags = self._audioset_prediction(output, query.aggregate, audioset_filter)
                yield _with_events(tags, output, self._names, self._ids, label_filter, events)
                continue
            audioset = self._audioset_prediction(output, query.aggregate, audioset_filter) if with_audioset else None
            window_scores, clip_scores = model.classify(output.embeddings)
            custom = make_prediction(
                output.source,
                output.duration,
                output.starts,
                output.ends,
                window_scores,
                clip_scores,
                model.classes,
                None,
                label_filter,
            )
            custom.audioset = audioset
            yield _with_events(custom, output, model.classes, None, label_filter, events)

    def _audioset_prediction(self, output: ClipOutput, aggregate: Aggregate, label_filter: LabelFilter) -> Prediction:
        """The AudioSet tags of the pretrained network's outputs: ``output`` itself, or those run beside it."""
        tagged = output.beside or output
        window_scores = np.exp(-np.logaddexp(np.float32(0), -tagged.logits))  # the sigmoid, without overflow
        return make_prediction(
            tagged.source,
            tagged.duration,
            tagged.starts,
            tagged.ends,
            window_scores,
            aggregate_windows(window_scores, aggregate),
            self._names,
            self._ids,
            label_filter,
        )

    def _network_for(self, model: Classifier, given: Engine | None = None) -> Engine:
        """The engine whose embeddings ``model`` reads: the pretrained one, or its own fine-tuned backbone (``given``,
        or loaded on this tagger's backend)."""
        if not model.finetuned:
            if model.backbone_sha256 != self.model_id:
                raise AudioclasError(
                    f"model {model.name!r} was trained on another backbone "
                    f"({model.backbone_sha256[:12]}…, this one is {self.model_id[:12]}…)"
                )
            return self.engine
        if given is not None:
            if given.identity != model.backbone_sha256:
                raise AudioclasError(f"the backbone given for model {model.name!r} is not the one it was trained on")
            return given
        backbones = self.backbones
        if model.backbone_sha256 not in backbones:
            backbone = model.load_backbone(self.backend, self.threads)
            assert backbone is not None  # only a head on the pretrained network has no backbone of its own
            backbones = self.backbones = {model.backbone_sha256: self._wrap(backbone)}
        return backbones[model.backbone_sha256]

    def predict(self, audio: Input, **options: Any) -> Prediction:
        """Labels for one input; raises ``InputError`` if it cannot be read. Options as ``predict_many``."""
        return _single(audio, self.predict_many([audio], **options))

    def embed_many(
        self,
        inputs: Input | Iterable[Input] | OpenedSources,
        windows: WindowSettings | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        network: Engine | None = None,
        window: float | None = None,
        hop: float | None = None,
        pad: PadMode | None = None,
    ) -> Generator[ClipEmbedding | InputError, None, None]:
        """Window and clip embeddings (384-d) for each input, in order; ``windows`` (or ``window``, ``hop``, ``pad``)
        as given, 10 s looped windows by default. ``network``: another engine to embed with (a fine-tuned
        backbone's), instead of the pretrained one."""
        settings = given_or_built(windows, WindowSettings, window=window, hop=hop, pad=pad)
        return self._embed(inputs, settings, progress, network)

    def _embed(
        self,
        inputs: Input | Iterable[Input] | OpenedSources,
        settings: WindowSettings,
        progress: Callable[[Progress], None] | None,
        network: Engine | None = None,
    ) -> Generator[ClipEmbedding | InputError, None, None]:
        for output in self.outputs(inputs, settings, progress, network):
            if isinstance(output, InputError):
                yield output
            else:
                embeddings = output.embeddings
                yield ClipEmbedding(output.source, output.duration, output.starts, embeddings, embeddings.mean(axis=0))

    def embed(self, audio: Input, **options: Any) -> ClipEmbedding:
        """Embeddings of one input; raises ``InputError`` if it cannot be read."""
        return _single(audio, self.embed_many([audio], **options))


def _event_options(events: EventOptions | bool | None) -> EventOptions | None:
    if events is None or events is False:
        return None
    if events is True:
        return EventOptions()
    if isinstance(events, EventOptions):
        return events
    raise OptionError(f"events must be True, False or an EventOptions, not {type(events).__name__}")


def _with_events(
    prediction: Prediction,
    output: ClipOutput,
    names: Sequence[str],
    ids: Sequence[str] | None,
    label_filter: LabelFilter,
    options: EventOptions | None,
) -> Prediction:
    """``prediction`` with its events, when asked: of the classes ``label_filter`` lets through."""
    if options is not None:
        classes = np.ones(len(names), dtype=bool)
        if label_filter.include is not None:
            classes[:] = False
            classes[list(label_filter.include)] = True
        classes[list(label_filter.exclude)] = False
        prediction.events = find_events(
            output.starts, output.ends, output.duration, prediction.window_scores, names, ids, options, classes
        )
    return prediction


Result = TypeVar("Result")


def _single(audio: Input, results: Iterable[Result | InputError]) -> Result:
    """The one result of a one-input call, or its error."""
    found = list(results)
    if len(found) != 1:
        raise AudioclasError(f"{audio!s} holds {len(found)} audio inputs: use the *_many method for several")
    if isinstance(found[0], InputError):
        raise found[0]
    return found[0]
