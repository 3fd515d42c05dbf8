"""The REST API over real HTTP: a real ``audioclas serve`` on a free loopback port, real clips, hostile inputs."""

from __future__ import annotations

import gzip
import http.server
import io
import os
import random
import re
import tarfile
import threading
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pytest
from archive_bytes import zip_bytes
from media import encode
from service_server import Server

# Random bytes that FFmpeg recognises as no format: fixed, since some random draws probe as a tiny WAV.
NOISE = random.Random(0).randbytes(4000)

ROBIN = "456440__inspectorj__bird-whistling-robin-single-13.ogg"
TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"
DRUMBASS = "admiralbob77_-_Choice_-_Drum-bass.ogg"
PIBBLE = "pibble.ogg"  # 47 s: over the 30 s bound of the bounded server
TOKEN = "s3cret"
PREDICT = "/v2/models/audioset/predict/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    """Small bounds, a token from $AUDIOCLAS_TOKEN, CORS for one origin."""
    home = tmp_path_factory.mktemp("api") / "home"
    with Server(
        home,
        "--max-upload-mb",
        "1",
        "--max-audio-seconds",
        "30",
        "--max-archive-members",
        "5",
        "--max-archive-mb",
        "2",
        "--cors",
        "http://lab.example",
        token=TOKEN,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> httpx.Client:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def clips(audio_dir: Path) -> dict[str, bytes]:
    return {name: (audio_dir / name).read_bytes() for name in (ROBIN, TRUMPET, DRUMBASS, PIBBLE)}


def assert_error(response: httpx.Response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and body["error"]
    for fragment in fragments:
        assert fragment in body["error"] or any(fragment in (r.get("error") or "") for r in body.get("results") or [])
    return body


# ---------------------------------------------------------------------------------------------- routes


def test_health_docs_and_page(api: httpx.Client) -> None:
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["jobs"] == {"queued": 0, "running": 0} and health["models"] >= 1
    assert "swagger" in api.get("/docs").text.lower()
    schema = api.get("/openapi.json").json()
    for path in (
        "/v2/models/",
        "/v2/models/{name}/",
        "/v2/models/{name}/predict/",
        "/v2/models/{name}/train/",
        "/v2/models/{name}/train/{job_id}",
        "/v2/datasets/",
        "/v2/datasets/{name}",
        "/health",
    ):
        assert path in schema["paths"], path
    assert {"PredictResponse", "ModelInfo", "JobInfo", "TrainRequest", "ErrorResponse"} <= set(
        schema["components"]["schemas"]
    )
    page = api.get("/")
    assert page.status_code == 200 and "<title>audioclas</title>" in page.text


def test_the_api_docs_load_nothing_from_elsewhere(api: httpx.Client) -> None:
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    html = api.get("/docs").text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert "http" not in html.replace("http-equiv", ""), html  # no absolute URL at all: no CDN, no web fonts
    assets = {url for url in urls if url != "/openapi.json"}
    assert {url.rsplit(".", 1)[-1] for url in assets} == {kind[1:] for kind in kinds}, urls
    for url in assets:
        assert url.startswith("/docs-assets/"), url
        response = api.get(url)
        assert response.status_code == 200 and len(response.content) > 1000, url
        assert kinds["." + url.rsplit(".", 1)[-1]] in response.headers["content-type"], response.headers
    assert api.get("/redoc").status_code == 404  # ReDoc would fetch its logo from its CDN: not offered
    assert api.get("/static/app.js").status_code == 200


def test_models_are_listed_and_described_with_or_without_slash(api: httpx.Client) -> None:
    for path in ("/v2/models/", "/v2/models"):
        models = api.get(path).json()["models"]
        audioset = next(model for model in models if model["name"] == "audioset")
        assert audioset["kind"] == "audioset" and len(audioset["classes"]) == 527
        assert audioset["metrics"]["mAP"] == pytest.approx(0.432)
    for path in ("/v2/models/audioset/", "/v2/models/audioset"):
        model = api.get(path).json()
        assert model["classes"][0] == "Speech" and model["metadata"]["class_ids"][0] == "/m/09x0r"
    assert_error(api.get("/v2/models/no-such-model/"), 404, "no-such-model")
    assert_error(api.post("/v2/models/no-such-model/predict/", files={"files": ("a.ogg", b"x")}), 404)


# ---------------------------------------------------------------------------------------------- predict


def test_predict_real_clips_with_timeline(api: httpx.Client, clips: dict[str, bytes]) -> None:
    files = [("files", (ROBIN, clips[ROBIN], "audio/ogg")), ("files", (TRUMPET, clips[TRUMPET], "audio/ogg"))]
    for path in (PREDICT, PREDICT.rstrip("/")):
        response = api.post(path, files=files, data={"top_k": "3", "timeline": "true"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "audioset" and body["failed"] == 0
        robin, trumpet = body["results"]
        assert (robin["input"], robin["labels"][0]["name"]) == (ROBIN, "Bird")
        assert (trumpet["input"], trumpet["labels"][0]["name"]) == (TRUMPET, "Trumpet")
        assert len(robin["labels"]) == 3 and robin["duration"] == pytest.approx(2.699, abs=0.01)
        assert [len(w["labels"]) for w in robin["windows"]] == [3]


def test_predict_options(api: httpx.Client, clips: dict[str, bytes]) -> None:
    robin = {"files": (ROBIN, clips[ROBIN])}
    only = api.post(PREDICT, files=robin, data={"labels": ["Trumpet", "/m/015p6"], "exact": "1"}).json()["results"][0]
    assert [label["name"] for label in only["labels"]] == ["Bird", "Trumpet"]
    without = api.post(PREDICT, files=robin, data={"exclude": "Bird", "exact": "1", "top_k": "2"}).json()["results"][0]
    assert [label["name"] for label in without["labels"]] == ["Chirp, tweet", "Bird vocalization, bird call, bird song"]
    birds = api.post(PREDICT, files=robin, data={"labels": "Bird", "top_k": "3", "specific": "true"}).json()
    specific = ["Chirp, tweet", "Bird vocalization, bird call, bird song", "Bird"]  # Bird and below, specific first
    assert [label["name"] for label in birds["results"][0]["labels"]] == specific
    confident = api.post(PREDICT, files=robin, data={"threshold": "0.7"}).json()["results"][0]
    assert [label["name"] for label in confident["labels"]] == ["Bird", "Chirp, tweet"]
    hops = api.post(
        PREDICT, files={"files": (DRUMBASS, clips[DRUMBASS])}, data={"hop": "5", "timeline": "1", "aggregate": "mean"}
    ).json()["results"][0]
    assert [w["start"] for w in hops["windows"]] == [0.0, 5.0, 10.0, 15.0, pytest.approx(15.026, abs=0.01)]


def test_archive_members_are_tagged(api: httpx.Client, clips: dict[str, bytes]) -> None:
    archive = zip_bytes({"birds/robin.ogg": clips[ROBIN], "brass/trumpet.ogg": clips[TRUMPET], "notes.txt": b"skip"})
    results = api.post(PREDICT, files={"files": ("clips.zip", archive)}).json()["results"]
    assert [(r["input"], r["labels"][0]["name"]) for r in results] == [
        ("clips.zip!birds/robin.ogg", "Bird"),
        ("clips.zip!brass/trumpet.ogg", "Trumpet"),
    ]


def test_upload_names_are_shown_never_used_as_paths(api: httpx.Client, clips: dict[str, bytes], server: Server) -> None:
    name = "../../../../tmp/evil/..\\x.ogg"
    (result,) = api.post(PREDICT, files={"files": (name, clips[ROBIN])}).json()["results"]
    assert (result["input"], result["labels"][0]["name"]) == (name, "Bird")
    assert not Path("/tmp/evil").exists()


def test_undecodable_and_escape_sequence_member_names(api: httpx.Client, clips: dict[str, bytes]) -> None:
    """A member name that is not UTF-8 (and holds a terminal escape) is shown with visible escapes, in valid JSON,
    and the other members still get their results."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as archive:  # names as raw bytes
        for name, data in [
            ("bad\udcff\x1b[2J.ogg", clips[ROBIN]),
            ("junk\udcfe.wav", b"not audio" * 100),
            ("good.ogg", clips[TRUMPET]),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    response = api.post(PREDICT, files={"files": ("names.tar.gz", buffer.getvalue())})
    assert response.status_code == 200, response.text
    bad, junk, good = response.json()["results"]
    assert (bad["input"], bad["labels"][0]["name"]) == ("names.tar.gz!bad\\xff\\x1b[2J.ogg", "Bird")
    assert (junk["input"], junk["status"]) == ("names.tar.gz!junk\\xfe.wav", 415)
    assert (good["input"], good["labels"][0]["name"]) == ("names.tar.gz!good.ogg", "Trumpet")
    shown = api.post(PREDICT, files={"files": ("up\x1b[2Jload\u202e.ogg", clips[ROBIN])}).json()["results"][0]
    assert shown["input"] == "up\\x1b[2Jload\\u202e.ogg"


def test_hostile_archives(api: httpx.Client, clips: dict[str, bytes], tmp_path: Path) -> None:
    escaping = zip_bytes({"../escape.ogg": clips[ROBIN], "ok.ogg": clips[ROBIN]})
    body = api.post(PREDICT, files={"files": ("escape.zip", escaping)}).json()
    assert body["failed"] == 1
    assert body["results"][0]["error"] == "unsafe member path (contains '..')" and body["results"][0]["status"] == 400
    assert body["results"][1]["labels"][0]["name"] == "Bird"

    many = zip_bytes({f"clip{i}.ogg": clips[ROBIN] for i in range(6)})
    assert_error(api.post(PREDICT, files={"files": ("many.zip", many)}), 413, "more than the limit of 5")

    bomb = gzip.compress(bytes(3 * 2**20))  # 3 MB of zeros in 3 KB: over the 2 MB extraction bound
    assert_error(api.post(PREDICT, files={"files": ("bomb.wav.gz", bomb)}), 413, "expands to more than 2097152 bytes")

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo("passwd.wav")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    assert_error(api.post(PREDICT, files={"files": ("links.tar.gz", buffer.getvalue())}), 400, "symbolic link")


def test_oversize_upload_is_refused_with_413(api: httpx.Client) -> None:
    big = os.urandom(1_500_000)  # over --max-upload-mb 1
    assert_error(api.post(PREDICT, files={"files": ("big.wav", big)}), 413, "limit of 1048576 bytes")

    def chunks():  # no Content-Length: the bound is enforced while reading the stream
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.wav"\r\n\r\n'
        for _ in range(30):
            yield bytes(65536)
        yield b"\r\n--b--\r\n"

    streamed = api.post(PREDICT, content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(streamed, 413, "larger than the limit")
    assert api.get("/health").status_code == 200


def test_audio_over_the_duration_bound_is_refused(api: httpx.Client, clips: dict[str, bytes]) -> None:
    assert_error(api.post(PREDICT, files={"files": (PIBBLE, clips[PIBBLE])}), 413, "longer than the limit of 30 s")


def test_corrupt_empty_and_non_audio_files(api: httpx.Client, clips: dict[str, bytes], tmp_path: Path) -> None:
    assert_error(api.post(PREDICT, files={"files": ("noise.wav", NOISE)}), 415, "not a recognised")
    assert_error(api.post(PREDICT, files={"files": ("empty.ogg", b"")}), 400, "empty (0 bytes)")
    assert_error(api.post(PREDICT, files={"files": ("notes.txt", b"hello, this is text\n" * 50)}), 415)
    video = encode(tmp_path / "silent.mp4", None, 32000, "aac", format="mp4", video_seconds=1.0).read_bytes()
    assert_error(api.post(PREDICT, files={"files": ("silent.mp4", video)}), 415, "no audio stream")
    mixed = api.post(PREDICT, files=[("files", ("noise.wav", NOISE)), ("files", (ROBIN, clips[ROBIN]))])
    body = mixed.json()
    assert mixed.status_code == 200 and body["failed"] == 1
    assert body["results"][0]["status"] == 415 and body["results"][1]["labels"][0]["name"] == "Bird"


def test_non_finite_scores_are_a_per_input_error_never_null(
    api: httpx.Client, clips: dict[str, bytes], tmp_path: Path
) -> None:
    """Float WAV samples of 1e30 give NaN scores in the network: that input fails, the others are tagged."""
    huge = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 1e30
    wav = encode(tmp_path / "huge.wav", huge, 16000, "pcm_f32le", format="wav").read_bytes()
    response = api.post(PREDICT, files=[("files", ("huge.wav", wav)), ("files", (ROBIN, clips[ROBIN]))])
    assert response.status_code == 200, response.text
    assert "null" not in response.text and "NaN" in response.json()["results"][0]["error"]
    bad, robin = response.json()["results"]
    assert bad["input"] == "huge.wav" and bad["status"] == 400 and "labels" not in bad
    assert robin["labels"][0]["name"] == "Bird"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"top_k": "0"}, "top_k"),
        ({"top_k": "many"}, "top_k"),
        ({"threshold": "2"}, "threshold"),
        ({"pad": "mirror"}, "pad"),
        ({"aggregate": "median"}, "aggregate"),
        ({"colour": "red"}, "colour"),
        ({"labels": "Not a label"}, "unknown label"),
        ({"hop": "20"}, "hop"),
        ({"window": "0.01"}, "window"),
    ],
)
def test_invalid_options_get_422(api: httpx.Client, clips: dict[str, bytes], data: dict, fragment: str) -> None:
    assert_error(api.post(PREDICT, files={"files": (ROBIN, clips[ROBIN])}, data=data), 422, fragment)


def test_malformed_requests(api: httpx.Client) -> None:
    assert_error(api.post(PREDICT, json={"url": "https://example.org/a.ogg"}), 415, "multipart/form-data")
    assert_error(api.post(PREDICT, data={"top_k": "3"}), 400, "nothing to tag")
    garbage = api.post(
        PREDICT, content=b"not multipart at all", headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert_error(garbage, 400, "malformed multipart")
    no_boundary = api.post(PREDICT, content=b"x", headers={"content-type": "multipart/form-data"})
    assert_error(no_boundary, 400, "boundary")
    assert_error(
        api.get("/v2/models/audioset/train/nope", headers={"authorization": f"Bearer {TOKEN}"}), 404, "no training job"
    )
    assert_error(
        api.post(
            "/v2/models/audioset/train/",
            content=b"{",
            headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        ),
        422,
    )


# ---------------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1:{port}/health", "127.0.0.1 is a loopback address"),
        ("http://localhost:{port}/health", "localhost resolves to 127.0.0.1, a loopback address"),
        ("http://[::1]:{port}/health", "loopback"),
        ("http://10.1.2.3/a.ogg", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:127.0.0.1]/a.ogg", "loopback"),
        ("ftp://example.org/a.ogg", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
    ],
)
def test_private_and_odd_urls_are_refused(api: httpx.Client, server: Server, url: str, fragment: str) -> None:
    assert_error(api.post(PREDICT, data={"url": url.format(port=server.port)}), 400, fragment)


@pytest.mark.parametrize(
    "url",
    [
        "/etc/passwd",
        "{audio}/*.ogg",
        "{audio}",
        "file:///etc/passwd",
        "pyproject.toml",
        "tests/",
        "{audio}/" + ROBIN,
        "http:{audio}/" + ROBIN,
        "//{audio}/" + ROBIN,
    ],
)
def test_url_field_is_never_a_server_path(api: httpx.Client, audio_dir: Path, url: str) -> None:
    """Only http(s) URLs: a path, glob, folder or file:// URL is a 400 naming the field, whether or not the path
    exists (so it cannot be probed), and nothing is listed or tagged."""
    url = url.format(audio=audio_dir)
    body = assert_error(api.post(PREDICT, data={"url": url}), 400)
    assert body["error"].startswith(f"url {url}: ") and "only http and https URLs" in body["error"]
    assert "results" not in body
    with_upload = api.post(PREDICT, files={"files": (ROBIN, b"x")}, data={"url": url})
    assert "results" not in assert_error(with_upload, 400, "only http and https URLs")


@pytest.fixture(scope="module")
def audio_site(audio_dir: Path):
    """A tiny HTTP server on loopback serving the real clips, and redirecting /moved to the robin."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", f"/{ROBIN}")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(audio_dir)))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()


def test_private_urls_work_when_the_operator_allows_them(tmp_path_factory, audio_site: str) -> None:
    home = tmp_path_factory.mktemp("open") / "home"
    with Server(home, "--allow-private-urls", "--token", "flag-token") as open_server, open_server.client() as api:
        body = api.post(PREDICT, data={"url": [f"{audio_site}/{TRUMPET}", f"{audio_site}/moved"]}).json()
        assert [(r["input"], r["labels"][0]["name"]) for r in body["results"]] == [
            (f"{audio_site}/{TRUMPET}", "Trumpet"),
            (f"{audio_site}/moved", "Bird"),
        ]
        assert_error(api.post(PREDICT, data={"url": f"{audio_site}/missing.ogg"}), 400, "HTTP 404")
        # the token given by flag guards the delete route
        assert_error(api.delete("/v2/models/nothing/"), 401)
        assert_error(api.delete("/v2/models/nothing/", headers={"authorization": "Bearer flag-token"}), 404)


def test_redirects_to_private_addresses_are_refused(api: httpx.Client, audio_site: str) -> None:
    # The bounded server refuses loopback: the first hop already, whatever it would redirect to.
    assert_error(api.post(PREDICT, data={"url": f"{audio_site}/moved"}), 400, "loopback")


# ---------------------------------------------------------------------------------------------- access


def test_token_guards_train_and_delete(api: httpx.Client) -> None:
    body = {"dataset": "/nonexistent"}
    for path in ("/v2/models/audioset/train/", "/v2/models/audioset/train/0123abcd"):  # history and logs show paths
        assert_error(api.get(path), 401, "Bearer")
    assert api.get("/v2/models/audioset/train/", headers={"authorization": f"Bearer {TOKEN}"}).json() == {"jobs": []}
    assert_error(api.post("/v2/models/audioset/train/", json=body), 401, "Bearer")
    assert api.post("/v2/models/audioset/train/", json=body).headers["www-authenticate"] == "Bearer"
    assert_error(api.post("/v2/models/audioset/train/", json=body, headers={"authorization": "Bearer wrong"}), 401)
    assert_error(
        api.post("/v2/models/audioset/train/", json=body, headers={"authorization": f"Bearer {TOKEN}"}),
        400,
        "does not exist",
    )
    assert_error(
        api.delete("/v2/models/audioset/", headers={"authorization": f"Bearer {TOKEN}"}), 400, "cannot be deleted"
    )
    assert_error(api.delete("/v2/models/ghost/", headers={"authorization": f"Bearer {TOKEN}"}), 404)


def test_cors_allows_only_the_configured_origin(api: httpx.Client) -> None:
    preflight = {"access-control-request-method": "POST"}
    allowed = api.options(PREDICT, headers={"origin": "http://lab.example", **preflight})
    assert allowed.headers.get("access-control-allow-origin") == "http://lab.example"
    other = api.options(PREDICT, headers={"origin": "http://elsewhere.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


def test_no_request_above_ended_in_a_server_error(server: Server) -> None:
    log = server.log()
    assert "Traceback" not in log and " 500 " not in log, log
