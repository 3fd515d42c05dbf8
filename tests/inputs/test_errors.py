"""An input's problem has a kind by type, set where the problem is found: ``InputTooLarge`` for a bound passed,
``UnsupportedInput`` for what is not audio we can decode, plain ``InputError`` otherwise; the service's status
follows the type (413, 415, 400), never the text. URLs are served by ``httpx.MockTransport`` (no network in
tests); everything else is the real code on real files."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from audioclas.audio import load_audio
from audioclas.errors import BytesOverLimit, InputError, InputTooLarge, UnsupportedInput
from audioclas.inputs import AudioSource, InputLimits, open_sources
from audioclas.service.errors import http_status

pytestmark = pytest.mark.unit

# Random bytes that FFmpeg recognises as no format: fixed, since some random draws probe as a tiny WAV.
NOISE = random.Random(0).randbytes(4000)

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"


def problems(inputs, limits: InputLimits = InputLimits(), **options) -> list[InputError]:
    with open_sources(inputs, limits, **options) as sources:
        return [item for item in sources if isinstance(item, InputError)]


def test_every_bound_gives_input_too_large(tmp_path: Path, audio_dir: Path) -> None:
    robin = (audio_dir / ROBIN).read_bytes()
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as archive:
        for index in range(3):
            archive.writestr(f"{index}.ogg", robin)
    with tarfile.open(tmp_path / "many.tar", "w") as archive:
        for index in range(3):
            info = tarfile.TarInfo(f"{index}.ogg")
            info.size = len(robin)
            archive.addfile(info, io.BytesIO(robin))
    with tarfile.open(tmp_path / "pax.tar", "w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.ogg")
        info.pax_headers = {"comment": "x" * (2 * 2**20)}  # over the 1 MiB bound on one member's headers
        archive.addfile(info)
    (tmp_path / "big.ogg.gz").write_bytes(gzip.compress(robin))
    (tmp_path / "bomb.wav.gz").write_bytes(gzip.compress(bytes(4 * 2**20)))
    (tmp_path / "folder").mkdir()
    for index in range(3):
        (tmp_path / "folder" / f"{index}.ogg").write_bytes(robin)
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=robin)))
    limits = InputLimits(
        max_archive_members=2,
        max_folder_files=2,
        max_download_bytes=100,
        max_compression_ratio=2,
        ratio_check_bytes=2**20,
    )
    inputs = [tmp_path / name for name in ["many.zip", "many.tar", "pax.tar", "bomb.wav.gz", "folder"]]
    found = problems([*inputs, io.BytesIO(robin), "https://example.org/a.ogg"], limits, http_client=client)
    found += problems(tmp_path / "big.ogg.gz", InputLimits(max_member_bytes=len(robin) - 1))
    found += problems(tmp_path / "many.zip", InputLimits(max_archive_bytes=len(robin) + 1))
    assert [(type(error), error.problem.split(" ")[:2]) for error in found] == [
        (InputTooLarge, ["archive", "has"]),  # members of the zip
        (InputTooLarge, ["archive", "has"]),  # members of the tar
        (InputTooLarge, ["a", "member's"]),  # extended tar headers
        (InputTooLarge, ["archive", "expands"]),  # compression ratio
        (InputTooLarge, ["more", "than"]),  # files in a folder
        (InputTooLarge, ["larger", "than"]),  # a file object
        (InputTooLarge, ["download", "is"]),
        (BytesOverLimit, ["member", "is"]),  # the bounds in bytes are told apart (a dataset upload's room)
        (BytesOverLimit, ["archive", "expands"]),
    ]
    assert all(http_status(error) == 413 for error in found)


def test_what_is_not_audio_is_unsupported_and_other_problems_are_plain(tmp_path: Path) -> None:
    (tmp_path / "noise.wav").write_bytes(NOISE)
    (tmp_path / "empty.wav").touch()
    with pytest.raises(UnsupportedInput, match="not a recognised audio or video format") as unsupported:
        load_audio(AudioSource("noise.wav", path=tmp_path / "noise.wav"))
    with pytest.raises(InputError, match="file is empty") as empty:
        load_audio(AudioSource("empty.wav", path=tmp_path / "empty.wav"))
    [missing] = problems([tmp_path / "missing.wav"])
    assert (http_status(unsupported.value), http_status(empty.value), http_status(missing)) == (415, 400, 400)
    assert type(empty.value) is InputError and type(missing) is InputError


def test_the_status_follows_the_type_not_the_text() -> None:
    """A server chooses its reason phrase: matching the problem's text once made this 404 a 413."""
    answer = httpx.Response(404, extensions={"reason_phrase": b"more than the limit of 5"})
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answer))
    [error] = problems(["https://example.org/a.ogg"], http_client=client)
    assert error.problem == "download failed: HTTP 404 more than the limit of 5"
    assert type(error) is InputError and http_status(error) == 400


def test_a_renamed_error_keeps_its_kind() -> None:
    for kind, status in [(InputError, 400), (InputTooLarge, 413), (UnsupportedInput, 415)]:
        renamed = kind("/tmp/upload/3/a.wav", "a problem").renamed("a.wav")
        assert (type(renamed), str(renamed), http_status(renamed)) == (kind, "a.wav: a problem", status)
