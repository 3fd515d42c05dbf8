"""The web page in a real browser: Debian's chromium, headless, driven by Playwright for Python."""

from __future__ import annotations

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
def page(tmp_path_factory: pytest.TempPathFactory):
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with Server(tmp_path_factory.mktemp("browser") / "home") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        yield page
        browser.close()
        assert not errors, errors


@pytest.mark.parametrize(("clip", "label"), CLIPS.items())
def test_upload_shows_the_top_label_spectrogram_and_timeline(page, audio_dir: Path, clip: str, label: str) -> None:
    page.set_input_files("#file", str(audio_dir / clip))
    page.wait_for_function(f"document.querySelector('#result-title').textContent.startsWith({clip!r})", timeout=60_000)
    assert page.inner_text("#bars li:first-child .name") == label
    assert page.get_attribute("#bars li:first-child", "aria-label").startswith(f"{label}: ")
    assert page.locator("#timeline .cell").count() >= 5  # the clip's top labels × its windows
    page.wait_for_function(
        "document.querySelector('#spectro-note').textContent.startsWith('Mel-scaled')", timeout=60_000
    )
    drawn = page.evaluate("""() => {
        const canvas = document.querySelector('#spectrogram');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let bright = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 150) bright++;
        return bright / (data.length / 4);
    }""")
    assert drawn > 0.01  # the spectrogram is more than a black canvas
    assert "tagged in" in page.inner_text("#tag-status")


def test_the_model_list_and_the_training_view(page) -> None:
    assert page.inner_text("#model option:first-child").startswith("AudioSet (527 classes)")
    page.click("#nav-train")
    page.wait_for_selector("#train-form", state="visible")
    assert page.is_hidden("#view-tag")
    page.fill("#dataset", "/no/such/dataset")
    page.click("text=Start training")
    page.wait_for_function("document.querySelector('#train-status').textContent.startsWith('Not started')")
    assert "does not exist" in page.inner_text("#train-status")
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
