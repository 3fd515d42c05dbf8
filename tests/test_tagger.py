"""The Python API end to end on the real reference clips: decode -> windows -> network -> labels."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scenes import SPEECH, place
from tiny_models import tiny_models

from audioclas import InputError, Tagger
from audioclas.errors import AudioclasError, OptionError
from audioclas.events import EventOptions
from audioclas.predictions import LabelQuery
from audioclas.windows import WindowRequest

WINDOW = 320_000  # 10 s at 32 kHz

# Top-1 label of each full 10 s window, from ../shared/docs/efficientat-mn04.md section 8.
WINDOW_TOP1 = {
    "speech_198": ["Speech"],
    "speech_3436": ["Speech"],
    "speech_5703": ["Speech synthesizer"],
    "drumbass": ["Music", "Music"],
    "pibble": ["Animal", "Animal", "Plop", "Silence"],
    "humpback": ["Animal", "Animal", "Animal", "Whale vocalization", "Whale vocalization", "Animal"],
    "hungarian": ["Music", "Music", "Music", "Music"],
}
# Top-1 of the whole clip (same section): with max aggregation over windows it must stay in the top 3.
CLIP_TOP1 = {
    "robin": "Bird",
    "trumpet": "Trumpet",
    "metro": "Train",
    "speech_198": "Speech",
    "speech_3436": "Speech",
    "speech_5703": "Speech synthesizer",
    "drumbass": "Music",
    "pibble": "Plop",
    "humpback": "Whale vocalization",
    "hungarian": "Music",
}


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


def full_windows(wave_length: int) -> int:
    """Windows the reference and we both cut from real audio only (the reference pads its last one)."""
    return max(1, wave_length // WINDOW)


def test_decoded_files_match_the_reference_window_by_window(tagger: Tagger, reference, audio_dir: Path) -> None:
    """PyAV + soxr HQ decoding lands on the reference's own float decode (libsndfile + soxr HQ)."""
    for clip in reference["clip_ids"]:
        prediction = tagger.predict(audio_dir / str(reference[f"{clip}__file"]), pad="zeros", top_k=0)
        n = full_windows(len(reference[f"{clip}__wave_int16"]))
        expected = reference[f"{clip}__fdec_win_probs"][:n]
        np.testing.assert_allclose(prediction.window_scores[:n], expected, atol=1e-3, err_msg=clip)
        assert prediction.duration == pytest.approx(len(reference[f"{clip}__wave_int16"]) / 32000, abs=1e-3)


def test_arrays_reproduce_the_reference_exactly(tagger: Tagger, reference) -> None:
    for clip in reference["clip_ids"]:
        wave = reference[f"{clip}__wave_int16"].astype(np.float32) / 32768
        prediction = tagger.predict((wave, 32000), pad="zeros", top_k=0)
        n = full_windows(len(wave))
        np.testing.assert_allclose(prediction.window_scores[:n], reference[f"{clip}__win_probs"][:n], atol=1e-5)


def test_expected_labels_per_clip_and_per_window(tagger: Tagger, reference, audio_dir: Path) -> None:
    files = [audio_dir / str(reference[f"{clip}__file"]) for clip in reference["clip_ids"]]
    for clip, prediction in zip(reference["clip_ids"], tagger.predict_many(files, top_k=3)):
        assert CLIP_TOP1[clip] in [x.name for x in prediction.labels], clip
        tops = [w.labels[0].name for w in prediction.windows]
        assert tops[: len(WINDOW_TOP1.get(clip, []))] == WINDOW_TOP1.get(clip, []), clip


def test_timeline_covers_a_long_clip_without_padding(tagger: Tagger, audio_dir: Path) -> None:
    prediction = tagger.predict(audio_dir / "glacier-bay-humpback.ogg")  # 64.8 s
    starts = [round(w.start, 2) for w in prediction.windows]
    assert starts == [0, 10, 20, 30, 40, 50, 54.81]  # the last window is flush with the end
    assert all(w.end - w.start == pytest.approx(10) for w in prediction.windows)
    assert prediction.windows[-1].end == pytest.approx(prediction.duration)
    # clip scores are the max over windows by default, the mean on request
    np.testing.assert_allclose(prediction.scores, prediction.window_scores.max(axis=0))
    mean = tagger.predict(audio_dir / "glacier-bay-humpback.ogg", aggregate="mean", top_k=0)
    np.testing.assert_allclose(mean.scores, mean.window_scores.mean(axis=0), rtol=1e-6)


def test_overlapping_windows(tagger: Tagger, audio_dir: Path) -> None:
    prediction = tagger.predict(audio_dir / "198-209-0000.ogg", hop=2.5)  # 13.9 s
    assert [round(w.start, 2) for w in prediction.windows] == [0, 2.5, 3.91]


def test_short_clip_is_looped_not_padded_by_default(tagger: Tagger, reference) -> None:
    """Looping keeps a 2.7 s robin call closer to the network's unpadded whole-clip output than silence does."""
    wave = reference["robin__wave_int16"].astype(np.float32) / 32768
    looped, padded = tagger.predict((wave, 32000), top_k=1), tagger.predict((wave, 32000), pad="zeros", top_k=1)
    unpadded = reference["robin__probs"]
    assert looped.labels[0].name == "Bird" == reference["labels"][np.argmax(unpadded)]
    assert np.abs(looped.scores - unpadded).max() < 0.02 < np.abs(padded.scores - unpadded).max()
    assert looped.windows[0].end == pytest.approx(2.699, abs=1e-3)  # the window reports the real audio


def test_label_filters(tagger: Tagger, audio_dir: Path) -> None:
    trumpet = audio_dir / "sorohanro_-_solo-trumpet-06.ogg"
    assert [x.name for x in tagger.predict(trumpet, labels=["Music", "dog"], exact=True).labels] == ["Music", "Dog"]
    below_music = [x.name for x in tagger.predict(trumpet, labels=["Music", "dog"], top_k=3).labels]
    assert below_music == ["Trumpet", "Music", "Brass instrument"]  # a class brings the classes below it
    names = [x.name for x in tagger.predict(trumpet, exclude=["Trumpet"], top_k=2).labels]
    assert names == ["Music", "Brass instrument"]
    labels = tagger.predict(trumpet, top_k=0, threshold=0.5).labels
    assert labels and all(x.score >= 0.5 for x in labels) and labels[0].id == "/m/07gql"
    with pytest.raises(AudioclasError, match="Unicorn"):
        tagger.predict(trumpet, labels=["Unicorn"])


def test_options_as_objects_or_as_keywords_are_one_thing(tagger: Tagger, audio_dir: Path) -> None:
    drums = audio_dir / "admiralbob77_-_Choice_-_Drum-bass.ogg"
    query, windows = LabelQuery(top_k=2, exclude=("Music",), aggregate="mean"), WindowRequest(hop=5.0, pad="zeros")
    by_objects = tagger.predict(drums, query=query, windows=windows)
    by_keywords = tagger.predict(drums, top_k=2, exclude=["Music"], aggregate="mean", hop=5.0, pad="zeros")
    # the same windows and labels; the scores to the rounding of the network's batches (they depend on timing)
    assert [(w.start, [x.name for x in w.labels]) for w in by_objects.windows] == [
        (w.start, [x.name for x in w.labels]) for w in by_keywords.windows
    ]
    assert [x.name for x in by_objects.labels] == [x.name for x in by_keywords.labels]
    np.testing.assert_allclose(by_objects.window_scores, by_keywords.window_scores, atol=1e-5)
    assert len(by_objects.labels) == 2 and "Music" not in [x.name for x in by_objects.labels]
    assert [w.start for w in by_objects.windows][:3] == [0.0, 5.0, 10.0]
    with pytest.raises(OptionError, match="give top_k inside the LabelQuery"):
        tagger.predict_many([drums], query=query, top_k=3)  # refused at the call, before any input is read
    with pytest.raises(OptionError, match="top_k must be"):
        tagger.predict_many([drums], top_k=-3)


def test_one_bad_input_does_not_sink_the_batch(tagger: Tagger, audio_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    good = audio_dir / "sorohanro_-_solo-trumpet-06.ogg"
    results = list(tagger.predict_many([good, empty, tmp_path / "missing.ogg", corrupt, good]))
    kinds = ["Prediction", "InputError", "InputError", "UnsupportedInput", "Prediction"]
    assert [type(r).__name__ for r in results] == kinds
    assert all(
        str(bad.source).endswith(name) for bad, name in zip(results[1:4], ["empty.wav", "missing.ogg", "corrupt.mp3"])
    )
    np.testing.assert_allclose(results[0].scores, results[4].scores)
    with pytest.raises(InputError, match="empty"):
        tagger.predict(empty)


def test_non_finite_scores_and_samples_fail_their_input_only(tagger: Tagger, audio_dir: Path) -> None:
    """Finite samples of 1e30 overflow the spectrogram into NaN scores: the input fails, not its neighbours."""
    noise = np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    with_nan = noise.copy()
    with_nan[100] = np.nan
    beyond_float32 = noise.astype(np.float64) * 1e300  # becomes inf when converted: refused quietly, no warning
    robin = audio_dir / "456440__inspectorj__bird-whistling-robin-single-13.ogg"
    inputs = [(1e30 * noise, 32000), (with_nan, 32000), robin, (beyond_float32, 32000), (noise * 0.1, 32000)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = list(tagger.predict_many(inputs))
        embeddings = list(tagger.embed_many(inputs[:2]))
    assert [type(r).__name__ for r in results] == ["InputError", "InputError", "Prediction", "InputError", "Prediction"]
    assert "NaN or infinite scores" in results[0].problem
    assert "NaN or infinite samples" in results[1].problem and "NaN or infinite samples" in results[3].problem
    assert results[2].labels[0].name == "Bird" and np.isfinite(results[4].scores).all()
    assert all(isinstance(e, InputError) for e in embeddings)
    with pytest.raises(InputError, match="NaN or infinite scores"):
        tagger.predict((1e30 * noise, 32000))


def test_embeddings(tagger: Tagger, reference, audio_dir: Path) -> None:
    embedding = tagger.embed(audio_dir / "metro_station-paris.wav")
    assert embedding.windows.shape == (1, 384) and embedding.clip.shape == (384,)
    np.testing.assert_allclose(embedding.clip, reference["metro__fdec_embedding"], atol=1e-4)
    long = tagger.embed(audio_dir / "pibble.ogg")
    assert long.windows.shape == (5, 384)
    np.testing.assert_allclose(long.clip, long.windows.mean(axis=0), rtol=1e-6)


def test_bytes_and_file_objects(tagger: Tagger, audio_dir: Path) -> None:
    path = audio_dir / "sorohanro_-_solo-trumpet-06.ogg"
    from_path = tagger.predict(path, top_k=1)
    from_bytes = tagger.predict(path.read_bytes(), top_k=1)
    with path.open("rb") as stream:
        from_stream = tagger.predict(stream, top_k=1)
    assert from_path.labels[0].name == from_bytes.labels[0].name == from_stream.labels[0].name == "Trumpet"
    assert from_bytes.labels[0].score == pytest.approx(from_path.labels[0].score, abs=1e-6)


def test_events_place_a_real_clip_where_it_was_put_in_a_scene(tagger: Tagger, audio_dir: Path, tmp_path: Path) -> None:
    path, onset, offset = place(audio_dir / SPEECH, tmp_path, onset=15.0, seconds=40.0)
    prediction = tagger.predict(path, hop=1.0, events=EventOptions(threshold=0.5))
    assert prediction.events is not None
    speech = [event for event in prediction.events if event.label == "Speech"]
    assert len(speech) == 1 and speech[0].id == "/m/09x0r"
    (event,) = speech
    assert event.start < offset and event.end > onset  # overlaps the true placement
    # A 10 s window hears the clip from 5 s before its centre: no event can reach further out than that and a hop.
    assert onset - 5.0 - 1.0 <= event.start and event.end <= offset + 5.0 + 1.0
    assert event.mean_score <= event.score and event.score >= 0.5
    assert prediction.to_dict()["events"][0].keys() == {"start", "end", "label", "id", "score", "mean_score"}


def test_events_follow_the_label_filter_and_are_absent_unless_asked(tagger: Tagger, audio_dir: Path) -> None:
    speech = audio_dir / SPEECH
    assert tagger.predict(speech).events is None and "events" not in tagger.predict(speech).to_dict()
    only = tagger.predict(speech, labels=["Music"], events=True)  # a class the clip does not hold: no event
    assert only.events == []
    found = tagger.predict(speech, top_k=1, events=True)
    assert {"Speech"} <= {event.label for event in found.events or []}
    with pytest.raises(OptionError, match="unknown label"):  # refused at the call, before any input is read
        tagger.predict_many([speech], events=EventOptions(thresholds={"Not a class": 0.2}))
    with pytest.raises(OptionError, match="EventOptions"):
        tagger.predict_many([speech], events="yes")  # type: ignore[arg-type]


def test_a_custom_model_gives_events_of_its_own_classes(
    tagger: Tagger, shared_dir: Path, data_root: Path, audio_dir: Path
) -> None:
    """The tiny frozen head (two digits, single-label softmax): at threshold 0.5 one of its two classes holds every
    stretch of time, so its events, without ids, cover the clip with no hole."""
    from audioclas.training.store import load_model

    frozen, _ = tiny_models(shared_dir, data_root)
    model = load_model(frozen)
    prediction = tagger.predict(audio_dir / SPEECH, model=model, events=True)  # its own 0.3 s windows
    assert prediction.events and {event.label for event in prediction.events} <= set(model.classes)
    assert all(event.id is None for event in prediction.events)
    spans = sorted((event.start, event.end) for event in prediction.events)
    assert spans[0][0] == 0.0 and max(end for _, end in spans) == pytest.approx(prediction.duration)
    reach = 0.0
    for start, end in spans:
        assert start <= reach + 1e-6  # no stretch of time left without an event
        reach = max(reach, end)


def test_specific_puts_the_dog_and_the_guitar_first(tagger: Tagger, audio_dir: Path) -> None:
    """Real clips: plain ranking reports "Animal" above "Dog" for the howling dog and "Music" first for the drum and
    bass stems; with ``specific`` the dog's sounds and the bass guitar come first (thresholds in specific.py)."""
    dog, bass = audio_dir / "pibble.ogg", audio_dir / "admiralbob77_-_Choice_-_Drum-bass.ogg"
    plain = [x.name for x in tagger.predict(dog, top_k=0, threshold=0.2).labels]
    assert plain.index("Animal") < plain.index("Dog")
    specific = [x.name for x in tagger.predict(dog, top_k=0, threshold=0.2, specific=True).labels]
    assert sorted(specific) == sorted(plain)  # the same labels, in another order
    assert specific.index("Bark") < specific.index("Dog") < specific.index("Animal")
    assert [x.name for x in tagger.predict(bass, top_k=1).labels] == ["Music"]
    assert [x.name for x in tagger.predict(bass, top_k=2, specific=True).labels] == ["Bass guitar", "Guitar"]


def test_labels_dog_reports_the_sounds_below_it(tagger: Tagger, audio_dir: Path) -> None:
    dog = audio_dir / "pibble.ogg"
    found = [x.name for x in tagger.predict(dog, labels=["Dog"], top_k=3).labels]
    assert found == ["Dog", "Bark", "Howl"]
    assert [x.name for x in tagger.predict(dog, labels=["Dog"], exact=True, top_k=3).labels] == ["Dog"]
