"""Every control of the page, used in headless Chromium as a visitor would (README: *What the browser
suite checks*). After every action: no error toast and no error badge, every picture on the page
loaded (naturalWidth > 0), no file request cut short (net::ERR_CONTENT_LENGTH_MISMATCH), every plot
has its traces and keeps its legend off its data. Refusals are expected only where a step says so,
and then only in the tab's own status line.

The default run covers each control once; `-m slow` adds a run per setting option, 20 runs in a row
and the README screenshots. Skipped without Playwright or Debian's Chromium (/usr/bin/chromium).
"""

import io
import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))
CAT = next(i for i, p in enumerate(SAMPLES) if "cat" in p.name)
BATCH_COLUMNS = ["name", "tokens", "l1", "psnr", "png_bpp", "jpeg_bpp", "entropy", "edge_density", "high_freq_energy"]
MEASURES = ["png_bpp", "jpeg_bpp", "entropy", "edge_density", "high_freq_energy"]
TIMEOUT_MS = 120_000

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
    plots: [...document.querySelectorAll('.js-plotly-plot')].filter(visible).map(p => {
      const legend = p.querySelector('.legend'), area = p.querySelector('.nsewdrag');
      return {traces: (p.data || []).length,
              covered: !!(legend && area && overlap(legend.getBoundingClientRect(), area.getBoundingClientRect())),
              x_title: (p.querySelector('.g-xtitle') || {}).textContent || ''};
    }),
  };
}"""


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


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
        status = self.status()
        if refused:
            assert refused in status, f"{step}: the status line says {status!r}, not {refused!r}"
        else:
            assert "⚠" not in status, f"{step}: refused: {status}"
        return s

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

    def download(self, name_part: str, dest: Path) -> Path:
        link = self.page.locator(f"a[download][href*='{name_part}']").first
        with self.page.expect_download() as info:
            link.click()
        path = dest / info.value.suggested_filename
        info.value.save_as(path)
        return path


@pytest.fixture
def visitor(chromium, app_server):
    page = Page(chromium, app_server[0])
    yield page
    page.close()


def run_example(v: Page, index: int = CAT) -> dict:
    v.example(index)
    v.check(f"example {index}")
    v.tokenize()
    s = v.check(f"tokenize example {index}")
    assert len([p for p in s["plots"] if p["traces"]]) == 3  # error curve, complexity, compression
    return s


# --- Explore ----------------------------------------------------------------------------------------------
def test_explore_every_example_the_run_the_criteria_the_measures_and_play(visitor):
    v = visitor
    for i in range(len(SAMPLES)):  # each example reaches the image box
        v.example(i)
        v.check(f"example {i}")
    run_example(v)
    text = v.metrics()
    assert "Iteration 7 of 0-7: 256 tokens" in text and "Selected: iteration" in text, text
    captions = v.gallery_captions()
    assert len(captions) == 8 and captions[0].startswith("iteration 0 · 32 tokens"), captions

    # the criterion: each option brings its own box, default and range
    v.radio("PSNR target (dB)")
    v.check("criterion PSNR")
    assert v.page.get_by_label("PSNR target (dB, 1 to 100)").input_value() == "25"
    assert v.page.locator("input[aria-label^='L1 threshold']").count() == 0
    v.wait_text("#metrics", "PSNR ≥ 25 dB")
    v.radio("token budget")
    v.check("criterion budget")
    label = "Token budget (the largest count that fits; 32 to 256)"
    assert (v.slider_max(label), v.slider_value(label)) == (256, 128)
    v.slider_end(label, "End")
    v.check("budget at its top end")
    v.wait_text("#metrics", "iteration 7, 256 tokens: the largest count that fits in the budget of 256")
    v.slider_end(label, "Home")
    v.check("budget at its bottom end")
    v.wait_text("#metrics", "iteration 0, 32 tokens: the largest count that fits in the budget of 32")
    v.slider_type(label, 130)
    v.check("budget 130")
    v.wait_text("#metrics", "iteration 3, 128 tokens: the largest count that fits in the budget of 130")
    v.radio("L1 threshold")
    v.check("criterion L1")
    l1_label = "L1 threshold (0 to 1; this model's own: 0.0574)"
    assert v.page.get_by_label(l1_label).input_value() == "0.0574"
    v.wait_text("#metrics", "L1 < 0.0574")
    before = v.metrics()
    v.number(l1_label, 5)
    v.check("L1 threshold 5", refused="An L1 threshold is a mean absolute error")
    assert v.metrics() == before  # the refusal changed nothing else
    time.sleep(3)
    assert "An L1 threshold is a mean absolute error" in v.status()  # it stays (a toast would be gone)
    v.number(l1_label, 0.09)
    v.check("L1 threshold 0.09")
    v.wait_text("#metrics", "L1 < 0.09")

    # the complexity measure: each option re-draws the scatter on its axis
    for measure in MEASURES:
        v.choose("Complexity measure", measure)
        s = v.check(f"measure {measure}")
        assert any(p["x_title"] == measure.replace("_", " ") for p in s["plots"]), s["plots"]

    # play through the iterations: ends on the last
    v.page.get_by_role("button", name="▶ Play through the iterations").click()
    time.sleep(0.5)
    v.wait_text("#metrics", r"^\s*Iteration 7 of 0-7", timeout_ms=60_000)
    v.check("play")

    # the original-vs-reconstruction slider, dragged to both ends
    box = v.page.locator(".slider-wrap").first.bounding_box()
    y = box["y"] + box["height"] / 2
    for x in (box["x"] + 2, box["x"] + box["width"] - 2):
        v.page.mouse.move(box["x"] + box["width"] / 2, y)
        v.page.mouse.down()
        v.page.mouse.move(x, y, steps=5)
        v.page.mouse.up()
        v.check("image slider dragged")


def test_settings_each_control_once(visitor):
    v = visitor
    # Model: the list, and a released checkpoint's own threshold (chosen, not loaded: no network here)
    models = v.options("Model (or a local checkpoint path)")
    assert models[0] == "bundled model" and all(m.startswith("official:") for m in models[1:]) and len(models) > 1
    v.choose("Model (or a local checkpoint path)", models[1])
    v.check("model official")
    l1 = v.page.locator("input[aria-label^='L1 threshold']")
    v.page.wait_for_function("() => document.querySelector(\"input[aria-label^='L1 threshold']\").value === '0.07'")
    v.choose("Model (or a local checkpoint path)", "bundled model")
    v.check("model bundled")
    v.page.wait_for_function(
        "() => document.querySelector(\"input[aria-label^='L1 threshold']\").value === '0.0574'")
    assert l1.input_value() == "0.0574"
    # Device: the only one this machine has, so not a choice
    assert v.page.get_by_label("Device", exact=True).is_disabled()
    # Maximum iterations at both ends, with stochastic halting and a seed, another precision, layer 0
    v.example(CAT)
    v.slider_end("Maximum iterations", "Home")
    v.choose("Halting", "stochastic")
    v.number("Seed (stochastic)", 7)
    v.choose("Precision", "bfloat16")
    v.number("Attention: decoder layer (-1 = last)", 0)
    v.check("settings")
    v.tokenize()
    v.check("tokenize 1 iteration, stochastic, bfloat16, layer 0")
    assert len(v.gallery_captions()) == 1 and "Iteration 0 of 0-0" in v.metrics()
    v.slider_end("Maximum iterations", "End")
    v.choose("Halting", "off")
    v.choose("Precision", "float32")
    v.number("Attention: decoder layer (-1 = last)", 5)  # the bundled decoder has 3 layers
    v.tokenize(expect=None)
    v.check("layer 5", refused="the attention layer is 0 to 2")
    v.number("Attention: decoder layer (-1 = last)", -1)
    v.tokenize()
    v.check("tokenize 8 iterations, halting off")
    assert len(v.gallery_captions()) == 8


def test_bad_upload_is_a_status_line_that_stays_and_leaves_the_rest(visitor, tmp_path):
    v = visitor
    run_example(v)
    gallery = v.gallery_captions()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    v.upload(bad)
    v.tokenize(expect=None)
    s = v.check("tokenize a broken file", refused="cannot use image 'broken.png': not an image",
                broken_upload="broken.png")
    assert v.gallery_captions() == gallery and s["images"] >= 8  # the previous run's pictures stay, loaded
    time.sleep(3)
    assert "cannot use image 'broken.png'" in v.status()
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 200, 3), dtype=np.uint8)).save(good)
    v.upload(good)
    v.tokenize()
    v.check("tokenize a good file")  # the next action replaced the error
    assert "only its centred 48x48 square" in v.status()  # a note, not an error


def test_image_dropped_pasted_and_cleared(visitor, tmp_path):
    """The image box's other sources: a file dropped on it, an image pasted from the clipboard, and its
    clear button (then Tokenize asks for an image)."""
    import base64

    v = visitor
    v.context.grant_permissions(["clipboard-read", "clipboard-write"])
    dropped = SAMPLES[4]
    v.page.evaluate("""(data) => {
      const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
      const box = document.querySelector("#explore-image input[type='file']").closest('button');
      for (const type of ['dragenter', 'dragover', 'drop'])
        box.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", base64.b64encode(dropped.read_bytes()).decode())
    v.page.wait_for_selector("img[src$='/dropped.png']", timeout=30_000)
    v.check("drop an image")
    v.tokenize()
    v.check("tokenize the dropped image")
    v.page.get_by_role("button", name="Remove Image").first.click()
    v.check("clear the image box")
    v.page.evaluate("""async (data) => {
      const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
      await navigator.clipboard.write([new ClipboardItem({'image/png': new Blob([bytes], {type: 'image/png'})})]);
    }""", base64.b64encode(SAMPLES[6].read_bytes()).decode())
    v.page.get_by_role("button", name="Paste from clipboard").click()
    v.page.wait_for_selector("img[src$='/clipboard.png']", timeout=30_000)
    v.check("paste an image")
    v.tokenize()
    v.check("tokenize the pasted image")
    v.page.get_by_role("button", name="Remove Image").first.click()
    v.settle()
    v.tokenize(expect=None)
    v.check("tokenize with no image", refused="Upload an image first")


# --- Attention and Export ---------------------------------------------------------------------------------
def test_attention_controls_and_every_export(visitor, tmp_path):
    v = visitor
    run_example(v)
    selected = int(re.search(r"Selected: iteration (\d+), (\d+) tokens", v.metrics()).group(2))
    v.tab("Attention")
    it, tok = "Iteration (0 = the first 32 tokens)", "Token (those of this iteration)"
    v.check("attention tab")
    assert "mostly a spatial grid" in v.text("#finding") and "FG-ARI 0.13" in v.text("#finding")
    v.slider_end(it, "Home")
    v.check("iteration 0")
    assert v.slider_max(tok) == 31
    v.slider_end(tok, "End")
    v.check("token 31 at iteration 0")
    v.wait_text("body", r"Iteration 0 \(32 tokens\), decoder layer 2, head mean: token 31")
    v.slider_end(it, "End")
    v.check("iteration 7")
    assert v.slider_max(tok) == 255
    v.slider_end(tok, "End")
    v.check("token 255 at iteration 7")
    v.wait_text("body", r"Iteration 7 \(256 tokens\), decoder layer 2, head mean: token 255")
    v.slider_end(tok, "Home")
    v.check("token 0")
    heads = v.options("Head (mean or index)")
    assert heads[0] == "mean" and heads[1:] == [str(i) for i in range(len(heads) - 1)] and len(heads) > 2
    for head in heads[1:] + ["mean"]:
        v.choose("Head (mean or index)", head)
        v.check(f"head {head}")
        v.wait_text("body", rf"head {head}: token 0")
    for end in ("Home", "End"):
        v.slider_end("Opacity", end)
        v.check(f"opacity {end}")
    # click the overlay: the tokens that attend there, then they follow the iteration
    size = v.overlay().bounding_box()["width"]
    v.overlay().click(position={"x": size / 4, "y": size / 4})
    v.check("click the overlay")
    v.wait_text("body", r"At iteration 7 \(256 tokens\), position \(row \d+, column \d+\)")
    where = re.search(r"position \(row \d+, column \d+\)", v.page.inner_text("body")).group(0)
    v.slider_end(it, "Home")
    v.check("iteration 0 after a click")
    v.wait_text("body", r"At iteration 0 \(32 tokens\), " + re.escape(where))
    table = v.page.locator("table").filter(has_text="added at iteration").last.inner_text()
    listed = [int(line.split()[0]) for line in table.splitlines()[1:] if line.strip()]
    assert len(listed) == 5 and all(k < 32 for k in listed), table

    # Export: each file, downloaded and opened
    v.tab("Export")
    v.page.get_by_role("button", name="Export JSON, NPZ, PNGs and an animated GIF").click()
    v.page.wait_for_selector("a[download][href$='_rollout.gif']", state="attached", timeout=60_000)
    v.check("export")
    data = json.loads(v.download("_tokens.json", tmp_path).read_text())
    assert data["selected_tokens"] == selected and data["name"] == SAMPLES[CAT].name
    assert [i["iteration"] for i in data["iterations"]] == list(range(8))
    assert [i["tokens"] for i in data["iterations"]] == [32 * (t + 1) for t in range(8)]
    npz = np.load(v.download("_rollout.npz", tmp_path))
    assert {"image", "recons", "tokens", "l1", "psnr", "selected"} <= set(npz.files)
    assert npz["recons"].shape == (8, 64, 64, 3) and npz["tokens"].tolist() == [i["tokens"] for i in data["iterations"]]
    assert npz["l1"].tolist() == pytest.approx([i["l1"] for i in data["iterations"]], abs=1e-6)
    with zipfile.ZipFile(v.download("_reconstructions.zip", tmp_path)) as z:
        names = sorted(z.namelist())
        assert names == sorted(f"iteration_{t}_{32 * (t + 1)}_tokens.png" for t in range(8))
        assert all(Image.open(io.BytesIO(z.read(n))).size == (64, 64) for n in names)
    gif = Image.open(v.download("_rollout.gif", tmp_path))
    assert gif.n_frames == 1 + 8  # the original, then one frame per iteration


# --- Batch and How it works -------------------------------------------------------------------------------
def test_batch_tab_and_how_it_works(visitor, tmp_path):
    v = visitor
    v.tab("How it works")
    how = v.page.get_by_text("How ALIT decides how many tokens an image needs").locator("xpath=..").inner_text()
    assert "mostly a spatial grid" in how and "FG-ARI 0.13" in how and "settle on objects" not in how
    v.tab("Batch")
    v.page.locator("th", has_text=BATCH_COLUMNS[0]).first.wait_for()  # the tab draws its table after it opens
    headers = [h.strip() for h in v.page.locator("th").all_inner_texts() if h.strip()]
    assert headers[: len(BATCH_COLUMNS)] == BATCH_COLUMNS  # the empty table names its columns
    v.page.get_by_role("button", name="Tokenize all").click()
    v.check("batch without files", refused="Add some images")
    pack = tmp_path / "two.zip"
    with zipfile.ZipFile(pack, "w") as z:
        for p in SAMPLES[:2]:
            z.write(p, f"zipped/{p.name}")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    v.page.locator("input[type='file'][multiple]").set_input_files([str(p) for p in SAMPLES[2:5]] +
                                                                    [str(pack), str(bad)])
    time.sleep(1.5)
    v.settle()
    v.page.get_by_role("button", name="Tokenize all").click()
    v.page.wait_for_selector("a[download][href$='alit_batch.csv']", state="attached", timeout=TIMEOUT_MS)
    s = v.check("batch")
    assert "1 file(s) skipped" in v.status() and "broken.png" in v.status()
    assert len(s["plots"]) == 1 and s["plots"][0]["traces"] >= 2  # the reference set and the batch
    rows = v.download("alit_batch.csv", tmp_path).read_text().splitlines()
    assert rows[0].split(",") == BATCH_COLUMNS and len(rows) == 1 + 5
    names = sorted(r.split(",")[0] for r in rows[1:])
    assert names == sorted(p.name for p in SAMPLES[:5])
    assert all(int(r.split(",")[1]) % 32 == 0 for r in rows[1:])


# --- Dataset ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(encoded_dataset):
    """conftest's generated folder of 24 images (4 classes and loose files), its results file, read."""
    from alit_core import read_results

    folder, out = encoded_dataset
    return folder, out, read_results(out)


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


def test_dataset_tab_plots_a_results_file_and_opens_its_images_in_explore(visitor, library, dataset, tmp_path):
    folder, out, results = dataset
    v = visitor
    v.tab("Dataset")
    # not a results file: the status line says so
    bad = tmp_path / "notes.parquet"
    bad.write_text("not parquet")
    v.page.locator("#ds-file input[type='file']").set_input_files(str(bad))
    time.sleep(1.0)
    v.check("a file that is not Parquet", refused="not a readable Parquet file")

    # the results file, uploaded: plots, summary, and a note that its images' folder is not beside it
    v.page.locator("#ds-file input[type='file']").set_input_files(str(out))
    v.wait_text("#ds-summary", "24 images in 5 classes")
    v.check("results uploaded", refused="type it under Image folder")
    hist = plot_traces(v, "ds-hist")
    assert [t["name"] for t in hist] == results.class_names()  # stacked per class
    c = results.correlation("png_bpp")
    title = v.page.evaluate("() => document.querySelector('#ds-scatter .js-plotly-plot').layout.title.text")
    assert title.startswith(f"Spearman rho {c['rho']:.2f} (95% CI {c['ci95'][0]:.2f} to {c['ci95'][1]:.2f}), "
                            "24 images"), title
    assert sum(t["n"] for t in plot_traces(v, "ds-scatter")) == 24
    assert plot_traces(v, "ds-corr")[0]["n"] == len(MEASURES)
    hover_point(v)
    assert "not on this server" in v.text("#ds-preview")  # no folder yet: the caption, no picture

    # the folder typed: hovering shows the image and the row's count
    box = v.page.get_by_label("Image folder (default: the one beside the results file)", exact=True)
    box.fill(str(folder))
    box.press("Enter")
    time.sleep(0.3)
    v.check("folder typed")
    hover_point(v, 3)
    caption = v.text("#ds-preview .ds-caption")
    row = next(i for i, p in enumerate(results.path) if caption.startswith(f"{p} · "))
    assert caption == f"{results.path[row]} · {results.classes[row]} · {results.num_tokens[row]} tokens"
    src = v.page.locator("#ds-preview img").get_attribute("src")
    assert src.startswith("data:image/jpeg;base64,") and v.page.locator("#ds-preview img").is_visible()

    # one class against the whole dataset
    v.choose("Class", "noise")
    v.page.wait_for_function("() => document.querySelector('#ds-hist .js-plotly-plot').data.length === 2")
    v.check("class noise")
    assert [t["name"] for t in plot_traces(v, "ds-hist")] == ["all images", "noise"]
    assert sum(t["n"] for t in plot_traces(v, "ds-scatter")) == int((results.classes == "noise").sum())

    # the table over every row, in the chosen order; a row clicked opens it in Explore and runs it there
    v.choose("Table order (over every row)", "fewest tokens first")
    # (gradio draws the table's rows as .virtual-row, a cell per column)
    v.page.wait_for_function(f"() => document.querySelector('#ds-table .virtual-row')?.children[3].innerText"
                             f".trim() === '{results.num_tokens.min()}'")
    v.check("table sorted")
    first = int(np.argsort(results.num_tokens, kind="stable")[0])
    v.page.locator("#ds-table .virtual-row").first.locator("> *").nth(1).click()
    v.page.locator("#tabs button[role='tab'][aria-selected='true']", has_text="Explore").wait_for()
    v.wait_text("#metrics", r"Selected: iteration \d+")
    v.check("row opened in Explore")
    want = library_tokens(library, folder / results.path[first])
    assert re.search(rf"Selected: iteration \d+, {want} tokens", v.metrics()), v.metrics()
    assert want == results.num_tokens[first]  # the page, the library and the results file agree
    assert f"Opened row {first} of results.parquet" in v.text("#dataset-status")

    # a scatter point clicked: the same
    v.tab("Dataset")
    box = hover_point(v, 0)
    caption = v.text("#ds-preview .ds-caption")
    row = next(i for i, p in enumerate(results.path) if caption.startswith(f"{p} · "))
    v.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    v.page.locator("#tabs button[role='tab'][aria-selected='true']", has_text="Explore").wait_for()
    v.wait_text("#dataset-status", f"Opened row {row} of")
    v.wait_text("#metrics", rf"Selected: iteration \d+, {results.num_tokens[row]} tokens")
    v.check("point opened in Explore")

    # the bundled examples, encoded on the server
    v.tab("Dataset")
    v.page.get_by_role("button", name="Encode the bundled examples").click()
    v.wait_text("#ds-summary", f"the bundled examples: {len(SAMPLES)} images in 1 class")
    v.check("bundled examples")
    assert [t["name"] for t in plot_traces(v, "ds-hist")] == ["all images"]
    hover_point(v)
    assert v.page.locator("#ds-preview img").get_attribute("src").startswith("data:image/jpeg;base64,")


# --- Compare ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def library():
    """The bundled model in this process: the counts the page shows are checked against it."""
    from alit_core import load_tokenizer

    return load_tokenizer(device="cpu")


def library_tokens(tok, path, **criterion) -> int:
    """What alit_core selects for a file (its own loader and encode, with early exit)."""
    from alit_core import load_image

    return int(tok.encode(load_image(path, size=tok.resolution)[None], **criterion).num_tokens[0])


@pytest.fixture(scope="module")
def vae_model(tmp_path_factory):
    """A small model on the VAE base tokenizer (4 iterations of 4 tokens; no stochastic halting), as a file."""
    import torch
    from conftest import small_config

    from alit_core import ALIT, Tokenizer, VAEConfig, save_checkpoint

    vae = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(16,),
                    decoder_attn_resolutions=())
    torch.manual_seed(0)
    return str(save_checkpoint(Tokenizer(ALIT(small_config(vae=vae)), "cpu"),
                               tmp_path_factory.mktemp("vae") / "vae.pt"))


def sample_index(part: str) -> int:
    return next(i for i, p in enumerate(SAMPLES) if part in p.name)


def test_compare_two_images_then_one_image_under_two_settings(visitor, library, tmp_path):
    v = visitor
    v.tab("Compare")
    v.check("compare tab")  # the two default images (A and B) are shown, loaded
    thr = library.default_threshold

    # defaults: two bundled examples of different complexity, one click
    v.compare()
    v.check("compare the defaults")
    got = v.compared()
    assert got["A"][0] == "02_shapes.png" and got["B"][0] == "03_coffee.png", got
    for side, (name, _, tokens) in got.items():
        assert tokens == library_tokens(library, ROOT / "assets" / "samples" / name, threshold=thr), (side, name)
    assert got["A"][2] < got["B"][2]  # the simple image needs fewer tokens

    # two examples picked by the visitor
    scene, text = sample_index("scene"), sample_index("text")
    v.compare_example("A", scene)
    v.compare_example("B", text)
    v.check("two examples picked")
    v.compare()
    v.check("compare scene and text")
    got = v.compared()
    assert (got["A"][0], got["B"][0]) == (SAMPLES[scene].name, SAMPLES[text].name), got
    assert got["A"][2] == library_tokens(library, SAMPLES[scene], threshold=thr)
    assert got["B"][2] == library_tokens(library, SAMPLES[text], threshold=thr)
    assert f"B selects {got['B'][2] - got['A'][2]} more tokens than A" in v.text("#compare-summary")
    # the overlaid curves: L1, PSNR and the selection of each, the stars at the counts shown
    curve = v.page.evaluate("() => document.querySelector('#compare-curve .js-plotly-plot').data"
                            ".map(t => ({name: t.name, x: t.x}))")
    names = [c["name"] for c in curve]
    assert names == ["A: L1", "A: PSNR (dB)", "A: selected", "B: L1", "B: PSNR (dB)", "B: selected"], names
    assert (curve[2]["x"][0], curve[5]["x"][0]) == (got["A"][2], got["B"][2])
    # the shared slider opens at the later selection, and moves both runs and their difference
    later = max(got["A"][1], got["B"][1])
    assert v.slider_value("Iteration (both runs)") == later and v.slider_max("Iteration (both runs)") == 7
    v.wait_text("#compare-view", rf"A at iteration {later}: {32 * (later + 1)} tokens")
    before = {k: v.picture(k) for k in ("cmp-recon-a", "cmp-recon-b", "cmp-diff")}
    mean_before = float(re.search(r"mean ([\d.]+)", v.text("#compare-view")).group(1))
    v.slider_end("Iteration (both runs)", "Home")
    v.check("shared iteration 0")
    v.wait_text("#compare-view", r"A at iteration 0: 32 tokens[\s\S]*B at iteration 0: 32 tokens")
    after = {k: v.picture(k) for k in ("cmp-recon-a", "cmp-recon-b", "cmp-diff")}
    for k in before:
        assert before[k][0] != after[k][0] and not np.array_equal(before[k][1], after[k][1]), f"{k} did not change"
    mean_after = float(re.search(r"mean ([\d.]+)", v.text("#compare-view")).group(1))
    assert mean_after != mean_before and mean_after > 0
    assert abs(after["cmp-diff"][1].astype(float).mean() - before["cmp-diff"][1].astype(float).mean()) > 0.5
    # the token: one that both runs have at this iteration, both attention maps redrawn
    attn = [v.picture(k)[0] for k in ("cmp-attn-a", "cmp-attn-b")]
    assert v.slider_max("Token (one that both runs have)") == 31
    v.slider_end("Token (one that both runs have)", "End")
    v.check("token 31")
    v.wait_text("#compare-attention", r"Token 31 \(added at iteration 0\)")
    assert all(v.picture(k)[0] != a for k, a in zip(("cmp-attn-a", "cmp-attn-b"), attn))
    v.slider_end("Iteration (both runs)", "End")
    v.check("shared iteration 7")
    assert v.slider_max("Token (one that both runs have)") == 255
    v.wait_text("#compare-attention", r"Token 31 \(added at iteration 0\)[\s\S]*A: iteration 7")

    # a broken upload for A: its message in the status line, the comparison shown stays
    shown = v.text("#compare-summary")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    v.upload(bad, tab="Compare", box="#cmp-image-a")
    v.compare(expect=None)
    v.check("compare a broken file", refused="A: cannot use image 'broken.png': not an image",
            broken_upload="broken.png")
    assert v.text("#compare-summary") == shown

    # one image under two settings: B's own settings appear, image B goes (the text image: the bundled
    # model masks some of its positions, so halting off reconstructs it otherwise)
    v.compare_example("A", text)
    v.radio("one image, two models or settings")
    kept = "A: cannot use image 'broken.png'"  # the refusal stays until the next Compare
    v.check("mode: one image, two settings", refused=kept)
    assert v.page.locator("#cmp-image-b").is_hidden() and v.page.locator("#cmp-halting-b").is_visible()
    v.choose("Halting B", "off")
    v.choose("Criterion B", "L1 threshold")
    v.check("B: halting off, L1", refused=kept)
    v.page.wait_for_function(f"() => document.querySelector('#cmp-value-b input').value === '{thr:g}'")
    v.compare()
    v.check("compare halting deterministic and off")
    got = v.compared()
    assert got["A"][0] == got["B"][0] == SAMPLES[text].name
    assert got["A"][2] == library_tokens(library, SAMPLES[text], threshold=thr)
    assert got["B"][2] == library_tokens(library, SAMPLES[text], threshold=thr, halting="off")
    assert "halting off" in v.text("#compare-summary")
    assert float(re.search(r"mean ([\d.]+)", v.text("#compare-view")).group(1)) > 0  # other halting, other pixels
    # an unknown model for B: refused in the status line
    box = v.page.get_by_label("Model B", exact=True)
    box.fill("official:nope")
    box.press("Enter")
    v.compare(expect=None)
    v.check("compare with an unknown model", refused="B: unknown official checkpoint 'nope'")


def test_compare_the_bundled_model_with_another_model(visitor, library, vae_model):
    """B: another model file (a VAE-based model of other counts and iterations): the halting mode it
    lacks is refused, then both run, aligned on the shared slider."""
    from alit_core import load_tokenizer

    v = visitor
    v.tab("Compare")
    v.radio("one image, two models or settings")
    cat = sample_index("cat")
    v.compare_example("A", cat)
    box = v.page.get_by_label("Model B", exact=True)
    box.fill(vae_model)
    box.press("Enter")
    v.choose("Halting B", "stochastic")
    v.choose("Criterion B", "L1 threshold")
    v.number("B: L1 threshold (0 to 1)", 0.05)
    v.compare(expect=None)
    v.check("a halting mode model B lacks", refused="B: This model takes halting 'deterministic' or 'off', "
                                                    "not 'stochastic'")
    v.choose("Halting B", "deterministic")
    v.compare()
    v.check("compare two models")
    got = v.compared()
    vae = load_tokenizer(vae_model, device="cpu")
    assert got["A"][2] == library_tokens(library, SAMPLES[cat], threshold=library.default_threshold)
    assert got["B"][2] == library_tokens(vae, SAMPLES[cat], threshold=0.05)
    assert vae_model in v.text("#compare-summary")
    # the bundled model's 8 iterations against the other's 4: at 7, B stays on its last
    v.slider_end("Iteration (both runs)", "End")
    v.check("shared iteration 7, B on its last")
    v.wait_text("#compare-view", r"A at iteration 7: 256 tokens[\s\S]*B at iteration 3 \(its last: 4 iterations\): "
                                 r"16 tokens")
    assert v.slider_max("Token (one that both runs have)") == 15


# --- KARL and the VAE base tokenizer -------------------------------------------------------------------------
MODEL_BOX = "Model (or a local checkpoint path)"
QUALITY = "KARL: desired L1 (rounded up to its quality bins, 0.005 to 0.38)"
PASS = "Pass of the budget sweep (0 = the smallest budget)"


@pytest.fixture(scope="module")
def karl_model(tmp_path_factory):
    """A small KARL (64 px, VQGAN, budgets 8 to 64), as a file of ours."""
    import torch
    from conftest import small_karl_config

    from alit_core import KARL, save_checkpoint

    torch.manual_seed(0)
    return str(save_checkpoint(KARL(small_karl_config()), tmp_path_factory.mktemp("karl") / "karl.pt"))


@pytest.fixture(scope="module")
def reference_models(tmp_path_factory):
    """KARL and ALIT-VAE built from the official reference layouts (karl_tiny, vae_tiny; 256 px), as files."""
    from conftest import REFERENCE

    from alit_core import from_official, save_checkpoint

    karl_dir, vae_dir = REFERENCE.parent / "karl_reference" / "karl_tiny", REFERENCE / "vae_tiny"
    if not (karl_dir / "state_dict.pt").exists() or not (vae_dir / "state_dict.pt").exists():
        pytest.skip("the reference layouts are not in ../shared")
    out = tmp_path_factory.mktemp("reference_models")
    return tuple(str(save_checkpoint(from_official(config=d / "config.json", state_dict=d / "state_dict.pt"),
                                     out / f"{d.name}.pt")) for d in (karl_dir, vae_dir))


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


def drive_vae_karl_and_offline(v: Page, library, karl: str, vae: str, tmp_path: Path, passes: list[int]):
    """An ALIT-VAE file and a KARL file typed into the model box and run in the page, their counts those of
    alit_core; KARL's quality slider, attention, exports and Compare against the bundled model; a released
    KARL checkpoint that cannot be downloaded: the status line names it, its address and its path."""
    from alit_core import load_tokenizer

    v.example(CAT)
    thr = library.default_threshold
    # the VAE model: no stochastic halting (refused in the status line), deterministic runs
    type_model(v, vae)
    v.number("Attention: decoder layer (-1 = last)", -1)  # the bundled model's layer 2 is beyond these models'
    v.choose("Halting", "stochastic")
    v.tokenize(expect=None)
    v.check("VAE model, stochastic", refused="This model takes halting 'deterministic' or 'off', not 'stochastic' "
                                             "(VAE-based models have no stochastic halting)")
    v.choose("Halting", "deterministic")
    v.tokenize()
    v.check("VAE model, deterministic")
    vae_tok = load_tokenizer(vae, device="cpu")
    n = library_tokens(vae_tok, SAMPLES[CAT], threshold=thr)
    assert re.search(rf"Selected: iteration \d+, {n} tokens", v.metrics()), (n, v.metrics())

    # KARL: its budget sweep streams in, ALIT's settings hide and its quality slider shows
    type_model(v, karl)
    v.tokenize(expect="KARL's count")
    v.check("KARL model")
    count = karl_count(karl, SAMPLES[CAT], 0.05)
    top = passes[-1]
    assert f"KARL's count: {count} tokens: in one pass at budget {top} for a desired L1 of 0.05" in v.metrics()
    captions = v.gallery_captions()
    assert len(captions) == len(passes) and captions[0].startswith(f"budget {passes[0]} · "), captions
    assert captions[-1].startswith(f"★ selected · budget {top} · {count} tokens"), captions
    assert not v.page.get_by_label("Halting", exact=True).is_visible()
    assert v.page.locator("#karl-quality").is_visible()
    assert v.page.locator("#budget-plot .js-plotly-plot").is_visible()
    v.page.wait_for_function("(n) => { const y = document.querySelector('#budget-plot .js-plotly-plot').data[1].y; "
                             "return y.length === n[1] && y[y.length - 1] === n[0]; }", arg=[count, len(passes)],
                             timeout=10_000)  # the estimated count at each budget, the last KARL's count
    v.slider_type(QUALITY, 0.2)
    v.tokenize(expect="desired L1 of 0.2")
    v.check("KARL at quality 0.2")
    count = karl_count(karl, SAMPLES[CAT], 0.2)
    assert f"KARL's count: {count} tokens" in v.metrics() and "quality bin 0.2)" in v.metrics()
    # attention over the latents of a pass
    v.tab("Attention")
    v.slider_end(PASS, "Home")
    v.check("KARL pass 0")
    assert v.slider_max("Token (those of this iteration)") == passes[0] - 1
    v.wait_text("body", rf"KARL, budget {passes[0]} \(\d+ tokens\), decoder layer")
    # exports of the sweep, downloaded and opened
    v.tab("Export")
    v.page.get_by_role("button", name="Export JSON, NPZ, PNGs and an animated GIF").click()
    v.page.wait_for_selector("a[download][href$='_rollout.gif']", state="attached", timeout=60_000)
    v.check("KARL export")
    data = json.loads(v.download("_tokens.json", tmp_path).read_text())
    assert data["family"] == "karl" and data["selected_tokens"] == count and data["quality"] == 0.2
    assert [p["budget"] for p in data["passes"]] == passes
    npz = np.load(v.download("_rollout.npz", tmp_path))
    assert list(npz["budgets"]) == passes and len(npz["recons"]) == len(passes)
    with zipfile.ZipFile(v.download("_reconstructions.zip", tmp_path)) as z:
        assert len(z.namelist()) == len(passes) and z.namelist()[0].startswith(f"budget_{passes[0]}_")
    assert Image.open(v.download("_rollout.gif", tmp_path)).n_frames == len(passes) + 1

    # Compare: the bundled ALIT (A) against KARL (B) on one image
    v.tab("Compare")
    v.radio("one image, two models or settings")
    v.compare_example("A", CAT)
    type_model(v, karl, "Model B")
    v.choose("Criterion B", "L1 threshold")
    v.page.wait_for_function("() => document.querySelector('#cmp-value-b input').value === '0.05'")
    v.compare(expect="KARL's count")
    v.check("compare ALIT and KARL")
    summary = v.text("#compare-summary")
    assert f"KARL's count: {karl_count(karl, SAMPLES[CAT], 0.05)} tokens" in summary, summary
    a = int(re.search(r"A · .*?Selected: iteration \d+, (\d+) tokens", summary).group(1))
    assert a == library_tokens(library, SAMPLES[CAT], threshold=thr)
    v.wait_text("#compare-view", r"B at budget \d+ \(the pass whose count is nearest the other's\)")
    names = v.page.evaluate("() => document.querySelector('#compare-curve .js-plotly-plot').data.map(t => t.name)")
    assert names == ["A: L1", "A: PSNR (dB)", "A: selected", "B: L1", "B: PSNR (dB)", "B: selected"], names

    # a released KARL checkpoint, offline: the status line says so, nothing else breaks
    v.tab("Explore")
    released = "official:karl-in100-small-vqgan-quantized"
    v.choose(MODEL_BOX, released)  # (it is in the list)
    v.page.locator("#karl-quality").wait_for(state="visible")  # a KARL name: its settings before any download
    v.tokenize(expect=None)
    v.check("a released KARL checkpoint offline", refused="could not be downloaded")
    status = v.status()
    assert "karl_small_vqgan_quantized_latents.pth" in status and "dropbox.com" in status, status


def test_karl_and_vae_models_in_the_page_and_a_released_one_offline(visitor, library, karl_model, vae_model, tmp_path):
    drive_vae_karl_and_offline(visitor, library, karl_model, vae_model, tmp_path, [8 * (i + 1) for i in range(8)])


@pytest.mark.slow
def test_karl_and_vae_models_of_the_reference_layouts_in_the_page(visitor, library, reference_models, tmp_path):
    karl, vae = reference_models
    drive_vae_karl_and_offline(visitor, library, karl, vae, tmp_path, [32 * (i + 1) for i in range(8)])


# --- Share ------------------------------------------------------------------------------------------------
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


def test_a_shared_link_reopens_the_view_in_a_fresh_page(chromium, visitor):
    """Explore at a criterion, an iteration and a token of the Attention tab, then Compare at a shared
    iteration and token: the link, opened by another visitor, shows the same tab, and both views with the
    same image, settings, selection, iteration, token and captions, computed again."""
    v = visitor
    v.context.grant_permissions(["clipboard-read", "clipboard-write"])
    run_example(v)
    v.radio("PSNR target (dB)")
    v.check("criterion PSNR")
    v.wait_text("#metrics", "PSNR ≥ 25 dB")
    v.tab("Attention")
    it, tok = "Iteration (0 = the first 32 tokens)", "Token (those of this iteration)"
    v.slider_type(it, 2)
    v.check("iteration 2")
    v.slider_type(tok, 40)
    v.check("token 40")
    v.wait_text("body", r"Iteration 2 \(96 tokens\), decoder layer 2, head mean: token 40")
    metrics, attention = v.metrics(), v.page.locator(".tabitem:visible").last.inner_text()
    v.compare()
    v.check("compare for a link")
    v.slider_end("Iteration (both runs)", "Home")
    v.slider_end("Token (one that both runs have)", "End")
    v.check("compare at iteration 0, token 31")
    v.wait_text("#compare-attention", "Token 31")
    summary, view = v.text("#compare-summary"), v.text("#compare-view")
    link = share(v)
    assert link.startswith(v.page.url.split("?")[0]) and "deep_link=" in link

    w = Page(chromium, link)
    try:
        w.wait_text("#compare-summary", "B selects")
        w.wait_text("#metrics", "Selected")
        w.check("the link opened")
        assert selected_tab(w, "Compare")
        assert w.text("#compare-summary") == summary and w.text("#compare-view") == view
        assert w.slider_value("Iteration (both runs)") == 0 and w.slider_value("Token (one that both runs have)") == 31
        w.wait_text("#compare-attention", r"Token 31 \(added at iteration 0\)")
        w.tab("Explore")
        assert selected_tab(w, "Attention")
        assert w.metrics() == metrics and "PSNR ≥ 25 dB" in metrics
        assert w.page.get_by_label("PSNR target (dB)", exact=True).is_checked()
        assert w.page.locator("#explore-image img").first.get_attribute("src").endswith(SAMPLES[CAT].name)
        assert (w.slider_value(it), w.slider_value(tok)) == (2, 40)
        w.wait_text("body", r"Iteration 2 \(96 tokens\), decoder layer 2, head mean: token 40")
        assert w.page.locator(".tabitem:visible").last.inner_text() == attention
        assert len(w.gallery_captions()) == 8
        w.check("the Explore tab of the opened link")
    finally:
        w.close()


# --- the race: many runs in a row, every picture loads ------------------------------------------------------
@pytest.mark.parametrize("runs", [3, pytest.param(20, marks=pytest.mark.slow)])
def test_consecutive_runs_load_every_picture(visitor, runs):
    v = visitor
    for r in range(runs):
        v.example((CAT + r) % len(SAMPLES))
        v.tokenize()
        s = v.check(f"run {r + 1} of {runs}")
        assert s["images"] >= 8 + 3, s  # the gallery and the three pictures of the last iteration, at least


@pytest.mark.slow
def test_every_setting_option_runs(visitor):
    """Each precision and halting option, every example, through a whole run."""
    v = visitor
    for dtype in v.options("Precision"):
        v.choose("Precision", dtype)
        for halting in v.options("Halting"):
            v.choose("Halting", halting)
            v.example(CAT)
            v.tokenize()
            v.check(f"{dtype}, {halting}")
    v.choose("Precision", "float32")
    v.choose("Halting", "deterministic")
    for i in range(len(SAMPLES)):
        v.example(i)
        v.tokenize()
        v.check(f"run example {i}")


@pytest.mark.slow
def test_readme_screenshots(visitor):
    """The README's pictures of every view: ALIT_SCREENSHOTS=docs/screenshots to replace them, else
    reports/browser/screenshots."""
    out = Path(os.environ.get("ALIT_SCREENSHOTS", ROOT / "reports" / "browser" / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    v = visitor
    run_example(v, index=next(i for i, p in enumerate(SAMPLES) if "astronaut" in p.name))

    def shot(name, whole_page=False):
        """The page, or the innermost tab shown, as a JPEG at most 1000 pixels wide."""
        v.settle()
        png = io.BytesIO(v.page.screenshot(full_page=True) if whole_page else
                         v.page.locator(".tabitem:visible").last.screenshot())
        img = Image.open(png).convert("RGB")
        if img.width > 1000:
            img = img.resize((1000, round(img.height * 1000 / img.width)), Image.Resampling.LANCZOS)
        img.save(out / f"{name}.jpg", quality=75)

    shot("explore", whole_page=True)
    v.tab("Attention")
    v.overlay().click(position={"x": 120, "y": 120})
    v.check("click for the screenshot")
    shot("attention")
    v.tab("Export")
    v.page.get_by_role("button", name="Export JSON, NPZ, PNGs and an animated GIF").click()
    v.page.wait_for_selector("a[download][href$='_rollout.gif']", state="attached", timeout=60_000)
    shot("export")
    v.tab("Batch")
    v.page.locator("input[type='file'][multiple]").set_input_files([str(p) for p in SAMPLES])
    time.sleep(1.5)
    v.settle()
    v.page.get_by_role("button", name="Tokenize all").click()
    v.page.wait_for_selector("a[download][href$='alit_batch.csv']", state="attached", timeout=TIMEOUT_MS)
    shot("batch")
    v.tab("How it works")
    shot("how_it_works")
    v.compare()  # the defaults: two examples of different complexity
    v.check("compare for the screenshot")
    shot("compare")
    assert sorted(p.name for p in out.glob("*.jpg")) >= sorted(
        f"{n}.jpg" for n in ("attention", "batch", "compare", "explore", "export", "how_it_works"))
