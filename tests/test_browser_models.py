"""KARL and ALIT-VAE model files in the page (headless Chromium), and a released KARL checkpoint offline."""

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from browser_page import (
    CAT,
    MODEL_BOX,
    PASS,
    QUALITY,
    SAMPLES,
    Page,
    karl_count,
    library_tokens,
    needs_browser,
    type_model,
)
from PIL import Image

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_browser


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


def drive_vae_karl_and_offline(v: Page, library, karl: str, vae: str, tmp_path: Path, passes: list[int]):
    # stays whole: a walk-through of the models in the order a person uses them; the page's state carries on
    """An ALIT-VAE file and a KARL file typed into the model box and run in the page, their counts those of
    alit_core; KARL's quality slider, attention, exports and Compare against the bundled model; a released
    KARL checkpoint that cannot be downloaded: the status line names it, its address and its path."""
    import shutil

    from alit_core import load_tokenizer

    # a file of its own: a model this server already holds (Compare's tests load the same one) has its halting
    # list cut to its modes as soon as it is typed, and stochastic could not be chosen to be refused
    vae = str(shutil.copy(vae, tmp_path / "vae_not_yet_loaded.pt"))
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
    # the settings, sized to this model once it has run: its halting modes, its iterations, its tokens per
    # iteration on the attention's iteration slider
    per, last = vae_tok.config.latents_per_iteration, vae_tok.config.max_tokens
    assert v.options("Halting") == ["deterministic", "off"]
    assert v.slider_max("Maximum iterations") == vae_tok.config.iterations == 4
    assert v.slider_max(f"Iteration (0 = the first {per} tokens)") == 4 - 1
    v.page.wait_for_function("(n) => { const p = document.querySelector('#scatter .js-plotly-plot'); "
                             "return p && p.layout.yaxis.dtick === n; }", arg=per, timeout=10_000)  # its count steps
    # How it works tells this model's sizes, not the bundled model's 32 tokens an iteration
    v.tab("How it works")
    v.wait_text("body", rf"\+ {per} new latent tokens \(each iteration\)")
    v.wait_text("body", rf"latent tokens so far \({per}, {2 * per}, \.\.\. {last}\)")
    v.tab("Explore")

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
    v.tab("How it works")  # KARL's text, with this model's encode budget
    v.wait_text("body", rf"How KARL decides [\s\S]* for T = {top} by default")
    v.tab("Explore")
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
    assert v.slider_max("Token (of all the latents of this pass)") == passes[0] - 1
    v.wait_text("#explore-gallery", r"^Every pass of the budget sweep \(★ = selected")
    assert v.page.get_by_role("button", name="▶ Play through the passes").is_visible()
    v.wait_text("body", rf"KARL, budget {passes[0]} \(\d+ tokens\), decoder layer")
    # exports of the sweep, downloaded and opened
    v.export()
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
    # the shared slider says what it moves through: A's iterations, B's nearest pass beside them
    assert "Iteration of A (the KARL side shows its pass nearest that count)" in v.text("#cmp-iteration")
    names = v.page.evaluate("() => document.querySelector('#compare-curve .js-plotly-plot').data.map(t => t.name)")
    assert names == ["A: L1", "A: PSNR (dB)", "A: VQGAN alone", "A: selected", "B: L1", "B: PSNR (dB)",
                     "B: selected"], names

    # a released KARL checkpoint, offline: the status line says so, nothing else breaks
    v.tab("Explore")
    released = "official:karl-in100-small-vqgan-quantized"
    v.choose(MODEL_BOX, released)  # (it is in the list)
    v.page.locator("#karl-quality").wait_for(state="visible")  # a KARL name: its settings before any download
    v.tokenize(expect=None)
    v.check("a released KARL checkpoint offline", refused="could not be downloaded")
    status = v.status()
    assert "karl_small_vqgan_quantized_latents.pth" in status and "dropbox.com" in status, status

    # the v2 preview, bundled: chosen from the list, its own threshold in the box at once, the page's count
    # that of alit_core, and How it works names it
    preview = load_tokenizer("bundled:v2-preview", device="cpu")
    v.choose(MODEL_BOX, "bundled:v2-preview")
    # (null-safe: the box is hidden after the KARL model until this choice shows it again)
    v.page.wait_for_function("(t) => { const e = document.querySelector('#explore-l1 input'); "
                             "return e && e.value === String(t); }", arg=preview.default_threshold, timeout=10_000)
    # and its label names that threshold, not the default model's
    assert v.page.get_by_label(f"L1 threshold (0 to 1; this model's own: {preview.default_threshold:g})",
                               exact=True).is_visible()
    assert v.options("Halting") == ["deterministic", "off"]  # VAE-based: no stochastic halting offered
    v.tokenize()
    v.check("the bundled v2 preview")
    n = library_tokens(preview, SAMPLES[CAT], threshold=preview.default_threshold)
    assert re.search(rf"Selected: iteration \d+, {n} tokens", v.metrics()), (n, v.metrics())
    assert len(v.gallery_captions()) == preview.config.iterations
    # the complexity plot's reference points are the preview's own counts (its reference set), not v1's
    shipped = json.loads((SAMPLES[CAT].parent.parent / "reference_set_v2_preview.json").read_text())["images"]
    points = v.page.evaluate("() => document.querySelector('#scatter .js-plotly-plot').data"
                             ".filter(t => t.marker.symbol !== 'star')"
                             ".flatMap(t => t.text.map((n, i) => [n, Math.round(t.y[i] / 32) * 32]))")  # (jittered)
    assert sorted(map(tuple, points)) == sorted((r["name"], r["tokens"]) for r in shipped)
    legend = v.page.evaluate("() => document.querySelector('#scatter .js-plotly-plot').layout.legend.title.text")
    assert legend == f"reference at L1 < {preview.default_threshold:g}"  # the threshold those counts are at
    assert v.page.locator("#scatter .legendtitletext").text_content() == legend  # drawn on the page (SVG)
    v.tab("How it works")
    v.wait_text("body", r"bundled:v2-preview, a preview of the model we are still training on a CPU \(trained "
                        r"[\d,]+ steps so far, 128 px, 16x16 grid\)")
    v.wait_text("body", "decoder transformer ──► VAE latent for every 2D position")  # its base tokenizer, not a VQGAN


def test_karl_and_vae_models_in_the_page_and_a_released_one_offline(visitor, library, karl_model, vae_model, tmp_path):
    drive_vae_karl_and_offline(visitor, library, karl_model, vae_model, tmp_path, [8 * (i + 1) for i in range(8)])


@pytest.mark.slow
def test_karl_and_vae_models_of_the_reference_layouts_in_the_page(visitor, library, reference_models, tmp_path):
    karl, vae = reference_models
    drive_vae_karl_and_offline(visitor, library, karl, vae, tmp_path, [32 * (i + 1) for i in range(8)])
