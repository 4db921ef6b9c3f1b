"""Gradio event handlers: thin functions that turn UI values into explorer calls and back. This module holds
the Explore tab's (run, re-selection, attention, export, the API) and what every tab shares (loading a
model, the criterion, starting a run); the Compare, Batch and Share handlers live in compare_tab.py,
batch_tab.py and share.py and are mixed into `Handlers`; the Dataset tab is its own (dataset_tab.py).

Each handler returns (or yields) updates keyed by component, so an update names what it changes
and everything else stays as it is. What the visitor asked for that cannot be done (a bad
upload, a threshold out of range, a model that does not load) goes into the tab's status line,
where it stays until the next action, and leaves every other panel alone; one bad upload never
disturbs anybody else's session. Only the documented API endpoint (/tokenize) raises gr.Error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import gradio as gr
import numpy as np

import alit_core
from alit_core import ALITError, Criterion, DownloadError

from . import explorer, figures, texts
from .batch_tab import BatchHandlers
from .choices import (
    BUDGET,
    CRITERIA,
    DEFAULT_PSNR,
    EXPLORE_SETTINGS,
    KARL_QUALITY,
    L1,
    L1_RANGE,
    PSNR,
    PSNR_RANGE,
    alit_model_controls,
    check_halting,
    download_progress,
    halting_choices,
    iteration_label,
    named_karl,
    slider_index,
    token_slider,
)
from .compare_tab import CompareHandlers
from .explorer import BUNDLED, ModelCache, Record, is_karl
from .files import OutputDir, Pictures
from .runs import Run
from .share import ShareHandlers
from .status import Refused, sentences, status_md
from .uploads import read_upload

MEASURE_LABELS = {"png_bpp": "PNG bits per pixel", "jpeg_bpp": "JPEG bits per pixel", "entropy": "entropy (bits)",
                  "edge_density": "edge density", "high_freq_energy": "high-frequency energy"}
# The Explore settings only ALIT has (its criteria, iterations and halting; KARL's own is the desired L1, ui.quality).
ALIT_CONTROLS = ("kind", "max_iter", "halting", "seed")
# The halting picture's label, by family (True: KARL); short, so that it does not cover the picture
HALT_LABELS = {False: "Halted image positions (blue)", True: "Latents (blue halted, grey idle)"}
# What a step of a run is called, by family (True: KARL, one independent pass per budget), on the controls
# that walk through the steps
STEP_WORDS = {
    False: {"gallery": "Every iteration (★ = selected; click one to show it above)",
            "play": "▶ Play through the iterations", "play_pace": "Play: seconds per iteration",
            "token": "Token (of all so far at this iteration)"},
    True: {"gallery": "Every pass of the budget sweep (★ = selected; click one to show it above)",
           "play": "▶ Play through the passes", "play_pace": "Play: seconds per pass",
           "token": "Token (of all the latents of this pass)"},
}


def load_references() -> dict[str, dict]:
    """The reference sets shipped beside the bundled models (alit_train.reference), each the counts of its own
    model at its own threshold ({"images", "threshold"}), by that model's source ("bundled:default":
    `reference_set.json`; another "bundled:<name>": `reference_set_<name>.json`)."""
    sets = {}
    for name in alit_core.BUNDLED_MODELS:
        path = explorer.ASSETS / ("reference_set.json" if name == "default" else
                                  f"reference_set_{name.replace('-', '_')}.json")
        if path.exists():
            data = json.loads(path.read_text())
            sets[f"bundled:{name}"] = {"images": data["images"], "threshold": data.get("threshold")}
    return sets


class Handlers(CompareHandlers, BatchHandlers, ShareHandlers):
    def __init__(self, cache: ModelCache, ui, outputs: OutputDir | None = None):
        self.cache = cache
        self.ui = ui  # the page's components (layout.Ui): updates are keyed by them
        self.outputs = outputs or OutputDir()
        self.references = load_references()

    # --- helpers ---------------------------------------------------------------------------------
    def reference(self, model) -> dict:
        """The reference set of the model the page names, counted by that model ({"images", "threshold"}); no
        images for a model shipped without one (another model's counts beside this one's would mislead)."""
        return self.references.get(self.cache.resolve(model), {"images": [], "threshold": None})

    def complexity_figure(self, model, measure: str, current):
        """The complexity scatter of `current` (one image's row, or the Batch tab's rows) over the model's reference."""
        ref = self.reference(model)
        tok = self.cache.known(None if model == BUNDLED else model)  # in memory once it has run
        # counts in steps of the model's tokens per iteration; KARL's estimated counts fall anywhere
        step = tok.config.latents_per_iteration if tok is not None and not is_karl(tok) else None
        return figures.complexity_scatter(ref["images"], measure, current, ref["threshold"], token_step=step)

    def tokenizer(self, model: str, device: str | None, dtype: str, progress=None):
        try:
            return self.cache.get(None if model == BUNDLED else model, device, dtype, progress=progress)
        except DownloadError as err:  # offline, or the address gone: say which model, then where to put it
            said = f"{model} is not on this server yet and could not be downloaded: " if str(err).startswith(
                "download failed") else ""
            raise Refused(f"{said}{err}") from err
        except (ALITError, ValueError) as err:
            raise Refused(str(err)) from err

    @staticmethod
    def criterion(kind: str, l1, psnr, budget) -> Criterion:
        """The criterion chosen, with its own value; values out of range are refused with the range."""
        if kind not in CRITERIA:  # (a page or an API call naming no criterion of ours: never read as L1)
            raise Refused(f"Choose a selection criterion: {', '.join(CRITERIA)}; {kind!r} is not one.")
        if kind == PSNR:
            if psnr is None or not PSNR_RANGE[0] <= float(psnr) <= PSNR_RANGE[1]:  # (NaN: refused too)
                raise Refused(f"A PSNR target is in dB, from {PSNR_RANGE[0]:g} to {PSNR_RANGE[1]:g} "
                              f"(e.g. {DEFAULT_PSNR:g}); {psnr} cannot be used.")
            return Criterion.make(psnr=float(psnr))
        if kind == BUDGET:
            if budget is None or not 1 <= float(budget) < float("inf"):  # (NaN fails both comparisons)
                raise Refused(f"A token budget is a number of tokens, at least 1 (the largest count that fits is "
                              f"selected); {budget} cannot be used.")
            return Criterion.make(tokens=round(float(budget)))
        if l1 is None or not L1_RANGE[0] < float(l1) <= L1_RANGE[1]:
            raise Refused(f"An L1 threshold is a mean absolute error per pixel, above {L1_RANGE[0]:g} and at most "
                          f"{L1_RANGE[1]:g}; {l1} cannot be used.")
        return Criterion.make(threshold=float(l1))

    @staticmethod
    def gallery(run: Run, selected: int | None):
        rec = run.rec
        items = []
        for t in range(len(rec.recons)):
            mark = "★ selected · " if t == selected else ""
            items.append((run.recon(t), f"{mark}{rec.step_name(t)} · {rec.tokens[t]} tokens · L1 {rec.l1[t]:.3f} · "
                                        f"{rec.psnr[t]:.1f} dB"))
        return items

    @staticmethod
    def iteration_md(rec: Record, t: int, total: int) -> str:
        """One iteration's numbers; `total` iterations are run (numbered 0 to total - 1). KARL: one pass's."""
        if rec.karl:
            return (f"**KARL, budget {rec.budgets[t]}** (pass {t + 1} of {total}, each one independent pass): "
                    f"{rec.tokens[t]} tokens estimated ({rec.budgets[t] - rec.tokens[t]} of {rec.budgets[t]} latents "
                    f"halt), L1 {rec.l1[t]:.4f}, PSNR {rec.psnr[t]:.2f} dB")
        halt = rec.halt[t]
        # how much the halting picture shows: some models halt few positions (the bundled one: 0-6% by the
        # last iteration), and a picture without blue is otherwise hard to read
        halted = "" if halt is None else f"; {int(halt.sum())} of {halt.size} image positions halted"
        return (f"**Iteration {t}** of 0-{total - 1}: {rec.tokens[t]} tokens, "
                f"L1 {rec.l1[t]:.4f}, PSNR {rec.psnr[t]:.2f} dB{halted}")

    @staticmethod
    def karl_md(rec: Record, selected: int) -> str:
        """What KARL's count is, for the pass at its full budget."""
        n, b = rec.tokens[selected], rec.budgets[selected]
        met = "met" if rec.l1[selected] <= rec.quality else "not met by this reconstruction"
        return (f"**KARL's count**: {n} tokens: in one pass at budget {b} for a desired L1 of {rec.quality:g} "
                f"(quality bin {rec.quality_bin:g}), {b - n} latents halt and the decoder uses the other {n}; "
                f"KARL's estimate of how many tokens the image needs (L1 {rec.l1[selected]:.4f}: the desired L1 is "
                f"{met})")

    @staticmethod
    def selection_md(rec: Record, selected: int, crit: Criterion, model_iterations: int) -> str:
        if rec.karl:
            return Handlers.karl_md(rec, selected)
        n, t_run = rec.tokens[selected], len(rec.tokens)
        step = rec.tokens[0]
        head = f"**Selected**: iteration {selected}, {n} tokens"
        if crit.kind == "tokens":
            budget = int(crit.value)
            if n > budget:
                return (f"{head}: the budget of {budget} is below the first iteration's {n} tokens, "
                        "so the first is shown")
            if selected == t_run - 1 and t_run < model_iterations and n + step <= budget:
                return (f"{head}: the most this run computed ({t_run} iterations) within the budget of {budget}; "
                        "raise *Maximum iterations* for more")
            fit = "" if n == budget else f" (counts come in steps of {step})"
            return f"{head}: the largest count that fits in the budget of {budget}{fit}"
        what = Handlers.criterion_text(crit)
        met = crit.reached(rec.tokens[selected], rec.l1[selected], rec.psnr[selected])
        note = "" if met else " (no iteration met it: the official fallback, the lowest error, is shown)"
        return f"{head}, for {what}{note}{Handlers.floor_note(rec, crit, met)}"

    @staticmethod
    def floor_note(rec: Record, crit: Criterion, met: bool) -> str:
        """Why no iteration met the criterion, when the base tokenizer alone does not meet it either."""
        if met or rec.base_l1 is None:
            return ""
        if crit.kind == "l1" and rec.base_l1 >= crit.value:
            alone = f"L1 {rec.base_l1:.4f}"
        elif crit.kind == "psnr" and rec.base_psnr < crit.value:
            alone = f"{rec.base_psnr:.2f} dB"
        else:
            return ""
        return (f". The {rec.base} alone, decoding this image's own {texts.base_decodes(rec.base)} "
                "(what the tokens predict), reaches "
                f"{alone}: the criterion asks for less error than this model's base tokenizer draws the image with.")

    @staticmethod
    def criterion_text(crit: Criterion) -> str:
        if crit.kind == "tokens":
            return f"a budget of {int(crit.value)} tokens"
        return f"L1 < {crit.value:g}" if crit.kind == "l1" else f"PSNR ≥ {crit.value:g} dB"

    def metrics_md(self, rec: Record, selected: int | None, crit: Criterion | None, total: int,
                   model_iterations: int, shown: int | None = None) -> str:
        """The numbers of the iteration `shown` (None: the last computed), then the selection's."""
        lines = [self.iteration_md(rec, len(rec.tokens) - 1 if shown is None else shown, total)]
        if selected is not None:
            lines.append(self.selection_md(rec, selected, crit, model_iterations))
        return "\n\n".join(lines)

    def views(self, run: Run, crit: Criterion, selected: int, measure: str) -> dict:
        """Everything that depends on the selection (re-computed from the stored rollout)."""
        ui, rec = self.ui, run.rec
        if rec.karl:  # the desired L1 is KARL's target
            crit = Criterion.make(threshold=rec.quality)
        floor = None if rec.base_l1 is None else (rec.base, rec.base_l1)
        curve = figures.error_curve(rec.tokens, rec.l1, rec.psnr, crit.value if crit.kind != "tokens" else None,
                                    selected, crit.kind, floor)
        row = explorer.complexity_row(rec, selected)
        original = run.picture("original", lambda: figures.enlarge(rec.image, smooth=True))
        recon = run.recon(selected)
        return {
            ui.gallery: self.gallery(run, selected),
            ui.compare: (original, recon),
            ui.curve: curve,
            ui.scatter: self.complexity_figure(run.model, measure, row),
            ui.comp: figures.compression_bars(explorer.compression(rec, selected)),
            ui.metrics: self.metrics_md(rec, selected, crit, len(rec.tokens), run.model_iterations, run.shown),
            ui.selected: selected,
        }

    def model_label(self, model: str, tok) -> str:
        size = f"{tok.resolution} px, {tok.config.grid_size}x{tok.config.grid_size} grid"
        model = self.cache.resolve(model)  # BUNDLED is the server's default, which may be another model
        if model == "bundled:default":
            return f"the bundled model, a small ALIT we trained on a CPU ({size})"
        if model.startswith("bundled:"):  # a preview of the line in training (assets/MODEL_CARD.md)
            steps = (tok.metadata or {}).get("trained_steps")
            trained = f"trained {steps:,} steps so far, " if steps else ""
            return f"`{model}`, a preview of the model we are still training on a CPU ({trained}{size})"
        return f"`{model}` ({'KARL, ' if is_karl(tok) else ''}{size})"

    def family_controls(self, karl: bool, kind, threshold: float | None = None) -> dict:
        """The settings a model family has: ALIT's criteria, iterations and halting, or KARL's desired L1.
        threshold: the model's own L1 threshold, named in the box's label (None: the label stays)."""
        ui = self.ui
        update = {getattr(ui, n): gr.update(visible=not karl) for n in ALIT_CONTROLS}
        named = {} if threshold is None else {"label": texts.l1_label(threshold)}
        update.update({ui.l1: gr.update(visible=not karl and kind == L1, **named),
                       ui.psnr: gr.update(visible=not karl and kind == PSNR),
                       ui.budget: gr.update(visible=not karl and kind == BUDGET),
                       ui.quality: gr.update(visible=karl)})
        if not karl:
            update[ui.budget_plot] = gr.update(visible=False)
        return update

    def start(self, image_path, model, device, dtype, halting, layer: int | None, progress=None,
              karl_halting: bool = True):
        """What every run checks before it computes: (tokenizer, image, an empty Run), or Refused.
        layer: the decoder layer whose attention is kept (None: the model's own, attention_layer).
        karl_halting=False: a KARL model's halting is not asked (the Explore tab hides it for KARL).
        progress: a download's (gr.Progress)."""
        tok = self.tokenizer(model, device, dtype, download_progress(progress, model))
        if karl_halting or not is_karl(tok):
            check_halting(tok, halting)
        discovery = texts.object_discovery(tok.metadata)
        depth = tok.config.dec_depth
        if layer is not None and not -depth <= layer < depth:
            raise Refused(f"This model's decoder has {depth} layers: the attention layer is 0 to {depth - 1} "
                          f"(or -1 for the last), not {layer}.")
        upload = read_upload(image_path, tok.resolution)
        return tok, upload.image, Run(rec=None, pictures=Pictures(self.outputs), model=model, discovery=discovery,
                                      model_iterations=explorer.steps(tok), notes=upload.notes)

    # --- Explore ---------------------------------------------------------------------------------
    def run(self, image_path, model, device, dtype, kind, l1, psnr, budget, max_iterations, halting, seed, layer,
            measure, quality=None, previous: Run | None = None, progress=gr.Progress()):
        """Stream every iteration as it is computed, then the selection-dependent views and the attention.
        A KARL model streams its budget sweep at the desired L1 `quality` instead (criterion, maximum
        iterations, halting and seed are ALIT's, hidden for it and not used). `previous`: the run the page
        shows, which a refused run leaves there (its error says so)."""
        ui = self.ui
        try:
            if not image_path:
                raise Refused("Upload an image first, or pick one of the examples.")
            crit = self.criterion(kind, l1, psnr, budget)
            if seed is None or layer is None or max_iterations is None:
                raise Refused("The seed, the maximum iterations and the attention layer need a whole number.")
            tok, image, run = self.start(image_path, model, device, dtype, halting, int(layer), progress,
                                         karl_halting=False)
            karl = is_karl(tok)
            if karl and quality is not None and not 0 < float(quality) <= 1:
                raise Refused(f"KARL's desired L1 is above 0 and at most 1; {quality} cannot be used.")
        except Refused as err:
            shown = "" if previous is None or not previous.done else (
                f"The results below are still those of {previous.rec.name}.")
            yield {ui.status: status_md(error=sentences(str(err), shown))}
            return
        run.inputs = {"image": str(image_path), **dict(zip(EXPLORE_SETTINGS, (
            model, device, dtype, kind, l1, psnr, budget, max_iterations, halting, seed, layer, measure, quality)))}
        name = Path(str(image_path)).name
        steps = explorer.steps(tok)
        total = steps if karl else min(int(max_iterations), steps)
        controls = self.family_controls(karl, kind, None if karl else tok.default_threshold)
        if not karl:  # the run's own settings kept, in this model's ranges and halting modes
            self.size_controls(controls, tok, budget, max_iterations, halting)
        for rec in explorer.rollout(tok, image, name, halting=halting, seed=int(seed), max_iterations=total,
                                    layer=int(layer), quality=quality):
            run.rec = rec
            t = len(rec.tokens) - 1
            progress((t + 1, total), desc=f"{rec.step_name(t)} ({t + 1} of {total})" if karl else
                     f"iteration {t} (0-{total - 1})")
            update = {
                ui.record: run,
                ui.gallery: self.gallery(run, None),
                ui.current: run.recon(t),
                ui.halt_map: self.halt_picture(run, t),
                ui.error_map: self.error_picture(run, t),
                ui.metrics: self.metrics_md(rec, None, None, total, steps),
            }
            if t == 0:  # the status line now belongs to this run: no old error, the notes on this image
                words = STEP_WORDS[karl]
                update.update({ui.status: status_md(notes=run.notes), **controls,
                               ui.halt_map: gr.update(value=update[ui.halt_map], label=HALT_LABELS[karl]),
                               ui.gallery: gr.update(value=update[ui.gallery], label=words["gallery"]),
                               ui.play: gr.update(value=words["play"]),  # (a button's text is its value)
                               ui.play_pace: gr.update(label=words["play_pace"])})
            if karl:
                update[ui.budget_plot] = gr.update(visible=True, value=figures.budget_counts(rec.budgets, rec.tokens))
            yield update
        run.done, run.criterion = True, crit
        selected = rec.select(crit)
        od = run.discovery
        # the attention view opens where the model's object discovery was measured, if it says where
        it = od["iteration"] if od and "iteration" in od and od["iteration"] < len(rec.tokens) else selected
        heads = rec.maps[0].shape[0] if rec.maps else 1
        yield {
            ui.record: run,
            **self.views(run, crit, selected, measure),
            # a slider needs two ends: a one-iteration run shows its one iteration on a fixed slider
            ui.iteration: gr.update(value=it, maximum=max(1, len(rec.tokens) - 1), interactive=len(rec.tokens) > 1,
                                    label=iteration_label(rec.karl, rec.tokens[0])),
            ui.head: gr.update(choices=["mean", *map(str, range(heads))], value="mean"),
            ui.clicked: None,  # a position clicked on the previous image means nothing on this one
            ui.how: texts.how_it_works(self.model_label(model, tok), tok.config, tok.metadata, karl=rec.karl),
            # the whole sweep once more at the end (a streamed update the page skipped would leave it short)
            ui.budget_plot: gr.update(visible=rec.karl, value=figures.budget_counts(rec.budgets, rec.tokens)
                                      if rec.karl else None),
        }

    def halt_picture(self, run: Run, t: int) -> str:
        """Iteration t's masked image tokens over the image, or (KARL) pass t's latents, the halted ones blue."""
        rec = run.rec
        if rec.karl:
            return run.picture(f"halt_{t}", lambda: figures.latent_halting(rec.halt[t], rec.top_budget))
        return run.picture(f"halt_{t}", lambda: figures.halting_map(rec.image, rec.halt[t]))

    def error_picture(self, run: Run, t: int) -> str:
        """Iteration t's error per grid cell over the image."""
        rec = run.rec
        return run.picture(f"error_{t}", lambda: figures.grid_map(
            figures.position_error(rec.recons[t], rec.image, rec.grid), vmax=0.3))

    def reselect(self, run: Run | None, kind, l1, psnr, budget, measure):
        """Another criterion or value re-selects from the stored rollout: nothing is recomputed."""
        ui = self.ui
        update = {ui.l1: gr.update(visible=kind == L1), ui.psnr: gr.update(visible=kind == PSNR),
                  ui.budget: gr.update(visible=kind == BUDGET)}
        try:
            crit = self.criterion(kind, l1, psnr, budget)
        except Refused as err:
            kept = self.kept_criterion(run)
            return {**update, ui.status: status_md(error=sentences(str(err), kept), notes=run.notes if run else ())}
        update[ui.status] = status_md(notes=run.notes if run else ())
        if run is not None and run.rec is not None and run.rec.karl:  # its count is set by the desired L1
            return {ui.status: update[ui.status]}
        if run is None or not run.done:
            return update
        run.criterion = crit
        return {**update, **self.views(run, crit, run.rec.select(crit), measure)}

    def kept_criterion(self, run: Run | None) -> str:
        """After a refused value, which stays in its box for the visitor to mend: the criterion the shown
        selection still uses. (Putting that back in the box instead would set off the box's blur event, and its
        re-selection would clear the error before it is read.)"""
        if run is None or not run.done or run.criterion is None or run.rec.karl:
            return ""
        return f"The selection still uses {self.criterion_text(run.criterion)}."

    def complexity_plot(self, run: Run | None, selected, measure):
        row = explorer.complexity_row(run.rec, int(selected)) if run and run.done and selected is not None else None
        return {self.ui.scatter: self.complexity_figure(run.model if run else None, measure, row)}

    def panel(self, run: Run, t: int, selected: int | None) -> dict:
        """The panel above the gallery at iteration t: its reconstruction, halted positions, error per position
        and numbers, with the selection's line kept under them."""
        run.shown = t
        rec = run.rec
        return {self.ui.current: run.recon(t),
                self.ui.halt_map: self.halt_picture(run, t),
                self.ui.error_map: self.error_picture(run, t),
                self.ui.metrics: self.metrics_md(rec, selected, run.criterion, len(rec.tokens), run.model_iterations,
                                                 shown=t)}

    def play(self, run: Run | None, seconds_per_step: float | None = 0.8, selected: int | None = None):
        """Replay the iterations one by one, for a class, `seconds_per_step` apart (0.2 to 3)."""
        seconds_per_step = min(3.0, max(0.2, 0.8 if seconds_per_step is None else float(seconds_per_step)))
        ui = self.ui
        if run is None or not run.done:
            yield {ui.status: status_md(error="Tokenize an image first; then its iterations can be replayed.")}
            return
        yield {ui.status: status_md(notes=run.notes)}
        for t in range(len(run.rec.recons)):
            yield self.panel(run, t, selected)
            time.sleep(seconds_per_step)

    def show_iteration(self, run: Run | None, selected, evt: gr.SelectData):
        """A reconstruction clicked in the gallery: the panel above shows that iteration until the next click,
        Play or run (a teacher can stop on one)."""
        if run is None or not run.done:
            return {}
        return self.panel(run, slider_index(evt.index, len(run.rec.recons)), selected)

    # --- Attention -------------------------------------------------------------------------------
    def attention(self, run: Run | None, iteration, token, head, opacity, clicked):
        """One latent token's attention over the image, the object-discovery view, and who attends
        to the clicked position, all at the chosen iteration (a control moved by the visitor)."""
        ui = self.ui
        if run is None or not run.done or not run.rec.maps:
            return {ui.status: status_md(error="Tokenize an image first to see its attention.")}
        return {**self.attention_views(run, iteration, token, head, opacity, clicked),
                ui.status: status_md(notes=run.notes)}

    def attention_after_run(self, run: Run | None, iteration, token, head, opacity, clicked):
        """The attention views for a run that just finished; nothing when it did not (its status stays)."""
        if run is None or not run.done or not run.rec.maps:
            return {self.ui.status: gr.skip()}  # (an empty dict would be taken for one output's value)
        return self.attention_views(run, iteration, token, head, opacity, clicked)

    def attention_views(self, run: Run, iteration, token, head, opacity, clicked) -> dict:
        ui, rec = self.ui, run.rec
        t = slider_index(iteration, len(rec.maps))
        head = known_head(rec, t, head)
        # the tokens that exist at this iteration: the slider's range follows the iteration
        k = slider_index(token, rec.columns(t))
        token_update = token_slider(k, token, rec.columns(t) - 1, run.token_top)
        seg, legend = figures.segment_overlay(rec.image, rec.segments(t, head))
        # (a swatch never breaks across lines: "token" at a line's end and its number on the next read as two)
        swatches = " ".join(f"<span style='background:{c};padding:0 6px;border-radius:3px;white-space:nowrap'>"
                            f"token {tok}</span>"
                            for tok, c in legend.items())
        where = f"KARL, budget {rec.budgets[t]}" if rec.karl else f"Iteration {t}"
        md = (f"{where} ({rec.tokens[t]} tokens), decoder layer {rec.layer}, head {head}: token {k} "
              f"({rec.token_note(t, k)}).\n\n**Regions by strongest token** "
              f"({len(legend)} tokens own a region): {swatches}")
        run.token_top = token_update["maximum"]  # once the view is drawn: what the page will get
        return {
            ui.token: gr.update(**token_update, label=STEP_WORDS[rec.karl]["token"]),
            ui.overlay: run.overlay(t, k, head, opacity),
            ui.segments: run.picture(f"segments_{t}_{head}", lambda: seg),
            ui.attn_md: md,
            ui.finding: texts.attention_finding(run.discovery),
            ui.who: self.who_md(run, t, head, clicked),
        }

    @staticmethod
    def who_md(run: Run, t: int, head, clicked) -> str:
        """Which tokens of iteration t attend most to the clicked grid position (strongest first)."""
        if clicked is None:
            return "Click the attention picture to see which tokens attend most to that position."
        gy, gx = clicked
        rec = run.rec
        w = rec.attention(t, head)[:, gy, gx]
        top = np.argsort(-w)[:5]
        rows = "\n".join(f"| {k} | {rec.token_note(t, k) if rec.karl else k // rec.tokens[0]} | {w[k]:.3f} |"
                         for k in top)
        # the position's query attends over the decoder's whole input: (ALIT's class token,) the P positions
        # and the latents (KARL: its whole budget)
        inputs = (0 if rec.karl else 1) + rec.grid * rec.grid + (rec.budgets[t] if rec.karl else rec.tokens[t])
        return (f"At {rec.step_name(t)} ({rec.tokens[t]} tokens), position (row {gy}, column {gx}) attends most to:"
                f"\n\n| token | {'latent' if rec.karl else 'added at iteration'} | weight |\n|---|---|---|\n{rows}"
                f"\n\nweight: the share of this position's attention that goes to the token; spread evenly over "
                f"the decoder's {inputs} inputs it would be {1 / inputs:.4f}.")

    def who_attends(self, run: Run | None, iteration, head, evt: gr.SelectData):
        ui = self.ui
        if run is None or not run.done or not run.rec.maps:
            return {ui.status: status_md(error="Tokenize an image first to see its attention.")}
        rec = run.rec
        t = slider_index(iteration, len(rec.maps))
        head = known_head(rec, t, head)
        g = rec.grid
        x, y = evt.index[0], evt.index[1]
        clicked = (min(g - 1, max(0, int(y * g / figures.DISPLAY))), min(g - 1, max(0, int(x * g / figures.DISPLAY))))
        return {ui.who: self.who_md(run, t, head, clicked), ui.clicked: clicked, ui.status: status_md(notes=run.notes)}

    # --- Export ----------------------------------------------------------------------------------
    def export(self, run: Run | None, selected, kind=None, l1=None, psnr=None, budget=None):
        """The run's files; the JSON names the model, the run's settings and the criterion of the selection
        (Explore's as it is now, which made `selected`)."""
        ui = self.ui
        if run is None or not run.done:
            return {ui.status: status_md(error="Tokenize an image first; then its run can be exported.")}
        rec = run.rec
        sel = int(selected) if selected is not None else len(rec.tokens) - 1
        about = {"model": run.model or BUNDLED,
                 "settings": {k: run.inputs[k] for k in ("device", "dtype", "max_iter", "halting", "seed")
                              if k in run.inputs}}
        if not rec.karl and kind is not None:
            try:
                about["selected_for"] = self.criterion_text(self.criterion(kind, l1, psnr, budget))
            except Refused:
                pass  # a value being typed: the files still hold the selection shown
        out = self.outputs.folder()
        stem = Path(rec.name).stem
        paths = [explorer.export_json(rec, sel, out / f"{stem}_tokens.json", about),
                 explorer.export_npz(rec, sel, out / f"{stem}_rollout.npz"),
                 explorer.export_pngs(rec, out / f"{stem}_reconstructions.zip"),
                 explorer.export_gif(rec, sel, out / f"{stem}_rollout.gif")]
        return {ui.files: [str(p) for p in paths], ui.status: status_md(notes=run.notes)}

    # --- API ---------------------------------------------------------------------------------------
    def tokenize(self, image_path, threshold: float | None = None, halting: str = "deterministic",
                 max_iterations: int = 8, model: str = BUNDLED):
        """API: an image -> per-iteration tokens, L1 and PSNR, and the selected token count."""
        try:
            if not image_path:
                raise Refused("no image was sent")
            tok = self.tokenizer(model, None, "float32")
            check_halting(tok, halting)
            upload = read_upload(image_path, tok.resolution)
            crit = self.criterion(L1, tok.default_threshold if threshold is None else float(threshold), None, None)
            if max_iterations is None or int(max_iterations) < 1:
                raise Refused(f"max_iterations is a whole number of iterations, at least 1; not {max_iterations!r}")
        except Refused as err:
            raise gr.Error(str(err)) from err
        rec = explorer.complete(tok, upload.image, Path(str(image_path)).name, halting=halting,
                                max_iterations=int(max_iterations))
        return {**rec.summary(rec.select(crit)), "notes": upload.notes}


    # --- Settings --------------------------------------------------------------------------------
    def model_defaults(self, model, device, dtype, kind=L1, halting="deterministic"):
        """A model chosen under Model brings its family's settings (ALIT's criteria, iterations and halting,
        or KARL's desired L1) and its own L1 threshold, token counts, iterations and halting modes (the
        visitor's halting kept where the model takes it), when they are known without a download (it is in
        memory or bundled, or it is a released checkpoint: the official 0.07, KARL's 0.05). A local file
        shows its family's settings when it runs; until then every halting mode is offered."""
        ui = self.ui
        tok = self.cache.known(None if model == BUNDLED else model, device, dtype)
        karl = is_karl(tok) if tok is not None else named_karl(model)
        if tok is None and not karl and not str(model).startswith("official:"):
            return {ui.quality: gr.skip(), ui.halting: gr.update(**halting_choices(None))}
        update = self.family_controls(karl, kind)
        if karl:
            update[ui.quality] = gr.update(visible=True, value=tok.config.default_quality if tok else KARL_QUALITY)
        else:
            threshold = tok.default_threshold if tok is not None else alit_core.DEFAULT_THRESHOLD
            update[ui.l1] = gr.update(value=threshold, label=texts.l1_label(threshold), visible=kind == L1)
            # (shown again after a KARL model: family_controls' update, with the list added)
            update[ui.halting] = {**update[ui.halting], **halting_choices(None)}
            if tok is not None:
                self.size_controls(update, tok, halting=halting)
        return update

    def size_controls(self, update: dict, tok, budget=None, max_iterations=None, halting=None) -> None:
        """Add to `update` (family_controls' visibility updates) the ALIT settings sized to tok
        (choices.alit_model_controls)."""
        for control, sized in alit_model_controls(tok, budget, max_iterations, halting).items():
            component = getattr(self.ui, control)
            update[component] = {**update[component], **sized}


def known_head(rec: Record, t: int, head) -> str:
    """"mean" or a head index the model has (a head typed for another model falls back to the mean)."""
    return str(head) if str(head).isdigit() and int(head) < rec.maps[t].shape[0] else "mean"


