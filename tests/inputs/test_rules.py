"""The name and file rules every reader of user data shares (``audioclas.inputs.rules``): audio extensions,
hidden names, unsafe relative paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioclas.inputs import open_sources
from audioclas.inputs.rules import AUDIO_EXTENSIONS, is_audio_name, is_hidden, unsafe_relative_path

pytestmark = pytest.mark.unit

# The two lists this one replaced: tagging's (sources.py) and training's (training/dataset.py).
TAGGING = (
    ".wav .flac .mp3 .ogg .oga .opus .m4a .aac .wma .aiff .aif .webm .mp4 .mkv .mov .avi .3gp .amr .caf .au .snd .mka"
)
TRAINING = (
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .aac .wma .aif .aiff .aifc .au .snd .caf .amr .ac3 .mka .webm .mp4"
    " .mkv .mov .avi .w64 .wv .ape .spx"
)


def test_audio_extensions_are_the_union_of_both_former_lists() -> None:
    assert set(TAGGING.split()) | set(TRAINING.split()) == AUDIO_EXTENSIONS
    assert all(is_audio_name(f"dir.x/clip{ext.upper()}") for ext in AUDIO_EXTENSIONS)
    assert not any(is_audio_name(name) for name in ["notes.txt", "clips.zip", "wav", "a.wav.gz", "clip.wav/x"])


def test_a_folder_walk_takes_the_extensions_training_took(tmp_path: Path) -> None:
    """Before the rules had one home, tagging a folder skipped .w64, .wv, .ape, .spx, .ac3, .aifc and .wave files that
    training took (and training skipped .3gp)."""
    names = ["a.3gp", "b.w64", "c.WV", "d.ape", "e.spx", "f.ac3", "g.aifc", "h.wave", "i.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    with open_sources(tmp_path) as sources:
        found = [Path(source.name).name for source in sources]
    assert found == names[:-1]


@pytest.mark.parametrize(
    "name, hidden",
    [
        ("clip.wav", False),
        ("./clip.wav", False),
        ("../clip.wav", False),
        ("a/b/clip.wav", False),
        (".clip.wav", True),
        ("a/.git/clip.wav", True),
        ("a\\.cache\\clip.wav", True),
        ("._clip.wav", True),
        ("__MACOSX/a/clip.wav", True),
        ("a\\__MACOSX\\clip.wav", True),
        ("__macosx/clip.wav", False),
    ],
)
def test_hidden_names(name: str, hidden: bool) -> None:
    assert is_hidden(name) is hidden


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a/b.wav", None),
        ("./a.wav", None),
        ("a..b.wav", None),
        ("1:a.wav", None),
        ("a/...wav", None),
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share\\a.wav", "absolute"),
        ("C:a.wav", "absolute"),
        ("c:\\a.wav", "absolute"),
        ("../a.wav", "contains '..'"),
        ("a/../b.wav", "contains '..'"),
        ("a\\..\\..\\b.wav", "contains '..'"),
        ("a\0.wav", "contains a NUL byte"),
    ],
)
def test_unsafe_relative_paths(text: str, problem: str | None) -> None:
    assert unsafe_relative_path(text) == problem
