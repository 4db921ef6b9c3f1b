"""Helpers for the browser tests (tests/test_browser_*.py), not a test module: the constants, `Page`
(one visitor's tab and the checks every action ends with) and the steps several tests share."""

import contextlib
import io
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# every browser test module: pytest.importorskip("playwright.sync_api", ...), then pytestmark = needs_browser
needs_browser = [pytest.mark.browser,
                 pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))
CAT = next(i for i, p in enumerate(SAMPLES) if "cat" in p.name)
BATCH_COLUMNS = ["name", "tokens", "met", "l1", "psnr", "png_bpp", "jpeg_bpp", "entropy", "edge_density",
                 "high_freq_energy"]
MEASURES = ["png_bpp", "jpeg_bpp", "entropy", "edge_density", "high_freq_energy"]
TIMEOUT_MS = 120_000
# the model box, and KARL's quality and pass sliders
MODEL_BOX = "Model (or a local checkpoint path)"
QUALITY = "KARL: desired L1 (rounded up to its quality bins, 0.005 to 0.38)"
PASS = "Pass of the budget sweep (0 = the smallest budget)"

# What the page shows right now, in one look: gradio's error toasts and badges, the pictures (and
# which are still loading or broken), and each plot's traces and whether its legend overlaps its data.
STATE_JS = """() => {
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const imgs = [...document.images].filter(i => i.getAttribute('src'));
  // a lazy picture outside the window never loads by itself; every picture must load here
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  return {
    toasts: [...document.querySelectorAll("[data-testid='toast-body'].error")].map(e => e.innerText),
    badges: [...document.querySelectorAll('span.error')].filter(e => e.innerText.trim() === 'Error').length,
    loading: imgs.filter(i => !i.complete).map(i => i.src),
    broken: imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
    images: imgs.length,
    busy: [...document.querySelectorAll('.wrap.full')].filter(e => !e.classList.contains('hide')).length,
    // captions cut at a thumbnail's width (text-overflow), and image sliders whose two pictures differ in
    // place or size, or spill out of their box
    // a component's label with one of its own buttons (download, full screen, clear) drawn over it
    covered_labels: [...document.querySelectorAll("[data-testid='block-label']")].filter(visible).filter(l => {
      const r = l.getBoundingClientRect(), b = l.closest('.block');
      // icon buttons only: the toolbar's, and plotly's (shown while the pointer is over the plot)
      const icon = x => { const q = x.getBoundingClientRect(); return q.width > 0 && q.width <= 40 && q.height <= 40; };
      return b && [...b.querySelectorAll('button, a.modebar-btn')].filter(x => icon(x) && !l.contains(x))
        .some(x => overlap(r, x.getBoundingClientRect())); }).map(l => l.innerText),
    cut_captions: [...document.querySelectorAll('.caption-label')].filter(c => visible(c)
                   && c.scrollWidth > c.clientWidth + 1).map(c => c.innerText),
    sliders: [...document.querySelectorAll('.block')].map(b => [b, [...b.querySelectorAll('img.preview')]])
      .filter(([b, imgs]) => imgs.length === 2 && imgs.every(visible)).map(([b, imgs]) => {
        const [p, q] = imgs.map(i => i.getBoundingClientRect()), box = b.getBoundingClientRect();
        const same = ['left', 'top', 'width', 'height'].every(k => Math.abs(p[k] - q[k]) < 1.5);
        const inside = [p, q].every(r => r.top >= box.top - 1 && r.bottom <= box.bottom + 1);
        return same && inside;
      }),
    plots: [...document.querySelectorAll('.js-plotly-plot')].filter(visible).map(p => {
      const legend = p.querySelector('.legend'), area = p.querySelector('.nsewdrag');
      const label = p.closest('.block')?.querySelector("[data-testid='block-label']");
      return {traces: (p.data || []).length,
              covered: !!(legend && area && overlap(legend.getBoundingClientRect(), area.getBoundingClientRect())),
              under_label: !!(legend && label && visible(label)
                              && overlap(legend.getBoundingClientRect(), label.getBoundingClientRect())),
              x_title: (p.querySelector('.g-xtitle') || {}).textContent || '',
              label: label ? label.innerText : ''};
    }),
  };
}"""


class Page:
    """One visitor's tab, with the checks every action ends with."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        self.page = self.context.new_page()
        self.cut_short: list[str] = []
        # ERR_ABORTED is the browser dropping a load it no longer needs (a newer iteration replaced the
        # picture, a stream ended); anything else means a file did not arrive whole
        self.page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
                     and self.cut_short.append(f"{r.url} {r.failure}"))
        self.page.on("console", lambda m: "ERR_CONTENT_LENGTH_MISMATCH" in m.text and self.cut_short.append(m.text))
        self.page.goto(url, wait_until="load")
        # attached, not visible: a shared link may open on another tab
        self.page.wait_for_selector("button:has-text('Tokenize')", state="attached", timeout=60_000)

    def close(self):
        self.context.close()

    # --- what every action ends with ------------------------------------------------------------------
    def state(self) -> dict:
        return self.page.evaluate(STATE_JS)

    def settle(self, timeout: float = 120.0) -> dict:
        """Wait until no event is running and no picture is loading (twice in a row), then the state."""
        deadline, calm = time.time() + timeout, 0
        while time.time() < deadline:
            s = self.state()
            calm = calm + 1 if not s["busy"] and not s["loading"] else 0
            if calm >= 2:
                return s
            time.sleep(0.25)
        raise AssertionError(f"the page did not settle within {timeout:.0f} s: {self.state()}")

    def check(self, step: str, refused: str | None = None, broken_upload: str | None = None) -> dict:
        """The page after `step`: nothing failed, or, if `refused`, only the status line says so.
        `broken_upload`: the name of a broken file the visitor uploaded, whose preview cannot load."""
        s = self.settle()
        assert not s["toasts"] and not s["badges"], f"{step}: error shown {s['toasts']} ({s['badges']} badges)"
        broken = [src for src in s["broken"] if not (broken_upload and src.endswith("/" + broken_upload))]
        assert not broken, f"{step}: pictures did not load: {broken}"
        assert not self.cut_short, f"{step}: requests cut short: {self.cut_short}"
        for plot in s["plots"]:
            assert plot["traces"] > 0, f"{step}: a plot without traces"
            assert not plot["covered"], f"{step}: a legend covers the plot's data"
            assert not plot["under_label"], f"{step}: a legend lies under the plot's label {plot['label']!r}"
        assert not s["cut_captions"], f"{step}: captions cut short: {s['cut_captions']}"
        assert not s["covered_labels"], f"{step}: labels under their buttons: {s['covered_labels']}"
        assert all(s["sliders"]), f"{step}: an image slider's two pictures are not aligned in its box"
        status = self.status()
        if refused:
            assert refused in status, f"{step}: the status line says {status!r}, not {refused!r}"
        else:
            assert "⚠" not in status, f"{step}: refused: {status}"
        return s

    @contextlib.contextmanager
    def redraw_held(self):
        """The event started in the block reaches the server only when the block ends, so what the visitor
        does inside it happens while that event runs (a slow server, made certain)."""
        from playwright.sync_api import Error as PlaywrightError

        joins = "**/gradio_api/queue/join*"
        held: list = []
        released = threading.Event()  # once set, requests pass (those the release itself triggers, too)

        def hold(route):
            if released.is_set():
                route.continue_()
            else:
                held.append(route)

        self.page.route(joins, hold)
        try:
            yield
            self.page.wait_for_timeout(300)  # lets the held request's handler run
            assert held, "no event was held"
        finally:
            released.set()
            for route in held:
                with contextlib.suppress(PlaywrightError):  # a page closed by the error being raised
                    route.continue_()
            self.page.unroute(joins)

    # --- reading -------------------------------------------------------------------------------------
    def text(self, selector: str) -> str:
        loc = self.page.locator(selector)
        return loc.first.inner_text() if loc.count() else ""

    def status(self) -> str:
        lines = ("#explore-status", "#compare-status", "#batch-status", "#dataset-status")
        return " ".join(self.page.locator(s).first.inner_text() for s in lines if self.page.locator(s).count())

    def metrics(self) -> str:
        return self.text("#metrics")

    def wait_text(self, selector: str, pattern: str, timeout_ms: int = TIMEOUT_MS):
        self.page.wait_for_function(
            "([sel, pat]) => { const e = document.querySelector(sel); return e && new RegExp(pat).test(e.innerText); }",
            arg=[selector, pattern], timeout=timeout_ms)

    def slider_max(self, label: str) -> int:
        return int(float(self.page.locator(f"input[aria-label='range slider for {label}']").get_attribute("max")))

    def slider_value(self, label: str) -> float:
        return float(self.page.locator(f"input[aria-label='range slider for {label}']").input_value())

    def gallery_captions(self) -> list[str]:
        return self.page.locator("[data-testid='gallery'] .caption-label, .gallery .caption-label, "
                                 "button.thumbnail-item .caption-label").all_inner_texts()

    # --- acting --------------------------------------------------------------------------------------
    def tab(self, name: str):
        self.page.get_by_role("tab", name=name, exact=True).click()

    def example(self, index: int):
        self.tab("Explore")
        self.page.locator("button.gallery-item").nth(index).click()
        self.page.wait_for_function(  # the image box shows the example
            "() => [...document.querySelectorAll('#explore-image img')].some(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000)

    def upload(self, path: Path, tab: str = "Explore", box: str = "#explore-image"):
        self.tab(tab)
        self.page.locator(f"{box} input[type='file']").set_input_files(str(path))
        time.sleep(1.0)  # the upload itself (no event of ours marks its end)
        self.settle()

    def press(self, tab: str, button: str, results: str, expect: str | None):
        """A tab's run button, then its results: `expect` (a pattern) in the element `results`."""
        self.tab(tab)
        self.page.get_by_role("button", name=button, exact=True).click()
        time.sleep(0.3)
        self.settle()
        if expect:
            self.wait_text(results, expect)

    def tokenize(self, expect: str | None = r"\*\*Selected\*\*|Selected:"):
        self.press("Explore", "Tokenize", "#metrics", expect)

    def slider_end(self, label: str, end: str):
        """A slider to one end with the keyboard (Home / End): the visitor's own input event."""
        rng = self.page.locator(f"input[aria-label='range slider for {label}']")
        rng.focus()
        self.page.keyboard.press(end)
        time.sleep(0.3)

    def slider_type(self, label: str, value):
        box = self.page.locator(f"input[aria-label='number input for {label}']")
        box.fill(str(value))
        box.press("Tab")
        time.sleep(0.3)

    def number(self, label: str, value):
        box = self.page.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
        box.press("Tab")
        time.sleep(0.3)

    def open_list(self, label: str):
        """A dropdown's options, open (gradio draws the list when the box gets the focus)."""
        self.page.evaluate("() => document.activeElement && document.activeElement.blur()")
        self.page.get_by_label(label, exact=True).click()
        items = self.page.locator("li[role=option]")
        items.first.wait_for()
        time.sleep(0.3)  # the list is placed after it appears
        return items

    def close_list(self):
        self.page.keyboard.press("Escape")
        self.page.locator("li[role=option]").first.wait_for(state="detached")

    def choose(self, label: str, option: str):
        items = self.open_list(label)
        texts = [t.replace("✓", "").strip() for t in items.all_inner_texts()]
        assert option in texts, f"{label}: no option {option!r} in {texts}"
        items.nth(texts.index(option)).click()
        time.sleep(0.3)

    def options(self, label: str) -> list[str]:
        items = [t.replace("✓", "").strip() for t in self.open_list(label).all_inner_texts()]
        self.close_list()
        return items

    def radio(self, option: str):
        self.page.get_by_label(option, exact=True).check()
        time.sleep(0.3)

    def overlay(self):
        """The attention picture (a click on it asks who attends there)."""
        return self.page.locator(".block").filter(has_text="This token's attention (click").locator("img").last

    # --- Compare -------------------------------------------------------------------------------------
    def compare(self, expect: str | None = r"B selects|Both select"):
        """Click *Compare* and wait for the two runs (the summary names both selections)."""
        self.press("Compare", "Compare", "#compare-summary", expect)

    def compare_example(self, side: str, index: int):
        """An example into image A or B (each side has its own examples)."""
        box = f"#cmp-image-{side.lower()}"
        before = self.page.locator(f"{box} img").first.get_attribute("src") if self.page.locator(
            f"{box} img").count() else None
        self.page.locator(f"#compare-{side.lower()} button.gallery-item").nth(index).click()
        self.page.wait_for_function(
            "([box, before]) => [...document.querySelectorAll(box + ' img')].some(i => i.complete && "
            "i.naturalWidth > 0 && i.getAttribute('src') !== before)", arg=[box, before], timeout=30_000)

    def compared(self) -> dict[str, tuple[str, int, int]]:
        """The summary: {side: (image name, selected iteration, selected tokens)}."""
        text = self.text("#compare-summary")
        found = {m.group(1): (m.group(2), int(m.group(3)), int(m.group(4))) for m in re.finditer(
            r"([AB]) · (\S+) · .*?Selected: iteration (\d+), (\d+) tokens", text)}
        assert set(found) == {"A", "B"}, text
        return found

    def picture(self, elem_id: str) -> tuple[str, np.ndarray]:
        """A picture on the page (its src) and its pixels, fetched as the browser fetched them."""
        src = self.page.locator(f"#{elem_id} img").first.get_attribute("src")
        return src, np.asarray(Image.open(io.BytesIO(self.page.request.get(src).body())).convert("RGB"))

    def export(self):
        """The Export tab's button clicked, and its four files offered for download (the GIF comes last)."""
        self.tab("Export")
        self.page.get_by_role("button", name="Export JSON, NPZ, PNGs and an animated GIF").click()
        self.page.wait_for_selector("a[download][href$='_rollout.gif']", state="attached", timeout=60_000)

    def download(self, name_part: str, dest: Path) -> Path:
        link = self.page.locator(f"a[download][href*='{name_part}']").first
        with self.page.expect_download() as info:
            link.click()
        path = dest / info.value.suggested_filename
        info.value.save_as(path)
        return path


def run_example(v: Page, index: int = CAT) -> dict:
    v.example(index)
    v.check(f"example {index}")
    v.tokenize()
    s = v.check(f"tokenize example {index}")
    assert len([p for p in s["plots"] if p["traces"]]) == 3  # error curve, complexity, compression
    return s


def plot_traces(v: Page, elem_id: str) -> list[dict]:
    """Each trace's name and number of points as drawn (plotly's calcdata: data arrays may arrive encoded)."""
    v.page.wait_for_function("(id) => (document.querySelector('#' + id + ' .js-plotly-plot') || {}).calcdata",
                             arg=elem_id, timeout=30_000)
    return v.page.evaluate("(id) => { const p = document.querySelector('#' + id + ' .js-plotly-plot'); "
                           "return p.data.map((t, i) => ({name: t.name, n: p.calcdata[i].length})); }", elem_id)


def hover_point(v: Page, index: int = 0):
    """The pointer over one scatter point, until the preview names an image."""
    v.page.mouse.move(5, 5)
    v.page.evaluate("() => { document.querySelector('#ds-preview .ds-caption').innerText = ''; }")  # (no stale one)
    point = v.page.locator("#ds-scatter .scatterlayer .point").nth(index)
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    v.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    v.page.wait_for_function("() => / tokens/.test(document.querySelector('#ds-preview .ds-caption').innerText)",
                             timeout=30_000)
    return box


def library_tokens(tok, path, **criterion) -> int:
    """What alit_core selects for a file (its own loader and encode, with early exit)."""
    from alit_core import load_image

    return int(tok.encode(load_image(path, size=tok.resolution)[None], **criterion).num_tokens[0])


def sample_index(part: str) -> int:
    return next(i for i, p in enumerate(SAMPLES) if part in p.name)


def type_model(v: Page, path: str, label: str = MODEL_BOX):
    """A model path typed into a model box (Explore's, or Compare's "Model B")."""
    box = v.page.get_by_label(label, exact=True)
    box.fill(path)
    box.press("Enter")
    time.sleep(0.3)


def karl_count(path: str, image: Path, quality: float) -> int:
    from alit_core import load_image, load_tokenizer

    tok = load_tokenizer(path, device="cpu")
    return tok.encode(load_image(image, size=tok.resolution)[None], quality=quality).num_tokens[0]


def share(v: Page) -> str:
    """Click *Share this view*: the link it shows, which it also copied to the clipboard."""
    box = v.page.locator("#share-link textarea, #share-link input").first
    before = box.input_value()
    v.page.evaluate("() => navigator.clipboard.writeText('')")
    v.page.get_by_role("button", name="Share this view").click()
    v.page.wait_for_function("(before) => { const v = document.querySelector('#share-link textarea, "
                             "#share-link input').value; return v.includes('deep_link=') && v !== before; }",
                             arg=before, timeout=30_000)
    link = box.input_value()
    assert v.page.evaluate("() => navigator.clipboard.readText()") == link
    return link


def selected_tab(v: Page, name: str) -> bool:
    return v.page.get_by_role("tab", name=name, exact=True).get_attribute("aria-selected") == "true"
