"""Fixtures for the input tests: the real robin clip's bytes from ../shared/audio."""

from __future__ import annotations

from pathlib import Path

import pytest
from expand import ROBIN


@pytest.fixture(scope="module")
def robin_bytes(audio_dir: Path) -> bytes:
    return (audio_dir / ROBIN).read_bytes()
