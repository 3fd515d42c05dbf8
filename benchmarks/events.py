"""How precisely are events placed, and at what cost? Event-based F1 on real-sound scenes, per window/hop setting.

    .venv/bin/python benchmarks/events.py [--scenes 8] [--seed 0] [--skip-hour]

Scenes (made at run time in a temporary folder, never committed): 30-120 s WAV files, each a real background --
quiet, or the Paris metro recording looped 10 dB or 3 dB below the foreground -- with 4-6 real foreground events
at seeded onsets, 3-10 s apart, never overlapping. The foregrounds, from ../shared/audio and FSDD:

- Speech: a 4-12 s cut of a LibriSpeech reading, or 3-6 FSDD digits of one speaker 0.2 s apart;
- Bird: 1-3 calls of the robin, 0.5-1.5 s apart;
- Trumpet: a 3-5.3 s cut of the trumpet loop;
- Dog: a 4-10 s cut of the first 15 s of the pibble recording (howling; the rest of it is quiet).

The humpback song is left out on purpose: the network itself scores "Whale vocalization" at 0.5 or more in only 3
of the clip's 12 windows (10 s, 5 s hop), so its cuts would measure the tagger, not how events are placed.

The ground truth of an event runs from the first to the last 50 ms frame within 35 dB of its loudest frame (its
leading and trailing silence trimmed). Each truth class is found by its AudioSet class *and every descendant*
("Male speech" and "Narration" count as Speech, "Bird vocalization" as Bird): the events of those classes are
united into one event list for the truth class, and all other labels are ignored (scenes carry no truth for them).

Scoring: ``sed_eval``'s event-based metrics, micro-averaged over the classes and scenes (the DCASE standard): an
estimated event matches a truth event of its class when its onset is within 1 s (``t_collar=1.0``) and its offset
within max(1 s, 50 % of the truth event's length) (``percentage_of_length=0.5``, sed_eval's offset rule); "onset F1"
scores onsets alone. Every window/hop setting runs the network once over all scenes (× real time: scene seconds
over that wall time, in process, model loaded); the post-processing variants (threshold, merge gap, minimum
duration) reuse its window scores. "Placed by centres" is ``audioclas.events`` as it is (each window's score stands
for the stretch nearest its centre); "edges" is a placement proposed here and measured only here (``by_edges``).

Speed at 1 s resolution: tagging a 1-hour WAV made from the real recordings with window 10 s hop 1 s, and with the
best setting's window at hop 1 s, with events, in process and as a whole ``audioclas predict`` process; and where
the time of a 10 s window goes (log-mel front end, network).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests" / "support"))
os.environ.setdefault("AUDIOCLAS_WEIGHTS", str(SHARED / "weights" / "efficientat"))

from media import encode  # noqa: E402  (tests/support/media.py: PyAV encoding helper)

from audioclas.audio import SAMPLE_RATE, load_audio  # noqa: E402
from audioclas.events import EventOptions, find_events, stretch_bounds  # noqa: E402
from audioclas.inputs import AudioSource  # noqa: E402
from audioclas.ontology import resolve_classes  # noqa: E402
from audioclas.tagger import Tagger  # noqa: E402
from audioclas.windows import WindowSettings  # noqa: E402

AUDIO = SHARED / "audio"
FSDD = SHARED / "datasets" / "fsdd"
LIBRISPEECH = ("198-209-0000.ogg", "3436-172162-0000.ogg", "5703-47212-0000.ogg")
CLASSES = ("Speech", "Bird", "Trumpet", "Dog")  # the truth classes, AudioSet names
BACKGROUNDS = (("quiet", None), ("metro", 10.0), ("metro", 3.0))  # (recording, SNR in dB)
FOREGROUND_RMS = 0.05  # about -26 dBFS over the event's active frames
SETTINGS = ((10.0, None), (10.0, 1.0), (5.0, 1.0), (3.0, 0.5), (2.0, 0.5))  # (window, hop); None: no overlap
POST = [  # (placement, threshold, merge_gap, min_duration)
    (edges, threshold, gap, shortest)
    for edges in (False, True)
    for threshold in (0.3, 0.5)
    for gap in (0.0, 2.0)
    for shortest in (0.0, 1.0)
]
FRAME = SAMPLE_RATE // 20  # 50 ms


@dataclass
class Scene:
    path: Path
    truth: list[tuple[float, float, str]]  # (onset, offset, class)


def clip(name: str, directory: Path = AUDIO) -> np.ndarray:
    return load_audio(AudioSource(name, path=directory / name))


def trimmed(wave: np.ndarray) -> tuple[int, int]:
    """(first, end) sample of the frames within 35 dB of the loudest one."""
    frames = wave[: len(wave) // FRAME * FRAME].reshape(-1, FRAME)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    active = np.flatnonzero(rms >= rms.max() * 10 ** (-35 / 20))
    return int(active[0]) * FRAME, (int(active[-1]) + 1) * FRAME


def cut(wave: np.ndarray, rng: random.Random, shortest: float, longest: float) -> np.ndarray:
    length = min(len(wave), round(rng.uniform(shortest, longest) * SAMPLE_RATE))
    start = rng.randrange(len(wave) - length + 1)
    return wave[start : start + length]


def joined(parts: list[np.ndarray], rng: random.Random, shortest: float, longest: float) -> np.ndarray:
    pieces: list[np.ndarray] = []
    for part in parts:
        if pieces:
            pieces.append(np.zeros(round(rng.uniform(shortest, longest) * SAMPLE_RATE), np.float32))
        pieces.append(part)
    return np.concatenate(pieces)


class Foregrounds:
    """Real foreground events, drawn by class."""

    def __init__(self) -> None:
        self.speech = [clip(name) for name in LIBRISPEECH]
        self.robin = clip("456440__inspectorj__bird-whistling-robin-single-13.ogg")
        self.trumpet = clip("sorohanro_-_solo-trumpet-06.ogg")
        self.dog = clip("pibble.ogg")[: 15 * SAMPLE_RATE]
        self.digits: dict[str, list[str]] = {}
        for line in (FSDD / "test.txt").read_text().splitlines():
            name = line.split()[0]
            self.digits.setdefault(Path(name).stem.split("_")[1], []).append(name)

    def draw(self, label: str, rng: random.Random) -> np.ndarray:
        if label == "Speech" and rng.random() < 0.5:
            return cut(rng.choice(self.speech), rng, 4.0, 12.0)
        if label == "Speech":
            names = rng.sample(self.digits[rng.choice(sorted(self.digits))], rng.randint(3, 6))
            return joined([clip(name, FSDD) for name in names], rng, 0.2, 0.2)
        if label == "Bird":
            return joined([self.robin] * rng.randint(1, 3), rng, 0.5, 1.5)
        if label == "Trumpet":
            return cut(self.trumpet, rng, 3.0, 5.4)
        return cut(self.dog, rng, 4.0, 10.0)


def make_scenes(folder: Path, count: int, seed: int) -> list[Scene]:
    rng = random.Random(seed)
    foregrounds, metro = Foregrounds(), clip("metro_station-paris.wav")
    scenes = []
    for number in range(count):
        labels = list(CLASSES) + [rng.choice(CLASSES) for _ in range(rng.randint(0, 2))]
        rng.shuffle(labels)
        placed, time_ = [], rng.uniform(2.0, 8.0)
        for label in labels:
            wave = foregrounds.draw(label, rng)
            first, end = trimmed(wave)
            wave = wave[first:end]
            wave = wave * (FOREGROUND_RMS / np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
            placed.append((round(time_ * SAMPLE_RATE), wave, label))
            time_ += len(wave) / SAMPLE_RATE + rng.uniform(3.0, 10.0)
        seconds = min(max(time_, 30.0), 120.0)
        assert placed[-1][0] + len(placed[-1][1]) <= seconds * SAMPLE_RATE, "a scene longer than 120 s"
        name, snr = BACKGROUNDS[number % len(BACKGROUNDS)]
        size = round(seconds * SAMPLE_RATE)
        if snr is None:
            scene = np.zeros(size, np.float64)
        else:
            scene = np.resize(metro, size).astype(np.float64)
            scene *= FOREGROUND_RMS * 10 ** (-snr / 20) / np.sqrt(np.mean(scene**2))
        truth = []
        for first, wave, label in placed:
            scene[first : first + len(wave)] += wave
            truth.append((first / SAMPLE_RATE, (first + len(wave)) / SAMPLE_RATE, label))
        scene /= max(1.0, float(np.abs(scene).max()) / 0.99)
        path = encode(folder / f"scene{number:02d}-{name}.wav", scene.astype(np.float32), SAMPLE_RATE, "pcm_s16le")
        scenes.append(Scene(path, truth))
    return scenes


@dataclass
class Scored:
    scene: Scene
    starts: np.ndarray
    ends: np.ndarray
    duration: float
    scores: np.ndarray  # (windows, 527) sigmoid


def run_setting(tagger: Tagger, scenes: list[Scene], window: float, hop: float | None) -> tuple[list[Scored], float]:
    """Window scores of every scene, and the × real time of computing them."""
    clock = time.perf_counter()
    outputs = list(tagger.outputs([scene.path for scene in scenes], WindowSettings(window, hop)))
    elapsed = time.perf_counter() - clock
    scored = []
    for scene, output in zip(scenes, outputs, strict=True):
        assert not isinstance(output, Exception), output
        scores = np.exp(-np.logaddexp(np.float32(0), -output.logits))
        scored.append(Scored(scene, output.starts, output.ends, output.duration, scores))
    return scored, sum(item.duration for item in scored) / elapsed


def estimated(item: Scored, tagger: Tagger, options: EventOptions, edges: bool) -> list[tuple[float, float, str]]:
    """The events of each truth class: those of the class and its descendants, overlapping ones united. ``edges``:
    placed by the window edges (see ``by_edges``) instead of the stretches nearest the window centres."""
    names, ids = [entry.name for entry in tagger.labels], [entry.id for entry in tagger.labels]
    bounds = stretch_bounds(item.starts, item.ends, item.duration)
    found = []
    for label in CLASSES:
        mask = np.zeros(len(names), bool)
        mask[list(resolve_classes([label], ids))] = True
        events = find_events(item.starts, item.ends, item.duration, item.scores, names, None, options, mask)
        spans = sorted(
            by_edges(item, bounds, event.start, event.end) if edges else (event.start, event.end) for event in events
        )
        united: list[list[float]] = []
        for start, end in spans:
            if united and start <= united[-1][1] + 1e-9:
                united[-1][1] = max(united[-1][1], end)
            else:
                united.append([start, end])
        found += [(start, end, label) for start, end in united]
    return found


def by_edges(item: Scored, bounds: np.ndarray, start: float, end: float) -> tuple[float, float]:
    """An event placed by the edges of its windows rather than their centres (a proposal, measured here).

    A sound from a to b makes every window that holds it fire: the first firing window is the first to end after a,
    the last the last to start before b. So a lies between the ends of the first firing window and the one before
    it, b between the starts of the last one and the one after: the event runs from half a hop before the first
    window's end to half a hop after the last one's start (from the clip's start, or to its end, at its edges). When
    the detector needs more of the sound than the window overlap gives (the two cross), the event is the stretch
    between them."""
    first = int(np.searchsorted(bounds, start - 1e-9))
    last = int(np.searchsorted(bounds, end - 1e-9)) - 1
    hop = float(item.starts[1] - item.starts[0]) if len(item.starts) > 1 else item.duration
    onset = 0.0 if first == 0 else min(float(item.ends[first]) - hop / 2, item.duration)
    offset = item.duration if last == len(item.starts) - 1 else float(item.starts[last]) + hop / 2
    return (onset, offset) if onset < offset else (offset, onset)


def score(
    scored: list[Scored], tagger: Tagger, options: EventOptions, edges: bool
) -> tuple[float, float, float, float, str]:
    """(F1, precision, recall, onset-only F1), micro-averaged over classes and scenes, and the F1 of each class."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dcase_util
        import sed_eval

    def events(rows: list[tuple[float, float, str]], name: str) -> dcase_util.containers.MetaDataContainer:
        return dcase_util.containers.MetaDataContainer(
            [{"filename": name, "onset": on, "offset": off, "event_label": label} for on, off, label in rows]
        )

    full, onset = (
        sed_eval.sound_event.EventBasedMetrics(
            list(CLASSES), t_collar=1.0, percentage_of_length=0.5, evaluate_offset=offset
        )
        for offset in (True, False)
    )
    for item in scored:
        name = item.scene.path.name
        truth, found = events(item.scene.truth, name), events(estimated(item, tagger, options, edges), name)
        for metrics in (full, onset):
            metrics.evaluate(reference_event_list=truth, estimated_event_list=found)
    overall = full.results_overall_metrics()["f_measure"]
    onset_f1 = onset.results_overall_metrics()["f_measure"]["f_measure"]
    each = full.results_class_wise_metrics()
    classes = ", ".join(f"{label} {each[label]['f_measure']['f_measure']:.2f}" for label in CLASSES)
    return overall["f_measure"], overall["precision"], overall["recall"], onset_f1, classes


def hour_speed(tagger: Tagger, folder: Path, settings: list[tuple[float, float]]) -> None:
    """Tagging a 1-hour WAV with events at each (window, hop): in process, whole process; and where the time of a
    batch of 10 s windows goes."""
    clips = [clip(path.name) for path in sorted(AUDIO.glob("*.ogg"))]
    hour = np.resize(np.concatenate(clips), 3600 * SAMPLE_RATE).astype(np.float32)
    path = encode(folder / "hour.wav", hour, SAMPLE_RATE, "pcm_s16le")
    del hour
    print(f"\n1-hour WAV (32 kHz, from the real recordings), with events, {tagger.engine.__class__.__name__}:")
    for window, hop in settings:
        clock = time.perf_counter()
        tagger.predict(path, window=window, hop=hop, events=True)
        inside = time.perf_counter() - clock
        command = [sys.executable, "-m", "audioclas", "predict", str(path), "--window", f"{window:g}", "--hop"]
        clock = time.perf_counter()
        subprocess.run([*command, f"{hop:g}", "--events", "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        whole = time.perf_counter() - clock
        print(
            f"- window {window:g} s, hop {hop:g} s: in process (model loaded) {inside:.1f} s, {3600 / inside:.0f}x "
            f"real time; whole process (audioclas predict --events) {whole:.1f} s, {3600 / whole:.0f}x real time"
        )
    batch = np.resize(clips[0], (16, 10 * SAMPLE_RATE)).astype(np.float32)
    engine = tagger.engine
    front_end = getattr(engine, "front_end", None)
    if front_end is not None:
        with engine.blas.limit(limits=engine.threads, user_api="blas"):  # as the engine runs it
            clock = time.perf_counter()
            for _ in range(5):
                log_mel = front_end(batch)
            front = (time.perf_counter() - clock) / 5
        clock = time.perf_counter()
        for _ in range(5):
            engine.run(batch)
        total = (time.perf_counter() - clock) / 5
        print(
            f"- per batch of 16 windows of 10 s: {total * 1000:.0f} ms, of which the log-mel front end {front * 1000:.0f} ms "
            f"({front / total:.0%}), the network {(total - front) * 1000:.0f} ms; input {tuple(log_mel.shape)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8, help="scenes to make (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scenes (default 0)")
    parser.add_argument("--skip-hour", action="store_true", help="skip the 1-hour speed measurement")
    args = parser.parse_args()
    tagger = Tagger()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        scenes = make_scenes(folder, args.scenes, args.seed)
        print(f"{len(scenes)} scenes, {sum(len(s.truth) for s in scenes)} events; truth (onset-offset s, class):")
        for scene in scenes:
            rows = ", ".join(f"{on:.1f}-{off:.1f} {label}" for on, off, label in scene.truth)
            print(f"- {scene.path.name}: {rows}")
        print(
            "\n| window / hop | placed by | threshold | merge gap | min duration | F1 | precision | recall | onset F1 "
            "| × real time |\n|---|---|---|---|---|---|---|---|---|---|"
        )
        best: tuple[float, str, float, float] = (-1.0, "", 0.0, 0.0)
        for window, hop in SETTINGS:
            scored, speed = run_setting(tagger, scenes, window, hop)
            for edges, threshold, gap, shortest in POST:
                if edges and hop is None:
                    continue  # without overlap, the edges are the centres' stretches
                options = EventOptions(threshold=threshold, merge_gap=gap, min_duration=shortest)
                f1, precision, recall, onset_f1, classes = score(scored, tagger, options, edges)
                row = f"{window:g} s / {hop or window:g} s, {'edges' if edges else 'centres'}, {options.to_dict()}"
                if hop is not None and f1 > best[0]:
                    best = (f1, f"{row}: {classes}", window, hop)
                print(
                    f"| {window:g} s / {hop or window:g} s | {'edges' if edges else 'centres'} | {threshold:g} "
                    f"| {gap:g} s | {shortest:g} s | {f1:.2f} | {precision:.2f} | {recall:.2f} | {onset_f1:.2f} "
                    f"| {speed:.0f} |"
                )
        print(f"\nBest (F1 {best[0]:.2f}): {best[1]}")
        if not args.skip_hour:
            hour_speed(tagger, folder, sorted({(10.0, 1.0), (best[2], 1.0)}, reverse=True))


if __name__ == "__main__":
    main()
