"""The page's handlers, called in this process as gradio calls them (no server): what each control
changes, and what it must leave alone. One streamed run of the bundled model on a sample is shared.
"""

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from page_handlers import CAT, SAMPLES, explore, legend_outside, names, served_files
from PIL import Image

from app import texts
from app.batch_tab import BATCH_COLUMNS
from app.choices import BUDGET, L1, PSNR
from app.explorer import BUNDLED, ModelCache
from app.files import OutputDir
from app.figures import error_curve
from app.layout import ATTENTION_OUTPUTS, EXPLORE_OUTPUTS, make_page


@pytest.fixture(scope="module")
def page(app_page):
    return app_page


@pytest.fixture(scope="module")
def streamed(page):
    return explore(page[2])


@pytest.fixture(scope="module")
def run(page, streamed):
    return streamed[-1][page[1].record]


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
                value = value["value"] if isinstance(value, dict) else value  # (a first picture with its label)
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
    update = h.export(run, run.rec.select(h.criterion(L1, 0.0574, None, None)), L1, 0.0574, 25, 64)
    assert names(ui, update) == {"files", "status"} and update[ui.status] == ""
    paths = update[ui.files]
    assert all(isinstance(p, str) for p in paths)  # gradio 6 refuses PosixPath ("Expected str | list[str]")
    assert len(served_files(ui.files, paths)) == 4
    rec, sel = run.rec, run.rec.select(h.criterion(L1, 0.0574, None, None))
    data = json.loads(Path(paths[0]).read_text())
    assert data["selected_iteration"] == sel and data["selected_tokens"] == rec.tokens[sel]
    # what made it: the model, the run's settings and the criterion (the bundled model's latents are continuous)
    assert data["model"] == run.model and data["selected_for"] == "L1 < 0.0574"
    assert data["settings"]["halting"] == run.inputs["halting"] and data["codes"].startswith("none: ")
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


def test_the_reference_set_is_the_models_own_and_none_for_a_model_without_one(page, run):
    import dataclasses

    _, ui, h = page
    root = Path(__file__).resolve().parent.parent / "assets"
    v1, v2 = (json.loads((root / f).read_text())["images"] for f in ("reference_set.json",
                                                                    "reference_set_v2_preview.json"))
    assert h.reference(BUNDLED) == {"images": v1, "threshold": 0.0574}
    assert h.reference("bundled:v2-preview") == {"images": v2, "threshold": 0.07705} and v1 != v2
    released = "official:in100-small-vqgan-quantized"
    assert h.reference(released)["images"] == []

    def shown(r):  # the plot's reference points (the visitor's image is the star), its legend's title, its note
        fig = h.complexity_plot(r, 3, "png_bpp")[ui.scatter]
        points = sum(len(t.x) for t in fig.data if t.marker.symbol != "star")
        return points, fig.layout.legend.title.text, [a.text for a in fig.layout.annotations]

    # the reference was counted at the model's own threshold, whatever criterion the visitor's star is at
    assert shown(run) == (len(v1), "reference at L1 < 0.0574", [])
    points, title, note = shown(dataclasses.replace(run, model=released))  # the same rollout, as if that model's
    assert points == 0 and title is None and note == [
        "no reference set for this model: the reference images are counted by the bundled models only"]


def test_export_before_a_run_says_so_in_the_status_line(page):
    _, ui, h = page
    update = h.export(None, None)
    assert names(ui, update) == {"status"} and "Tokenize an image first" in update[ui.status]


# --- legends ----------------------------------------------------------------------------------------------
def test_every_plot_keeps_its_legend_outside_the_data(page, run):
    _, ui, h = page
    views = h.views(run, h.criterion(L1, 0.0574, None, None), 7, "png_bpp")
    batch = h.batch([str(p) for p in SAMPLES], BUNDLED, L1, 0.0574, 25, 128, "png_bpp")
    for fig in (views[ui.curve], views[ui.scatter], views[ui.comp], batch[ui.batch_plot]):
        assert legend_outside(fig), fig.layout.legend
    # the codecs named as the plot's title names them
    assert list(views[ui.comp].data[0].x) == ["ALIT (256 tokens)", "JPEG at nearest size", "WebP at nearest size"]
    # the lowest PSNR marker sits in the plot's upper three quarters, above the byte labels at the bars' feet
    low, high = views[ui.comp].layout.yaxis2.range
    assert (min(views[ui.comp].data[1].y) - low) / (high - low) > 0.25
    # the visitor's images are stars without labels next to them (labels covered each other)
    stars = [t for t in batch[ui.batch_plot].data if t.marker.symbol == "star"]
    assert len(stars) == 1 and len(stars[0].x) == len(SAMPLES) and "text" not in (stars[0].mode or "")
    # the batch knows which images met the criterion at no iteration, and says with what it ran
    assert f"{len(SAMPLES)} image(s) with the bundled model" in batch[ui.batch_status] and "3 met it at no iteration" in batch[
        ui.batch_status]
    # ticks at the counts a run has: eight iterations, or one
    assert views[ui.curve].layout.xaxis.tickvals == tuple(run.rec.tokens)
    assert error_curve([32], [0.07], [20.0], 0.05, 0).layout.xaxis.tickvals == (32,)


# --- attention ----------------------------------------------------------------------------------------
def test_token_slider_and_click_table_follow_the_iteration(page, run):
    _, ui, h = page
    assert set(ATTENTION_OUTPUTS) >= names(ui, h.attention(run, 7, 200, "mean", 0.5, None))
    early = h.attention(run, 0, 200, "mean", 0.5, (5, 9))
    label = "Token (of all so far at this iteration)"  # (KARL's: of all the latents of this pass)
    assert early[ui.token] == {"maximum": 31, "value": 31, "label": label, "__type__": "update"}  # 32 at iteration 0
    # the value is sent only when it must change: a token the visitor moves while a redraw runs stays
    late = h.attention(run, 7, 31, "mean", 0.5, (5, 9))
    assert late[ui.token] == {"maximum": 255, "label": label, "__type__": "update"}  # the range grew: 31 is kept
    moved = h.attention(run, 7, 200, "mean", 0.5, (5, 9))
    assert moved[ui.token] == {"maximum": 255, "label": label, "__type__": "update"} and "token 200 " in moved[ui.attn_md]
    shrunk = h.attention(run, 2, 20, "mean", 0.5, (5, 9))  # a token chosen meanwhile could lie above 95
    assert shrunk[ui.token] == {"maximum": 95, "value": 20, "label": label, "__type__": "update"}
    listed = [int(row.split("|")[1]) for row in early[ui.who].splitlines() if row.startswith("| ") and
              row.split("|")[1].strip().isdigit()]
    assert len(listed) == 5 and all(k < 32 for k in listed), early[ui.who]
    assert "iteration 0 (32 tokens)" in early[ui.who].lower()
    # the weights' scale: 1 class token + 256 positions + 32 latents at iteration 0, 256 latents at iteration 7
    assert "spread evenly over the decoder's 289 inputs it would be 0.0035" in early[ui.who]
    assert "decoder's 513 inputs it would be 0.0019" in late[ui.who]


def test_clicking_the_overlay_lists_that_positions_tokens(page, run):
    import gradio as gr

    _, ui, h = page
    evt = gr.SelectData(ui.overlay, {"index": [250, 5], "value": None})  # top right of the 256-pixel picture
    update = h.who_attends(run, 3, "mean", evt)
    assert update[ui.clicked] == (0, 15)
    assert "row 0, column 15" in update[ui.who] and "128 tokens" in update[ui.who]


# --- criterion ----------------------------------------------------------------------------------------
def test_the_precision_note_names_what_measured_faster_on_this_machine(page):
    import alit_core

    _, ui, _ = page
    # the page's measurement, once per process: what the library answers now
    assert ui.dtype.info == texts.faster_precision("cpu", alit_core.faster_precision("cpu"))
    assert texts.faster_precision("cpu", "float32").startswith("float32 is the faster choice on this CPU")
    assert texts.faster_precision("cpu", "bfloat16").startswith("bfloat16 is the faster choice on this CPU")
    # nothing is claimed as measured where nothing was
    assert "measured" not in texts.faster_precision("cuda", "bfloat16") + texts.faster_precision("cuda:1", "float32")
    assert "not measured" in texts.faster_precision("mps", "float32")


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


def test_a_clicked_iteration_stays_in_the_panel_through_a_new_selection(page):
    from types import SimpleNamespace

    _, ui, h = page
    run = explore(h, max_iterations=3)[-1][ui.record]
    update = h.show_iteration(run, 1, SimpleNamespace(index=2))  # (gr.SelectData's index)
    assert names(ui, update) == {"current", "halt_map", "error_map", "metrics"}
    assert update[ui.metrics].startswith("**Iteration 2** of 0-2: 96 tokens") and "**Selected**: iteration 1" in (
        update[ui.metrics])
    assert update[ui.current] == run.recon(2)
    reselected = h.reselect(run, BUDGET, 0.0574, 25.0, 32, "png_bpp")[ui.metrics]
    assert reselected.startswith("**Iteration 2** of 0-2") and "**Selected**: iteration 0, 32 tokens" in reselected
    played = list(h.play(run, 0.2, 0))[1:]
    assert [u[ui.metrics].split(":")[0] for u in played] == [f"**Iteration {t}** of 0-2" for t in range(3)]
    assert all("**Selected**: iteration 0" in u[ui.metrics] for u in played)
    assert h.show_iteration(None, None, SimpleNamespace(index=0)) == {}  # before any run: nothing to show


def test_a_value_out_of_range_goes_to_the_status_line_and_changes_nothing_else(page, run):
    _, ui, h = page
    h.reselect(run, L1, 0.05, 25.0, 128, "png_bpp")  # the selection the refusals below leave in effect
    for kind, l1, psnr in ((PSNR, 0.0574, 500.0), (L1, 3.0, 25.0), (L1, None, 25.0), (PSNR, 0.0574, None)):
        update = h.reselect(run, kind, l1, psnr, 128, "png_bpp")
        assert names(ui, update) == {"l1", "psnr", "budget", "status"}  # only which box shows, and the message
        assert "cannot be used" in update[ui.status] and "alit-status-error" in update[ui.status]
        assert "cannot be used. The selection still uses L1 &lt; 0.05." in update[ui.status]  # (HTML-escaped)
        assert "value" not in update[ui.l1] and "value" not in update[ui.psnr]  # what was typed stays, to mend
    assert run.criterion.value == 0.05
    # a criterion the page does not offer (an API call's): refused, never read as an L1 threshold
    update = h.reselect(run, "l1", 0.0574, 25.0, 128, "png_bpp")
    assert "'l1' is not one" in update[ui.status] and "alit-status-error" in update[ui.status]
    # what an API call may send that no control of the page can: refused in the status line, never raised
    for budget in (float("nan"), float("inf")):
        message = h.reselect(run, BUDGET, 0.0574, 25.0, budget, "png_bpp")[ui.status]
        assert f"A token budget is a number of tokens, at least 1 (the largest count that fits is selected); " \
               f"{budget} cannot be used" in message and "32" not in message  # no one model's counts
    assert "cannot be used" in h.reselect(run, PSNR, 0.0574, float("nan"), 128, "png_bpp")[ui.status]
    refused = list(h.run(str(CAT), BUNDLED, "cpu", "float32", L1, 0.0574, 25, 128, None, "deterministic", 0, -1,
                         "png_bpp"))
    assert len(refused) == 1 and "maximum iterations" in refused[0][ui.status]
    with pytest.raises(gr.Error, match="max_iterations is a whole number of iterations, at least 1; not None"):
        h.tokenize(str(CAT), None, "deterministic", None)  # /tokenize: gradio's error, with the message


# --- bad input --------------------------------------------------------------------------------------------
def test_a_bad_upload_changes_only_the_status_line(page, tmp_path):
    _, ui, h = page
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    updates = explore(h, image=bad)
    assert len(updates) == 1 and names(ui, updates[0]) == {"status"}
    assert "cannot use image 'broken.png'" in updates[0][ui.status]
    assert "still those of" not in updates[0][ui.status]  # nothing was shown before
    shown = explore(h, max_iterations=1)[-1][ui.record]
    refused = list(h.run(str(bad), BUNDLED, "cpu", "float32", L1, 0.0574, 25, 128, 8, "deterministic", 0, -1,
                         "png_bpp", None, shown))
    assert "cannot use image 'broken.png'" in refused[0][ui.status]
    assert f". The results below are still those of {CAT.name}.</div>" in refused[0][ui.status]
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


def test_how_it_works_names_the_models_base_tokenizer_and_sizes_in_a_diagram_that_still_meets():
    from conftest import small_config

    from alit_core import PRESETS, VAEConfig, VQGANConfig

    vae = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1)
    for config, encoder, output, grid, tokens in (
            (PRESETS["explorer_64"], "VQGAN encoder", "VQGAN code", "16x16", "32, 64, ... 256"),
            (small_config(vae=vae), "VAE encoder", "VAE latent", "16x16", "4, 8, ... 16"),
            (small_config(patch_size=8, iterations=3, vqgan=VQGANConfig(resolution=64, ch=32, ch_mult=(1, 1, 2, 2),
                                                                        z_channels=64, codebook_size=128)),
             "VQGAN encoder", "VQGAN code", "8x8", "4, 8, 12")):
        text = texts.how_it_works("a model", config, {})
        assert f"──{encoder}──" in text and f"──► {output} for every 2D position ──► pixels" in text
        assert ("VQGAN" in text) == (config.base_name == "vqgan")
        per = config.latents_per_iteration
        assert f"► {grid} image tokens" in text and f"latent tokens so far ({tokens})" in text
        assert f"+ {per} new latent tokens" in text and f"iteration *t* has {per} x (*t* + 1) tokens" in text
        assert ("32" in text.split("```")[1]) == (per == 32)  # no other model's count in the diagram
        lines = text.split("```")[1].splitlines()
        corner = next(i for i, line in enumerate(lines) if "image tokens ─┐" in line)
        assert lines[corner].index("┐") == lines[corner + 1].index("▼")  # the arrow under the corner
    # KARL: its bins and its encode's budget (this one's largest is 64, below the official T = 256)
    from conftest import small_karl_config

    karl = texts.how_it_works("a KARL", small_karl_config(), {}, karl=True)
    assert "one of its 19 quality bins, 0.005 to 0.38" in karl and "for T = 64 by default" in karl


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

