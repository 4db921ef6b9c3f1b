"""Browser tests: headless Chromium loads the app, runs an example and sees the gallery fill; uploads
a broken file and a good one.

Skipped when Playwright (PyPI `playwright`, used without its own browser download) or Debian's
Chromium (/usr/bin/chromium) is missing.
"""

import shutil
import time
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")]
ARTIFACTS = Path(__file__).resolve().parent.parent / "reports" / "browser"


def launch(playwright):
    """Headless Debian Chromium with nothing reaching out to the network."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def test_page_runs_an_example_and_fills_the_gallery(app_server):
    url, _ = app_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="load")
            page.wait_for_selector("button:has-text('Tokenize')", timeout=60000)
            assert page.get_by_text("Image (upload, drop or paste)").first.is_visible()  # the upload component
            page.locator("[data-testid='examples'] button, button.gallery-item, .gallery-item").nth(3).click()
            time.sleep(2)
            page.get_by_role("button", name="Tokenize").click()
            page.wait_for_function("() => document.body.innerText.includes('selected ·')", timeout=120000)
            text = page.inner_text("body")
            assert "256 tokens" in text and "32 tokens" in text  # first and last iteration captions
            time.sleep(1)
            page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "explore.png").stat().st_size > 50_000


def test_uploads_reach_our_loader_bad_file_message_then_a_good_file_runs(app_server, tmp_path):
    """The real upload path of the page: a broken file gets alit_core's message (not gradio's), a good one runs."""
    url, _ = app_server
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    good = sorted((Path(__file__).resolve().parent.parent / "assets" / "samples").glob("*.png"))[1]
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path, expected in ((bad, "cannot use image 'broken.png': not an image"), (good, "selected ·")):
                page.goto(url, wait_until="load")
                page.wait_for_selector("button:has-text('Tokenize')", timeout=60000)
                upload = page.locator("input[type='file'][accept='image/*']")  # the Explore tab's image
                assert upload.count() == 1
                upload.set_input_files(str(path))
                time.sleep(2)  # the upload finishes before the click is read
                page.get_by_role("button", name="Tokenize").click()
                page.wait_for_function(f"() => document.body.innerText.includes({expected!r})", timeout=120000)
        finally:
            browser.close()
