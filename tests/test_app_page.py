"""The page's handlers, called in this process as gradio calls them (no server): what each control
changes, and what it must leave alone. One streamed run of the bundled model on a sample is shared.
"""

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio import processing_utils
from gradio.data_classes import FileData
from gradio_client import utils as client_utils
from PIL import Image

from app import texts
from app.batch_tab import BATCH_COLUMNS
from app.choices import BUDGET, L1, PSNR
from app.explorer import BUNDLED, ModelCache
from app.files import OutputDir
from app.layout import ATTENTION_OUTPUTS, EXPLORE_OUTPUTS, make_page

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))
CAT = next(p for p in SAMPLES if "cat" in p.name)


@pytest.fixture(scope="module")
def page(app_page):
    return app_page


def explore(h, image=CAT, kind=L1, l1=None, psnr=25.0, budget=128, max_iterations=8, layer=-1):
    l1 = h.cache.get().default_threshold if l1 is None else l1
    return list(h.run(str(image), BUNDLED, "cpu", "float32", kind, l1, psnr, budget, max_iterations, "deterministic",
                      0, layer, "png_bpp"))


@pytest.fixture(scope="module")
def streamed(page):
    return explore(page[2])


@pytest.fixture(scope="module")
def run(page, streamed):
    return streamed[-1][page[1].record]


def names(ui, update) -> set[str]:
    by_id = {id(v): k for k, v in vars(ui).items()}
    return {by_id[id(k)] for k in update}


def served_files(component, value) -> list[str]:
    """What gradio does with an output before the browser fetches it: postprocess, then its cache."""
    payload = component.postprocess(value)
    payload = processing_utils.move_files_to_cache(payload, component, postprocess=True)
    found = []
    client_utils.traverse(payload, lambda d: found.append(FileData(**d).path) or d, client_utils.is_file_obj)
    return found


# --- the race: files served while being rewritten ----------------------------------------------------------
class FileWrites:
    """Every file opened for writing while active (Python's audit hook on "open"; it cannot be removed,
    so it stays switched off outside the test)."""

    def __init__(self):
        self.paths: list[str] = []
        self.active = False
        sys.addaudithook(self.hook)

    def hook(self, event, args):
        if self.active and event == "open" and isinstance(args[0], (str, os.PathLike)):
            mode, flags = args[1], args[2] or 0
            if (mode and any(c in mode for c in "wax+")) or flags & (os.O_WRONLY | os.O_RDWR):
                self.paths.append(os.path.realpath(args[0]))


def test_streamed_pictures_are_files_that_are_never_rewritten_once_served(page):
    """Every picture of the stream reaches gradio as a path to a finished file, and no file the browser
    was given is opened for writing again while the run goes on. (Given numpy pictures, gradio wrote
    each to a file named by its content and rewrote that file in place whenever the gallery re-sent
    it, while a browser could be reading it: ERR_CONTENT_LENGTH_MISMATCH.)"""
    _, ui, h = page
    pictures = (ui.gallery, ui.current, ui.halt_map, ui.error_map, ui.compare)
    writes = FileWrites()
    served: dict[str, int] = {}  # path -> how many writes had happened when it was first served
    writes.active = True
    try:
        for update in h.run(str(CAT), BUNDLED, "cpu", "float32", L1, 0.0574, 25, 128, 8, "deterministic", 0, -1,
                            "png_bpp"):
            for comp in pictures:
                if comp not in update:
                    continue
                value = update[comp]
                raw = [v[0] if isinstance(v, tuple) else v for v in (value if isinstance(value, (list, tuple))
                                                                      else [value])]
                assert all(isinstance(v, str) and os.path.isfile(v) for v in raw), raw
                for path in served_files(comp, value):
                    served.setdefault(os.path.realpath(path), len(writes.paths))
    finally:
        writes.active = False
    assert len(served) >= 8 * 3  # every iteration's reconstruction, halting and error maps
    again = [p for i, p in enumerate(writes.paths) if p in served and i >= served[p]]
    assert not again, f"served files written again: {sorted(set(again))[:3]}"


def test_output_folders_are_capped(tmp_path):
    out = OutputDir(tmp_path, keep=3)
    made = [out.folder() for _ in range(5)]
    assert out.folders() == made[2:]


# --- export ---------------------------------------------------------------------------------------------
def test_export_gives_str_paths_that_gradio_serves_and_the_files_hold_the_run(page, run):
    _, ui, h = page
    update = h.export(run, run.rec.select(h.criterion(L1, 0.0574, None, None)))
    assert names(ui, update) == {"files", "status"} and update[ui.status] == ""
    paths = update[ui.files]
    assert all(isinstance(p, str) for p in paths)  # gradio 6 refuses PosixPath ("Expected str | list[str]")
    assert len(served_files(ui.files, paths)) == 4
    rec, sel = run.rec, run.rec.select(h.criterion(L1, 0.0574, None, None))
    data = json.loads(Path(paths[0]).read_text())
    assert data["selected_iteration"] == sel and data["selected_tokens"] == rec.tokens[sel]
    assert [it["iteration"] for it in data["iterations"]] == list(range(8))  # numbered from 0
    assert [it["tokens"] for it in data["iterations"]] == rec.tokens
    npz = np.load(paths[1])
    assert npz["recons"].shape == (8, 64, 64, 3) and npz["tokens"].tolist() == rec.tokens
    assert np.array_equal(npz["image"], rec.image) and int(npz["selected"]) == sel
    with zipfile.ZipFile(paths[2]) as z:
        pngs = sorted(z.namelist())
        assert len(pngs) == 8 and pngs[0] == "iteration_0_32_tokens.png"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(z.read(pngs[0])))), rec.recons[0])
    gif = Image.open(paths[3])
    assert gif.n_frames == 1 + 8  # the original, then one frame per iteration


def test_export_before_a_run_says_so_in_the_status_line(page):
    _, ui, h = page
    update = h.export(None, None)
    assert names(ui, update) == {"status"} and "Tokenize an image first" in update[ui.status]


# --- legends ----------------------------------------------------------------------------------------------
def legend_outside(fig) -> bool:
    lg = fig.layout.legend
    return ((lg.yanchor == "bottom" and lg.y >= 1) or (lg.yanchor == "top" and lg.y <= 0)
            or (lg.xanchor == "left" and lg.x >= 1))


def test_every_plot_keeps_its_legend_outside_the_data(page, run):
    _, ui, h = page
    views = h.views(run, h.criterion(L1, 0.0574, None, None), 7, "png_bpp")
    batch = h.batch([str(p) for p in SAMPLES], BUNDLED, L1, 0.0574, 25, 128, "png_bpp")
    for fig in (views[ui.curve], views[ui.scatter], views[ui.comp], batch[ui.batch_plot]):
        assert legend_outside(fig), fig.layout.legend
    # the visitor's images are stars without labels next to them (labels covered each other)
    stars = [t for t in batch[ui.batch_plot].data if t.marker.symbol == "star"]
    assert len(stars) == 1 and len(stars[0].x) == len(SAMPLES) and "text" not in (stars[0].mode or "")


# --- attention ----------------------------------------------------------------------------------------
def test_token_slider_and_click_table_follow_the_iteration(page, run):
    _, ui, h = page
    assert set(ATTENTION_OUTPUTS) >= names(ui, h.attention(run, 7, 200, "mean", 0.5, None))
    late = h.attention(run, 7, 200, "mean", 0.5, (5, 9))
    assert late[ui.token]["maximum"] == 255 and late[ui.token]["value"] == 200  # token 200 exists at iteration 7
    early = h.attention(run, 0, 200, "mean", 0.5, (5, 9))
    assert early[ui.token]["maximum"] == 31 and early[ui.token]["value"] == 31  # only 32 tokens at iteration 0
    listed = [int(row.split("|")[1]) for row in early[ui.who].splitlines() if row.startswith("| ") and
              row.split("|")[1].strip().isdigit()]
    assert len(listed) == 5 and all(k < 32 for k in listed), early[ui.who]
    assert "iteration 0 (32 tokens)" in early[ui.who].lower()


def test_clicking_the_overlay_lists_that_positions_tokens(page, run):
    import gradio as gr

    _, ui, h = page
    evt = gr.SelectData(ui.overlay, {"index": [250, 5], "value": None})  # top right of the 256-pixel picture
    update = h.who_attends(run, 3, "mean", evt)
    assert update[ui.clicked] == (0, 15)
    assert "row 0, column 15" in update[ui.who] and "128 tokens" in update[ui.who]


# --- criterion ----------------------------------------------------------------------------------------
def test_each_criterion_has_its_own_value_default_and_range(page):
    _, ui, h = page
    tok = h.cache.get()
    assert ui.l1.value == tok.default_threshold and ui.psnr.value == 25
    assert (ui.budget.minimum, ui.budget.maximum, ui.budget.step) == (32, 256, 32)
    for kind, shown in ((L1, "l1"), (PSNR, "psnr"), (BUDGET, "budget")):
        update = h.reselect(None, kind, tok.default_threshold, 25, 128, "png_bpp")
        assert {n: update[getattr(ui, n)]["visible"] for n in ("l1", "psnr", "budget")} == {
            n: n == shown for n in ("l1", "psnr", "budget")}


def test_a_budget_selects_the_largest_count_that_fits_and_says_so(page, run):
    _, ui, h = page
    update = h.reselect(run, BUDGET, 0.0574, 25, 130, "png_bpp")
    assert update[ui.selected] == 3 and run.rec.tokens[3] == 128
    assert "128 tokens: the largest count that fits in the budget of 130" in update[ui.metrics]
    assert h.reselect(run, BUDGET, 0.0574, 25, 256, "png_bpp")[ui.selected] == 7
    below = h.reselect(run, BUDGET, 0.0574, 25, 20, "png_bpp")  # /explore takes any number; the slider 32-256
    assert below[ui.selected] == 0 and "the budget of 20 is below the first iteration's 32 tokens" in below[ui.metrics]
    short = explore(h, kind=BUDGET, budget=256, max_iterations=2)[-1]
    assert short[ui.selected] == 1 and "the most this run computed (2 iterations)" in short[ui.metrics]


def test_a_value_out_of_range_goes_to_the_status_line_and_changes_nothing_else(page, run):
    _, ui, h = page
    for kind, l1, psnr in ((PSNR, 0.0574, 500.0), (L1, 3.0, 25.0), (L1, None, 25.0), (PSNR, 0.0574, None)):
        update = h.reselect(run, kind, l1, psnr, 128, "png_bpp")
        assert names(ui, update) == {"l1", "psnr", "budget", "status"}  # only which box shows, and the message
        assert "cannot be used" in update[ui.status] and "alit-status-error" in update[ui.status]
    # a criterion the page does not offer (an API call's): refused, never read as an L1 threshold
    update = h.reselect(run, "l1", 0.0574, 25.0, 128, "png_bpp")
    assert "'l1' is not one" in update[ui.status] and "alit-status-error" in update[ui.status]


# --- bad input --------------------------------------------------------------------------------------------
def test_a_bad_upload_changes_only_the_status_line(page, tmp_path):
    _, ui, h = page
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    updates = explore(h, image=bad)
    assert len(updates) == 1 and names(ui, updates[0]) == {"status"}
    assert "cannot use image 'broken.png'" in updates[0][ui.status]
    for layer in (3, -4):  # the bundled decoder has 3 layers
        updates = explore(h, layer=layer, max_iterations=1)
        assert names(ui, updates[0]) == {"status"} and "0 to 2" in updates[0][ui.status]


def test_the_next_run_clears_the_error_and_shows_the_images_notes(page, tmp_path):
    _, ui, h = page
    wide = tmp_path / "wide.png"
    Image.fromarray(np.full((20, 90, 3), 200, np.uint8)).save(wide)
    first = explore(h, image=wide, max_iterations=1)[0]
    assert "only its centred 20x20 square" in first[ui.status] and "alit-status-error" not in first[ui.status]


# --- numbering ------------------------------------------------------------------------------------------
def test_iterations_are_numbered_from_zero_on_the_page(page, streamed, run):
    _, ui, h = page
    assert streamed[0][ui.metrics].startswith("**Iteration 0** of 0-7: 32 tokens")
    assert streamed[-1][ui.gallery][0][1].startswith("iteration 0 · 32 tokens")
    sel = streamed[-1][ui.selected]
    assert f"**Selected**: iteration {sel}, {run.rec.tokens[sel]} tokens" in streamed[-1][ui.metrics]
    first = run.rec.summary(sel)["iterations"][0]  # what the JSON export and /tokenize give
    assert (first["iteration"], first["tokens"]) == (0, 32)
    attn = h.attention(run, 2, 70, "mean", 0.5, None)
    assert attn[ui.attn_md].startswith("Iteration 2 (96 tokens)") and "(added at iteration 2)" in attn[ui.attn_md]


def test_explore_outputs_start_with_status_and_metrics(page, streamed):
    _, ui, _ = page
    assert EXPLORE_OUTPUTS[:2] == ("status", "metrics")
    assert set().union(*(names(ui, u) for u in streamed)) <= set(EXPLORE_OUTPUTS)


# --- batch ------------------------------------------------------------------------------------------------
def test_the_empty_batch_table_shows_its_column_names(page):
    _, ui, h = page
    assert ui.batch_table.value["headers"] == BATCH_COLUMNS and ui.batch_table.value["data"] == []
    update = h.batch(None, BUNDLED, L1, 0.0574, 25, 128, "png_bpp")
    assert names(ui, update) == {"batch_status"} and "Add some images" in update[ui.batch_status]


# --- what the page says about the model's attention -----------------------------------------------------
def test_the_bundled_models_attention_is_described_by_its_own_numbers(page, run):
    _, ui, h = page
    tok = h.cache.get()
    od = tok.metadata["object_discovery"]
    finding = texts.attention_finding(texts.object_discovery(tok.metadata))
    assert "mostly a spatial grid" in finding
    assert f"FG-ARI {od['fg_ari']:.2f}" in finding and f"{od['grid_fg_ari']:.2f} for a plain grid" in finding
    assert "official:" in finding  # where object-aligned attention can be seen
    assert ui.finding.value == finding and finding in ui.how.value
    assert "settle on objects" not in ui.how.value
    assert ui.layer.value == od["layer"]  # the attention view opens on the measured layer
    attn = h.attention(run, 7, 0, "mean", 0.5, None)
    assert attn[ui.finding] == finding


def test_without_measurements_the_page_claims_no_number(page):
    finding = texts.attention_finding(texts.object_discovery({}))
    assert "paper" in finding and "FG-ARI" not in finding and not any(c.isdigit() for c in finding)
    aligned = texts.attention_finding(texts.object_discovery(
        {"object_discovery": {"fg_ari": 0.5, "grid_fg_ari": 0.1, "iteration": 3, "layer": 11, "command": "x"}}))
    assert aligned.startswith("**This model's attention follows objects.**") and "iteration 3" in aligned


def test_a_measured_iteration_is_where_the_attention_view_opens(tmp_path):
    """A model whose metadata names the iteration its object discovery was measured at opens there."""
    from alit_core.files.checkpoints import BUNDLED_CHECKPOINT

    obj = torch.load(BUNDLED_CHECKPOINT, weights_only=True)
    obj["metadata"]["object_discovery"] = {**obj["metadata"]["object_discovery"], "iteration": 2, "layer": 1}
    path = tmp_path / "measured.pt"
    torch.save(obj, path)
    _, ui, h = make_page(ModelCache(str(path), "cpu"), ["cpu"], "cpu", OutputDir(tmp_path / "out"))
    assert ui.layer.value == 1
    last = list(h.run(str(CAT), str(path), "cpu", "float32", L1, 0.0574, 25, 128, 8, "deterministic", 0, 1,
                      "png_bpp"))[-1]
    assert last[ui.iteration]["value"] == 2 and last[ui.record].rec.layer == 1


def test_a_one_iteration_run_gives_the_attention_slider_two_ends(page):
    """gradio rebuilds a slider from its update and refuses minimum == maximum (the whole run failed)."""
    import gradio as gr

    _, ui, h = page
    last = explore(h, max_iterations=1)[-1]
    update = last[ui.iteration]
    assert update["value"] == 0 and update["interactive"] is False
    gr.Slider(minimum=0, maximum=update["maximum"], value=update["value"])


# --- a model on the VAE base tokenizer --------------------------------------------------------------------
def test_a_vae_model_runs_and_a_halting_mode_it_lacks_goes_to_the_status_line(page, tmp_path):
    """VAE-based models have no stochastic halting: choosing it is refused in the status line (the
    library's ValueError used to escape the handler), and the modes it has stream every iteration."""
    from conftest import small_config

    from alit_core import ALIT, Tokenizer, VAEConfig, save_checkpoint

    _, ui, h = page
    vae = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(16,),
                    decoder_attn_resolutions=())
    torch.manual_seed(0)
    model = str(save_checkpoint(Tokenizer(ALIT(small_config(vae=vae)), "cpu"), tmp_path / "vae.pt"))

    def run(halting):
        return list(h.run(str(CAT), model, "cpu", "float32", L1, 0.05, 25.0, 128, 4, halting, 0, -1, "png_bpp"))

    refused = run("stochastic")
    assert len(refused) == 1 and names(ui, refused[0]) == {"status"}
    assert "takes halting 'deterministic' or 'off', not 'stochastic'" in refused[0][ui.status]
    for halting in ("deterministic", "off"):
        updates = run(halting)
        assert updates[-1][ui.record].done and len(updates[-1][ui.record].rec.tokens) == 4
    with pytest.raises(Exception, match="takes halting"):  # the API refuses it as an API does
        h.tokenize(str(CAT), halting="sometimes")


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
    assert [t.name for t in fig.data] == ["A: L1", "A: PSNR (dB)", "A: selected", "B: L1", "B: PSNR (dB)",
                                          "B: selected"]
    assert (fig.data[2].x[0], fig.data[5].x[0]) == tuple(counts) and legend_outside(fig)
    # the shared slider opens at the later selection; both runs and their difference at that iteration
    t = max(cmp.selected)
    assert update[ui.cmp_iteration]["value"] == t and update[ui.cmp_iteration]["maximum"] == 7
    assert np.array_equal(picture(update[ui.cmp_recon_a]), figures.enlarge(a.recons[t]))
    assert np.array_equal(picture(update[ui.cmp_recon_b]), figures.enlarge(b.recons[t]))
    diff, mean = figures.difference_map(a.recons[t], b.recons[t], vmax=0.5)
    assert np.array_equal(picture(update[ui.cmp_diff]), diff) and f"mean {mean:.4f}" in update[ui.cmp_view_md]
    assert f"**B** at iteration {t}: {b.tokens[t]} tokens" in update[ui.cmp_view_md]
    for comp in (ui.cmp_recon_a, ui.cmp_recon_b, ui.cmp_diff, ui.cmp_attn_a, ui.cmp_attn_b):
        assert isinstance(update[comp], str) and len(served_files(comp, update[comp])) == 1


def test_the_shared_sliders_move_both_runs(page, compared):
    from app.layout import COMPARE_VIEW_OUTPUTS

    _, ui, h = page
    first, cmp = compared[0], compared[0][ui.cmp_record]
    view = h.compare_view(cmp, 0, 200)
    assert names(ui, view) == set(COMPARE_VIEW_OUTPUTS) and view[ui.cmp_status] == ""
    for comp in (ui.cmp_recon_a, ui.cmp_recon_b, ui.cmp_diff):
        assert view[comp] != first[comp] and not np.array_equal(picture(view[comp]), picture(first[comp]))
    assert view[ui.cmp_token] == {"maximum": 31, "value": 31, "__type__": "update"}  # 32 tokens at iteration 0
    assert "**A** at iteration 0: 32 tokens" in view[ui.cmp_view_md]
    assert view[ui.cmp_attn_md].startswith("Token 31 (added at iteration 0)")
    late = h.compare_view(cmp, 7, 200)
    assert late[ui.cmp_token]["value"] == 200 and "(added at iteration 6)" in late[ui.cmp_attn_md]
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


def test_compare_refuses_bad_input_in_its_status_line(page, tmp_path):
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
        assert "alit-status-error" in update[ui.cmp_status]


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
    from app.uploads import GONE

    _, ui, h = page
    last = explore(h, kind=PSNR, max_iterations=8)[-1]
    run, cmp = last[ui.record], compared[0][ui.cmp_record]
    view = h.share_view(run, cmp, {"tabs": "compare", "explore_tabs": "attention"}, PSNR, 0.0574, 25.0, 128,
                        "entropy", 2, 40, "mean", 0.3, 0, 31)
    data = json.loads(view)
    assert data["explore"]["image"] == str(CAT) and data["explore"]["kind"] == PSNR
    assert data["attention"] == {"iteration": 2, "token": 40, "head": "mean", "opacity": 0.3}
    assert data["compare"]["cmp_image_a"].endswith("02_shapes.png") and data["compare_view"]["token"] == 31
    update = h.restore(view, progress=lambda *a, **k: None)
    assert update[ui.tabs]["selected"] == "compare" and update[ui.explore_tabs]["selected"] == "attention"
    assert update[ui.image] == str(CAT) and update[ui.kind] == PSNR and update[ui.psnr]["visible"] is True
    assert update[ui.measure] == "entropy" and update[ui.record].done
    assert update[ui.iteration]["value"] == 2 and update[ui.token]["value"] == 40
    assert update[ui.attn_md].startswith("Iteration 2 (96 tokens), decoder layer 2, head mean: token 40")
    assert update[ui.metrics] == last[ui.metrics]
    assert update[ui.cmp_iteration]["value"] == 0 and update[ui.cmp_token]["value"] == 31
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
