"""Reading a predict request's body: files streamed to disk with the size bound enforced while reading.

FastAPI's ``UploadFile`` would first spool every upload whole, unbounded, before our code could look at it;
here the multipart stream is parsed as it arrives and the request is refused with 413 as soon as it passes
the bound. Upload names are only ever shown, never used as paths: each file is stored under a counter.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from audioclas.service.errors import RequestError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # a TypedDict that exists only for type checkers

MAX_FIELDS = 50
MAX_FIELD_BYTES = 64 * 1024
MAX_FORM_BYTES = 1024 * 1024  # a body without files (url and options only)
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    name: str  # the file name the client sent, for display
    path: Path  # where it was stored


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    files: list[Upload] = field(default_factory=list)


def safe_file_name(name: str) -> str:
    """A harmless local name that keeps the extension (PyAV and archive handling look at it)."""
    base = SAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._")[-100:]
    return base or "upload"


async def read_form(request: Request, folder: Path, max_bytes: int, max_files: int) -> Form:
    """The fields and files of a multipart or URL-encoded body; files go into ``folder``."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length", "")
    if content_type == b"application/x-www-form-urlencoded":
        body = await _read_limited(request, MAX_FORM_BYTES, "a form without files")
        form = Form()
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError) as error:
            raise RequestError(400, f"cannot read the form ({error})") from None
        for key, value in pairs:
            form.fields[key].append(value)
        return form
    if content_type != b"multipart/form-data":
        shown = content_type.decode("latin-1") or "none"
        raise RequestError(415, f"send the audio as multipart/form-data (files, or a 'url' field), not {shown}")
    if declared.isdigit() and int(declared) > max_bytes + MAX_FORM_BYTES:
        raise RequestError(413, f"the upload is {int(declared)} bytes, more than the limit of {max_bytes} bytes")
    boundary = params.get(b"boundary")
    if not boundary:
        raise RequestError(400, "multipart/form-data without a boundary")
    parser = _FormParser(folder, max_bytes, max_files)
    multipart = MultipartParser(boundary, parser.callbacks(), max_size=max_bytes + MAX_FORM_BYTES)
    try:
        async for chunk in request.stream():
            multipart.write(chunk)
        multipart.finalize()
    except MultipartParseError as error:
        raise RequestError(400, f"malformed multipart body ({error})") from None
    except ClientDisconnect:
        raise RequestError(400, "the client disconnected during the upload") from None
    finally:
        parser.close()
    if not parser.finished:
        raise RequestError(400, "malformed multipart body (it ends early)")
    return parser.form


async def _read_limited(request: Request, limit: int, what: str) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"{what} must be at most {limit} bytes")
    return bytes(body)


class _FormParser:
    """Callbacks for ``MultipartParser``: one part at a time, files written as they arrive."""

    def __init__(self, folder: Path, max_bytes: int, max_files: int) -> None:
        self.folder, self.max_bytes, self.max_files = folder, max_bytes, max_files
        self.form = Form()
        self.file_bytes = 0
        self.finished = False
        self._header_name = self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._field: str | None = None
        self._value = bytearray()
        self._file: IO[bytes] | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self._headers, self._field, self._value = {}, None, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise RequestError(400, "a multipart part has no name")
        self._field = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            if sum(len(values) for values in self.form.fields.values()) >= MAX_FIELDS:
                raise RequestError(400, f"more than {MAX_FIELDS} form fields")
            return
        if len(self.form.files) >= self.max_files:
            raise RequestError(413, f"more than {self.max_files} files in one request")
        shown = filename.decode("utf-8", "replace") or f"upload {len(self.form.files) + 1}"
        slot = self.folder / str(len(self.form.files))
        slot.mkdir()
        path = slot / safe_file_name(shown)
        self._file = open(path, "wb")  # noqa: SIM115 -- written by part_data, closed by part_end or close
        self.form.files.append(Upload(shown, path))

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self.file_bytes += end - start
            if self.file_bytes > self.max_bytes:
                raise RequestError(413, f"the upload is larger than the limit of {self.max_bytes} bytes")
            self._file.write(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise RequestError(413, f"form field {self._field!r} is longer than {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._field is not None:
            self.form.fields[self._field].append(self._value.decode("utf-8", "replace"))

    def end(self) -> None:
        self.finished = True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
