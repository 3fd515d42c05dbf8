"""The DEEPaaS adapter's functions called in this process, for what is quicker to check here than through the real
``deepaas-run`` (tests/test_deepaas_server.py, which covers the routes, training and its refusals): the predict
options, and the install without PyTorch. DEEPaaS's upload object is stood in for by a named tuple of the
temporary file's path and the original name, as ``deepaas.model.v2.wrapper.UploadedFile`` is."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest
from no_torch import run_without_torch

from audioclas import deepaas_adapter

UploadedFile = namedtuple("UploadedFile", ("name", "filename", "content_type", "original_filename"))
OPTIONS = {"model": "audioset", "top_k": 3, "threshold": None, "window": 10.0, "hop": None, "aggregate": "max"}


def test_metadata_and_predict_like_deepaas(audio_dir: Path) -> None:
    assert deepaas_adapter.get_metadata()["name"] == "audioclas"
    deepaas_adapter.warm()
    upload = UploadedFile("data", str(audio_dir / "sorohanro_-_solo-trumpet-06.ogg"), "audio/ogg", "trumpet.ogg")
    answer = deepaas_adapter.predict(data=upload, url=None, timeline=True, **OPTIONS)
    (result,) = answer["results"]
    assert result["input"] == "trumpet.ogg" and result["labels"][0]["name"] == "Trumpet" and len(result["windows"]) == 1
    answer = deepaas_adapter.predict(data=upload, url=None, timeline=False, **{**OPTIONS, "specific": True})
    assert [x["name"] for x in answer["results"][0]["labels"]] == ["Trumpet", "Brass instrument", "Musical instrument"]
    refused = deepaas_adapter.predict(data=None, url="http://127.0.0.1/a.ogg", timeline=False, **OPTIONS)
    assert "loopback" in refused["results"][0]["error"]
    for path in (str(audio_dir), str(audio_dir / "*.ogg"), "file:///etc/passwd"):  # never a path on the server
        (result,) = deepaas_adapter.predict(data=None, url=path, timeline=False, **OPTIONS)["results"]
        assert result == {"input": path, "error": result["error"]} and "only http and https URLs" in result["error"]
    timed = deepaas_adapter.predict(data=upload, url=None, timeline=False, events=True, merge_gap=1.0, **OPTIONS)
    (result,) = timed["results"]
    assert "Trumpet" in {event["label"] for event in result["events"]}
    assert all(event["score"] >= 0.5 for event in result["events"])  # no threshold given: the events' default


@pytest.mark.unit
def test_the_training_policy_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off without a data root, one line for an unusable one, and any absolute path with the operator's opt-in
    (whose dataset errors still name files and lines, never their text)."""
    (tmp_path / "secret.csv").write_text("hunter2-password,hunter2-password\nroot:x:0:0:hunter2\n")
    secret = str(tmp_path / "secret.csv")
    monkeypatch.delenv("AUDIOCLAS_DATA_ROOT", raising=False)
    monkeypatch.delenv("AUDIOCLAS_ALLOW_ANY_DATASET", raising=False)
    with pytest.raises(ValueError, match=r"^training is off: .* \$AUDIOCLAS_DATA_ROOT, which is not set"):
        deepaas_adapter.train(dataset=secret, epochs=1)
    monkeypatch.setenv("AUDIOCLAS_DATA_ROOT", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"^\$AUDIOCLAS_DATA_ROOT: .*/missing: no such folder$"):
        deepaas_adapter.train(dataset=secret, epochs=1)
    monkeypatch.delenv("AUDIOCLAS_DATA_ROOT")
    monkeypatch.setenv("AUDIOCLAS_ALLOW_ANY_DATASET", "1")
    with pytest.raises(ValueError) as caught:
        deepaas_adapter.train(dataset=secret, epochs=1)
    assert type(caught.value) is ValueError  # what DEEPaaS can send back from its worker
    assert "secret.csv:1" in str(caught.value) and "secret.csv:2" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "root:x" not in str(caught.value), str(caught.value)


def test_training_without_torch_names_the_extra(tmp_path: Path) -> None:
    """On an install without ``[train]`` (torch blocked in the subprocess) DEEPaaS's train call fails with the one
    line that names the extra, before the dataset is read (a plain ValueError, as every refusal it sends back)."""
    code = (
        "from audioclas import deepaas_adapter\n"
        "try:\n"
        "    deepaas_adapter.train(dataset=sys.argv[1])\n"
        "except ValueError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    run = run_without_torch(code, str(tmp_path / "no-such-dataset"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith("ValueError training needs the [train] extra (torch")
    assert run.stdout.strip().endswith("pip install 'audioclas[train]'")
