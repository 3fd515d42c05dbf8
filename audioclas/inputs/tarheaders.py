"""Reading tar archives from strangers: what ``tarfile`` would read into memory whole is bounded before it is read.

``tarfile`` reads a PAX record or a GNU long name into memory whole, follows chains of them recursively, keeps
every member's PAX headers, and reads GNU sparse maps block by block into lists: a 7.4 MB ``.tar.gz`` of one
huge PAX record once took a server from 370 MB to 1.4 GB. ``BoundedTarFile`` checks each extended header's
declared size before ``tarfile`` reads it and raises ``TarHeaderError`` past the bounds below (used by
``archives``).

    with BoundedTarFile.open(fileobj=stream, mode="r|") as archive:
        for info in archive: ...
"""

from __future__ import annotations

import tarfile

MiB = 2**20
MAX_TAR_MEMBER_HEADER_BYTES = MiB  # the extended headers (PAX records, GNU long names) of one tar member, together
MAX_TAR_HEADER_BYTES = 16 * MiB  # those of all members: tarfile keeps every member's PAX headers in memory
MAX_TAR_MEMBER_HEADERS = 8  # extended headers before one member (tarfile reads a chain of them recursively)
EXTENDED_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class TarHeaderError(Exception):
    """Tar headers we refuse to read; ``str()`` says why in one line."""


class TarHeadersTooLarge(TarHeaderError):
    """Extended tar headers larger than the bounds (the archive is refused as too large, not as malformed)."""


class BoundedTarInfo(tarfile.TarInfo):
    """Refuses what ``tarfile`` would read into memory whole, unbounded, before it does: extended headers (PAX
    records, GNU long names) past the ``MAX_TAR_*`` bounds, and GNU sparse maps (a sparse file is not audio)."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        """Called for every header block; ``tarfile`` documents it as the method to override."""
        assert isinstance(archive, BoundedTarFile)
        if self.type in EXTENDED_TYPES:
            archive.count_extended_header(self)
        elif self.type == tarfile.GNUTYPE_SPARSE:
            raise TarHeaderError("has a GNU sparse member, which is not supported")
        member: tarfile.TarInfo = super()._proc_member(archive)  # type: ignore[misc]  # private: not in the stubs
        return member

    def _proc_gnusparse_10(self, next: tarfile.TarInfo, pax_headers: dict[str, str], archive: tarfile.TarFile) -> None:
        raise TarHeaderError("has a GNU sparse member, which is not supported")


class BoundedTarFile(tarfile.TarFile):
    tarinfo = BoundedTarInfo
    chain_start, chain_headers, extended_bytes = -1, 0, 0  # per archive, set on the instance

    def count_extended_header(self, header: tarfile.TarInfo) -> None:
        """Refuse ``header`` (declared, not yet read) if it takes its member or the archive past the bounds. A
        member's headers start at ``self.offset``, which tarfile moves on only once the member is complete."""
        if self.chain_start != self.offset:
            self.chain_start, self.chain_headers = self.offset, 0
        self.chain_headers += 1
        size = tarfile.BLOCKSIZE + -(-header.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        self.extended_bytes += size
        member_bytes = header.offset - self.offset + size
        if self.chain_headers > MAX_TAR_MEMBER_HEADERS:
            raise TarHeaderError(f"a member has more than {MAX_TAR_MEMBER_HEADERS} extended tar headers")
        if member_bytes > MAX_TAR_MEMBER_HEADER_BYTES:
            raise TarHeadersTooLarge(
                f"a member's extended tar headers (PAX or GNU long name) of {member_bytes} bytes are larger than the "
                f"limit of {MAX_TAR_MEMBER_HEADER_BYTES} bytes"
            )
        if self.extended_bytes > MAX_TAR_HEADER_BYTES:
            raise TarHeadersTooLarge(
                f"extended tar headers (PAX or GNU long names) are larger than the limit of {MAX_TAR_HEADER_BYTES} "
                "bytes in all"
            )
