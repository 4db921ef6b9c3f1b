"""Browser test: headless Chromium loads the app, runs an example and sees the gallery fill.

Skipped when Playwright (PyPI `playwright`, used without its own browser download) or Debian's
Chromium (/usr/bin/chromium) is missing.
"""

import shutil
import time
from pathlib import Path

import pytest

from test_app import server  # noqa: F401  (the running app, shared fixture)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")]
ARTIFACTS = Path(__file__).resolve().parent.parent / "reports" / "browser"


def test_page_runs_an_example_and_fills_the_gallery(server):  # noqa: F811
    url, _ = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="load")
            page.wait_for_selector("button:has-text('Tokenize')", timeout=60000)
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
