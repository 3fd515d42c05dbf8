"""Expanding user inputs into audio sources: files, folders, globs, archives (hostile ones too), URLs, buffers.

There is no internet in tests: URLs are served by ``httpx.MockTransport``, which stands in for the network only;
everything after the HTTP response (size bounds, redirects, the guard, saving, decoding) is the real code.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import struct
import tarfile
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from audioclas.audio import load_audio
from audioclas.errors import InputError
from audioclas.inputs import AudioSource, HttpURL, InputLimits, open_sources, tarheaders

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
ROBIN_SAMPLES = 86357  # at 32 kHz


@pytest.fixture(scope="module")
def robin_bytes(audio_dir: Path) -> bytes:
    return (audio_dir / ROBIN).read_bytes()


def expand(inputs, limits: InputLimits = InputLimits(), decode: bool = True, **options) -> list[tuple[str, str]]:
    """Every item as (name, "ok" or the problem). Sources are decoded inside the ``with``, as a caller would, and
    must be the robin call (unless ``decode`` is False); a source that fails to open gives its problem."""
    results = []
    with open_sources(inputs, limits, **options) as sources:
        for item in sources:
            try:
                if isinstance(item, InputError):
                    raise item
                assert not decode or len(load_audio(item)) == ROBIN_SAMPLES, item.name
                results.append((item.name, "ok"))
            except InputError as error:
                results.append((error.source, error.problem))
    return results


def add_tar_member(archive: tarfile.TarFile, name: str, data: bytes = b"", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


# Files, folders, globs ---------------------------------------------------------------------------------------------


def test_a_file_given_explicitly_is_tried_whatever_its_extension(tmp_path: Path, robin_bytes: bytes) -> None:
    (tmp_path / "robin.data").write_bytes(robin_bytes)
    (tmp_path / "notes.txt").write_text("not audio")
    assert expand([str(tmp_path / "robin.data")]) == [(str(tmp_path / "robin.data"), "ok")]
    with open_sources(tmp_path / "notes.txt") as sources:  # a single input need not be in a list
        [source] = list(sources)
    with pytest.raises(InputError, match="notes.txt: not a recognised audio or video format"):
        load_audio(source)


def test_missing_path() -> None:
    assert expand(["/no/such/file.wav"]) == [("/no/such/file.wav", "no such file or directory")]


def test_folder_is_recursive_sorted_and_audio_only(tmp_path: Path, robin_bytes: bytes) -> None:
    hidden = ["sub/.hidden.ogg", "__MACOSX/._b.ogg", ".git/e.ogg"]
    for name in ["b.ogg", "a.OGG", "sub/c.ogg", "sub/deeper/d.ogg", *hidden]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(robin_bytes)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "sub" / "cover.jpg").write_bytes(b"\xff\xd8")
    names = [name for name, status in expand([tmp_path]) if status == "ok"]
    assert names == [str(tmp_path / n) for n in ["a.OGG", "b.ogg", "sub/c.ogg", "sub/deeper/d.ogg"]]


def test_empty_folder_and_folder_without_audio(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    assert expand([tmp_path / "empty", tmp_path / "text"]) == [
        (str(tmp_path / "empty"), "no audio files in this folder"),
        (str(tmp_path / "text"), "no audio files in this folder"),
    ]


def test_folder_file_limit(tmp_path: Path, robin_bytes: bytes) -> None:
    for index in range(3):
        (tmp_path / f"{index}.ogg").write_bytes(robin_bytes)
    results = expand([tmp_path], InputLimits(max_folder_files=2))
    assert [status for _, status in results] == ["ok", "ok", "more than 2 audio files; the rest were skipped"]


def test_glob_patterns(tmp_path: Path, robin_bytes: bytes) -> None:
    for name in ["x1.ogg", "x2.ogg", "y.ogg", "deep/er/x3.ogg", "x4.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(robin_bytes)
    assert [n for n, _ in expand([f"{tmp_path}/x?.*"])] == [str(tmp_path / "x1.ogg"), str(tmp_path / "x2.ogg")]
    recursive = expand([f"{tmp_path}/**/x*"])
    assert [n for n, _ in recursive] == [str(tmp_path / n) for n in ["deep/er/x3.ogg", "x1.ogg", "x2.ogg"]]
    assert expand([f"{tmp_path}/[z]*.ogg"]) == [(f"{tmp_path}/[z]*.ogg", "no audio files match this pattern")]


def within(seconds: float, call):
    """``call()``'s result, failing the test if it takes longer than ``seconds`` (it runs in a daemon thread, so that
    a call blocked forever cannot hang the test run)."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((call(), None))
        except Exception as error:
            outcome.append((None, error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    result, error = outcome[0]
    if error is not None:
        raise error
    return result


def test_fifos_and_devices_are_refused_without_blocking(tmp_path: Path, robin_bytes: bytes) -> None:
    """Opening a FIFO waits for a writer and a device may never end: only regular files are ever opened, whether
    given by name, found in a folder, reached through a symlink, or passed as an AudioSource."""
    os.mkfifo(tmp_path / "pipe.ogg")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "folder" / "a-pipe.wav")
    (tmp_path / "folder" / "robin.ogg").write_bytes(robin_bytes)
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    inputs = [tmp_path / "pipe.ogg", "/dev/zero", tmp_path / "zero.wav", tmp_path / "folder"]
    assert within(10, lambda: expand(inputs)) == [
        (str(tmp_path / "pipe.ogg"), "not a regular file (a FIFO)"),
        ("/dev/zero", "not a regular file (a character device)"),
        (str(tmp_path / "zero.wav"), "not a regular file (a character device)"),
        (str(tmp_path / "folder" / "a-pipe.wav"), "not a regular file (a FIFO)"),
        (str(tmp_path / "folder" / "robin.ogg"), "ok"),
    ]
    with pytest.raises(InputError, match=r"pipe.ogg: not a regular file \(a FIFO\)$"):
        within(10, lambda: load_audio(AudioSource("pipe.ogg", path=tmp_path / "pipe.ogg")))


# Archives ----------------------------------------------------------------------------------------------------------


def test_zip_and_tar_archives(tmp_path: Path, robin_bytes: bytes) -> None:
    with zipfile.ZipFile(tmp_path / "clips.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("robin.ogg", robin_bytes)
        archive.writestr("more/robin2.ogg", robin_bytes)
        archive.writestr("README.txt", "skipped: not audio")
        archive.writestr("__MACOSX/more/._robin2.ogg", b"resource fork, skipped")
    for mode, name in [("w", "clips.tar"), ("w:gz", "clips.tar.gz"), ("w:bz2", "clips.tbz2"), ("w:xz", "clips.tar.xz")]:
        with tarfile.open(tmp_path / name, mode) as archive:
            add_tar_member(archive, "dir", type=tarfile.DIRTYPE)
            add_tar_member(archive, "dir/robin.ogg", robin_bytes)
    archives = ["clips.zip", "clips.tar", "clips.tar.gz", "clips.tbz2", "clips.tar.xz"]
    results = expand([str(tmp_path / name) for name in archives])
    assert results == [
        (f"{tmp_path}/clips.zip!robin.ogg", "ok"),
        (f"{tmp_path}/clips.zip!more/robin2.ogg", "ok"),
        *[(f"{tmp_path}/{name}!dir/robin.ogg", "ok") for name in archives[1:]],
    ]


def test_single_compressed_files(tmp_path: Path, robin_bytes: bytes) -> None:
    for suffix, compress in [("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)]:
        (tmp_path / f"robin.ogg.{suffix}").write_bytes(compress(robin_bytes))
    results = expand([str(tmp_path / f"robin.ogg.{suffix}") for suffix in ["gz", "bz2", "xz"]])
    assert results == [(f"{tmp_path}/robin.ogg.{suffix}!robin.ogg", "ok") for suffix in ["gz", "bz2", "xz"]]


def test_extracted_files_are_deleted_on_exit(tmp_path: Path, robin_bytes: bytes) -> None:
    (tmp_path / "robin.ogg.gz").write_bytes(gzip.compress(robin_bytes))
    with open_sources([tmp_path / "robin.ogg.gz"]) as sources:
        [source] = list(sources)
        assert source.path.is_file() and tmp_path not in source.path.parents
    assert not source.path.exists() and not source.path.parent.exists()


def test_hostile_zip_members_are_refused_and_good_ones_kept(tmp_path: Path, robin_bytes: bytes) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("../evil.ogg", robin_bytes)
        archive.writestr("/abs/evil.ogg", robin_bytes)
        archive.writestr("C:/windows.ogg", robin_bytes)
        link = zipfile.ZipInfo("link.ogg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("good.ogg", robin_bytes)
    zip_name = str(tmp_path / "evil.zip")
    assert expand([zip_name]) == [
        (f"{zip_name}!../evil.ogg", "unsafe member path (contains '..')"),
        (f"{zip_name}!/abs/evil.ogg", "unsafe member path (absolute)"),
        (f"{zip_name}!C:/windows.ogg", "unsafe member path (absolute)"),
        (f"{zip_name}!link.ogg", "is a symbolic link or special file, not a regular file"),
        (f"{zip_name}!good.ogg", "ok"),
    ]


def test_hostile_tar_members_are_refused_and_good_ones_kept(tmp_path: Path, robin_bytes: bytes) -> None:
    with tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as archive:
        add_tar_member(archive, "../../evil.ogg", robin_bytes)
        add_tar_member(archive, "/etc/evil.ogg", robin_bytes)
        add_tar_member(archive, "sym.ogg", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add_tar_member(archive, "hard.ogg", type=tarfile.LNKTYPE, linkname="good.ogg")
        add_tar_member(archive, "dev.ogg", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add_tar_member(archive, "fifo.ogg", type=tarfile.FIFOTYPE)
        add_tar_member(archive, "good.ogg", robin_bytes)
    tar_name = str(tmp_path / "evil.tar.gz")
    assert expand([tar_name]) == [
        (f"{tar_name}!../../evil.ogg", "unsafe member path (contains '..')"),
        (f"{tar_name}!/etc/evil.ogg", "unsafe member path (absolute)"),
        (f"{tar_name}!sym.ogg", "is a symbolic link, not a regular file"),
        (f"{tar_name}!hard.ogg", "is a hard link, not a regular file"),
        (f"{tar_name}!dev.ogg", "is a device or special file, not a regular file"),
        (f"{tar_name}!fifo.ogg", "is a device or special file, not a regular file"),
        (f"{tar_name}!good.ogg", "ok"),
    ]
    assert not (tmp_path.parent / "evil.ogg").exists() and not Path("/etc/evil.ogg").exists()


def test_too_many_members(tmp_path: Path, robin_bytes: bytes) -> None:
    limits = InputLimits(max_archive_members=3)
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as archive:
        for index in range(5):
            archive.writestr(f"{index}.ogg", robin_bytes)
    data = bytearray((tmp_path / "many.zip").read_bytes())  # make the end record claim 1 member: a lie
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 1, 1)
    (tmp_path / "lying.zip").write_bytes(bytes(data))
    with zipfile.ZipFile(tmp_path / "long-names.zip", "w") as archive:  # 2 members, but a 4 kB directory
        for index in range(2):
            archive.writestr(f"{index}{'x' * 2000}.ogg", robin_bytes)
    with tarfile.open(tmp_path / "many.tar", "w") as archive:
        for index in range(5):
            add_tar_member(archive, f"{index}.ogg", robin_bytes)
    inputs = [tmp_path / name for name in ["many.zip", "lying.zip", "long-names.zip", "many.tar"]]
    assert expand(inputs, limits) == [
        (str(tmp_path / "many.zip"), "archive has 5 members, more than the limit of 3"),  # refused before extracting
        (str(tmp_path / "lying.zip"), "archive has 5 members, more than the limit of 3"),
        (str(tmp_path / "long-names.zip"), f"archive directory of {2 * (46 + 2005)} bytes is too large for 3 members"),
        *[(f"{tmp_path}/many.tar!{index}.ogg", "ok") for index in range(3)],  # a tar is read as a stream
        (str(tmp_path / "many.tar"), "archive has more than 3 members; the rest were skipped"),
    ]


def test_member_size_bound(tmp_path: Path, robin_bytes: bytes) -> None:
    """Refused from the zip header, and while writing for a .gz, which has no trustworthy size."""
    with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.wav", bytes(200_000))
        archive.writestr("robin.ogg", robin_bytes)
    (tmp_path / "big.wav.gz").write_bytes(gzip.compress(bytes(200_000)))
    assert expand([tmp_path / "big.zip", tmp_path / "big.wav.gz"], InputLimits(max_member_bytes=100_000)) == [
        (f"{tmp_path}/big.zip!big.wav", "member is 200000 bytes, more than the limit of 100000"),
        (f"{tmp_path}/big.zip!robin.ogg", "ok"),
        (f"{tmp_path}/big.wav.gz!big.wav", "member is larger than the limit of 100000 bytes"),
    ]


def test_archive_size_bound(tmp_path: Path) -> None:
    """Three members of 100 kB against a bound of 250 kB: two come out, the third stops the archive."""
    limits = InputLimits(max_archive_bytes=250_000)
    member = np.random.default_rng(0).bytes(100_000)
    with tarfile.open(tmp_path / "total.tar", "w") as archive:
        for index in range(3):
            add_tar_member(archive, f"{index}.wav", member)
    with zipfile.ZipFile(tmp_path / "total.zip", "w") as archive:
        for index in range(3):
            archive.writestr(f"{index}.wav", member)
    stopped = "archive expands to more than 250000 bytes; stopped here"
    assert expand([tmp_path / "total.tar", tmp_path / "total.zip"], limits, decode=False) == [
        (f"{tmp_path}/total.tar!0.wav", "ok"),
        (f"{tmp_path}/total.tar!1.wav", "ok"),
        (f"{tmp_path}/total.tar", stopped),  # tar headers count too, so the error names the archive
        (f"{tmp_path}/total.zip!0.wav", "ok"),
        (f"{tmp_path}/total.zip!1.wav", "ok"),
        (f"{tmp_path}/total.zip!2.wav", stopped),
    ]


def test_compression_bomb(tmp_path: Path, robin_bytes: bytes) -> None:
    """Zeros compress about 1000:1; with the ratio check starting at 100 kB, 5 MB of them are stopped as a bomb,
    also in a tar member that is not audio: it is still decompressed to be stepped over."""
    limits = InputLimits(max_compression_ratio=50, ratio_check_bytes=100_000)
    for name in ["zeros.wav", "zeros.bin"]:
        with tarfile.open(tmp_path / f"{name}.tar.gz", "w:gz") as archive:
            add_tar_member(archive, "robin.ogg", robin_bytes)
            add_tar_member(archive, name, bytes(5_000_000))
            add_tar_member(archive, "robin2.ogg", robin_bytes)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("robin.ogg", robin_bytes)
        archive.writestr("zeros.wav", bytes(5_000_000))
    bomb = "archive expands to more than 50 times its size (a zip bomb?); stopped here"
    assert expand([tmp_path / "zeros.wav.tar.gz", tmp_path / "zeros.bin.tar.gz", tmp_path / "bomb.zip"], limits) == [
        (f"{tmp_path}/zeros.wav.tar.gz!robin.ogg", "ok"),
        (f"{tmp_path}/zeros.wav.tar.gz", bomb),
        (f"{tmp_path}/zeros.bin.tar.gz!robin.ogg", "ok"),
        (f"{tmp_path}/zeros.bin.tar.gz", bomb),
        (f"{tmp_path}/bomb.zip!robin.ogg", "ok"),
        (f"{tmp_path}/bomb.zip!zeros.wav", bomb),
    ]


def tar_header(name: str, kind: bytes, size: int) -> bytes:
    """A 512-byte ustar header block of any type, for headers tarfile would not write as we want them."""
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n"
    length = len(body) + len(str(len(body)))
    length += len(str(length)) - len(str(len(body)))  # the length counts its own digits
    return f"{length}{body}".encode()


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


def test_huge_tar_headers_are_refused_before_they_are_read(tmp_path: Path, robin_bytes: bytes) -> None:
    """tarfile reads a PAX record or GNU long name into memory whole: a 50 MB one (50 kB compressed) is refused
    from its declared size, quickly and without memory growth; so are long chains of headers and sparse maps
    (a sparse file is not audio), while ordinary long names still work."""
    robin = tar_header("robin.ogg", tarfile.REGTYPE, len(robin_bytes)) + padded(robin_bytes)
    with gzip.open(tmp_path / "pax.tar.gz", "wb", compresslevel=1) as out:
        record = pax_record("comment", "x" * 50 * 2**20)
        out.write(tar_header("././@PaxHeader", tarfile.XHDTYPE, len(record)) + padded(record) + robin + bytes(1024))
    pax_bytes = tarfile.BLOCKSIZE + len(padded(record))
    del record
    long_name = "a" * 2_000_000 + ".ogg"
    (tmp_path / "gnu.tar").write_bytes(
        tar_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, len(long_name) + 1)
        + padded(long_name.encode() + b"\0")
        + robin
        + bytes(1024)
    )
    chain = b"".join(
        tar_header("h", tarfile.XHDTYPE, len(pax_record("comment", str(i)))) + padded(pax_record("comment", str(i)))
        for i in range(20)
    )
    (tmp_path / "chain.tar").write_bytes(chain + robin + bytes(1024))
    sparse = tarfile.TarInfo("sparse.ogg")
    sparse.type = tarfile.GNUTYPE_SPARSE
    (tmp_path / "sparse.tar").write_bytes(sparse.tobuf(format=tarfile.GNU_FORMAT) + robin + bytes(1024))
    with tarfile.open(tmp_path / "long.tar", "w", format=tarfile.PAX_FORMAT) as archive:
        add_tar_member(archive, "é" * 300 + ".ogg", robin_bytes)
    with tarfile.open(tmp_path / "long-gnu.tar", "w", format=tarfile.GNU_FORMAT) as archive:
        add_tar_member(archive, "b" * 300 + ".ogg", robin_bytes)

    tracemalloc.start()
    started = time.monotonic()
    assert expand([tmp_path / "pax.tar.gz"]) == [
        (
            str(tmp_path / "pax.tar.gz"),
            f"a member's extended tar headers (PAX or GNU long name) of {pax_bytes} bytes are "
            "larger than the limit of 1048576 bytes",
        )
    ]
    seconds, (_, peak) = time.monotonic() - started, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 5 and peak < 8 * 2**20, (seconds, peak)
    results = expand([tmp_path / name for name in ["gnu.tar", "chain.tar", "sparse.tar", "long.tar", "long-gnu.tar"]])
    assert results == [
        (
            str(tmp_path / "gnu.tar"),
            "a member's extended tar headers (PAX or GNU long name) of 2000896 bytes are "
            "larger than the limit of 1048576 bytes",
        ),
        (str(tmp_path / "chain.tar"), "a member has more than 8 extended tar headers"),
        (str(tmp_path / "sparse.tar"), "has a GNU sparse member, which is not supported"),
        (f"{tmp_path}/long.tar!{'é' * 300}.ogg", "ok"),
        (f"{tmp_path}/long-gnu.tar!{'b' * 300}.ogg", "ok"),
    ]


def test_tar_headers_are_bounded_for_the_whole_archive(
    tmp_path: Path, robin_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tarfile keeps every member's PAX headers: their total is bounded too (lowered here to 4 kB)."""
    monkeypatch.setattr(tarheaders, "MAX_TAR_HEADER_BYTES", 4096)
    with tarfile.open(tmp_path / "many-pax.tar", "w", format=tarfile.PAX_FORMAT) as archive:
        for index in range(4):
            add_tar_member(archive, f"{index}{'é' * 300}.ogg", robin_bytes)  # a 1 kB PAX header each
    assert expand([tmp_path / "many-pax.tar"]) == [
        *[(f"{tmp_path}/many-pax.tar!{index}{'é' * 300}.ogg", "ok") for index in range(2)],
        (
            str(tmp_path / "many-pax.tar"),
            "extended tar headers (PAX or GNU long names) are larger than the limit of 4096 bytes in all",
        ),
    ]


def test_corrupt_archives(tmp_path: Path, robin_bytes: bytes) -> None:
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04" + np.random.default_rng(0).bytes(1000))
    with tarfile.open(tmp_path / "cut.tar.gz", "w:gz") as archive:
        add_tar_member(archive, "robin.ogg", robin_bytes)
        add_tar_member(archive, "noise.wav", np.random.default_rng(0).bytes(200_000))
    data = (tmp_path / "cut.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) * 3 // 4])
    with zipfile.ZipFile(tmp_path / "crc.zip", "w") as archive:  # stored: damage one byte of bad.ogg's data
        archive.writestr("bad.ogg", robin_bytes)
        archive.writestr("good.ogg", robin_bytes)
    data = bytearray((tmp_path / "crc.zip").read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    results = expand([tmp_path / "junk.zip", tmp_path / "cut.tar.gz", tmp_path / "crc.zip"])
    assert results[0] == (str(tmp_path / "junk.zip"), "corrupt zip archive (File is not a zip file)")
    assert results[1] == (f"{tmp_path}/cut.tar.gz!robin.ogg", "ok")
    assert results[2][0] == str(tmp_path / "cut.tar.gz") and results[2][1].startswith("corrupt tar archive")
    assert results[3] == (f"{tmp_path}/crc.zip!bad.ogg", "corrupt archive member (Bad CRC-32 for file 'bad.ogg')")
    assert results[4:] == [(f"{tmp_path}/crc.zip!good.ogg", "ok")]


# URLs (served by httpx.MockTransport: no network in tests) ---------------------------------------------------------


def serve(routes: dict[str, httpx.Response | Exception]) -> httpx.Client:
    """An httpx client whose transport answers from ``routes`` (URL -> response, or exception to raise)."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = routes.get(str(request.url), httpx.Response(404))
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_url_download(robin_bytes: bytes) -> None:
    client = serve({"https://example.org/robin.ogg": httpx.Response(200, content=robin_bytes)})
    assert expand(["https://example.org/robin.ogg", "https://example.org/gone.ogg"], http_client=client) == [
        ("https://example.org/robin.ogg", "ok"),
        ("https://example.org/gone.ogg", "download failed: HTTP 404 Not Found"),
    ]


def test_url_archive_is_expanded(robin_bytes: bytes) -> None:
    client = serve({"http://example.org/get?id=7": httpx.Response(200, content=gzip.compress(robin_bytes))})
    results = expand(["http://example.org/get?id=7"], http_client=client)
    assert results == [("http://example.org/get?id=7!get?id=7", "ok")]


def test_url_size_bound_from_header_and_while_streaming(robin_bytes: bytes) -> None:
    limit = len(robin_bytes) - 1
    streamed = (robin_bytes[i : i + 1000] for i in range(0, len(robin_bytes), 1000))  # no Content-Length
    client = serve(
        {
            "https://example.org/declared.ogg": httpx.Response(200, content=robin_bytes),
            "https://example.org/streamed.ogg": httpx.Response(200, content=streamed),
        }
    )
    too_big = f"download is larger than the limit of {limit} bytes"
    results = expand(
        ["https://example.org/declared.ogg", "https://example.org/streamed.ogg"],
        InputLimits(max_download_bytes=limit),
        http_client=client,
    )
    assert results == [("https://example.org/declared.ogg", too_big), ("https://example.org/streamed.ogg", too_big)]


def test_only_http_and_https() -> None:
    client = serve({})  # answers 404 to anything; the schemes below must never reach it
    results = expand(["file:///etc/passwd", "ftp://example.org/a.wav", "gopher://x/a.wav"], http_client=client)
    assert [problem for _, problem in results] == [
        "only http and https URLs are supported, not file",
        "only http and https URLs are supported, not ftp",
        "only http and https URLs are supported, not gopher",
    ]


def test_http_url_inputs_are_never_paths(tmp_path: Path, robin_bytes: bytes) -> None:
    """``HttpURL`` is what a service passes for a stranger's URL: it is downloaded or refused, never opened,
    walked or globbed, even when a file of that name exists."""
    (tmp_path / "robin.ogg").write_bytes(robin_bytes)
    for text in [str(tmp_path / "robin.ogg"), str(tmp_path), f"{tmp_path}/*.ogg", "robin.ogg", f"file://{tmp_path}"]:
        with pytest.raises(InputError, match="only http and https URLs are supported"):
            HttpURL(text)
    with pytest.raises(InputError, match="the URL has no host"):
        HttpURL(f"http:{tmp_path}/robin.ogg")
    client = serve({"https://example.org/robin.ogg": httpx.Response(200, content=robin_bytes)})
    assert expand(HttpURL("https://example.org/robin.ogg"), http_client=client) == [
        ("https://example.org/robin.ogg", "ok")
    ]


def test_redirects_are_followed_by_hand_and_guarded(robin_bytes: bytes) -> None:
    client = serve(
        {
            "https://example.org/a": httpx.Response(302, headers={"location": "/b"}),
            "https://example.org/b": httpx.Response(301, headers={"location": "https://cdn.example.net/robin.ogg"}),
            "https://cdn.example.net/robin.ogg": httpx.Response(200, content=robin_bytes),
            "https://example.org/internal": httpx.Response(302, headers={"location": "http://10.0.0.1/secret.wav"}),
            "https://example.org/local": httpx.Response(302, headers={"location": "file:///etc/passwd"}),
            "https://example.org/loop": httpx.Response(302, headers={"location": "/loop"}),
        }
    )
    seen = []

    def guard(url: str) -> None:
        seen.append(url)
        if url.startswith("http://10."):
            raise ValueError("private address")

    inputs = [f"https://example.org/{path}" for path in ["a", "internal", "local", "loop"]]
    results = expand(inputs, url_guard=guard, http_client=client)
    assert results == [
        ("https://example.org/a", "ok"),
        ("https://example.org/internal", "refused to fetch http://10.0.0.1/secret.wav (private address)"),
        ("https://example.org/local", "only http and https URLs are supported, not file"),
        ("https://example.org/loop", "more than 5 redirects"),
    ]
    hops = [inputs[0], "https://example.org/b", "https://cdn.example.net/robin.ogg"]
    assert seen[:5] == [*hops, inputs[1], "http://10.0.0.1/secret.wav"]


def test_url_timeout_and_connection_errors(robin_bytes: bytes) -> None:
    client = serve(
        {
            "https://slow.example.org/a.ogg": httpx.ReadTimeout("timed out"),
            "https://down.example.org/a.ogg": httpx.ConnectError("connection refused"),
        }
    )
    inputs = ["https://slow.example.org/a.ogg", "https://down.example.org/a.ogg"]
    results = expand(inputs, InputLimits(url_timeout=5), http_client=client)
    assert results == [
        ("https://slow.example.org/a.ogg", "download timed out (no answer within 5 s)"),
        ("https://down.example.org/a.ogg", "download failed (connection refused)"),
    ]


def test_a_trickling_download_stops_at_the_deadline(robin_bytes: bytes) -> None:
    """A server that sends 100 bytes every 50 ms (the mock transport stands in for it) would take 45 s for the
    robin clip: the deadline of the whole download is checked on every piece, not once per MiB."""

    def trickle():
        for start in range(0, len(robin_bytes), 100):
            time.sleep(0.05)
            yield robin_bytes[start : start + 100]

    client = serve({"https://trickle.example.org/a.ogg": httpx.Response(200, content=trickle())})
    started = time.monotonic()
    results = expand(["https://trickle.example.org/a.ogg"], InputLimits(max_download_seconds=0.5), http_client=client)
    assert results == [("https://trickle.example.org/a.ogg", "download took longer than 0.5 s")]
    assert time.monotonic() - started < 0.5 + 1.0


# Buffers, arrays, batches ------------------------------------------------------------------------------------------


def test_bytes_file_objects_and_arrays(tmp_path: Path, audio_dir: Path, robin_bytes: bytes) -> None:
    waveform = load_audio(AudioSource("robin", path=audio_dir / ROBIN))
    with open(audio_dir / ROBIN, "rb") as file:
        results = expand([robin_bytes, bytearray(robin_bytes), io.BytesIO(robin_bytes), file, (waveform, 32000)])
    names = ["<bytes>", "<bytes>", "<file>", str(audio_dir / ROBIN), "<array>"]
    assert results == [(name, "ok") for name in names]
    (tmp_path / "a.txt").write_text("text")
    with open(tmp_path / "a.txt") as text:
        results = expand([text, io.BytesIO(robin_bytes), 42], InputLimits(max_download_bytes=100))
    assert results == [
        (str(tmp_path / "a.txt"), "is a text stream; open the file in binary mode ('rb')"),
        ("<file>", "larger than the limit of 100 bytes"),
        ("42", "unsupported input type int"),
    ]


def test_one_bad_input_does_not_stop_the_others(tmp_path: Path, audio_dir: Path) -> None:
    (tmp_path / "empty.wav").touch()
    shutil.copy(audio_dir / ROBIN, tmp_path / "robin.ogg")
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04junk")
    inputs = [tmp_path / "missing.wav", tmp_path / "robin.ogg", tmp_path / "junk.zip", "ftp://x/y.wav"]
    inputs.append(tmp_path / "robin.ogg")
    outcomes = []
    with open_sources(inputs) as sources:
        for item in sources:
            try:
                if isinstance(item, InputError):
                    raise item
                outcomes.append(len(load_audio(item)))
            except InputError as error:
                outcomes.append(str(error).split(": ", 1)[1])
        with pytest.raises(InputError, match="empty.wav: file is empty"):
            load_audio(AudioSource(str(tmp_path / "empty.wav"), path=tmp_path / "empty.wav"))
    assert outcomes == [
        "no such file or directory",
        ROBIN_SAMPLES,
        "corrupt zip archive (File is not a zip file)",
        "only http and https URLs are supported, not ftp",
        ROBIN_SAMPLES,
    ]


def test_audio_source_holds_exactly_one_payload() -> None:
    with pytest.raises(ValueError):
        AudioSource("x")
    with pytest.raises(ValueError):
        AudioSource("x", path=Path("a"), data=b"b")
    with pytest.raises(ValueError):
        AudioSource("x", array=np.zeros(3))
