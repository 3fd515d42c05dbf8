"""What the environment sets for every front end (``audioclas serve`` and the DEEPaaS adapter): the data roots of
``$AUDIOCLAS_DATA_ROOT`` and the opt-in ``$AUDIOCLAS_ALLOW_ANY_DATASET``, read in ``ServiceSettings.from_environment``
only, and overridden by what the caller (serve's flags) gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audioclas.errors import OptionError
from audioclas.service.settings import ServiceSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUDIOCLAS_DATA_ROOT", "AUDIOCLAS_ALLOW_ANY_DATASET", "AUDIOCLAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_data_roots_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings.from_environment().data_roots == ()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (tmp_path / "link").symlink_to(second, target_is_directory=True)
    # os.pathsep between folders; empty entries (a trailing separator) are ignored; links are resolved
    monkeypatch.setenv("AUDIOCLAS_DATA_ROOT", f"{first}{os.pathsep}{os.pathsep}{tmp_path / 'link'}{os.pathsep}")
    assert ServiceSettings.from_environment().data_roots == (first.resolve(), second.resolve())
    monkeypatch.setenv("AUDIOCLAS_DATA_ROOT", " ")
    assert ServiceSettings.from_environment().data_roots == ()


def test_the_caller_s_data_roots_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOCLAS_DATA_ROOT", str(tmp_path))
    given = (tmp_path / "flag",)
    assert ServiceSettings.from_environment(data_roots=given).data_roots == given  # serve's --data-root


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("relative/datasets", "$AUDIOCLAS_DATA_ROOT: 'relative/datasets' is not an absolute path"),
        ("{tmp}/missing", "$AUDIOCLAS_DATA_ROOT: {tmp}/missing: no such folder"),
        ("{tmp}/file.txt", "$AUDIOCLAS_DATA_ROOT: {tmp}/file.txt: no such folder"),
    ],
)
def test_unusable_data_roots_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    monkeypatch.setenv("AUDIOCLAS_DATA_ROOT", f"{tmp_path}{os.pathsep}{value.format(tmp=tmp_path)}")
    with pytest.raises(OptionError) as refused:
        ServiceSettings.from_environment()
    assert str(refused.value) == message.format(tmp=tmp_path)


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("", False)])
def test_the_any_dataset_opt_in(monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool) -> None:
    monkeypatch.setenv("AUDIOCLAS_ALLOW_ANY_DATASET", value)
    settings = ServiceSettings.from_environment(host="0.0.0.0")
    assert settings.allow_any_dataset is allowed
    assert (settings.training_refusal() is None) is allowed  # beyond loopback, no data root: off unless opted in
    assert ServiceSettings.from_environment(host="0.0.0.0", allow_any_dataset=True).allow_any_dataset  # the flag


def test_a_garbled_opt_in_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOCLAS_ALLOW_ANY_DATASET", "maybe")
    with pytest.raises(OptionError, match=r"^\$AUDIOCLAS_ALLOW_ANY_DATASET must be 1 or 0, not 'maybe'$"):
        ServiceSettings.from_environment()
