"""Turn what the user gave (paths, folders, globs, archives, URLs, buffers, arrays) into audio sources, safely.

Everything that arrives from outside is treated as hostile: archives cannot write outside a private temporary
folder, every size and count is bounded (``InputLimits``), and every problem becomes an ``InputError`` that is
yielded in place of the source, so that one bad input never stops the others.

    with open_sources(["a.wav", "clips/", "more.zip", "https://example.org/b.mp3"]) as sources:
        for source in sources:
            if isinstance(source, InputError):
                print(source)  # one line: "<input>: <problem>"
            else:
                waveform = load_audio(source)

One module per kind of input: ``local`` (paths, folders, globs), ``archives`` (zip, tar, compressed files; the
tar header bounds in ``tarheaders``), ``urls`` (downloads), ``memory`` (bytes, file objects, arrays); ``rules``
holds the name and file rules shared with training datasets, ``types`` what is passed in and out. A new kind of
input gets its module and one branch in ``_expand``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from typing_extensions import TypeIs

from audioclas.errors import InputError
from audioclas.inputs import memory
from audioclas.inputs.archives import expand_file
from audioclas.inputs.local import expand_path
from audioclas.inputs.types import AudioSource, HttpURL, Input, InputLimits, OpenedSources, Workspace
from audioclas.inputs.urls import URL_PATTERN, Downloader

if TYPE_CHECKING:
    import httpx


@contextmanager
def open_sources(
    inputs: Input | Iterable[Input],
    limits: InputLimits = InputLimits(),
    *,
    url_guard: Callable[[str], None] | None = None,
    http_client: httpx.Client | None = None,
) -> Iterator[Iterator[AudioSource | InputError]]:
    """Expand ``inputs`` lazily into sources, or an ``InputError`` per input (or archive member) that cannot be used.

    A file given explicitly is always tried, whatever its extension; folders (recursively, sorted, files of a folder
    before its subfolders) and glob patterns (``**`` recursive) give only files with an audio extension, skipping
    hidden files and folders (``.*``, ``__MACOSX``). Zip and tar archives (also gz, bz2, xz compressed) give their
    audio members, named ``archive!member``; a single gz/bz2/xz-compressed file gives the file inside. Archives are
    recognised by their first bytes, not their names; nested archives are not opened, and bytes and file objects
    are always taken as one encoded file.
    URLs must be http(s) (a ``str`` that is not a URL is a path; pass ``HttpURL`` for input that must only ever be
    downloaded); ``url_guard(url)`` is called before connecting to the URL and to every redirect target,
    and refuses one by raising (for instance to block private addresses). ``http_client`` replaces the default
    ``httpx.Client``. Extracted and downloaded files live in a temporary folder that is deleted on exit, so decode
    the sources inside the ``with`` block.
    """
    if _is_single_input(inputs):
        inputs = [inputs]
    with tempfile.TemporaryDirectory(prefix="audioclas-") as temp_dir:
        workspace = Workspace(Path(temp_dir), limits)
        downloader = Downloader(workspace, url_guard, http_client)
        try:
            yield _expand_all(inputs, workspace, downloader)
        finally:
            downloader.close()


def _is_single_input(value: Input | Iterable[Input]) -> TypeIs[Input]:
    return (
        isinstance(value, (str, bytes, bytearray, memoryview, os.PathLike, AudioSource, HttpURL))
        or memory.is_file_object(value)
        or memory.is_array_input(value)
    )


def _expand_all(
    inputs: Iterable[Input], workspace: Workspace, downloader: Downloader
) -> Iterator[AudioSource | InputError]:
    for item in inputs:
        try:
            yield from _expand(item, workspace, downloader)
        except InputError as error:
            yield error


def _expand(item: Input, workspace: Workspace, downloader: Downloader) -> Iterator[AudioSource | InputError]:
    if isinstance(item, AudioSource):
        yield item
    elif isinstance(item, (bytes, bytearray, memoryview)):
        yield memory.from_bytes(item)
    elif memory.is_array_input(item):
        yield memory.from_array(item)
    elif memory.is_file_object(item):
        yield memory.read_file_object(item, workspace.limits.max_download_bytes)
    elif isinstance(item, HttpURL):
        yield from expand_file(downloader.download(item.url), item.url, workspace)
    elif isinstance(item, str) and URL_PATTERN.match(item):
        yield from expand_file(downloader.download(item), item, workspace)
    elif isinstance(item, (str, os.PathLike)):
        yield from expand_path(os.fspath(item), workspace)
    else:
        raise InputError(repr(item)[:60], f"unsupported input type {type(item).__name__}")


__all__ = ["AudioSource", "HttpURL", "InputLimits", "OpenedSources", "open_sources"]
