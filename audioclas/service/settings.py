"""What an operator can set for ``audioclas serve``: bounds on what a request may cost, and who may do what.

The defaults suit a lab server reached by its members: uploads up to 100 MB, ten minutes of audio per input,
archives of up to 100 audio members, URLs to public addresses only, training and deleting open unless a
token is set (``--token`` or ``$AUDIOCLAS_TOKEN``). Requests must name this server in their ``Host`` header
(loopback names, the ``--host`` name and ``--allowed-hosts``; any IP address), which stops DNS-rebinding pages.
A server that listens beyond loopback trains only on datasets below ``--data-root`` folders, unless its
operator opts in to any path with ``--allow-any-dataset``.

The environment gives the same two settings to every front end (``audioclas serve``, whose flags win, and the
DEEPaaS adapter): ``$AUDIOCLAS_DATA_ROOT`` (absolute folders separated by ``os.pathsep``) and
``$AUDIOCLAS_ALLOW_ANY_DATASET`` (1 or 0); ``ServiceSettings.from_environment`` is the one place that reads them.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioclas.errors import OptionError
from audioclas.inputs.types import GiB, InputLimits, MiB

TOKEN_VARIABLE = "AUDIOCLAS_TOKEN"
DATA_ROOT_VARIABLE = "AUDIOCLAS_DATA_ROOT"
ANY_DATASET_VARIABLE = "AUDIOCLAS_ALLOW_ANY_DATASET"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_DATASET_FLAG = "--allow-any-dataset"


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server to this machine."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = None  # bearer token required by the train, cancel and delete routes; None: open
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API from a browser ("*" for any)
    allow_private_urls: bool = False  # let URL inputs reach loopback, private, link-local and reserved addresses
    max_upload_bytes: int = 100 * MiB  # one predict request's body (all its files together), or one dataset archive
    max_files: int = 20  # files in one predict request
    max_audio_seconds: float = 600.0  # decoded audio per input (a file, an archive member or a URL)
    max_archive_members: int = 100  # entries in one uploaded or downloaded archive
    max_archive_bytes: int = 1024 * MiB  # everything extracted from one archive
    max_download_bytes: int = 100 * MiB  # one URL download
    max_datasets: int = 20  # uploaded datasets kept at once
    max_datasets_bytes: int = 10 * GiB  # the files of all uploaded datasets together (see service/datasets.py)
    url_timeout: float = 15.0  # seconds to connect, and between two pieces of a download
    max_download_seconds: float = 120.0  # one whole download
    inference_slots: int = 1  # forward passes of the network at once (see predictor.py)
    max_jobs: int = 1  # training jobs running at once; the others wait in the queue
    data_roots: tuple[Path, ...] = ()  # training datasets must lie below one of these folders; empty: anywhere
    allow_any_dataset: bool = False  # without data_roots, train on any server path even when listening beyond loopback
    allowed_hosts: tuple[str, ...] = ()  # host names accepted in the Host header besides loopback and host ("*": any)
    body_read_timeout: float = 30.0  # seconds a request body may pause between two pieces
    max_body_seconds: float = 600.0  # one request body, from its first to its last byte
    cancel_grace_seconds: float = 10.0  # a cancelled job's process gets this long to stop before it is killed
    home: Path | None = None  # where the job database lives (default: audioclas.settings.home_dir())
    weights: Path | None = None  # the mn04 checkpoint (default: resolved as everywhere else)

    def host_names(self) -> frozenset[str] | None:
        """The names a request's Host header may carry (IP addresses are always accepted); None: any."""
        if "*" in self.allowed_hosts:
            return None
        names = {*LOOPBACK_NAMES, *(name.strip("[]").lower().rstrip(".") for name in self.allowed_hosts)}
        return frozenset(names | {self.host.strip("[]").lower().rstrip(".")})

    def training_refusal(self) -> str | None:
        """Why this server refuses to train (beyond loopback with no data root and no opt-in), or None."""
        if self.data_roots or self.allow_any_dataset or is_loopback(self.host):
            return None
        return (
            f"training is off: this server listens on {self.host} without --data-root, so a request could "
            f"read any file on it; start it with --data-root DIR or ${DATA_ROOT_VARIABLE} (or {ANY_DATASET_FLAG})"
        )

    def input_limits(self) -> InputLimits:
        """Bounds on expanding one predict request's inputs (archives, downloads)."""
        return InputLimits(
            max_folder_files=self.max_archive_members,
            max_archive_members=self.max_archive_members,
            max_member_bytes=self.max_archive_bytes,
            max_archive_bytes=self.max_archive_bytes,
            max_download_bytes=self.max_download_bytes,
            url_timeout=self.url_timeout,
            max_download_seconds=self.max_download_seconds,
        )

    @classmethod
    def from_environment(cls, **values: Any) -> ServiceSettings:
        """Settings with the token, the data roots and the any-dataset opt-in taken from the environment when the
        caller gives none (OptionError, naming the variable, for a value that cannot be used)."""
        if not values.get("token"):
            values["token"] = os.environ.get(TOKEN_VARIABLE) or None
        if not values.get("data_roots"):
            values["data_roots"] = environment_data_roots()
        if not values.get("allow_any_dataset"):
            values["allow_any_dataset"] = _environment_flag(ANY_DATASET_VARIABLE)
        return cls(**values)


def environment_data_roots() -> tuple[Path, ...]:
    """The folders of ``$AUDIOCLAS_DATA_ROOT``, resolved; each must be an absolute path to an existing folder
    (a relative one would depend on the working directory of whichever process reads it)."""
    roots = []
    for entry in os.environ.get(DATA_ROOT_VARIABLE, "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry)
        if not path.is_absolute():
            raise OptionError(f"${DATA_ROOT_VARIABLE}: {entry!r} is not an absolute path")
        if not path.is_dir():
            raise OptionError(f"${DATA_ROOT_VARIABLE}: {entry}: no such folder")
        roots.append(path.resolve())
    return tuple(roots)


def _environment_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise OptionError(f"${name} must be 1 or 0, not {value!r}")
