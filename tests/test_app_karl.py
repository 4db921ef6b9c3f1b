"""KARL in the explorer, at handler level: the model list of both families, the Explore tab's streamed
budget sweep (counts equal to KARLTokenizer.encode's), its settings, attention and exports, Compare
with an ALIT model, Batch, and a released checkpoint that cannot be downloaded (the status line)."""

import io
import json
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import small_karl_config
from PIL import Image

import alit_core
from alit_core import KARL, load_image, save_checkpoint
from app.choices import BUDGET, L1, PSNR
from app.compare_tab import TWO_SETTINGS
from app.explorer import BUNDLED
from app.handlers import HALT_LABELS
from app.layout import EXPLORE_OUTPUTS, MODEL_OUTPUTS, model_choices

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))
CAT = next(p for p in SAMPLES if "cat" in p.name)
RELEASED_KARL = "official:karl-in100-small-vqgan-quantized"


@pytest.fixture(scope="module")
def page(app_page):
    return app_page


@pytest.fixture(scope="module")
def karl_model(tmp_path_factory):
    """A small KARL (64 px, VQGAN, budgets up to 64 latents) as a file of ours."""
    torch.manual_seed(0)
    return str(save_checkpoint(KARL(small_karl_config()), tmp_path_factory.mktemp("karl") / "karl.pt"))


def karl_tokens(path, image, quality) -> int:
    tok = alit_core.load_tokenizer(path, device="cpu")
    return tok.encode(load_image(image, size=tok.resolution)[None], quality=quality).num_tokens[0]


def explore(h, model, quality=0.05, halting="deterministic", kind=L1):
    return list(h.run(str(CAT), model, "cpu", "float32", kind, 0.0574, 25.0, 128, 8, halting, 0, -1, "png_bpp",
                      quality, progress=lambda *a, **k: None))


@pytest.fixture(scope="module")
def karl_run(page, karl_model):
    # halting "off" and the PSNR criterion are ALIT's: hidden for KARL, not used
    return explore(page[2], karl_model, quality=0.1, halting="off", kind=PSNR)


def test_the_model_list_offers_every_released_checkpoint_of_both_families():
    names = model_choices()
    assert names[:2] == [BUNDLED, "bundled:v2-preview"]
    assert {f"official:{n}" for n in alit_core.OFFICIAL_CHECKPOINTS} | {
        f"official:{n}" for n in alit_core.KARL_CHECKPOINTS} == set(names[2:])
    assert RELEASED_KARL in names and "official:in100-small-vae-quantized" in names


def test_a_karl_model_streams_its_budget_sweep_and_says_what_its_count_is(page, karl_model, karl_run):
    _, ui, h = page
    run = karl_run[-1][ui.record]
    rec = run.rec
    assert run.done and rec.karl and rec.budgets == [8, 16, 24, 32, 40, 48, 56, 64]
    streamed = [u for u in karl_run if ui.current in u]
    assert len(streamed) == 8  # one update per pass, as computed
    assert [u[ui.metrics].split("**")[1] for u in streamed] == [f"KARL, budget {b}" for b in rec.budgets]
    assert all(0 <= n <= b for n, b in zip(rec.tokens, rec.budgets))
    assert [int(h.sum()) for h in rec.halt] == [b - n for b, n in zip(rec.budgets, rec.tokens)]
    count = karl_tokens(karl_model, CAT, 0.1)
    assert rec.tokens[-1] == count
    metrics = karl_run[-1][ui.metrics]
    assert f"**KARL's count**: {count} tokens: in one pass at budget 64 for a desired L1 of 0.1" in metrics
    assert "KARL, budget 64" in metrics and "pass 8 of 8" in metrics
    # ALIT's settings hidden, KARL's shown; the count against the budget plotted
    first = streamed[0]
    for name in ("kind", "max_iter", "halting", "seed", "l1", "psnr", "budget"):
        assert first[getattr(ui, name)]["visible"] is False, name
    assert first[ui.quality]["visible"] is True
    plot = streamed[-1][ui.budget_plot]
    assert plot["visible"] and [list(t.y) for t in plot["value"].data][1] == rec.tokens
    captions = [c for _, c in karl_run[-1][ui.gallery]]
    assert captions[0].startswith("budget 8 · ")
    assert captions[-1].startswith(f"★ selected · budget 64 · {count} tokens")
    assert "KARL" in karl_run[-1][ui.how] and "one pass" in karl_run[-1][ui.how]
    halts = [u[ui.halt_map] for u in streamed]
    assert halts[0]["label"] == HALT_LABELS[True]  # the first with its label
    assert [Image.open(h["value"] if isinstance(h, dict) else h).size for h in halts] == [(256, 64)] * 8  # 4 x 16
    # the criteria do not apply: re-selecting changes nothing but the status line
    assert set(h.reselect(run, BUDGET, 0.05, 25, 32, "png_bpp")) == {ui.status}


def test_a_karl_runs_attention_and_exports(page, karl_run, tmp_path):
    _, ui, h = page
    run = karl_run[-1][ui.record]
    rec = run.rec
    views = h.attention(run, 3, 1000, "mean", 0.5, None)
    assert views[ui.token]["maximum"] == rec.budgets[3] - 1 == 31  # every latent of the budget
    assert f"KARL, budget 32 ({rec.tokens[3]} tokens), decoder layer 1, head mean: token 31 (latent 31 of budget 32" \
        in views[ui.attn_md]
    assert Image.open(views[ui.overlay]).size == (256, 256)
    who = h.who_md(run, 3, "mean", (2, 2))
    assert "At budget 32 (" in who and "| token | latent | weight |" in who and "of budget 32, " in who

    files = h.export(run, karl_run[-1][ui.selected])[ui.files]
    data = json.loads(Path(files[0]).read_text())
    assert data["family"] == "karl" and data["selected_tokens"] == rec.tokens[-1] and data["quality"] == 0.1
    assert [p["budget"] for p in data["passes"]] == rec.budgets and [p["tokens"] for p in data["passes"]] == rec.tokens
    npz = np.load(files[1])
    assert list(npz["budgets"]) == rec.budgets and npz["recons"].shape == (8, 64, 64, 3)
    assert [npz[f"halt_mask_{t}"].shape for t in range(8)] == [(b,) for b in rec.budgets]
    with zipfile.ZipFile(files[2]) as z:
        assert z.namelist()[0] == f"budget_8_{rec.tokens[0]}_tokens.png" and len(z.namelist()) == 8
        assert Image.open(io.BytesIO(z.read(z.namelist()[0]))).size == (64, 64)
    assert Image.open(files[3]).n_frames == 9


def test_choosing_a_model_shows_its_familys_settings(page, karl_model):
    _, ui, h = page
    karl = h.model_defaults(RELEASED_KARL, "cpu", "float32", L1)
    assert karl[ui.quality]["visible"] and karl[ui.quality]["value"] == 0.05
    assert not karl[ui.kind]["visible"] and not karl[ui.halting]["visible"]
    alit = h.model_defaults("official:in100-small-vqgan-quantized", "cpu", "float32", PSNR)
    assert alit[ui.l1]["value"] == 0.07 and not alit[ui.l1]["visible"] and alit[ui.psnr]["visible"]
    assert alit[ui.l1]["label"] == "L1 threshold (0 to 1; this model's own: 0.07)"  # not the bundled model's
    assert not alit[ui.quality]["visible"] and alit[ui.kind]["visible"]
    assert set(alit) | set(karl) <= set(ui[MODEL_OUTPUTS]) and set(ui[MODEL_OUTPUTS]) <= set(ui[EXPLORE_OUTPUTS])
    preview = h.model_defaults("bundled:v2-preview", "cpu", "float32", L1)  # bundled: read at once, its own threshold
    assert preview[ui.l1]["value"] == alit_core.load_tokenizer("bundled:v2-preview").default_threshold != 0.07
    assert preview[ui.l1]["visible"] and preview[ui.budget]["maximum"] == 256
    assert preview[ui.l1]["label"] == f"L1 threshold (0 to 1; this model's own: {preview[ui.l1]['value']:g})"
    tok = h.cache.peek("bundled:v2-preview", "cpu")
    assert h.model_label("bundled:v2-preview", tok) == (
        "`bundled:v2-preview`, a preview of the model we are still training on a CPU "
        f"(trained {tok.metadata['trained_steps']:,} steps so far, 128 px, 16x16 grid)")
    # the preview is VAE-based: no stochastic halting offered, and a visitor's stochastic becomes deterministic
    preview = h.model_defaults("bundled:v2-preview", "cpu", "float32", L1, "stochastic")
    assert (preview[ui.halting]["choices"], preview[ui.halting]["value"]) == (["deterministic", "off"], "deterministic")
    assert preview[ui.halting]["visible"] and alit[ui.halting]["visible"]  # shown again after a KARL model
    assert (preview[ui.max_iter]["maximum"], preview[ui.max_iter]["value"]) == (8, 8)
    back = h.model_defaults(BUNDLED, "cpu", "float32", L1, "off")  # v1 takes every mode, and keeps the visitor's
    assert (back[ui.halting]["choices"], back[ui.halting]["value"]) == (["deterministic", "stochastic", "off"], "off")
    unknown = h.model_defaults("/some/file.pt", "cpu", "float32", L1)  # its family shows when it runs
    assert unknown == {ui.quality: {"__type__": "update"},  # gr.skip(): nothing changes (an empty dict is a value)
                       ui.halting: {"__type__": "update", "choices": ["deterministic", "stochastic", "off"]}}


def test_choosing_a_small_model_in_memory_keeps_the_budget_slider_in_range(page, tmp_path):
    """A model already loaded (another visitor ran it) brings its own budget range; the slider's value must
    move into it: gradio refuses every event whose slider value lies outside the slider, and the page
    then waited forever on Tokenize (CI, after a Compare had loaded a 16-token model)."""
    from conftest import small_config

    _, ui, h = page
    torch.manual_seed(0)
    path = str(save_checkpoint(alit_core.Tokenizer(alit_core.ALIT(small_config()), "cpu"), tmp_path / "small.pt"))
    tok = h.cache.get(path, "cpu", "float32")
    most = tok.config.tokens_at(tok.config.iterations - 1)
    assert most < 128  # below the bundled model's default budget: the case that hung
    budget = h.model_defaults(path, "cpu", "float32", BUDGET)[ui.budget]
    step = tok.config.latents_per_iteration
    assert (budget["minimum"], budget["maximum"], budget["step"]) == (step, most, step)
    assert step <= budget["value"] <= most and budget["value"] % step == 0 and budget["visible"]
    assert budget["label"].endswith(f"{step} to {most})")


def test_a_run_sizes_the_settings_and_the_iteration_slider_to_its_model(page, tmp_path):
    """A file of a model with 4 tokens an iteration and 4 iterations, run from its path (so not known before):
    the budget slider, the iteration limit and the attention's iteration slider then speak of its sizes, with
    the visitor's settings kept where they fit; then the bundled model's again."""
    from conftest import small_config

    _, ui, h = page
    torch.manual_seed(0)
    path = str(save_checkpoint(alit_core.Tokenizer(alit_core.ALIT(small_config()), "cpu"), tmp_path / "small.pt"))
    updates = list(h.run(str(CAT), path, "cpu", "float32", BUDGET, 0.0574, 25.0, 12, 8, "stochastic", 0, -1,
                         "png_bpp", 0.05, progress=lambda *a, **k: None))
    first, last = updates[0], updates[-1]
    assert first[ui.budget]["label"] == "Token budget (the largest count that fits; 4 to 16)"
    assert (first[ui.budget]["maximum"], first[ui.budget]["step"], first[ui.budget]["value"]) == (16, 4, 12)
    assert (first[ui.max_iter]["maximum"], first[ui.max_iter]["value"]) == (4, 4)  # the visitor's 8 does not fit
    assert first[ui.halting]["choices"] == ["deterministic", "stochastic", "off"]
    assert first[ui.halting]["value"] == "stochastic"
    assert last[ui.iteration]["label"] == "Iteration (0 = the first 4 tokens)" and last[ui.iteration]["maximum"] == 3
    assert last[ui.scatter].layout.yaxis.dtick == 4  # the complexity plot's count ticks: its steps
    again = explore(h, BUNDLED)[-1]
    assert again[ui.iteration]["label"] == "Iteration (0 = the first 32 tokens)"
    assert again[ui.scatter].layout.yaxis.dtick == 32


def test_a_released_checkpoint_offline_is_a_status_line_naming_the_address_and_the_path(page, tmp_path, monkeypatch):
    from alit_core.files import registry

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("ALIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    _, ui, h = page
    updates = explore(h, RELEASED_KARL)
    assert len(updates) == 1 and set(updates[0]) == {ui.status}
    status = updates[0][ui.status]
    entry = alit_core.KARL_CHECKPOINTS[RELEASED_KARL.split(":")[1]]
    assert "alit-status-error" in status and "could not be downloaded" in status and "no network" in status
    assert entry.url.split("?")[0] in status and str(registry.cached_path(entry.name)) in status


def test_compare_an_alit_and_a_karl_model_on_one_image(page, karl_model):
    _, ui, h = page
    args = dict(image_a=str(CAT), image_b=None, model_a=BUNDLED, halting_a="deterministic", kind_a=L1,
                value_a=0.0574, model_b=karl_model, halting_b="deterministic", kind_b=L1, value_b=0.1)

    def compare(**changes):
        a = {**args, **changes}
        return h.compare(TWO_SETTINGS, *a.values(), progress=lambda *x, **k: None)

    assert "B: KARL halts latents with its own halting head" in compare(halting_b="off")[ui.cmp_status]
    assert "B: A KARL model's count is set by the desired L1" in compare(kind_b=PSNR, value_b=25)[ui.cmp_status]
    update = compare()
    cmp = update[ui.cmp_record]
    alit, karl = (r.rec for r in cmp.runs)
    assert karl.karl and not alit.karl and cmp.iterations == 8
    bundled = h.cache.get()
    assert alit.tokens[cmp.selected[0]] == bundled.encode(load_image(CAT, size=64)[None],
                                                          threshold=0.0574).num_tokens[0]
    assert karl.tokens[cmp.selected[1]] == karl_tokens(karl_model, CAT, 0.1)
    summary = update[ui.cmp_summary]
    assert "KARL, one pass per budget" in summary and "**KARL's count**" in summary
    # at each of ALIT's iterations, KARL's pass of the nearest count
    for t in range(8):
        ta, tk = cmp.at(t)
        assert ta == t and abs(karl.tokens[tk] - alit.tokens[t]) == min(abs(n - alit.tokens[t]) for n in karl.tokens)
    view = h.compare_view(cmp, 0, 100)
    tk = cmp.at(0)[1]
    assert (f"**B** at budget {karl.budgets[tk]} (the pass whose count is nearest the other's): {karl.tokens[tk]} "
            "tokens") in view[ui.cmp_view_md]
    assert view[ui.cmp_token]["value"] == min(32, karl.budgets[tk]) - 1
    assert "A: added at iteration 0; B: latent" in view[ui.cmp_attn_md]
    curves = update[ui.cmp_curve]
    # ALIT's run has its VQGAN-alone line; KARL's none (its passes are not one base tokenizer's prediction)
    assert [t.name for t in curves.data] == ["A: L1", "A: PSNR (dB)", "A: VQGAN alone", "A: selected", "B: L1",
                                             "B: PSNR (dB)", "B: selected"]
    assert list(curves.data[4].x) == karl.tokens


def test_batch_with_a_karl_model(page, karl_model):
    _, ui, h = page
    files = [str(p) for p in SAMPLES[:2]]
    # Explore's model and its desired L1 (ALIT's criterion, hidden for KARL, is not used)
    update = h.batch(files, karl_model, PSNR, 0.05, 25, 64, "png_bpp", 0.1, progress=lambda *a, **k: None)
    counts = [row[1] for row in update[ui.batch_table]["value"]]
    assert counts == [karl_tokens(karl_model, p, 0.1) for p in SAMPLES[:2]]


def test_a_shared_view_of_a_karl_run_reopens_it(page, karl_model, karl_run):
    _, ui, h = page
    run = karl_run[-1][ui.record]
    view = h.share_view(run, None, {"tabs": "explore"}, PSNR, 0.0574, 25.0, 128, "png_bpp", 3, 5, "mean", 0.5, 0, 0)
    assert json.loads(view)["explore"]["quality"] == 0.1
    update = h.restore(view, progress=lambda *a, **k: None)
    assert update[ui.metrics] == karl_run[-1][ui.metrics] and update[ui.record].rec.tokens == run.rec.tokens
    assert update[ui.quality]["value"] == 0.1 and update[ui.quality]["visible"] is True
    assert update[ui.kind]["value"] == PSNR and update[ui.kind]["visible"] is False  # kept, hidden for KARL
    assert update[ui.iteration]["value"] == 3 and update[ui.token]["value"] == 5

