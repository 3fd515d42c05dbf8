"""Predictions for the service: one network shared by every request, custom models loaded once, every input bounded.

Requests run in FastAPI's thread pool. An engine is stateless at inference, so threads may call it together;
``inference_slots`` bounds how many do at once (``Exclusive``, around the pretrained engine and every fine-tuned
backbone's). One slot is the default: the engine already spreads one batch over every core, and two at once were no
faster on two cores (``benchmarks/service_load.py --slots 1 2`` measures it). Decoding, downloads and
archive expansion run outside the slot, in parallel.

Each input is predicted on its own, so that one input passing the duration bound stops only itself: the
bound is checked after every batch of windows, so at most one batch more than the bound is computed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from audioclas.engine import Embeddings, Engine, Logits, Waveforms
from audioclas.errors import AudioclasError, InputError, InputTooLarge, OptionError
from audioclas.events import EventOptions
from audioclas.inputs import AudioSource, HttpURL, open_sources
from audioclas.options import Classifier, class_names, resolve_options
from audioclas.pipeline import Progress
from audioclas.predictions import LabelQuery, Prediction
from audioclas.service.netguard import NetGuard
from audioclas.service.settings import ServiceSettings
from audioclas.tagger import Tagger
from audioclas.windows import WindowRequest

AUDIOSET = "audioset"  # the name of the pretrained model in the API


MAX_TOP_K = 100  # labels a request may ask for, per clip and per window
MIN_WINDOW_SECONDS = 1.0  # a window or hop a request asks for: the duration bound then also bounds the windows computed


class Exclusive:
    """An engine behind a semaphore shared with others: at most ``slots`` runs at once, over all of them."""

    def __init__(self, engine: Engine, slots: threading.Semaphore) -> None:
        self.engine, self.slots = engine, slots
        self.identity, self.backend = engine.identity, engine.backend

    def run(self, waveforms: Waveforms) -> tuple[Logits, Embeddings]:
        with self.slots:
            return self.engine.run(waveforms)


class _TooLong(Exception):
    pass


@dataclass
class _Custom:
    stamp: float | None  # mtime of model.json when loaded (None: it could not be read)
    model: Classifier  # an audioclas.training.store.SavedModel
    backbone: Engine | None  # its fine-tuned network, behind the shared slots (None: the pretrained one)


class Predictor:
    """The pretrained tagger, the custom models (cached by name), and the URL policy of one server."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.limits = settings.input_limits()
        self.guard = NetGuard(settings.allow_private_urls)
        self.http = self.guard.client()
        self.slots = threading.Semaphore(settings.inference_slots)
        self.tagger = Tagger(settings.weights, limits=self.limits, wrap=self.exclusive)
        self._custom: dict[str, _Custom] = {}
        self._custom_lock = threading.Lock()

    def exclusive(self, engine: Engine) -> Engine:
        """``engine`` sharing this server's inference slots."""
        return Exclusive(engine, self.slots)

    def close(self) -> None:
        self.http.close()

    # custom models ------------------------------------------------------------------------------------------

    def custom_model(self, name: str) -> _Custom:
        """The saved model ``name``, loaded once and reloaded when it was retrained; raises ``ModelError``."""
        from audioclas.training.store import load_model, model_path

        folder = model_path(name)
        try:
            stamp = (folder / "model.json").stat().st_mtime
        except OSError:
            stamp = None
        with self._custom_lock:
            cached = self._custom.get(name)
            if cached is not None and cached.stamp == stamp:
                return cached
            model = load_model(name)
            backbone = model.load_backbone(self.tagger.backend, self.tagger.threads)  # None unless fine-tuned
            # The backbone is loaded once, and shares the slots of the pretrained network.
            self._custom[name] = _Custom(stamp, model, None if backbone is None else self.exclusive(backbone))
            return self._custom[name]

    def forget(self, name: str) -> None:
        with self._custom_lock:
            self._custom.pop(name, None)

    # predicting ---------------------------------------------------------------------------------------------

    def check_options(
        self, model: str, query: LabelQuery, windows: WindowRequest, events: EventOptions | None = None
    ) -> None:
        """Raise ``AudioclasError`` for options this service refuses (``MAX_TOP_K``, ``MIN_WINDOW_SECONDS``), labels
        the model does not have (also in per-label event thresholds), or window settings it cannot use
        (``options.resolve_options``)."""
        if not 1 <= query.top_k <= MAX_TOP_K:
            raise OptionError(f"top_k must be between 1 and {MAX_TOP_K} here, not {query.top_k}")
        for option, seconds in (("window", windows.window), ("hop", windows.hop)):
            if seconds is not None and seconds < MIN_WINDOW_SECONDS:
                raise OptionError(f"{option} must be at least {MIN_WINDOW_SECONDS:g} s here, not {seconds:g}")
        classifier = None if model == AUDIOSET else self.custom_model(model).model
        resolve_options(classifier, query, windows)
        if events is not None:
            events.class_thresholds(*class_names(classifier))

    def predict(
        self,
        model: str,
        inputs: list[tuple[str, Path | HttpURL]],
        query: LabelQuery,
        windows: WindowRequest,
        with_audioset: bool = False,
        events: EventOptions | None = None,
    ) -> list[Prediction | InputError]:
        """Predictions for ``inputs``, (shown name, uploaded file or URL) pairs, in order; archives give one result
        per member. An input that fails gives its ``InputError``. A URL is an ``HttpURL``, never a string, so
        that what a client sends as a URL can never be opened as a path, folder or glob on the server."""
        custom = None if model == AUDIOSET else self.custom_model(model)
        run = partial(
            self.tagger.predict_many,
            query=query,
            windows=windows,
            model=custom.model if custom else None,
            backbone=custom.backbone if custom else None,
            with_audioset=with_audioset,
            events=events or False,
        )
        results: list[Prediction | InputError] = []
        for shown, given in inputs:
            if not isinstance(given, (Path, HttpURL)):
                raise TypeError(f"an input is an uploaded file's Path or an HttpURL, not {type(given).__name__}")
            prefix = given.url if isinstance(given, HttpURL) else str(given)
            with open_sources([given], self.limits, url_guard=self.guard.check_url, http_client=self.http) as items:
                for item in items:
                    if isinstance(item, InputError):
                        results.append(item.renamed(_renamed(item.source, prefix, shown)))
                    else:
                        results.append(self._predict_one(run, replace(item, name=_renamed(item.name, prefix, shown))))
        return results

    def _predict_one(
        self, run: Callable[..., Iterator[Prediction | InputError]], source: AudioSource
    ) -> Prediction | InputError:
        limit = self.settings.max_audio_seconds

        def bound(progress: Progress) -> None:
            if progress.seconds > limit:
                raise _TooLong

        try:
            (result,) = run([source], progress=bound)
        except _TooLong:
            return InputTooLarge(source.name, f"the audio is longer than the limit of {limit:g} s")
        except AudioclasError as error:  # e.g. a custom model whose classifier refuses the embeddings
            return InputError(source.name, str(error))
        return result


def _renamed(name: str, given: str, shown: str) -> str:
    """``name`` with the local path of an upload replaced by the name the client sent."""
    return shown + name[len(given) :] if name.startswith(given) else name
