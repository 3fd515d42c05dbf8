"""The annotations layout on real audio: FSDD digits (George's recordings) joined into longer recordings with
silence between them, annotated at the positions they were placed at."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from annotated import RATE, raven, read_wav, recording

from audioclas.training.dataset import DatasetError, load_dataset, stratified_holdout


@pytest.fixture(scope="module")
def fsdd(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "fsdd"


@pytest.fixture(scope="module")
def annotated(tmp_path_factory: pytest.TempPathFactory, fsdd: Path) -> tuple[Path, dict[str, list]]:
    """Four recordings of three zeros and three ones each, with Raven tables beside them."""
    root = tmp_path_factory.mktemp("annotated")
    known = {}
    for number in range(4):
        digits = [(digit, (6 * number + k) % 40) for k, digit in enumerate([0, 1, 0, 1, 0, 1])]
        known[f"rec{number}"] = recording(fsdd, root / f"rec{number}.wav", digits)
        raven(root / f"rec{number}.Table.1.selections.txt", known[f"rec{number}"])
    return root, known


@pytest.mark.unit
def test_raven_tables_give_one_example_per_selection_at_its_times(annotated) -> None:
    root, known = annotated
    dataset = load_dataset(root)
    assert dataset.layout == "annotations" and dataset.classes == ["one", "zero"] and not dataset.multilabel
    examples = sorted(dataset.examples(), key=lambda e: (e.path.name, e.segment))
    assert len(examples) == 24  # each selection once, although listed for two views
    expected = sorted((f"rec{n}.wav", (s, e), label) for n in range(4) for s, e, label in known[f"rec{n}"])
    assert [(e.path.name, e.segment, dataset.classes[e.label]) for e in examples] == expected
    assert len({e.key for e in examples}) == 24 and all(e.key.startswith(e.sha256) for e in examples)


@pytest.mark.unit
def test_the_holdout_keeps_each_recording_in_one_split(annotated) -> None:
    dataset = load_dataset(annotated[0])
    train, val = stratified_holdout(dataset.splits["train"], 0.25, seed=3)
    assert {e.path for e in train}.isdisjoint({e.path for e in val})
    assert len({e.path for e in val}) == 1 and len(val) == 6


@pytest.mark.unit
def test_overlaps_make_multi_label_examples_and_background_fills_the_gaps(tmp_path: Path, fsdd: Path) -> None:
    known = recording(fsdd, tmp_path / "a.wav", [(0, 0), (1, 0)])
    (s0, e0, _), (s1, e1, _) = known
    wide = (round(s1 - 0.01, 3), round(e1 + 0.01, 3))
    rows = [(s0, e0, "zero"), (s0, e0, "speech"), (s1, e1, "one"), (*wide, "speech")]
    (tmp_path / "a.labels.txt").write_text("".join(f"{s}\t{e}\t{label} 0.9000\n" for s, e, label in rows))
    dataset = load_dataset(tmp_path, background=True)
    assert dataset.multilabel and dataset.classes == ["one", "speech", "zero"]
    labelled = {e.segment: {dataset.classes[i] for i in e.labels} for e in dataset.examples()}
    assert labelled[(s0, e0)] == {"zero", "speech"} and labelled[(s1, e1)] == {"one", "speech"}
    assert labelled[wide] == {"one", "speech"}
    background = [segment for segment, labels in labelled.items() if not labels]
    assert background and all(
        end <= s0 or start >= wide[1] or e0 <= start < end <= wide[0] for start, end in background
    )


@pytest.mark.unit
def test_single_label_background_is_a_class(tmp_path: Path, fsdd: Path) -> None:
    known = recording(fsdd, tmp_path / "a.wav", [(0, 0), (1, 0)])
    (tmp_path / "a.csv").write_text(
        "file,start,end,label\n" + "".join(f"a.wav,{s},{e},{label}\n" for s, e, label in known)
    )
    dataset = load_dataset(tmp_path / "a.csv", background=True)
    assert dataset.classes == ["background", "one", "zero"]
    counts = dataset.counts()["train"]
    assert counts[1] == counts[2] == 1 and counts[0] >= 2


@pytest.mark.unit
def test_every_problem_of_annotation_files_is_listed(tmp_path: Path, fsdd: Path) -> None:
    known = recording(fsdd, tmp_path / "a.wav", [(0, 0), (1, 0)])
    length = len(read_wav(tmp_path / "a.wav")) / RATE
    rows = [
        "file,start,end,label",
        f"a.wav,{known[0][0]},{known[0][1]},zero",  # 2: fine
        "a.wav,2.0,1.0,one",  # 3: ends before it starts
        f"a.wav,1.0,{round(length + 5, 3)},one",  # 4: past the end
        "b.wav,0.0,1.0,one",  # 5: unknown file
        "a.wav,zero,1.0,one",  # 6: not a number
        "a.wav,0.1,0.5,",  # 7: empty label
        "../a.wav,0.1,0.5,one",  # 8: leaves the folder
        "a.wav,0.1",  # 9: columns
    ]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path / "a.csv", multilabel=False)
    messages = [str(problem) for problem in caught.value.problems]
    assert messages == [
        f"{tmp_path}: single-label training needs at least 2 classes, found 1",
        "a.csv:3: ends (1 s) before it starts (2 s)",
        f"a.csv:4: ends at {round(length + 5, 3):g} s, after the end of the recording ({length:.3f} s)",
        "a.csv:5: no recording 'b.wav' found in the data folder",
        "a.csv:6: start 'zero' is not a number",
        "a.csv:7: empty label",
        f"a.csv:8: file '../a.wav' must be relative and stay inside {tmp_path}",
        "a.csv:9: has 2 columns, the header 4",
    ]
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path / "a.csv", multilabel=False, quote=False)
    assert not any("zero'" in str(p) or "b.wav" in str(p) or "../" in str(p) for p in caught.value.problems)
    assert len(caught.value.problems) == len(messages)


@pytest.mark.unit
def test_a_raven_table_without_a_known_label_column(tmp_path: Path, fsdd: Path) -> None:
    known = recording(fsdd, tmp_path / "a.wav", [(0, 0), (1, 0)])
    raven(tmp_path / "a.selections.txt", known, column="Sound")
    with pytest.raises(DatasetError, match=r"a.selections.txt:1: header lacks column\(s\) a label column"):
        load_dataset(tmp_path)
    dataset = load_dataset(tmp_path, label_column="Sound")
    assert dataset.classes == ["one", "zero"]


def test_train_on_annotations_predict_and_read_back_its_tables(annotated, fsdd: Path, tmp_path: Path) -> None:
    """Train a real model on the annotated recordings (with background examples), predict held-out digits with it,
    and read the Raven table (two inputs: Begin File, File Offset) and the Audacity label track that ``audioclas
    predict --events`` writes back as annotations: each event becomes the example of its file and times."""
    from audioclas.tagger import Tagger
    from audioclas.training import TrainConfig, evaluate, load_model, train

    root, _ = annotated
    config = TrainConfig(
        name="annotated", epochs=60, early_stopping=0, background=True, tensorboard=False, overwrite=True
    )
    result = train(root, config)
    assert result.model.classes == ["background", "one", "zero"]
    assert result.metrics["val"]["accuracy"] >= 0.8  # one whole recording held out: digits and silence never heard
    model = load_model("annotated")
    clips = [fsdd / "recordings" / f"{digit}_george_{index}.wav" for digit in (0, 1) for index in range(45, 48)]
    predictions = Tagger().predict_many(clips, model=model, pad=model.pad)
    assert [prediction.labels[0].name for prediction in predictions] == ["zero"] * 3 + ["one"] * 3
    evaluated = evaluate("annotated", root)  # read as trained: with its background examples
    assert evaluated.metrics["examples"] == 24 + 28 and evaluated.metrics["accuracy"] >= 0.9, evaluated.metrics

    new = tmp_path / "new"
    recording(fsdd, new / "a.wav", [(0, 45), (1, 45), (0, 46)])
    recording(fsdd, new / "b.wav", [(1, 46), (0, 47), (1, 47)])
    # no merging: the events of one recording stay disjoint, so each reads back as a single-label example
    predict = [sys.executable, "-m", "audioclas", "predict", "--model", "annotated", "--events", "--merge-gap", "0"]
    subprocess.run(
        [*predict, str(new / "a.wav"), str(new / "b.wav"), "-f", "raven", "-o", str(new / "ab.selections.txt")],
        check=True,
    )
    with (new / "ab.selections.txt").open() as stream:
        rows = list(csv.DictReader(stream, delimiter="\t"))
    written = {
        (
            Path(row["Begin File"]).name,
            float(row["File Offset (s)"]),
            float(row["File Offset (s)"]) + float(row["End Time (s)"]) - float(row["Begin Time (s)"]),
            row["Label"],
        )
        for row in rows
    }
    assert {Path(row["Begin File"]).name for row in rows} == {"a.wav", "b.wav"}  # the inputs as given: full paths
    dataset = load_dataset(new)
    read = {(e.path.name, *e.segment, dataset.classes[e.label]) for e in dataset.examples()}
    assert len(read) == len(rows) and {(f, round(s, 3), round(e, 3), label) for f, s, e, label in written} == read

    audacity = tmp_path / "audacity"
    audacity.mkdir()
    shutil.copy(new / "a.wav", audacity / "a.wav")
    subprocess.run(
        [*predict, str(audacity / "a.wav"), "-f", "audacity", "-o", str(audacity / "a.labels.txt")], check=True
    )
    lines = [line.split("\t") for line in (audacity / "a.labels.txt").read_text().splitlines()]
    dataset = load_dataset(audacity)
    read = {(*e.segment, dataset.classes[e.label]) for e in dataset.examples()}
    assert read == {(float(start), float(end), label.rsplit(" ", 1)[0]) for start, end, label in lines}


@pytest.mark.unit
def test_csv_splits_keep_each_recording_whole(tmp_path: Path, fsdd: Path) -> None:
    a = recording(fsdd, tmp_path / "a.wav", [(0, 0), (1, 0)])
    b = recording(fsdd, tmp_path / "b.wav", [(0, 1), (2, 1)])
    rows = [f"a.wav,{s},{e},{label},train" for s, e, label in a] + [
        f"b.wav,{b[0][0]},{b[0][1]},zero,test",
        f"b.wav,{b[1][0]},{b[1][1]},two,train",  # line 5: b.wav also in train
        f"b.wav,{b[1][0] + 5},{b[1][1] + 5},two,test",  # line 6: after the end of b.wav
    ]
    (tmp_path / "a.csv").write_text("file,start,end,label,split\n" + "\n".join(rows) + "\n")
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path / "a.csv")
    length = len(read_wav(tmp_path / "b.wav")) / RATE
    assert [str(problem) for problem in caught.value.problems] == [
        f"{tmp_path}: class 1 ('two') has no examples in the train split",  # b.wav went to test, with its 'two'
        "a.csv:5: in two splits (test and train): also at a.csv:4; all annotations of a recording go to one split",
        f"a.csv:6: starts at {b[1][0] + 5:g} s, after the end of the recording ({length:.3f} s)",
    ]
    rows[3] = rows[3].replace(",train", ",test")  # every b.wav row in test: 'two' is then never trained on
    (tmp_path / "a.csv").write_text("file,start,end,label,split\n" + "\n".join(rows[:4]) + "\n")
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path / "a.csv")
    assert [str(problem) for problem in caught.value.problems] == [
        f"{tmp_path}: class 1 ('two') has no examples in the train split"
    ]
    (tmp_path / "a.csv").write_text("file,start,end,label,split\n" + "\n".join(rows[:3]) + "\n")
    dataset = load_dataset(tmp_path / "a.csv")
    assert dataset.split_given and [e.path.name for e in dataset.splits["test"]] == ["b.wav"]
    assert [e.path.name for e in dataset.splits["train"]] == ["a.wav", "a.wav"]


@pytest.mark.unit
def test_every_file_is_checked_against_the_data_roots(tmp_path: Path, fsdd: Path) -> None:
    """What the service asks (roots, quote=False): a recording or annotation file linked from elsewhere is refused,
    and a table that is not a regular file is never opened."""
    import os

    outside, data = tmp_path / "outside", tmp_path / "data"
    known = recording(fsdd, outside / "a.wav", [(0, 0), (1, 0)])
    raven(outside / "secret.selections.txt", known)
    data.mkdir()
    (data / "a.wav").symlink_to(outside / "a.wav")
    raven(data / "a.selections.txt", known)
    (data / "b.selections.txt").symlink_to(outside / "secret.selections.txt")
    os.mkfifo(data / "c.selections.txt")
    with pytest.raises(DatasetError) as caught:
        load_dataset(data, roots=[data], quote=False)
    assert [str(problem) for problem in caught.value.problems] == [
        f"{data}: the train split has no examples",
        "a.selections.txt:2: is outside the folders allowed for training data",
        "a.selections.txt:4: is outside the folders allowed for training data",
        "b.selections.txt: is outside the folders allowed for training data",
        "c.selections.txt: not a file",
    ]


def test_each_segment_is_embedded_and_cached_apart(annotated) -> None:
    """Two annotations of one recording: each gets the embeddings of its own slice of the audio, cached under the
    recording's content and the segment, so that a second run computes nothing and no segment takes another's."""
    from audioclas.audio import SAMPLE_RATE, load_audio
    from audioclas.inputs import AudioSource
    from audioclas.tagger import Tagger
    from audioclas.training.embeddings import Embedder
    from audioclas.windows import WindowSettings

    dataset = load_dataset(annotated[0])
    examples = [e for e in dataset.examples() if e.path.name == "rec1.wav"][:2]
    settings = WindowSettings(0.5, 0.2, "zeros")  # settings no other test uses: nothing of this is cached yet
    clips, failed, computed = Embedder(settings)(examples)
    assert not failed and computed == 2 and set(clips) == {e.key for e in examples}
    audio = load_audio(AudioSource("rec1.wav", path=examples[0].path))
    for example in examples:
        start, end = example.segment
        cut = audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
        alone = Tagger().embed(AudioSource("cut", array=cut, sample_rate=SAMPLE_RATE), windows=settings)
        np.testing.assert_allclose(clips[example.key].windows, alone.windows, atol=1e-5)
    assert not np.allclose(clips[examples[0].key].windows.mean(0), clips[examples[1].key].windows.mean(0), atol=1e-2)
    again, _, computed = Embedder(settings)(examples)
    assert computed == 0 and all(np.array_equal(again[key].windows, clips[key].windows) for key in clips)


@pytest.mark.unit
def test_an_audacity_track_named_after_its_recording(tmp_path: Path, fsdd: Path) -> None:
    """``rec.txt`` beside ``rec.wav`` is a label track when it reads as one; a note beside another recording is not."""
    known = recording(fsdd, tmp_path / "rec.wav", [(0, 0), (1, 0)])
    (tmp_path / "rec.txt").write_text("".join(f"{s}\t{e}\t{label}\n" for s, e, label in known))
    recording(fsdd, tmp_path / "notes.wav", [(0, 1)])
    (tmp_path / "notes.txt").write_text("Recorded by George.\n")
    dataset = load_dataset(tmp_path)
    assert dataset.layout == "annotations" and dataset.classes == ["one", "zero"]
    assert sorted((e.path.name, e.segment) for e in dataset.examples()) == [("rec.wav", (s, e)) for s, e, _ in known]
    (tmp_path / "rec.txt").unlink()  # recordings with notes beside them: not annotated, so the folder layout's
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(tmp_path)


def test_exported_segment_embeddings_train_without_the_audio_and_keep_recordings_whole(annotated, tmp_path) -> None:
    """``--embeddings-only --export-embeddings`` writes one ``<recording>@<start>-<end>.npy`` per annotation; a
    dataset read with them still holds out whole recordings, never a segment apart from its recording."""
    from audioclas.training import TrainConfig, extract_embeddings

    root = annotated[0]
    extract_embeddings(root, TrainConfig(), export=tmp_path / "exported")
    dataset = load_dataset(root, embeddings=tmp_path / "exported")
    names = sorted(e.path.name for e in dataset.examples())
    assert len(names) == 24 and names[0] == "rec0.wav@0.700-0.998.npy"
    assert {e.recording.name for e in dataset.examples()} == {f"rec{n}.wav" for n in range(4)}
    train, val = stratified_holdout(dataset.splits["train"], 0.25, seed=3)
    assert len({e.recording for e in val}) == 1 and {e.recording for e in train}.isdisjoint({e.recording for e in val})
