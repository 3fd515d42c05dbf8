"""The web page in a real browser: Debian's chromium, headless, driven by Playwright for Python."""

from __future__ import annotations

import tarfile
import zipfile
from functools import partial
from pathlib import Path

import pytest
from service_server import Server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
CLIPS = {"456440__inspectorj__bird-whistling-robin-single-13.ogg": "Bird", "metro_station-paris.wav": "Train"}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, data_root: Path):
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("browser") / "home"
    with Server(home, "--data-root", str(data_root)) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        elsewhere: list[str] = []  # the page works offline: it asks nothing of any other host (no CDN, no fonts)

        def only_the_server(route) -> None:
            if route.request.url.startswith(server.url + "/"):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_server)
        page.goto(server.url + "/")
        yield page
        browser.close()
        assert not errors, errors
        assert not elsewhere, elsewhere


def seek_to(page, player: str, click) -> float:
    """Call ``click`` and return the time the ``player`` (a JavaScript expression) seeked to."""
    page.evaluate(
        f"{player}.addEventListener('seeked', () => {{ window.seekedTo = {player}.currentTime }}, {{once: true}})"
    )
    page.evaluate("window.seekedTo = null")
    click()
    page.wait_for_function("window.seekedTo !== null", timeout=30_000)
    return page.evaluate("window.seekedTo")


def upload(page, path: Path, hop: str = "", events: bool = True) -> None:
    """Tag ``path`` with these options, and wait for its results."""
    page.fill("#hop", hop)
    page.set_checked("#events", events)
    page.evaluate("document.querySelector('#tag-status').textContent = ''")
    page.set_input_files("#file", str(path))
    page.wait_for_function(
        f"document.querySelector('#tag-status').textContent.startsWith({path.name!r} + ':')", timeout=120_000
    )
    assert "tagged in" in page.inner_text("#tag-status"), page.inner_text("#tag-status")


@pytest.mark.parametrize(("clip", "label"), CLIPS.items())
def test_upload_shows_the_top_label_spectrogram_and_timeline(page, audio_dir: Path, clip: str, label: str) -> None:
    upload(page, audio_dir / clip)
    assert page.locator(".result").count() == 1
    assert page.inner_text(".result .title").startswith(clip)
    assert page.inner_text(".result .bars li:first-child .name") == label
    assert page.get_attribute(".result .bars li:first-child", "aria-label").startswith(f"{label}: ")
    assert page.locator(".result .cell").count() >= 1  # the clip's top labels × its windows
    page.wait_for_function(
        "document.querySelector('.result .spectro-note').textContent.startsWith('Mel-scaled')", timeout=60_000
    )
    drawn = page.evaluate("""() => {
        const canvas = document.querySelector('.result .spectrogram');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let bright = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 150) bright++;
        return bright / (data.length / 4);
    }""")
    assert drawn > 0.01  # the spectrogram is more than a black canvas
    spectrogram = page.locator(".result .spectrogram").bounding_box()
    for lane in page.locator(".result .lane").all():  # one time axis: every lane spans the spectrogram's width
        box = lane.bounding_box()
        assert abs(box["x"] - spectrogram["x"]) < 1 and abs(box["width"] - spectrogram["width"]) < 1


def test_events_are_listed_and_clicking_one_plays_from_its_start(page, audio_dir: Path) -> None:
    upload(page, audio_dir / "pibble.ogg", hop="1")
    events = page.locator(".result .events button")
    assert events.count() >= 3
    assert "Dog" in page.inner_text(".result .events")
    starts = [float(item.get_attribute("data-start")) for item in page.locator(".result .events li").all()]
    assert starts == sorted(starts)
    later = next(i for i, start in enumerate(starts) if start > 5)  # pibble: a howl at 6.5 s, then more
    page.wait_for_function("document.querySelector('.result .player').readyState >= 1", timeout=30_000)
    player = "document.querySelector('.result .player')"
    now = seek_to(page, player, events.nth(later).click)
    assert abs(now - starts[later]) < 0.05, (now, starts[later])
    duration = page.evaluate("document.querySelector('.result .player').duration")
    page.wait_for_function("!document.querySelector('.result .cursor').hidden")
    position = page.evaluate(
        "Number(document.querySelector('.result .cursor').style.getPropertyValue('--t'))"
    )  # the cursor on the shared time axis
    assert abs(position - now / duration) < 0.05
    window = seek_to(page, player, page.locator(".result .lane .cell").nth(3).click)  # a window: from its start
    assert abs(window - 3) < 0.05, window  # (the 'seeked' event may come a few ms into playing)
    events.first.focus()  # the keyboard plays an event too
    assert abs(seek_to(page, player, lambda: page.keyboard.press("Enter")) - starts[0]) < 0.05
    page.evaluate(f"{player}.pause()")


def test_a_smaller_hop_gives_more_windows_and_the_controls_tag_again(page, audio_dir: Path) -> None:
    upload(page, audio_dir / "pibble.ogg")
    finer = page.locator(".result .window-table tbody tr").count()
    assert finer >= 80  # 47 s in the events' 2 s windows, one every 0.5 s
    page.fill("#hop", "2")
    page.evaluate("document.querySelector('#tag-status').textContent = ''")
    page.click("#rerun")
    page.wait_for_function("document.querySelector('#tag-status').textContent.includes('tagged in')", timeout=120_000)
    coarse = page.locator(".result .window-table tbody tr").count()
    assert finer >= 3.5 * coarse, (finer, coarse)
    scores = [float(item.get_attribute("data-score")) for item in page.locator(".result .events li").all()]
    assert min(scores) < 0.8 < max(scores)
    page.fill("#threshold", "0.8")
    page.evaluate("document.querySelector('#tag-status').textContent = ''")
    page.press("#threshold", "Enter")  # the keyboard submits too
    page.wait_for_function("document.querySelector('#tag-status').textContent.includes('tagged in')", timeout=120_000)
    stricter = [float(item.get_attribute("data-score")) for item in page.locator(".result .events li").all()]
    assert stricter and min(stricter) >= 0.8 and len(stricter) < len(scores)
    page.fill("#threshold", "")


def test_the_result_downloads_as_a_raven_table_and_an_audacity_track(page, audio_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    upload(page, audio_dir / "pibble.ogg", hop="1")
    with page.expect_download() as info:
        page.click("#downloads [data-format=raven]")
    assert info.value.suggested_filename == "events.selections.txt"
    info.value.save_as(tmp_path / "raven.txt")
    table = pd.read_csv(tmp_path / "raven.txt", sep="\t")
    columns = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)"]
    assert list(table.columns[:7]) == columns
    listed = page.locator(".result .events li").count()
    assert len(table) == listed and "Dog" in set(table.iloc[:, 7])
    with page.expect_download() as info:
        page.click("#downloads [data-format=audacity]")
    info.value.save_as(tmp_path / "labels.txt")
    track = pd.read_csv(tmp_path / "labels.txt", sep="\t", header=None)
    assert len(track) == listed and (track[1] > track[0]).all()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_archive_shows_every_member_with_a_player(page, audio_dir: Path, tmp_path: Path, kind: str) -> None:
    archive = tmp_path / f"clips.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for clip in CLIPS:
                bundle.write(audio_dir / clip, f"clips/{clip}")
    else:
        with tarfile.open(archive, "w:gz") as bundle:
            for clip in CLIPS:
                bundle.add(audio_dir / clip, f"clips/{clip}")
    upload(page, archive)
    assert page.locator(".result").count() == 2
    titles = page.locator(".result .title").all_inner_texts()
    assert [title.split(" — ")[0] for title in titles] == [f"clips.{kind}!clips/{clip}" for clip in CLIPS]
    for index, (block, label) in enumerate(zip(page.locator(".result").all(), CLIPS.values())):
        assert block.locator(".bars li:first-child .name").inner_text() == label
        assert block.locator(".events li").count() >= 1
        assert block.locator(".cell").count() >= 1
        player = f"document.querySelectorAll('.result .player')[{index}]"
        page.wait_for_function(f"{player}.readyState >= 1", timeout=30_000)  # the member's own audio, decoded
        duration = page.evaluate(f"{player}.duration")
        spectrogram = block.locator(".lane").first
        box = spectrogram.bounding_box()
        middle = {"x": box["width"] / 2, "y": box["height"] / 2}
        assert abs(seek_to(page, player, partial(spectrogram.click, position=middle)) - duration / 2) < 0.02 * duration
        page.evaluate(f"{player}.pause()")
    assert page.locator("#downloads [data-format=audacity]").is_disabled()  # one input per label track


def test_file_names_are_shown_as_text_never_as_markup(page, audio_dir: Path, tmp_path: Path) -> None:
    name = '<img src=x onerror="window.injected=1">.ogg'  # the browser sends the quotes as %22
    clip = tmp_path / name
    clip.write_bytes((audio_dir / "456440__inspectorj__bird-whistling-robin-single-13.ogg").read_bytes())
    archive = tmp_path / 'named "clips".zip'
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(clip, name)
    for upload_path in (clip, archive):
        upload(page, upload_path)
        sent = name.replace('"', "%22") if upload_path == clip else f"named %22clips%22.zip!{name}"
        assert page.inner_text(".result .title").startswith(sent)
        assert page.locator("#results img").count() == 0
        assert page.evaluate("window.injected") is None
        page.wait_for_function("document.querySelector('.result .player').readyState >= 1", timeout=30_000)


def test_the_model_list_and_the_training_view(page, data_root: Path) -> None:
    assert page.inner_text("#model option:first-child").startswith("AudioSet (527 classes)")
    page.click("#nav-train")
    page.wait_for_selector("#train-form", state="visible")
    assert page.is_hidden("#view-tag")
    page.fill("#dataset", str(data_root / "no-such-dataset"))
    page.click("text=Start training")
    page.wait_for_function("document.querySelector('#train-status').textContent.startsWith('Not started')")
    assert "does not exist" in page.inner_text("#train-status")
    page.click("#nav-tag")


def test_a_dataset_is_uploaded_used_and_deleted(page, data_root: Path, tmp_path: Path) -> None:
    """The training view uploads a zip of real FSDD clips, lists it, fills the dataset path from it, deletes it;
    an archive that is not a dataset is refused with the server's reason."""
    archive, notes = tmp_path / "digits.zip", tmp_path / "notes.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        for path in sorted((data_root / "digits").rglob("*.wav")):
            packed.write(path, path.relative_to(data_root).as_posix())
    with zipfile.ZipFile(notes, "w") as packed:
        packed.writestr("notes.txt", "not a dataset")
    status = "document.querySelector('#datasets-status').textContent"
    page.click("#nav-train")
    page.wait_for_selector("#dataset-form", state="visible")
    page.set_input_files("#dataset-file", str(archive))
    page.fill("#dataset-name", "web-digits")
    page.click("#dataset-form button")
    page.wait_for_function(f"{status}.startsWith('Uploaded')", timeout=60_000)
    path = str(data_root / "uploads" / "web-digits" / "files" / "digits")
    assert page.input_value("#dataset") == path and "12 files, 2 classes" in page.inner_text("#datasets-status")
    assert page.inner_text("#datasets tbody tr td:first-child") == "web-digits"
    assert page.inner_text("#datasets-usage").startswith("Using 1 of 20 datasets")
    page.fill("#dataset", "")
    page.click("[aria-label='Train on web-digits']")
    assert page.input_value("#dataset") == path

    page.set_input_files("#dataset-file", str(notes))
    page.click("#dataset-form button")
    page.wait_for_function(f"{status}.startsWith('Not uploaded')", timeout=60_000)
    assert "not a valid dataset" in page.inner_text("#datasets-status")
    assert page.locator("#datasets tbody tr").count() == 1

    page.click("[aria-label='Delete web-digits']")
    page.wait_for_function(f"{status}.startsWith('Deleted')")
    assert page.locator("#datasets tbody tr").count() == 0 and not (data_root / "uploads" / "web-digits").exists()
    page.click("#nav-tag")


def test_the_api_docs_render_with_no_internet(page) -> None:
    """Every request that leaves the server is refused, as on a machine without internet access."""
    server = page.url.split("/", 3)[:3]
    docs = page.context.browser.new_page()
    elsewhere: list[str] = []

    def only_the_server(route) -> None:
        if route.request.url.split("/", 3)[:3] == server:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    docs.route("**/*", only_the_server)
    docs.goto("/".join(server) + "/docs")
    docs.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=60_000)
    assert "/v2/models/{name}/predict/" in docs.inner_text("body")
    assert not elsewhere, elsewhere
    docs.close()
