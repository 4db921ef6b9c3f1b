"""Attention, Export, Batch and How it works in headless Chromium, and many runs in a row; split from
test_browser_explore.py (Explore and its settings) so that the two files run on the two test workers at once.
The checks after every action are browser_page.Page.check's (test_browser_explore.py's docstring says which).
"""

import csv
import io
import json
import re
import time
import zipfile

import numpy as np
import pytest
from browser_page import (
    BATCH_COLUMNS,
    CAT,
    SAMPLES,
    TIMEOUT_MS,
    needs_browser,
    run_example,
)
from PIL import Image

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_browser


# --- Attention and Export ---------------------------------------------------------------------------------
def test_attention_controls_and_every_export(visitor, tmp_path):
    v = visitor
    run_example(v)
    selected = int(re.search(r"Selected: iteration (\d+), (\d+) tokens", v.metrics()).group(2))
    v.tab("Attention")
    it, tok = "Iteration (0 = the first 32 tokens)", "Token (of all so far at this iteration)"
    v.check("attention tab")
    assert "mostly a spatial grid" in v.text("#finding") and "FG-ARI 0.13" in v.text("#finding")
    v.slider_end(it, "Home")
    v.check("iteration 0")
    assert v.slider_max(tok) == 31
    v.slider_end(tok, "End")
    v.check("token 31 at iteration 0")
    v.wait_text("body", r"Iteration 0 \(32 tokens\), decoder layer 2, head mean: token 31")
    # the token moved while the iteration's redraw runs stays: the redraw's answer does not put token 31 back
    with v.redraw_held():
        v.slider_end(it, "End")
        v.slider_end(tok, "Home")
    v.check("iteration 7, token 0 chosen during its redraw")
    v.wait_text("body", r"Iteration 7 \(256 tokens\), decoder layer 2, head mean: token 0 ")
    assert v.slider_max(tok) == 255 and v.slider_value(tok) == 0
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
    # the weights' scale: 1 class token + 256 positions + 32 latents at iteration 0
    v.wait_text("body", r"spread evenly over the decoder's 289 inputs it would be 0\.0035")

    # Export: each file, downloaded and opened
    v.export()
    v.check("export")
    data = json.loads(v.download("_tokens.json", tmp_path).read_text())
    assert data["selected_tokens"] == selected and data["name"] == SAMPLES[CAT].name
    assert data["model"] == "bundled model" and data["selected_for"] == "L1 < 0.0574"  # what made it
    assert data["settings"]["halting"] == "deterministic" and data["settings"]["max_iter"] == 8
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
    assert "Add some images" not in v.status()  # the files added cleared the refusal
    v.page.get_by_role("button", name="Tokenize all").click()
    v.page.wait_for_selector("a[download][href$='alit_batch.csv']", state="attached", timeout=TIMEOUT_MS)
    # the plot is drawn after the download link appears: on a slow CPU the check could come between the two
    v.page.wait_for_selector("#batch-plot .js-plotly-plot", timeout=TIMEOUT_MS)
    s = v.check("batch")
    assert "1 file(s) skipped" in v.status() and "broken.png" in v.status()
    # the skipped file is a warning, in another colour than the faint note about the run
    skipped, note = (v.page.locator(f"#batch-status .alit-status-{k}") for k in ("warning", "note"))
    assert "broken.png" in skipped.inner_text() and "5 image(s)" in note.inner_text()
    colour = "el => getComputedStyle(el).color"
    assert skipped.evaluate(colour) != note.evaluate(colour), (skipped.evaluate(colour), note.evaluate(colour))
    assert len(s["plots"]) == 1 and s["plots"][0]["traces"] >= 2  # the reference set and the batch
    assert "5 image(s) with the bundled model" in v.status() and "for L1 < 0.0574" in v.status()
    rows = list(csv.reader(v.download("alit_batch.csv", tmp_path).read_text().splitlines()))
    assert rows[0] == [*BATCH_COLUMNS, "model", "criterion"] and len(rows) == 1 + 5
    assert sorted(r[0] for r in rows[1:]) == sorted(p.name for p in SAMPLES[:5])
    assert all(int(r[1]) % 32 == 0 and r[2] in ("True", "False") for r in rows[1:])
    assert {(r[-2], r[-1]) for r in rows[1:]} == {("bundled model", "L1 < 0.0574")}
    # the CSV holds the table's rows as shown
    table = v.text("#batch-table")
    assert all(r[0] in table for r in rows[1:])


# --- the race: many runs in a row, every picture loads ------------------------------------------------------
@pytest.mark.parametrize("runs", [3, pytest.param(20, marks=pytest.mark.slow)])
def test_consecutive_runs_load_every_picture(visitor, runs):
    v = visitor
    for r in range(runs):
        v.example((CAT + r) % len(SAMPLES))
        v.tokenize()
        s = v.check(f"run {r + 1} of {runs}")
        assert s["images"] >= 8 + 3, s  # the gallery and the three pictures of the last iteration, at least
