"""Where a run's window embeddings come from, and the window settings they are computed with.

``Embedder`` takes them from the cache (``embedding_cache``), computing what is missing with the pretrained network's
engine or a fine-tuned one, or reads a folder of precomputed ones; ``embedder_for`` chooses it (and the windows) for a
training config; ``embed_splits`` embeds a whole dataset, reporting or skipping the files that cannot be; and
``embedded_split`` turns a split's examples into the tensors the trainer reads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audioclas.audio import probe
from audioclas.engine import Engine
from audioclas.errors import AudioclasError, InputError, printable
from audioclas.inputs import AudioSource
from audioclas.training.config import TrainConfig
from audioclas.training.cuts import Cut, clip_item, clip_sources
from audioclas.training.dataset import Dataset, DatasetError, Example, Problem
from audioclas.training.embedding_cache import (
    ClipWindows,
    EmbeddingCache,
    extract,
    load_precomputed,
    read_manifest,
)
from audioclas.training.store import BACKBONE_NAME
from audioclas.training.trainer import EmbeddedSplit, TrainEvent
from audioclas.weights import WEIGHTS_SHA256
from audioclas.windows import WindowSettings

if TYPE_CHECKING:
    from audioclas.tagger import ClipEmbedding, Tagger

Cancel = threading.Event | Callable[[], bool] | None
OnEvent = Callable[[TrainEvent], None] | None
Log = Callable[[str], None]
SHORT_CLIP_SECONDS = 2.0  # training data whose median clip is this short gets short windows
SHORT_WINDOW, SHORT_HOP = 0.3, 0.1
FINETUNE_SHORT_WINDOW = 1.0  # fine-tuning short clips: one window holds a whole clip, 2.4x less compute than 0.3 s


class Cancelled(AudioclasError):
    """The run was cancelled before there was anything to save."""


@dataclass
class Embedder:
    """Where embeddings come from: the cache (computing what is missing) or a folder of precomputed ones."""

    settings: WindowSettings
    model_id: str = WEIGHTS_SHA256
    engine: Engine | None = None  # a fine-tuned network's, replacing the pretrained one (the default engine)
    precomputed: Path | None = None

    def __call__(
        self, examples: list[Example], *, on_event: OnEvent = None, cancel: Cancel = None
    ) -> tuple[dict[str, ClipWindows], list[tuple[Example, str]], int]:
        """(embeddings by ``Example.key``, [(example, problem)] for files that failed, number computed)."""
        if self.precomputed is not None:
            clips: dict[str, ClipWindows] = {}
            failed: list[tuple[Example, str]] = []
            for example in examples:
                loaded = load_precomputed(example.path)
                if isinstance(loaded, str):
                    failed.append((example, loaded))
                else:
                    clips[example.key] = loaded
            return clips, failed, 0
        cache = EmbeddingCache(self.model_id, self.settings)
        progress = _extract_progress(on_event) if on_event else None
        result = extract(
            [(clip_item(example), example.key) for example in sorted(examples, key=_recording_order)],
            cache,
            self._tagger,
            progress=progress,
            cancel=cancel,
        )
        if result.cancelled:
            raise Cancelled(f"cancelled during embedding extraction ({result.computed} files were computed and cached)")
        problems = {sha256: error.problem for sha256, error in result.errors.items()}
        failed = [
            (example, problems.get(example.key, "could not be embedded"))
            for example in examples
            if example.key not in result.clips
        ]  # every copy of an undecodable file
        return result.clips, failed, result.computed

    def _tagger(self) -> _SourceTagger:
        from audioclas.tagger import Tagger

        return _SourceTagger(Tagger(), self.engine)


def _recording_order(example: Example) -> tuple[str, tuple[float, float]]:
    """The cuts of a recording together and in time order, so that it is decoded once (see ``cuts``)."""
    return str(example.path), example.segment or (0.0, 0.0)


class _SourceTagger:
    """Hands dataset files to the tagger as single sources, so that no path is read as a folder, glob or archive;
    a cut is the decoded recording's slice (a recording is decoded once for its consecutive cuts)."""

    def __init__(self, tagger: Tagger, network: Engine | None) -> None:
        self.tagger, self.network = tagger, network  # network: a fine-tuned backbone's engine, else the pretrained one

    def embed_many(
        self, paths: list[Path | Cut], settings: WindowSettings
    ) -> Generator[ClipEmbedding | InputError, None, None]:
        return self.tagger.embed_many(clip_sources(paths), settings, network=self.network)


def _extract_progress(on_event: Callable[[TrainEvent], None]) -> Callable[[int, int], None]:
    """``extract``'s progress(done, total) as "extract" events."""
    return lambda done, total: on_event(TrainEvent("extract", done, total))


def embed_splits(
    dataset: Dataset, embedder: Embedder, skip_bad: bool, on_event: OnEvent, cancel: Cancel, log: Log
) -> tuple[Dataset, dict[str, ClipWindows], int]:
    """(the dataset without the files that failed, if ``skip_bad``, embeddings by sha256, number computed)."""
    examples = dataset.examples()
    clips, failed, computed = embedder(examples, on_event=on_event, cancel=cancel)
    if failed:
        problems = [Problem(example.where, f"{printable(example.name)}: {problem}") for example, problem in failed]
        if not skip_bad:
            raise DatasetError(
                dataset.root,
                [
                    *problems,
                    Problem(
                        str(dataset.root),
                        "fix or remove these files, or skip them (--skip-bad-audio); the rest is cached",
                    ),
                ],
            )
        for problem in problems:
            log(f"skipped {problem}")
        bad = {example.key for example, _ in failed}
        dataset = replace(
            dataset, splits={split: [e for e in items if e.key not in bad] for split, items in dataset.splits.items()}
        )
    return dataset, clips, computed


def embedded_split(
    examples: list[Example], clips: dict[str, ClipWindows], classes: int, multilabel: bool
) -> EmbeddedSplit:
    return EmbeddedSplit.build(
        [clips[e.key].windows for e in examples], [e.labels for e in examples], classes, multilabel
    )


def choose_windows(config: TrainConfig, dataset: Dataset, log: Log) -> WindowSettings:
    """The window settings: as configured, or chosen from the median length of (up to 200) training clips.

    Short clips (median at most ``SHORT_CLIP_SECONDS``: spoken words, calls, clicks) get 0.3 s windows every 0.1 s,
    zero-padded; on FSDD this gives 97-99 % test accuracy where one 10 s window of the looped clip gives 92-95 %
    (see the README). When the network is fine-tuned, short clips get one zero-padded 1 s window instead: the
    network then learns what short windows bought the frozen one, for less than half the compute. Longer clips
    get the network's native 10 s windows, looped, as for tagging.
    """
    if config.window is not None:
        return WindowSettings(config.window, config.hop, config.pad or "loop")
    examples = sorted(dataset.splits["train"], key=lambda example: example.key)[:200]  # a fixed, order-free sample
    durations = []
    for example in examples:
        if example.segment is not None:
            durations.append(example.segment[1] - example.segment[0])
            continue
        try:
            duration = probe(AudioSource(str(example.path), path=example.path)).duration_seconds
        except InputError:
            continue
        if duration:
            durations.append(duration)
    median = float(np.median(durations)) if durations else math.inf
    if median <= SHORT_CLIP_SECONDS and config.finetune:
        settings = WindowSettings(FINETUNE_SHORT_WINDOW, config.hop, config.pad or "zeros")
    elif median <= SHORT_CLIP_SECONDS:
        settings = WindowSettings(SHORT_WINDOW, config.hop or SHORT_HOP, config.pad or "zeros")
    else:
        settings = WindowSettings(10.0, config.hop, config.pad or "loop")
    log(
        f"median clip length {median:.2f} s: windows of {settings.window:g} s every {settings.hop_seconds:g} s, "
        f"short clips padded by {settings.pad} (set --window/--hop/--pad to choose)"
    )
    return settings


def embedder_for(config: TrainConfig, dataset: Dataset, log: Log) -> Embedder:
    """The embedder a training config asks for: the network's, or the precomputed ones of ``from_embeddings``."""
    if not config.from_embeddings:
        return Embedder(choose_windows(config, dataset, log))
    folder = Path(config.from_embeddings)
    manifest = read_manifest(folder)
    if manifest is None:
        settings = WindowSettings(config.window or 10.0, config.hop, config.pad or "loop")
        log(
            f"{folder} has no embeddings.json: assuming {BACKBONE_NAME} embeddings with window {settings.window:g} s, "
            f"hop {settings.hop_seconds:g} s, pad {settings.pad}"
        )
        return Embedder(settings, precomputed=folder)
    settings = WindowSettings(manifest["window"], manifest["hop"], manifest["pad"])
    return Embedder(settings, model_id=manifest["backbone_sha256"], precomputed=folder)
