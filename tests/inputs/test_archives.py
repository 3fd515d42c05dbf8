"""Archives as inputs (``audioclas.inputs.archives``, ``tarheaders``): zip, tar and single compressed files,
hostile members, size and header bounds (compression bombs, huge tar headers), corrupt archives.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import struct
import tarfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from expand import expand

from audioclas.inputs import InputLimits, open_sources, tarheaders

pytestmark = pytest.mark.unit


def add_tar_member(archive: tarfile.TarFile, name: str, data: bytes = b"", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


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
