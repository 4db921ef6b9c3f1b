"""Every control of Explore and its settings, used in headless Chromium as a visitor would (README: *What the
browser suite checks*; Attention, Export, Batch and How it works: test_browser_views; the other tabs:
test_browser_compare, _dataset, _models and _share, with the same checks: browser_page.Page.check). After every action: no error
toast and no error badge, every picture on the page loaded (naturalWidth > 0), no file request cut short
(net::ERR_CONTENT_LENGTH_MISMATCH), every plot has its traces and keeps its legend off its data. Refusals
are expected only where a step says so, and then only in the tab's own status line.

The default run covers each control once; `-m slow` adds a run per setting option, 20 runs in a row
and the README screenshots. Skipped without Playwright or Debian's Chromium (/usr/bin/chromium).
"""

import io
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from browser_page import (
    CAT,
    MEASURES,
    ROOT,
    SAMPLES,
    TIMEOUT_MS,
    needs_browser,
    plot_traces,
    run_example,
)
from PIL import Image

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_browser


# --- Explore ----------------------------------------------------------------------------------------------
def test_explore_every_example_the_run_the_criteria_the_measures_and_play(visitor):
    v = visitor
    for i in range(len(SAMPLES)):  # each example reaches the image box
        v.example(i)
        v.check(f"example {i}")
    run_example(v)
    text = v.metrics()
    assert "Iteration 7 of 0-7: 256 tokens" in text and "Selected: iteration" in text, text
    # the error curve: L1, PSNR, the VQGAN alone (the floor under the curve) and the selection
    assert [t["name"] for t in plot_traces(v, "curve")] == ["L1", "PSNR (dB)", "VQGAN alone", "selected"]
    captions = v.gallery_captions()
    assert len(captions) == 8 and captions[0].startswith("iteration 0 · 32 tokens"), captions
    # each reconstruction is seen whole: its caption lies below it, and all four columns inside the gallery
    layout = v.page.evaluate("""() => { const g = document.querySelector('#explore-gallery').getBoundingClientRect();
      return [...document.querySelectorAll('#explore-gallery button.thumbnail-item')].map(t => {
        const i = t.querySelector('img').getBoundingClientRect();
        const c = t.querySelector('.caption-label').getBoundingClientRect();
        return {below: c.top >= i.bottom - 1, inside: i.left >= g.left && i.right <= g.right + 1}; }); }""")
    assert len(layout) == 8 and all(p["below"] and p["inside"] for p in layout), layout
    assert len(v.settle()["sliders"]) == 1  # the original-vs-reconstruction slider was checked (aligned)
    # a narrow window (a laptop's half screen): labels, legends and captions still clear of each other
    v.page.set_viewport_size({"width": 800, "height": 1000})
    v.check("800 px wide")
    v.page.set_viewport_size({"width": 1400, "height": 1000})
    # the halting picture's numbers are in the text: how many image positions iteration 7 halted
    assert re.search(r"PSNR [\d.]+ dB; \d+ of 256 image positions halted", text), text
    assert v.page.get_by_text("Halted image positions (blue)", exact=True).is_visible()

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
    assert "5 cannot be used. The selection still uses L1 < 0.0574." in v.status()  # typed 5 stays, to mend
    # below what the VQGAN alone draws the cat with: no iteration can meet it, and the text says why
    v.number(l1_label, 0.03)
    v.check("L1 threshold 0.03")
    v.wait_text("#metrics", r"no iteration met it[\s\S]*The VQGAN alone, decoding this image's own codes "
                            r"\(what the tokens predict\), reaches L1 0\.0\d{3}")
    v.number(l1_label, 0.09)
    v.check("L1 threshold 0.09")
    v.wait_text("#metrics", "L1 < 0.09")

    # the complexity measure: each option re-draws the scatter on its axis
    for measure in MEASURES:
        v.choose("Complexity measure", measure)
        s = v.check(f"measure {measure}")
        assert any(p["x_title"] == measure.replace("_", " ") for p in s["plots"]), s["plots"]

    # play through the iterations at the quickest pace: ends on the last
    v.slider_type("Play: seconds per iteration", 0.2)
    v.page.get_by_role("button", name="▶ Play through the iterations").click()
    time.sleep(0.5)
    v.wait_text("#metrics", r"^\s*Iteration 7 of 0-7[\s\S]*Selected: iteration", timeout_ms=60_000)
    v.check("play")
    # a reconstruction clicked in the gallery: the panel above stops on that iteration, the selection still said
    v.page.locator("#explore-gallery button.thumbnail-item").nth(2).click()
    v.wait_text("#metrics", r"^\s*Iteration 2 of 0-7: 96 tokens[\s\S]*Selected: iteration")
    v.page.wait_for_function("() => /recon_2\\.png$/.test(document.querySelector('#explore-current img').src)")
    v.check("gallery: iteration 2 clicked")
    v.page.keyboard.press("Escape")  # the gallery's enlarged preview closes

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
    assert models[:2] == ["bundled model", "bundled:v2-preview"]
    assert all(m.startswith("official:") for m in models[2:]) and len(models) > 2
    v.choose("Model (or a local checkpoint path)", models[2])
    v.check("model official")
    v.page.get_by_label("L1 threshold (0 to 1; this model's own: 0.07)", exact=True).wait_for()  # its label too
    l1 = v.page.locator("input[aria-label^='L1 threshold']")
    v.page.wait_for_function("() => document.querySelector(\"input[aria-label^='L1 threshold']\").value === '0.07'")
    v.choose("Model (or a local checkpoint path)", "bundled model")
    v.check("model bundled")
    v.page.wait_for_function(
        "() => document.querySelector(\"input[aria-label^='L1 threshold']\").value === '0.0574'")
    assert l1.input_value() == "0.0574"
    assert v.page.get_by_label("L1 threshold (0 to 1; this model's own: 0.0574)", exact=True).is_visible()
    # Device: the only one this machine has, so not a choice
    assert v.page.get_by_label("Device", exact=True).is_disabled()
    # Maximum iterations at both ends, with stochastic halting and a seed, another precision, layer 0
    v.example(CAT)
    v.slider_end("Maximum iterations", "Home")
    v.choose("Halting", "stochastic")
    v.number("Seed (stochastic)", 7)
    # the dropdown says which precision measured faster on this machine (bfloat16 is 60x slower on AVX2-only CPUs)
    note = v.page.get_by_text("is the faster choice on this CPU")
    assert note.is_visible() and note.inner_text().split()[0] in ("float32", "bfloat16")
    v.choose("Precision", "bfloat16")
    v.number("Attention: decoder layer (-1 = last)", 0)
    v.check("settings")
    v.tokenize()
    v.check("tokenize 1 iteration, stochastic, bfloat16, layer 0")
    assert len(v.gallery_captions()) == 1 and "Iteration 0 of 0-0" in v.metrics()
    # the one picture fills the gallery's width: shown whole (contain), not cropped to the gallery's shape
    fit = v.page.evaluate("() => [...document.querySelectorAll('button.thumbnail-item img')].filter(i => "
                          "i.getBoundingClientRect().width > 0).map(i => getComputedStyle(i).objectFit)")
    assert fit == ["contain"], fit
    # the error plot ticks its one count, not 31, 31.5, 32, ...
    assert v.page.evaluate("() => document.querySelector('#curve .js-plotly-plot').layout.xaxis.tickvals") == [32]
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
    assert f"The results below are still those of {SAMPLES[CAT].name}." in v.status()  # and say whose they are
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 200, 3), dtype=np.uint8)).save(good)
    v.upload(good)
    assert "cannot use image" not in v.status()  # the new image cleared the error about the old one
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
    started = time.time()
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
    v.export()
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
    # every view written by this run (not left from an earlier one)
    fresh = {p.name for p in out.glob("*.jpg") if p.stat().st_mtime >= started - 1}
    assert fresh >= {f"{n}.jpg" for n in ("attention", "batch", "compare", "explore", "export", "how_it_works")}
