"""http(s) URLs: downloaded into the temporary folder, within a size bound and a deadline for the whole download,
following redirects by hand so that the caller's guard sees every hop before we connect to it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from audioclas.errors import InputError, InputTooLarge
from audioclas.inputs.types import Workspace

if TYPE_CHECKING:
    import httpx

URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # a str that matches is a URL; any other str is a path


class Downloader:
    """Downloads for one expansion: ``url_guard(url)`` may refuse a URL or redirect target by raising;
    ``http_client`` replaces the default ``httpx.Client``, which is made on the first download and closed by
    ``close``."""

    def __init__(
        self, workspace: Workspace, url_guard: Callable[[str], None] | None, http_client: httpx.Client | None
    ) -> None:
        self.workspace, self.limits, self.url_guard = workspace, workspace.limits, url_guard
        self.client, self.owns_client = http_client, http_client is None

    def close(self) -> None:
        if self.owns_client and self.client is not None:
            self.client.close()

    def download(self, url: str) -> Path:
        """GET ``url`` into the temporary folder, following redirects by hand so that the guard sees every hop."""
        import httpx  # the first download pays for importing it (0.15 s), not every process

        limits, current = self.limits, url
        deadline = time.monotonic() + limits.max_download_seconds
        if self.client is None:
            self.client = httpx.Client()
        for _ in range(limits.max_redirects + 1):
            try:
                scheme = httpx.URL(current).scheme
                if scheme not in ("http", "https"):
                    raise InputError(url, f"only http and https URLs are supported, not {current.split(':')[0]}")
                self.check_url(url, current)
                self.check_deadline(url, deadline)
                timeout = min(limits.url_timeout, deadline - time.monotonic())  # no wait may end past the deadline
                with self.client.stream("GET", current, follow_redirects=False, timeout=timeout) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    if not response.is_success:
                        raise InputError(url, f"download failed: HTTP {response.status_code} {response.reason_phrase}")
                    return self.save_response(response, url, deadline)
            except httpx.TimeoutException:
                self.check_deadline(url, deadline)
                raise InputError(url, f"download timed out (no answer within {limits.url_timeout:g} s)") from None
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as error:
                raise InputError(url, f"download failed ({error})") from None
        raise InputError(url, f"more than {limits.max_redirects} redirects")

    def check_url(self, url: str, current: str) -> None:
        """Let the caller's guard refuse ``current`` (``url`` itself or a redirect target) before we connect."""
        if self.url_guard is None:
            return
        try:
            self.url_guard(current)
        except InputError:
            raise
        except Exception as error:
            raise InputError(url, f"refused to fetch {current} ({error})") from None

    def save_response(self, response: httpx.Response, url: str, deadline: float) -> Path:
        limit = self.limits.max_download_bytes
        too_big = f"download is larger than the limit of {limit} bytes"
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise InputTooLarge(url, too_big)
        target, received = self.workspace.new_path(), 0
        with open(target, "wb") as out:
            for block in response.iter_bytes():  # each piece as it arrives, however small
                received += len(block)
                if received > limit:
                    raise InputTooLarge(url, too_big)
                self.check_deadline(url, deadline)
                out.write(block)
        return target

    def check_deadline(self, url: str, deadline: float) -> None:
        if time.monotonic() >= deadline:
            raise InputError(url, f"download took longer than {self.limits.max_download_seconds:g} s")
