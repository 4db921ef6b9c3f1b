"""Share this view in headless Chromium: the link reopens the same view in a fresh page."""

import pytest
from browser_page import CAT, MODEL_BOX, SAMPLES, Page, needs_browser, run_example, selected_tab, share

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = needs_browser


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
    it, tok = "Iteration (0 = the first 32 tokens)", "Token (of all so far at this iteration)"
    v.slider_type(it, 2)
    v.check("iteration 2")
    v.slider_type(tok, 40)
    v.check("token 40")
    v.wait_text("body", r"Iteration 2 \(96 tokens\), decoder layer 2, head mean: token 40")
    metrics, attention = v.metrics(), v.page.locator(".tabitem:visible").last.inner_text()
    v.compare()
    v.check("compare for a link")
    # the iteration's redraw resets the token slider to a token of that iteration: move the token once it is in
    v.slider_end("Iteration (both runs)", "Home")
    v.check("compare at iteration 0")
    v.wait_text("#compare-view", r"A at iteration 0: 32 tokens")
    assert v.slider_max("Token (one that both runs have)") == 31
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


def test_a_link_keeps_another_models_threshold_that_the_visitor_changed(chromium, visitor):
    """The v2 preview at a threshold of the visitor's own: the reopened page runs the same model at that
    threshold, and its box keeps it (choosing a model brings its default, a restored one must not)."""
    v = visitor
    v.context.grant_permissions(["clipboard-read", "clipboard-write"])
    v.tab("Explore")
    v.choose(MODEL_BOX, "bundled:v2-preview")
    label = "L1 threshold (0 to 1; this model's own: 0.07705)"
    v.page.get_by_label(label, exact=True).wait_for()
    v.radio("L1 threshold")
    v.example(CAT)
    v.number(label, 0.09)
    v.tokenize()
    v.check("the preview at L1 0.09")
    v.wait_text("#metrics", r"for L1 < 0\.09\b")
    metrics = v.metrics()
    link = share(v)

    w = Page(chromium, link)
    try:
        w.wait_text("#metrics", "Selected")
        w.check("the preview's link opened")
        assert w.metrics() == metrics
        assert w.page.get_by_label(label, exact=True).input_value() == "0.09"
        assert w.page.get_by_label(MODEL_BOX, exact=True).input_value() == "bundled:v2-preview"
    finally:
        w.close()
