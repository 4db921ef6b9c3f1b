"""The Dataset tab in headless Chromium: a results file's plots and table, its images opened in Explore."""

import re
import time

import numpy as np
import pytest
from browser_page import MEASURES, SAMPLES, Page, hover_point, library_tokens, needs_browser, plot_traces, share

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_browser


@pytest.fixture(scope="module")
def dataset(encoded_dataset):
    """conftest's generated folder of 24 images (4 classes and loose files), its results file, read."""
    from alit_core import read_results

    folder, out = encoded_dataset
    return folder, out, read_results(out)


def test_dataset_tab_plots_a_results_file_and_opens_its_images_in_explore(chromium, visitor, library, dataset,
                                                                          tmp_path):
    # stays whole: a walk-through of one tab in the order a person uses it; the page's state carries from step to step
    folder, out, results = dataset
    v = visitor
    v.tab("Dataset")
    # Open with no path typed: asked for one
    v.page.get_by_role("button", name="Open", exact=True).click()
    time.sleep(0.5)
    v.check("Open without a path", refused="Type the path of a results file (.parquet) first")
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
    # the opened image is the server's own copy: a shared link reopens it (it used to say the image had gone)
    v.context.grant_permissions(["clipboard-read", "clipboard-write"])
    metrics, src = v.metrics(), v.page.locator("#explore-image img").first.get_attribute("src")
    w = Page(chromium, share(v))
    try:
        w.wait_text("#metrics", "Selected")
        w.check("the link of an opened row")
        assert w.metrics() == metrics
        assert w.page.locator("#explore-image img").first.get_attribute("src").endswith(src.rsplit("/", 1)[-1])
    finally:
        w.close()

    # the bundled examples, encoded on the server
    v.tab("Dataset")
    v.page.get_by_role("button", name="Encode the bundled examples").click()
    v.wait_text("#ds-summary", f"the bundled examples: {len(SAMPLES)} images in 1 class")
    v.check("bundled examples")
    assert [t["name"] for t in plot_traces(v, "ds-hist")] == ["all images"]
    hover_point(v)
    assert v.page.locator("#ds-preview img").get_attribute("src").startswith("data:image/jpeg;base64,")
