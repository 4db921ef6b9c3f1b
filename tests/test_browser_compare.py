"""The Compare tab in headless Chromium: two images, one image under two settings, two models."""

import re

import numpy as np
import pytest
from browser_page import ROOT, SAMPLES, library_tokens, needs_browser, sample_index

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_browser


def test_compare_two_images_then_one_image_under_two_settings(visitor, library, tmp_path):
    # stays whole: a walk-through of one tab in the order a person uses it; the page's state carries from step to step
    v = visitor
    v.tab("Compare")
    v.check("compare tab")  # the two default images (A and B) are shown, loaded
    # the two columns line up: image A's box and image B's box start at the same height
    tops = [v.page.locator(f"#cmp-image-{k}").bounding_box()["y"] for k in "ab"]
    assert abs(tops[0] - tops[1]) < 2, tops
    thr = library.default_threshold

    # defaults: two bundled examples of different complexity, one click
    v.compare()
    v.check("compare the defaults")
    got = v.compared()
    assert got["A"][0] == "02_shapes.png" and got["B"][0] == "03_coffee.png", got
    for side, (name, _, tokens) in got.items():
        assert tokens == library_tokens(library, ROOT / "assets" / "samples" / name, threshold=thr), (side, name)
    assert got["A"][2] < got["B"][2]  # the simple image needs fewer tokens
    # a picture's toolbar: download and full screen, no share button (it covered the label's end)
    buttons = v.page.evaluate("() => [...document.querySelectorAll('#cmp-recon-a button')]"
                              ".map(b => (b.getAttribute('aria-label') || b.title || '').toLowerCase())")
    assert any("download" in b for b in buttons) and not any("share" in b for b in buttons), buttons

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
    assert names == ["A: L1", "A: PSNR (dB)", "A: VQGAN alone", "A: selected", "B: L1", "B: PSNR (dB)",
                     "B: VQGAN alone", "B: selected"], names
    assert (curve[3]["x"][0], curve[7]["x"][0]) == (got["A"][2], got["B"][2])
    # the shared slider opens at the later selection, and moves both runs and their difference
    later = max(got["A"][1], got["B"][1])
    assert v.slider_value("Iteration (both runs)") == later and v.slider_max("Iteration (both runs)") == 7
    v.wait_text("#compare-view", rf"A at iteration {later}: {32 * (later + 1)} tokens")
    # two images: the third picture is where each still errs against its own image, A left and B right
    diff_label = "#cmp-diff [data-testid='block-label']"
    assert v.page.locator(diff_label).inner_text() == "Error of each against its image (A left, B right)"
    assert re.search(r"A mean [\d.]+, B mean [\d.]+ of the full range", v.text("#compare-view"))
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
    # a token moved while the iteration's redraw runs stays (the redraw's answer does not put token 31 back)
    with v.redraw_held():
        v.slider_end("Iteration (both runs)", "End")
        v.slider_end("Token (one that both runs have)", "Home")
    v.check("shared iteration 7, token 0 chosen during its redraw")
    v.wait_text("#compare-attention", r"Token 0 \(added at iteration 0\)[\s\S]*A: iteration 7")
    assert v.slider_max("Token (one that both runs have)") == 255
    assert v.slider_value("Token (one that both runs have)") == 0

    # a broken upload for A: its message in the status line, the comparison shown stays
    shown = v.text("#compare-summary")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    v.upload(bad, tab="Compare", box="#cmp-image-a")
    v.compare(expect=None)
    v.check("compare a broken file", refused="A: cannot use image 'broken.png': not an image",
            broken_upload="broken.png")
    assert v.text("#compare-summary") == shown
    assert re.search(r"The comparison below is still the previous one, of \S+\.png and \S+\.png\.", v.status())

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
    assert v.page.locator(diff_label).inner_text() == "Difference |A − B| of the reconstructions"  # one image
    assert float(re.search(r"mean ([\d.]+)", v.text("#compare-view")).group(1)) > 0  # other halting, other pixels
    # an unknown model for B: refused in the status line
    box = v.page.get_by_label("Model B", exact=True)
    box.fill("official:nope")
    box.press("Enter")
    v.compare(expect=None)
    v.check("compare with an unknown model", refused="B: unknown official checkpoint 'nope'")


def test_compare_the_bundled_model_with_another_model(visitor, library, vae_model, tmp_path):
    """B: another model file (a VAE-based model of other counts and iterations): the halting mode it
    lacks is refused, then both run, aligned on the shared slider. A model the server knows (the v2
    preview) offers only the halting modes it takes."""
    import shutil

    from alit_core import load_tokenizer

    # a file of its own: one this server already holds would not offer stochastic halting to be refused
    vae_model = str(shutil.copy(vae_model, tmp_path / "vae_for_compare.pt"))
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
    # a bundled VAE-based model chosen for B: its halting list is its own at once
    v.choose("Halting B", "stochastic")  # (the file's list came before it was known)
    v.choose("Model B", "bundled:v2-preview")
    v.page.wait_for_function("() => document.querySelector('#cmp-halting-b input').value === 'deterministic'",
                             timeout=10_000)
    assert v.options("Halting B") == ["deterministic", "off"]
