"""Shared test fixtures: the read-only data beside the checkout, and a private cache and home per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLAS_SHARED", REPO.parent / "shared")).resolve()
WEIGHTS = SHARED / "weights" / "efficientat" / "mn04_as_mAP_432.pt"


@pytest.hookimpl(trylast=True)  # after ``-m`` has deselected what it does not select
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A run that selects tests needing the data beside the checkout stops at once if it is missing; the unit
    tests (``pytest -m unit``) need neither the weights nor the network, and run without it."""
    if not WEIGHTS.is_file() and any(item.get_closest_marker("unit") is None for item in items):
        raise pytest.UsageError(f"test data not found at {SHARED}: set AUDIOCLAS_SHARED to the shared/ folder")


@pytest.fixture(autouse=True, scope="session")
def _private_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the weights at ../shared, keep caches and saved models out of the user's home, and start from no data
    root."""
    os.environ["AUDIOCLAS_WEIGHTS"] = str(WEIGHTS)
    os.environ["AUDIOCLAS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["AUDIOCLAS_HOME"] = str(tmp_path_factory.mktemp("home"))
    for name in ("AUDIOCLAS_DATA_ROOT", "AUDIOCLAS_ALLOW_ANY_DATASET"):  # as an image sets them: each test sets its own
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():  # only a unit run gets here without it (see above)
        pytest.skip(f"needs the test data at {SHARED} (set AUDIOCLAS_SHARED to the shared/ folder)")
    return SHARED


@pytest.fixture(scope="session")
def audio_dir(shared_dir: Path) -> Path:
    return shared_dir / "audio"


@pytest.fixture(scope="session")
def weights_path() -> Path:
    return WEIGHTS


@pytest.fixture(scope="session")
def reference(shared_dir: Path) -> np.lib.npyio.NpzFile:
    return np.load(shared_dir / "reference" / "efficientat_mn04.npz")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A data root holding ``digits/``, a tiny FSDD dataset (two digits), for a module's training requests."""
    from service_server import tiny_dataset

    root = tmp_path_factory.mktemp("datasets")
    tiny_dataset(shared_dir, root / "digits")
    return root
