"""The package as users get it: ``python -m build`` makes a wheel and an sdist from this checkout, their contents and
metadata are what pyproject.toml promises, and the wheel, installed without extras into a fresh venv, tags a real clip
with ``audioclas predict`` and no PyTorch.

These tests need the package index (PyPI): the build installs setuptools into an isolated environment, and the fresh
venv installs the wheel's dependencies (pip's cache keeps reruns fast). Without the index they skip and say why;
with it, they fail on any error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
LICENCE_FILES = ("LICENSE", "THIRD-PARTY-NOTICES.md", "audioclas/data/ONTOLOGY-NOTICE.md")
TIMEOUT = 900  # seconds for the build and for the install: a cold pip cache downloads about 150 MB

pytestmark = pytest.mark.network


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


@pytest.fixture(scope="module")
def index() -> str:
    """The package index pip uses, or a skip that names it and the error when it cannot be reached."""
    url = _index_url()
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/pip/", method="HEAD"), timeout=15).close()
    except OSError as error:
        pytest.skip(f"needs the package index {url} (to build and install the wheel), which cannot be reached: {error}")
    return url


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without this checkout on the path, so the installed package is the one that runs."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env | extra


def _run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dists(index: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist, built as a user would: ``python -m build`` (the wheel is built from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, REPO, env=_clean_env())
    (wheel,) = out.glob("audioclas-*.whl")
    (sdist,) = out.glob("audioclas-*.tar.gz")
    return wheel, sdist


def _package_files() -> set[str]:
    """Every file of the package in this checkout (code and data), as paths relative to the checkout."""
    files = subprocess.run(["git", "ls-files", "audioclas"], cwd=REPO, capture_output=True, text=True, check=True)
    return set(files.stdout.split())


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(archive.read(name).decode())


def test_wheel_holds_the_package_and_its_licences_and_nothing_else(dists):
    wheel, _ = dists
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert _package_files() <= names, f"missing from the wheel: {sorted(_package_files() - names)}"
    for must in ("audioclas/data/class_labels_indices.csv", "audioclas/service/static/results.js"):
        assert must in names  # the data the package reads at run time, whatever git lists
    assert {f"{dist_info}/licenses/{f}" for f in LICENCE_FILES} <= names
    strays = sorted(n for n in names if not n.startswith(("audioclas/", f"{dist_info}/")))
    assert not strays, f"the wheel holds files outside the package: {strays}"  # tests, benchmarks, .venv, shared data
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pt", ".onnx"))]


def test_wheel_metadata(dists):
    meta = _wheel_metadata(dists[0])
    assert meta["License-Expression"] == "MIT AND CC-BY-4.0 AND CC-BY-SA-4.0"
    assert set(meta.get_all("License-File")) == set(LICENCE_FILES)
    classifiers = set(meta.get_all("Classifier"))
    for must in (
        "Programming Language :: Python :: 3.11",
        "Operating System :: POSIX :: Linux",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ):
        assert must in classifiers
    requires = meta.get_all("Requires-Dist")
    base = [r for r in requires if "extra ==" not in r]
    assert "onnxruntime>=1.18" in base and not [r for r in base if r.startswith("torch")]
    torch = [r for r in requires if r.startswith("torch")]
    assert torch == ['torch==2.13.0; extra == "train"'], torch
    assert len({Requirement(r).name for r in base}) == len(base), "a dependency listed twice"


def test_sdist_holds_the_source_and_its_licences(dists):
    _, sdist = dists
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert _package_files() <= names, f"missing from the sdist: {sorted(_package_files() - names)}"
    assert {*LICENCE_FILES, "pyproject.toml", "README.md", "Makefile", "tests/conftest.py"} <= names
    assert "tests/support/media.py" in names  # the whole suite, not setuptools' default tests/test*.py
    assert {"Dockerfile", ".dockerignore", "docker/deepaas.conf", "scripts/image-test.sh"} <= names  # docker build


@pytest.fixture(scope="module")
def venv(dists, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed, no extras (pip's cache is used, as a user's would be)."""
    root = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", root, env=_clean_env())
    _run(root / "bin" / "python", "-m", "pip", "install", "--quiet", dists[0], env=_clean_env())
    return root


def test_installed_wheel_predicts_without_torch(venv, audio_dir, shared_dir, reference, tmp_path):
    env = _clean_env(AUDIOCLAS_WEIGHTS=str(shared_dir / "weights" / "efficientat"), AUDIOCLAS_CACHE=str(tmp_path))
    where = _run(venv / "bin" / "python", "-c", "import audioclas; print(audioclas.__file__)", env=env, cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's copy, not this checkout
    no_torch = subprocess.run(
        [venv / "bin" / "python", "-c", "import torch"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr, no_torch.stderr

    clip = audio_dir / ROBIN
    result = _run(venv / "bin" / "audioclas", "predict", clip, "-f", "json", "-k", "3", env=env, cwd=tmp_path)
    (tags,) = json.loads(result.stdout)
    assert tags["labels"][0]["index"] == int(reference["robin__probs"].argmax())  # the upstream model's top class
    assert tags["labels"][0]["name"] == "Bird"
    # The checkout's own CLI gives the same tags: the wheel lacks nothing the prediction uses.
    ours = _run(sys.executable, "-m", "audioclas", "predict", clip, "-f", "json", "-k", "3", cwd=REPO)
    (expected,) = json.loads(ours.stdout)
    assert [x["name"] for x in tags["labels"]] == [x["name"] for x in expected["labels"]]
    for got, want in zip(tags["labels"], expected["labels"]):
        assert got["score"] == pytest.approx(want["score"], abs=1e-4)  # onnxruntime's version may differ
