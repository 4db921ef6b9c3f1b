"""The Compare tab's handlers and shared links, called in this process as gradio calls them (no server)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from page_handlers import CAT, ROOT, SAMPLES, explore, legend_outside, names, served_files
from PIL import Image

from app.choices import BUDGET, L1, PSNR
from app.explorer import BUNDLED


@pytest.fixture(scope="module")
def page(app_page):
    return app_page


# --- Compare ----------------------------------------------------------------------------------------------
def compare(h, image_a=SAMPLES[1], image_b=SAMPLES[2], mode=None, model_b=BUNDLED, halting_b="deterministic",
            kind_b=PSNR, value_b=25.0, kind_a=L1, value_a=0.0574, progress=None):
    from app.compare_tab import TWO_IMAGES

    args = (mode or TWO_IMAGES, None if image_a is None else str(image_a), None if image_b is None else str(image_b),
            BUNDLED, "deterministic", kind_a, value_a, model_b, halting_b, kind_b, value_b)
    return h.compare(*args, progress=progress) if progress else h.compare(*args, progress=lambda *a, **k: None)


def library_tokens(tok, path, **criterion) -> int:
    from alit_core import load_image

    return int(tok.encode(load_image(path, size=tok.resolution)[None], **criterion).num_tokens[0])


def picture(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def compared(page):
    """The Compare tab's defaults: two bundled examples of different complexity, one model."""
    from app.layout import COMPARE_DEFAULTS

    calls = []
    update = compare(page[2], *(ROOT / "assets" / "samples" / n for n in COMPARE_DEFAULTS),
                     progress=lambda *a, **k: calls.append((a, k)))
    return update, calls


def test_compare_two_images_shows_both_counts_curves_and_the_shared_iteration(page, compared):
    from app import figures
    from app.layout import COMPARE_DEFAULTS, COMPARE_OUTPUTS

    _, ui, h = page
    update, calls = compared
    assert names(ui, update) == set(COMPARE_OUTPUTS) and update[ui.cmp_status] == ""
    cmp, tok = update[ui.cmp_record], h.cache.get()
    a, b = (r.rec for r in cmp.runs)
    assert (a.name, b.name) == COMPARE_DEFAULTS and cmp.runs[0] is not cmp.runs[1]
    # both counts, as alit_core selects them for these files
    counts = [library_tokens(tok, ROOT / "assets" / "samples" / n, threshold=tok.default_threshold)
              for n in COMPARE_DEFAULTS]
    assert [r.rec.tokens[s] for r, s in zip(cmp.runs, cmp.selected)] == counts and counts[0] < counts[1]
    summary = update[ui.cmp_summary]
    for lab, rec, sel in zip("AB", (a, b), cmp.selected):
        assert (f"**{lab}** · `{rec.name}` · bundled model · halting deterministic — **Selected**: iteration "
                f"{sel}, {rec.tokens[sel]} tokens, for L1 < 0.0574") in summary
    assert f"B selects **{counts[1] - counts[0]} more tokens** than A" in summary
    # progress: every iteration of A, then of B, counted over both
    assert [c[0][0] for c in calls] == [(i, 16) for i in range(1, 17)]
    assert calls[0][1]["desc"] == "A: iteration 0 (0-7)" and calls[-1][1]["desc"] == "B: iteration 7 (0-7)"
    # the overlaid curves, both selections starred at their counts, the legend off the data
    fig = update[ui.cmp_curve]
    assert [t.name for t in fig.data] == ["A: L1", "A: PSNR (dB)", "A: VQGAN alone", "A: selected", "B: L1",
                                          "B: PSNR (dB)", "B: VQGAN alone", "B: selected"]
    assert (fig.data[3].x[0], fig.data[7].x[0]) == tuple(counts) and legend_outside(fig)
    # the shared L1 target: one dashed line, in neither run's colour
    targets = [sh for sh in fig.layout.shapes if sh.line.dash == "dash"]
    assert len(targets) == 1 and targets[0].y0 == 0.0574
    assert targets[0].line.color not in figures.RUN_COLOURS and targets[0].line.color != "red"
    # each image's own VQGAN alone, a line across the counts in its run's colour: the level its curve flattens near
    for trace, run, curve in zip((fig.data[2], fig.data[6]), cmp.runs, (fig.data[0], fig.data[4])):
        assert list(trace.y) == [run.rec.base_l1] * 2 and list(trace.x) == [32, 256]
        assert trace.line.color == curve.line.color and trace.line.dash == "dashdot"
    assert fig.data[2].y[0] != fig.data[6].y[0]
    # the shared slider opens at the later selection; both runs and their difference at that iteration
    t = max(cmp.selected)
    assert update[ui.cmp_iteration]["value"] == t and update[ui.cmp_iteration]["maximum"] == 7
    assert update[ui.cmp_iteration]["label"] == "Iteration (both runs)"
    assert np.array_equal(picture(update[ui.cmp_recon_a]), figures.enlarge(a.recons[t]))
    assert np.array_equal(picture(update[ui.cmp_recon_b]), figures.enlarge(b.recons[t]))
    # two images: where each reconstruction still errs against its own image, side by side (their difference
    # would measure nothing)
    diff, means = figures.error_pair([(a.recons[t], a.image), (b.recons[t], b.image)], vmax=0.5)
    assert update[ui.cmp_diff]["label"] == "Error of each against its image (A left, B right)"
    assert np.array_equal(picture(update[ui.cmp_diff]["value"]), diff) and diff.shape[1] == 2 * diff.shape[0] + 8
    assert f"A mean {means[0]:.4f}, B mean {means[1]:.4f}" in update[ui.cmp_view_md] and means[0] < means[1]
    assert f"**B** at iteration {t}: {b.tokens[t]} tokens" in update[ui.cmp_view_md]
    for comp in (ui.cmp_recon_a, ui.cmp_recon_b, ui.cmp_diff, ui.cmp_attn_a, ui.cmp_attn_b):
        value = update[comp]["value"] if comp is ui.cmp_diff else update[comp]
        assert isinstance(value, str) and len(served_files(comp, value)) == 1


def test_the_shared_sliders_move_both_runs(page, compared):
    from app.layout import COMPARE_VIEW_OUTPUTS

    _, ui, h = page
    first, cmp = compared[0], compared[0][ui.cmp_record]
    view = h.compare_view(cmp, 0, 200)
    assert names(ui, view) == set(COMPARE_VIEW_OUTPUTS) and view[ui.cmp_status] == ""
    for comp in (ui.cmp_recon_a, ui.cmp_recon_b, ui.cmp_diff):
        now, then = (v[comp]["value"] if comp is ui.cmp_diff else v[comp] for v in (view, first))
        assert now != then and not np.array_equal(picture(now), picture(then))
    assert view[ui.cmp_token] == {"maximum": 31, "value": 31, "__type__": "update"}  # 32 tokens at iteration 0
    assert "**A** at iteration 0: 32 tokens" in view[ui.cmp_view_md]
    assert view[ui.cmp_attn_md].startswith("Token 31 (added at iteration 0)")
    # the range grew and token 200 is in it: no value sent, so a token moved while this redraw ran stays
    late = h.compare_view(cmp, 7, 200)
    assert late[ui.cmp_token] == {"maximum": 255, "__type__": "update"} and "(added at iteration 6)" in late[
        ui.cmp_attn_md]
    shrunk = h.compare_view(cmp, 1, 40)  # a token chosen meanwhile could lie above 63: the value is sent
    assert shrunk[ui.cmp_token] == {"maximum": 63, "value": 40, "__type__": "update"}
    assert late[ui.cmp_attn_a] != view[ui.cmp_attn_a]
    again = h.compare_view(cmp, 0, 31)
    assert again[ui.cmp_recon_a] == view[ui.cmp_recon_a]  # each reconstruction written once
    assert names(ui, h.compare_view(None, 3, 0)) == {"cmp_status"}


def test_one_image_under_two_criteria_is_one_rollout(page):
    from app.compare_tab import TWO_SETTINGS

    _, ui, h = page
    calls = []
    update = compare(h, image_a=CAT, image_b=None, mode=TWO_SETTINGS, progress=lambda *a, **k: calls.append(a))
    cmp = update[ui.cmp_record]
    assert cmp.runs[0] is cmp.runs[1] and len(calls) == 8  # computed once
    tok = h.cache.get()
    assert cmp.runs[0].rec.tokens[cmp.selected[1]] == library_tokens(tok, CAT, psnr=25.0)
    assert "One rollout serves both" in update[ui.cmp_summary] and "mean 0.0000" in update[ui.cmp_view_md]
    assert update[ui.cmp_diff]["label"] == "Difference |A − B| of the reconstructions"  # one image: their difference
    assert " px, both enlarged" not in update[ui.cmp_view_md]  # one model: nothing about sizes


def test_compare_refuses_bad_input_in_its_status_line(page, compared, tmp_path):
    from app.compare_tab import TWO_SETTINGS

    _, ui, h = page
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    for kwargs, message in (
            (dict(image_a=None), "A: Upload an image or pick an example first."),
            (dict(image_b=None), "B: Upload an image or pick an example first."),
            (dict(image_b=bad), "B: cannot use image 'broken.png': not an image"),
            (dict(value_a=3.0), "A: An L1 threshold is a mean absolute error"),
            (dict(mode=TWO_SETTINGS, value_b=500), "B: A PSNR target is in dB"),
            (dict(mode=TWO_SETTINGS, model_b="official:nope"), "B: unknown official checkpoint 'nope'"),
            (dict(mode=TWO_SETTINGS, model_b="/nowhere/model.pt"), "B: checkpoint not found"),
            (dict(mode=TWO_SETTINGS, halting_b="sometimes"), "B: This model takes halting")):
        update = compare(h, **kwargs)
        assert names(ui, update) == {"cmp_status"} and message in update[ui.cmp_status], (kwargs, update)
        assert "alit-status-error" in update[ui.cmp_status] and "still the previous one" not in update[ui.cmp_status]
    # with a comparison on the page, the refusal says it is still there, and whose it is
    from app.compare_tab import TWO_IMAGES
    from app.layout import COMPARE_DEFAULTS

    previous = compared[0][ui.cmp_record]
    args = (TWO_IMAGES, str(SAMPLES[1]), str(bad), BUNDLED, "deterministic", L1, 0.0574, BUNDLED, "deterministic",
            PSNR, 25.0)
    update = h.compare(*args, previous, progress=lambda *a, **k: None)
    a, b = COMPARE_DEFAULTS
    assert "B: cannot use image 'broken.png'" in update[ui.cmp_status]
    assert f". The comparison below is still the previous one, of {a} and {b}.</div>" in update[ui.cmp_status]


def test_compare_another_model_of_other_counts_and_a_halting_mode_it_lacks(page, tmp_path):
    """B on a small VAE-based model (4 iterations of 4 tokens): stochastic halting is refused, the
    modes it has run, and the shared slider keeps B on its last iteration beyond its 4."""
    from conftest import small_config

    from alit_core import ALIT, Tokenizer, VAEConfig, save_checkpoint
    from app.compare_tab import TWO_SETTINGS

    _, ui, h = page
    vae = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(16,),
                    decoder_attn_resolutions=())
    torch.manual_seed(0)
    model = str(save_checkpoint(Tokenizer(ALIT(small_config(vae=vae)), "cpu"), tmp_path / "vae.pt"))
    refused = compare(h, image_a=CAT, mode=TWO_SETTINGS, model_b=model, halting_b="stochastic", kind_b=L1,
                      value_b=0.05)
    assert "B: This model takes halting 'deterministic' or 'off', not 'stochastic'" in refused[ui.cmp_status]
    update = compare(h, image_a=CAT, mode=TWO_SETTINGS, model_b=model, kind_b=L1, value_b=0.05)
    cmp = update[ui.cmp_record]
    assert cmp.iterations == 8 and cmp.at(7) == (7, 3)
    assert cmp.runs[1].rec.tokens[cmp.selected[1]] == library_tokens(h.cache.get(model), CAT, threshold=0.05)
    view = h.compare_view(cmp, 7, 100)
    assert "**B** at iteration 3 (its last: 4 iterations): 16 tokens" in view[ui.cmp_view_md]
    assert view[ui.cmp_token]["value"] == 15  # a token both runs have
    # now that the server holds it, choosing it again offers only its modes; an unknown file offers every one
    assert h.compare_halting(model, "stochastic") == {"choices": ["deterministic", "off"], "value": "deterministic",
                                                      "__type__": "update"}
    assert h.compare_halting(str(tmp_path / "other.pt"), "stochastic")["choices"] == ["deterministic", "stochastic",
                                                                                       "off"]
    assert h.compare_halting(BUNDLED, "off")["value"] == "off"


def test_compare_controls_follow_the_mode_criterion_and_model(page):
    from app.compare_tab import TWO_IMAGES, TWO_SETTINGS

    _, ui, h = page
    two = h.compare_mode(TWO_SETTINGS)
    assert two[ui.cmp_image_b_box]["visible"] is False and two[ui.cmp_settings_b]["visible"] is True
    one = h.compare_mode(TWO_IMAGES)
    assert one[ui.cmp_image_b_box]["visible"] is True and "for both images" in one[ui.cmp_settings_a_md]
    assert h.compare_value(PSNR, BUNDLED, "B") == {"label": "B: PSNR target (dB, 1 to 100)", "value": 25.0,
                                                   "__type__": "update"}
    assert h.compare_value(BUDGET, BUNDLED, "A")["value"] == 128
    assert h.compare_value(L1, BUNDLED, "A")["value"] == h.cache.get().default_threshold
    assert h.compare_value(L1, "official:in100-small-vqgan-quantized", "B")["value"] == 0.07
    # the page's own defaults: two examples of different complexity, B's criterion another one
    assert Path(ui.cmp_image_a.value["path"]).name != Path(ui.cmp_image_b.value["path"]).name
    assert ui.cmp_kind_b.value == PSNR and ui.cmp_value_a.value == h.cache.get().default_threshold


# --- Share ------------------------------------------------------------------------------------------------
def test_a_shared_view_restores_the_run_the_comparison_and_the_tabs(page, compared, tmp_path):
    """share_view's JSON (what a link keeps) opens as the same view: the controls, the tabs, the run at
    its iteration and token, the comparison at its own; an image the server no longer holds is said so."""
    from app.share import UNREADABLE
    from app.uploads import GONE

    _, ui, h = page
    last = explore(h, kind=PSNR, max_iterations=8)[-1]
    run, cmp = last[ui.record], compared[0][ui.cmp_record]
    view = h.share_view(run, cmp, {"tabs": "compare", "explore_tabs": "attention"}, PSNR, 0.0574, 25.0, 128,
                        "entropy", 2, 40, "mean", 0.3, 7, 200)
    data = json.loads(view)
    assert data["explore"]["image"] == str(CAT) and data["explore"]["kind"] == PSNR
    assert data["attention"] == {"iteration": 2, "token": 40, "head": "mean", "opacity": 0.3}
    assert data["compare"]["cmp_image_a"].endswith("02_shapes.png") and data["compare_view"]["token"] == 200
    update = h.restore(view, progress=lambda *a, **k: None)
    assert update[ui.tabs]["selected"] == "compare" and update[ui.explore_tabs]["selected"] == "attention"
    assert update[ui.image] == str(CAT) and update[ui.kind] == PSNR and update[ui.psnr]["visible"] is True
    assert update[ui.measure] == "entropy" and update[ui.record].done
    # the threshold box keeps the link's value and the label the run gave it (the model's own threshold)
    assert update[ui.l1]["value"] == 0.0574 and update[ui.l1]["label"] == "L1 threshold (0 to 1; this model's own: 0.0574)"
    assert update[ui.iteration]["value"] == 2 and update[ui.token]["value"] == 40
    assert update[ui.attn_md].startswith("Iteration 2 (96 tokens), decoder layer 2, head mean: token 40")
    assert update[ui.metrics] == last[ui.metrics]
    # (the comparison's own first view, at its selection, never reaches the page: the token is sent)
    assert update[ui.cmp_iteration]["label"] == "Iteration (both runs)"
    assert update[ui.cmp_iteration]["value"] == 7 and update[ui.cmp_token] == {"maximum": 255, "value": 200,
                                                                               "__type__": "update"}
    assert update[ui.cmp_summary] == compared[0][ui.cmp_summary]
    # a page opened without a link: nothing to restore; a link whose image is gone: said so
    assert list(h.restore("", progress=None)) == [ui.tab_state]
    elsewhere = tmp_path / "private.png"  # a file of the server's that no visitor sent: never read
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(elsewhere)
    for path in (tmp_path / "gone.png", elsewhere):
        link = json.dumps({**data, "explore": {**data["explore"], "image": str(path)},
                           "compare": {**data["compare"], "cmp_image_b": str(path)}})
        update = h.restore(link, progress=None)
        assert GONE in update[ui.status] and update[ui.image] is None and ui.record not in update
        assert GONE in update[ui.cmp_status] and update[ui.cmp_image_b] is None and ui.cmp_record not in update
    # a link changed by hand or made by another version of the page: said so, never an exception
    for odd in ("[1]", '{"tabs": [1]}', json.dumps({"tabs": {"tabs": "nowhere"}}),
                json.dumps({**data, "explore": {"image": str(CAT)}}), json.dumps({**data, "compare": [1, 2]})):
        update = h.restore(odd, progress=None)
        assert all(s.get("selected") in (None, "explore", "compare", "attention", "export")
                   for s in update.values() if isinstance(s, dict))
    update = h.restore(json.dumps({**data, "explore": {"image": str(CAT)}, "compare": "x"}), progress=None)
    assert UNREADABLE in update[ui.status] and UNREADABLE in update[ui.cmp_status]


def test_shared_links_older_than_the_files_are_swept(tmp_path):
    import time

    from app.files import sweep_deep_links

    old, new = (tmp_path / "deep_links" / name for name in ("old", "new"))
    for link in (old, new):
        link.mkdir(parents=True)
        (link / "state.json").write_text("[]")
    past = time.time() - 120
    os.utime(old / "state.json", (past, past))
    assert sweep_deep_links(tmp_path, older_than_s=60) == 1
    assert not old.exists() and (new / "state.json").exists()
    assert sweep_deep_links(tmp_path / "missing", older_than_s=60) == 0


def test_a_side_that_keeps_no_token_is_compared_without_a_ratio(page):
    """KARL at a loose desired L1 may halt every latent: A's count is 0, and the summary still reads."""
    from types import SimpleNamespace

    from app.explorer import Record

    _, _, h = page

    def side(n):
        rec = Record(name="x.png", image=np.zeros((64, 64, 3), np.uint8), grid=16, tokens=[n], l1=[0.3],
                     psnr=[12.0], family="karl", budgets=[64], quality=0.5, quality_bin=0.5)
        return SimpleNamespace(rec=rec, model="karl.pt", model_iterations=1)

    cmp = SimpleNamespace(runs=[side(0), side(12)], crits=[None, None], selected=[0, 0], halting=["off", "off"])
    assert "B selects **12 more tokens** than A." in h.comparison_md(cmp)
    # two KARL runs: the shared slider moves through passes, and says so
    from app.runs import Comparison

    both = Comparison(runs=(side(0), side(12)), crits=(None, None), selected=(0, 0), halting=("off", "off"))
    assert both.step_label == "Pass (both runs)" and not both.mixed


def test_the_bundled_model_against_the_v2_preview_on_one_image(page):
    """The comparison a class is shown: v1 (64 px) and the v2 preview (128 px) on one photo, each at its own
    threshold; both counts are alit_core's, and the difference is taken at the display size."""
    from app.compare_tab import TWO_SETTINGS

    _, ui, h = page
    preview = h.cache.get("bundled:v2-preview")
    update = compare(h, image_a=CAT, mode=TWO_SETTINGS, model_b="bundled:v2-preview", kind_b=L1,
                     value_b=preview.default_threshold)
    assert update[ui.cmp_status] == ""
    cmp = update[ui.cmp_record]
    a, b = (run.rec for run in cmp.runs)
    assert (a.recons[0].shape[0], b.recons[0].shape[0]) == (64, 128)
    assert a.tokens[cmp.selected[0]] == library_tokens(h.cache.get(), CAT, threshold=0.0574)
    assert b.tokens[cmp.selected[1]] == library_tokens(preview, CAT, threshold=preview.default_threshold)
    assert "`04_cat.png` · bundled:v2-preview" in update[ui.cmp_summary]
    assert update[ui.cmp_diff]["label"] == "Difference |A − B| of the reconstructions"
    assert picture(update[ui.cmp_diff]["value"]).shape[:2] == picture(update[ui.cmp_recon_a]).shape[:2]
    assert "; A is 64 px and B 128 px, both enlarged to the picture's size" in update[ui.cmp_view_md]
