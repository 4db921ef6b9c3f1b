"""Gradio event handlers: thin functions that turn UI values into explorer calls and back.

Each handler returns (or yields) updates keyed by component, so an update names what it changes
and everything else stays as it is. What the visitor asked for that cannot be done (a bad
upload, a threshold out of range, a model that does not load) goes into the tab's status line,
where it stays until the next action, and leaves every other panel alone; one bad upload never
disturbs anybody else's session. Only the documented API endpoint (/tokenize) raises gr.Error.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import gradio as gr
import numpy as np

import alit_core
from alit_core import ALITError, Criterion, DownloadError

from . import explorer, figures, texts
from .explorer import BUNDLED, ModelCache, Record, is_karl
from .files import OutputDir, Pictures

MEASURE_LABELS = {"png_bpp": "PNG bits per pixel", "jpeg_bpp": "JPEG bits per pixel", "entropy": "entropy (bits)",
                  "edge_density": "edge density", "high_freq_energy": "high-frequency energy"}
L1, PSNR, BUDGET = "L1 threshold", "PSNR target (dB)", "token budget"
CRITERIA = [L1, PSNR, BUDGET]
DEFAULT_PSNR = 25.0
# What a visitor may type (the budget is a slider, bounded by the model's counts).
L1_RANGE, PSNR_RANGE = (0.0, 1.0), (1.0, 100.0)
BATCH_COLUMNS = ["name", "tokens", "l1", "psnr", *alit_core.COMPLEXITY_MEASURES]
# The inputs of the Explore run after the image, and of Compare, by component name (app/layout.py wires them).
EXPLORE_SETTINGS = ("model", "device", "dtype", "kind", "l1", "psnr", "budget", "max_iter", "halting", "seed", "layer",
                    "measure", "quality")
# The Explore settings only ALIT has (its criteria, iterations and halting; KARL's own is the desired L1, ui.quality).
ALIT_CONTROLS = ("kind", "max_iter", "halting", "seed")
COMPARE_INPUTS = ("cmp_mode", "cmp_image_a", "cmp_image_b", "cmp_model_a", "cmp_halting_a", "cmp_kind_a",
                  "cmp_value_a", "cmp_model_b", "cmp_halting_b", "cmp_kind_b", "cmp_value_b")
# The Compare tab's two ways, and the label of each criterion's value there.
TWO_IMAGES, TWO_SETTINGS = "two images, one model", "one image, two models or settings"
COMPARE_MODES = [TWO_IMAGES, TWO_SETTINGS]
DIFFERENCE_TOP = 0.5  # the difference picture's colour scale: 0 to this much of the full range
KARL_CRITERION = ("A KARL model's count is set by the desired L1 (its quality, the L1 threshold's value): choose "
                  "the L1 threshold criterion for it.")
HALT_LABEL = ("Halting (blue = halted): ALIT's masked image tokens, or a KARL pass's latents in order (grey: beyond "
              "its budget)")
ITERATION_LABELS = {False: "Iteration (0 = the first 32 tokens)",
                    True: "Pass of the budget sweep (0 = the smallest budget)"}
VALUE_LABELS = {L1: "L1 threshold (0 to 1)", PSNR: "PSNR target (dB, 1 to 100)", BUDGET: "token budget (tokens)"}


def load_reference() -> list[dict]:
    path = explorer.ASSETS / "reference_set.json"
    return json.loads(path.read_text())["images"] if path.exists() else []


class Refused(Exception):
    """What the visitor asked for cannot be done; the message says why, for the status line."""


def status_md(error: str | None = None, notes: list[str] | tuple = ()) -> str:
    """The status line: an error (kept until the next action), else the notes about the image, else nothing."""
    lines = []
    if error:
        lines.append(f"<div class='alit-status-error'>⚠️ {escape(error, quote=False)}</div>")
    lines += [f"<div class='alit-status-note'>ℹ️ {escape(n, quote=False)}</div>" for n in notes]
    return "\n".join(lines)


@dataclass
class Run:
    """One Explore run as the page keeps it: the rollout, the pictures already written for it, what
    the model records about itself, and the notes about the image."""

    rec: Record
    pictures: Pictures
    model: str
    discovery: dict | None  # texts.object_discovery of the model's metadata
    model_iterations: int  # the model's, which a run may stop short of
    notes: list[str] = field(default_factory=list)
    done: bool = False
    inputs: dict = field(default_factory=dict)  # the image and EXPLORE_SETTINGS it was run with (Share)

    def picture(self, name: str, make) -> str:
        return self.pictures.get(name, make)

    def recon(self, t: int) -> str:
        """Iteration t's reconstruction, at the display size."""
        return self.picture(f"recon_{t}", lambda: figures.enlarge(self.rec.recons[t]))

    def overlay(self, t: int, k: int, head, opacity: float) -> str:
        """Token k's attention at iteration t over the image (a fresh picture: it follows the controls)."""
        maps = self.rec.attention(t, head)
        return self.pictures.fresh(f"attention_{t}_{k}", figures.heat_overlay(self.rec.image, maps[k], float(opacity)))


def budget_slider(config) -> dict:
    """The token-budget slider's range, step, default and label for a model: multiples of its latents per
    iteration up to its last iteration's count (the value is always in range: gradio refuses every event
    whose slider value lies outside the slider)."""
    step, most = config.latents_per_iteration, config.tokens_at(config.iterations - 1)
    return dict(minimum=step, maximum=most, step=step, value=min(most, 4 * step),
                label=f"Token budget (the largest count that fits; {step} to {most})")


def attention_layer(discovery: dict | None) -> int:
    """The decoder layer whose attention is shown: where the model's object discovery was measured, else the last."""
    return discovery["layer"] if discovery and "layer" in discovery else -1


@dataclass
class Comparison:
    """Two finished runs as the Compare tab keeps them: A and B (the same Run when one rollout serves
    both), each with its criterion, selection and halting, for the shared iteration slider."""

    runs: tuple[Run, Run]
    crits: tuple[Criterion, Criterion]
    selected: tuple[int, int]
    halting: tuple[str, str]
    notes: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)  # COMPARE_INPUTS by name (Share)

    @property
    def mixed(self) -> bool:
        """ALIT against KARL: the slider follows ALIT's iterations."""
        return self.runs[0].rec.karl != self.runs[1].rec.karl

    @property
    def iterations(self) -> int:
        if self.mixed:
            return next(len(r.rec.tokens) for r in self.runs if not r.rec.karl)
        return max(len(r.rec.tokens) for r in self.runs)

    def at(self, t: int) -> tuple[int, int]:
        """Each run's iteration at the shared iteration t (a shorter run stays on its last). ALIT against
        KARL: ALIT's iteration t and KARL's pass whose estimated count is nearest its tokens (equal
        token counts where KARL has one)."""
        ts = [min(t, len(r.rec.tokens) - 1) for r in self.runs]
        if self.mixed:
            alit, karl = (0, 1) if self.runs[1].rec.karl else (1, 0)
            n, counts = self.runs[alit].rec.tokens[ts[alit]], self.runs[karl].rec.tokens
            ts[karl] = min(range(len(counts)), key=lambda i: (abs(counts[i] - n), i))
        return tuple(ts)


class Handlers:
    def __init__(self, cache: ModelCache, ui, outputs: OutputDir | None = None):
        self.cache = cache
        self.ui = ui  # the page's components (layout.Ui): updates are keyed by them
        self.outputs = outputs or OutputDir()
        self.reference = load_reference()

    # --- helpers ---------------------------------------------------------------------------------
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
        if kind == PSNR:
            if psnr is None or not PSNR_RANGE[0] <= float(psnr) <= PSNR_RANGE[1]:
                raise Refused(f"A PSNR target is in dB, from {PSNR_RANGE[0]:g} to {PSNR_RANGE[1]:g} "
                              f"(e.g. {DEFAULT_PSNR:g}); {psnr} cannot be used.")
            return Criterion.make(psnr=float(psnr))
        if kind == BUDGET:
            if budget is None or float(budget) < 1:
                raise Refused(f"A token budget is a number of tokens (32, 64, ...); {budget} cannot be used.")
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
        return (f"**Iteration {t}** of 0-{total - 1}: {rec.tokens[t]} tokens, "
                f"L1 {rec.l1[t]:.4f}, PSNR {rec.psnr[t]:.2f} dB")

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
        what = f"L1 < {crit.value:g}" if crit.kind == "l1" else f"PSNR ≥ {crit.value:g} dB"
        met = rec.l1[selected] < crit.value if crit.kind == "l1" else rec.psnr[selected] >= crit.value
        note = "" if met else " (no iteration met it: the official fallback, the lowest error, is shown)"
        return f"{head}, for {what}{note}"

    def metrics_md(self, rec: Record, selected: int | None, crit: Criterion | None, total: int,
                   model_iterations: int) -> str:
        lines = [self.iteration_md(rec, len(rec.tokens) - 1, total)]
        if selected is not None:
            lines.append(self.selection_md(rec, selected, crit, model_iterations))
        return "\n\n".join(lines)

    def views(self, run: Run, crit: Criterion, selected: int, measure: str) -> dict:
        """Everything that depends on the selection (re-computed from the stored rollout)."""
        ui, rec = self.ui, run.rec
        if rec.karl:  # the desired L1 is KARL's target
            crit = Criterion.make(threshold=rec.quality)
        curve = figures.error_curve(rec.tokens, rec.l1, rec.psnr, crit.value if crit.kind != "tokens" else None,
                                    selected, crit.kind)
        row = explorer.complexity_row(rec, selected)
        original = run.picture("original", lambda: figures.enlarge(rec.image, smooth=True))
        recon = run.recon(selected)
        return {
            ui.gallery: self.gallery(run, selected),
            ui.compare: (original, recon),
            ui.curve: curve,
            ui.scatter: figures.complexity_scatter(self.reference, measure, row),
            ui.comp: figures.compression_bars(explorer.compression(rec, selected)),
            ui.metrics: self.metrics_md(rec, selected, crit, len(rec.tokens), run.model_iterations),
            ui.selected: selected,
        }

    @staticmethod
    def model_label(model: str, tok) -> str:
        size = f"{tok.resolution} px, {tok.config.grid_size}x{tok.config.grid_size} grid"
        if model in (None, "", BUNDLED):
            return f"the bundled model, a small ALIT we trained on a CPU ({size})"
        return f"`{model}` ({'KARL, ' if is_karl(tok) else ''}{size})"

    def family_controls(self, karl: bool, kind) -> dict:
        """The settings a model family has: ALIT's criteria, iterations and halting, or KARL's desired L1."""
        ui = self.ui
        update = {getattr(ui, n): gr.update(visible=not karl) for n in ALIT_CONTROLS}
        update.update({ui.l1: gr.update(visible=not karl and kind == L1),
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
        image = read_upload(image_path, tok.resolution)
        return tok, image, Run(rec=None, pictures=Pictures(self.outputs), model=model, discovery=discovery,
                               model_iterations=explorer.steps(tok),
                               notes=explorer.input_notes(image_path, tok.resolution))

    # --- Explore ---------------------------------------------------------------------------------
    def run(self, image_path, model, device, dtype, kind, l1, psnr, budget, max_iterations, halting, seed, layer,
            measure, quality=None, progress=gr.Progress()):
        """Stream every iteration as it is computed, then the selection-dependent views and the attention.
        A KARL model streams its budget sweep at the desired L1 `quality` instead (criterion, maximum
        iterations, halting and seed are ALIT's, hidden for it and not used)."""
        ui = self.ui
        try:
            if not image_path:
                raise Refused("Upload an image first, or pick one of the examples.")
            crit = self.criterion(kind, l1, psnr, budget)
            if seed is None or layer is None:
                raise Refused("The seed and the attention layer need a whole number.")
            tok, image, run = self.start(image_path, model, device, dtype, halting, int(layer), progress,
                                         karl_halting=False)
            karl = is_karl(tok)
            if karl and quality is not None and not 0 < float(quality) <= 1:
                raise Refused(f"KARL's desired L1 is above 0 and at most 1; {quality} cannot be used.")
        except Refused as err:
            yield {ui.status: status_md(error=str(err))}
            return
        run.inputs = {"image": str(image_path), **dict(zip(EXPLORE_SETTINGS, (
            model, device, dtype, kind, l1, psnr, budget, max_iterations, halting, seed, layer, measure, quality)))}
        name = Path(str(image_path)).name
        steps = explorer.steps(tok)
        total = steps if karl else min(int(max_iterations), steps)
        controls = self.family_controls(karl, kind)
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
                ui.error_map: run.picture(f"error_{t}", lambda rec=rec, t=t: figures.grid_map(
                    figures.position_error(rec.recons[t], image, rec.grid), vmax=0.3)),
                ui.metrics: self.metrics_md(rec, None, None, total, steps),
            }
            if t == 0:  # the status line now belongs to this run: no old error, the notes on this image
                update.update({ui.status: status_md(notes=run.notes), **controls})
            if karl:
                update[ui.budget_plot] = gr.update(visible=True, value=figures.budget_counts(rec.budgets, rec.tokens))
            yield update
        run.done = True
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
                                    label=ITERATION_LABELS[rec.karl]),
            ui.head: gr.update(choices=["mean", *map(str, range(heads))], value="mean"),
            ui.clicked: None,  # a position clicked on the previous image means nothing on this one
            ui.how: texts.how_it_works(self.model_label(model, tok), tok.metadata, karl=rec.karl),
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

    def reselect(self, run: Run | None, kind, l1, psnr, budget, measure):
        """Another criterion or value re-selects from the stored rollout: nothing is recomputed."""
        ui = self.ui
        update = {ui.l1: gr.update(visible=kind == L1), ui.psnr: gr.update(visible=kind == PSNR),
                  ui.budget: gr.update(visible=kind == BUDGET)}
        try:
            crit = self.criterion(kind, l1, psnr, budget)
        except Refused as err:
            return {**update, ui.status: status_md(error=str(err), notes=run.notes if run else ())}
        update[ui.status] = status_md(notes=run.notes if run else ())
        if run is not None and run.rec is not None and run.rec.karl:  # its count is set by the desired L1
            return {ui.status: update[ui.status]}
        if run is None or not run.done:
            return update
        return {**update, **self.views(run, crit, run.rec.select(crit), measure)}

    def complexity_plot(self, run: Run | None, selected, measure):
        row = explorer.complexity_row(run.rec, int(selected)) if run and run.done and selected is not None else None
        return {self.ui.scatter: figures.complexity_scatter(self.reference, measure, row)}

    def play(self, run: Run | None, seconds_per_step: float = 0.8):
        """Replay the iterations one by one, for a class."""
        ui = self.ui
        if run is None or not run.done:
            yield {ui.status: status_md(error="Tokenize an image first; then its iterations can be replayed.")}
            return
        rec = run.rec
        yield {ui.status: status_md(notes=run.notes)}
        for t in range(len(rec.recons)):
            yield {ui.current: run.recon(t),
                   ui.halt_map: self.halt_picture(run, t),
                   ui.error_map: run.picture(f"error_{t}", lambda t=t: figures.grid_map(
                       figures.position_error(rec.recons[t], rec.image, rec.grid), vmax=0.3)),
                   ui.metrics: self.iteration_md(rec, t, len(rec.tokens))}
            time.sleep(seconds_per_step)

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
        t = int(min(max(int(iteration), 0), len(rec.maps) - 1))
        head = known_head(rec, t, head)
        # the tokens that exist at this iteration: the slider's range follows the iteration
        k = int(min(max(int(token), 0), rec.columns(t) - 1))
        seg, legend = figures.segment_overlay(rec.image, rec.segments(t, head))
        swatches = " ".join(f"<span style='background:{c};padding:0 6px;border-radius:3px'>token {tok}</span>"
                            for tok, c in legend.items())
        where = f"KARL, budget {rec.budgets[t]}" if rec.karl else f"Iteration {t}"
        md = (f"{where} ({rec.tokens[t]} tokens), decoder layer {rec.layer}, head {head}: token {k} "
              f"({rec.token_note(t, k)}).\n\n**Regions by strongest token** "
              f"({len(legend)} tokens own a region): {swatches}")
        return {
            ui.token: gr.update(maximum=rec.columns(t) - 1, value=k),
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
        return (f"At {rec.step_name(t)} ({rec.tokens[t]} tokens), position (row {gy}, column {gx}) attends most to:"
                f"\n\n| token | {'latent' if rec.karl else 'added at iteration'} | weight |\n|---|---|---|\n{rows}")

    def who_attends(self, run: Run | None, iteration, head, evt: gr.SelectData):
        ui = self.ui
        if run is None or not run.done or not run.rec.maps:
            return {ui.status: status_md(error="Tokenize an image first to see its attention.")}
        rec = run.rec
        t = int(min(max(int(iteration), 0), len(rec.maps) - 1))
        head = known_head(rec, t, head)
        g = rec.grid
        x, y = evt.index[0], evt.index[1]
        clicked = (min(g - 1, max(0, int(y * g / figures.DISPLAY))), min(g - 1, max(0, int(x * g / figures.DISPLAY))))
        return {ui.who: self.who_md(run, t, head, clicked), ui.clicked: clicked, ui.status: status_md(notes=run.notes)}

    # --- Export ----------------------------------------------------------------------------------
    def export(self, run: Run | None, selected):
        ui = self.ui
        if run is None or not run.done:
            return {ui.status: status_md(error="Tokenize an image first; then its run can be exported.")}
        rec = run.rec
        sel = int(selected) if selected is not None else len(rec.tokens) - 1
        out = self.outputs.folder()
        stem = Path(rec.name).stem
        paths = [explorer.export_json(rec, sel, out / f"{stem}_tokens.json"),
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
            image = read_upload(image_path, tok.resolution)
            crit = self.criterion(L1, tok.default_threshold if threshold is None else float(threshold), None, None)
        except Refused as err:
            raise gr.Error(str(err)) from err
        rec = explorer.complete(tok, image, Path(str(image_path)).name, halting=halting,
                                max_iterations=int(max_iterations))
        return {**rec.summary(rec.select(crit)), "notes": explorer.input_notes(image_path, tok.resolution)}

    # --- Batch -----------------------------------------------------------------------------------
    def batch(self, files, model, kind, l1, psnr, budget, measure, quality=None, progress=gr.Progress()):
        """Several images (or zips of images) -> a table, the complexity scatter and a CSV. A KARL model
        (Explore's model) gives its own count at Explore's desired L1 `quality` (its criteria are hidden)."""
        ui = self.ui
        try:
            if not files:
                raise Refused("Add some images (or a zip of images) first.")
            crit = self.criterion(kind, l1, psnr, budget)
            tok = self.tokenizer(model, None, "float32", download_progress(progress, model))
            if is_karl(tok):
                crit = self.criterion(L1, KARL_QUALITY if quality is None else quality, None, None)
        except Refused as err:
            return {ui.batch_status: status_md(error=str(err))}
        names, images = [], []
        # zips are unpacked into a folder of this call's own, removed once their images are read
        with tempfile.TemporaryDirectory(prefix="alit_zip_") as unpacked:
            paths, errors = expand_uploads([f if isinstance(f, str) else f.name for f in files], dest=unpacked)
            for i, (name, path) in enumerate(paths):
                progress((i, len(paths)), desc=f"reading {name}")
                try:
                    images.append(explorer.prepare(path, tok.resolution))
                    names.append(name)
                except ALITError as err:
                    errors.append(upload_message(err, path, name))
        if not images:
            return {ui.batch_status: status_md(error="None of the files could be used: " + "; ".join(errors[:5]))}
        picks = explorer.select_many(tok, images, crit,
                                     progress=lambda done: progress((done, len(images)), desc="tokenizing"))
        rows = [{"name": name, **pick, **alit_core.complexity(image)}
                for name, image, pick in zip(names, images, picks)]
        table = [[r[c] if not isinstance(r[c], float) else round(r[c], 4) for c in BATCH_COLUMNS] for r in rows]
        out = self.outputs.folder() / "alit_batch.csv"
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(BATCH_COLUMNS)
            w.writerows(table)
        skipped = [f"{len(errors)} file(s) skipped: " + "; ".join(errors[:5])] if errors else []
        return {ui.batch_table: gr.update(value=table, headers=BATCH_COLUMNS),
                ui.batch_plot: figures.complexity_scatter(self.reference, measure, rows),
                ui.batch_csv: str(out), ui.batch_status: status_md(notes=skipped)}

    # --- Compare ---------------------------------------------------------------------------------
    def compare(self, mode, image_a, image_b, model_a, halting_a, kind_a, value_a, model_b, halting_b, kind_b,
                value_b, progress=gr.Progress()):
        """Two runs side by side: two images under A's model and settings (TWO_IMAGES), or image A under
        A's and B's models or settings (TWO_SETTINGS). Each run is computed whole, with the attention
        of its model's own layer; one rollout serves both when image, model and halting are the same."""
        ui = self.ui
        settings_b = (model_b, halting_b, kind_b, value_b) if mode == TWO_SETTINGS else (
            model_a, halting_a, kind_a, value_a)
        sides = (("A", image_a, model_a, halting_a, kind_a, value_a),
                 ("B", image_a if mode == TWO_SETTINGS else image_b, *settings_b))
        started, keys, crits = {}, [], []
        try:
            for label, image, model, halting, kind, value in sides:
                try:
                    if not image:
                        raise Refused("Upload an image or pick an example first.")
                    crit = self.criterion(kind, value, value, value)
                    crits.append(crit)
                    tok, img, run = self.start(image, model, None, "float32", halting, None, progress)
                    quality = None  # a KARL pass depends on the desired L1: the value of its criterion
                    if is_karl(tok):
                        if crit.kind != "l1":
                            raise Refused(KARL_CRITERION)
                        quality = crit.value
                    key = (str(image), model, halting, quality)
                    started.setdefault(key, (tok, img, run))
                    keys.append(key)
                except Refused as err:
                    raise Refused(f"{label}: {err}") from err
        except Refused as err:
            return {ui.cmp_status: status_md(error=str(err))}
        total = sum(explorer.steps(tok) for tok, _, _ in started.values())
        done = 0
        for key, (tok, image, run) in started.items():
            label = " and ".join(lab for lab, k in zip("AB", keys) if k == key)
            layer = attention_layer(run.discovery)
            steps = explorer.steps(tok)
            for rec in explorer.rollout(tok, image, Path(key[0]).name, halting=key[2], seed=0, quality=key[3],
                                        max_iterations=steps, layer=layer):
                t = len(rec.tokens) - 1
                done += 1
                progress((done, total), desc=f"{label}: {rec.step_name(t)} ({t + 1} of {steps})" if rec.karl
                         else f"{label}: iteration {t} (0-{steps - 1})")
            run.rec, run.done = rec, True
        runs = tuple(started[k][2] for k in keys)
        notes = list(runs[0].notes) if runs[0] is runs[1] else [f"{lab}: {n}" for lab, run in zip("AB", runs)
                                                               for n in run.notes]
        cmp = Comparison(runs=runs, crits=tuple(crits), selected=tuple(r.rec.select(c) for r, c in zip(runs, crits)),
                         halting=tuple(k[2] for k in keys), notes=notes, inputs=dict(zip(COMPARE_INPUTS, (
                             mode, image_a, image_b, model_a, halting_a, kind_a, value_a, model_b, halting_b, kind_b,
                             value_b))))
        it = max(cmp.selected)  # where the later of the two selections lies
        n = cmp.iterations
        return {
            ui.cmp_record: cmp,
            ui.cmp_status: status_md(notes=notes),
            ui.cmp_summary: self.comparison_md(cmp),
            ui.cmp_curve: figures.error_curves([
                dict(name=lab, tokens=r.rec.tokens, l1=r.rec.l1, psnr=r.rec.psnr, selected=sel, criterion=c.kind,
                     target=c.value if c.kind != "tokens" else None)
                for lab, r, c, sel in zip("AB", cmp.runs, cmp.crits, cmp.selected)]),
            # a slider needs two ends: a one-iteration comparison shows its one iteration on a fixed slider
            ui.cmp_iteration: gr.update(value=it, maximum=max(1, n - 1), interactive=n > 1),
            **self.comparison_views(cmp, it, 0),
        }

    def compare_view(self, cmp: Comparison | None, iteration, token):
        """The shared iteration or the token moved: both reconstructions, their difference, both attentions."""
        if cmp is None:
            return {self.ui.cmp_status: status_md(error="Compare two runs first; then the slider moves both.")}
        return {**self.comparison_views(cmp, iteration, token), self.ui.cmp_status: status_md(notes=cmp.notes)}

    def comparison_md(self, cmp: Comparison) -> str:
        lines = []
        for lab, run, crit, sel, halting in zip("AB", cmp.runs, cmp.crits, cmp.selected, cmp.halting):
            how = "KARL, one pass per budget" if run.rec.karl else f"halting {halting}"
            lines.append(f"**{lab}** · `{run.rec.name}` · {run.model} · {how} — "
                         + self.selection_md(run.rec, sel, crit, run.model_iterations))
        na, nb = (run.rec.tokens[sel] for run, sel in zip(cmp.runs, cmp.selected))
        if na == nb:
            lines.append(f"Both select **{na} tokens**.")
        else:
            lines.append(f"B selects **{abs(nb - na)} {'more' if nb > na else 'fewer'} tokens** than A "
                         f"({nb / na:.2g}x).")
        if cmp.runs[0] is cmp.runs[1]:
            lines.append("One rollout serves both (the same image, model and halting): the reconstructions are the "
                         "same at every iteration, only the selections differ.")
        return "\n\n".join(lines)

    def comparison_views(self, cmp: Comparison, iteration, token) -> dict:
        ui = self.ui
        t = int(min(max(int(iteration), 0), cmp.iterations - 1))
        ts = cmp.at(t)
        recs = [r.rec for r in cmp.runs]
        lines = []
        mixed = recs[0].karl != recs[1].karl
        for lab, rec, ti, sel in zip("AB", recs, ts, cmp.selected):
            last = f" (its last: {len(rec.tokens)} iterations)" if ti < t and not mixed else ""
            if mixed and rec.karl:
                last = " (the pass whose count is nearest the other's)"
            star = " ★ selected" if ti == sel else ""
            lines.append(f"**{lab}** at {rec.step_name(ti)}{last}: {rec.tokens[ti]} tokens, L1 {rec.l1[ti]:.4f}, "
                         f"PSNR {rec.psnr[ti]:.2f} dB{star}")
        diff, mean = figures.difference_map(recs[0].recons[ts[0]], recs[1].recons[ts[1]], vmax=DIFFERENCE_TOP)
        lines.append(f"**Difference** |A − B| of the two reconstructions: mean {mean:.4f} of the full range "
                     f"(black where they agree, brightest from {DIFFERENCE_TOP:g})")
        # a token both runs have at their iteration
        n = min(rec.columns(ti) for rec, ti in zip(recs, ts))
        k = int(min(max(int(token), 0), n - 1))
        attn, where = {}, []
        for lab, run, ti, comp in zip("AB", cmp.runs, ts, (ui.cmp_attn_a, ui.cmp_attn_b)):
            if run.rec.maps:
                attn[comp] = run.overlay(ti, k, "mean", 0.5)
                where.append(f"{lab}: {run.rec.step_name(ti)}, decoder layer {run.rec.layer}")
        if any(rec.karl for rec in recs):
            origin = "; ".join(f"{lab}: {rec.token_note(ti, k)}" for lab, rec, ti in zip("AB", recs, ts))
        else:
            origin = recs[0].token_note(ts[0], k)
        attn_md = (f"Token {k} ({origin}), mean of the heads; " + "; ".join(where)
                   if attn else "These models keep no attention maps.")
        return {
            ui.cmp_recon_a: cmp.runs[0].recon(ts[0]),
            ui.cmp_recon_b: cmp.runs[1].recon(ts[1]),
            ui.cmp_diff: cmp.runs[0].pictures.get(f"difference_{id(cmp.runs[1])}_{ts[0]}_{ts[1]}", lambda: diff),
            ui.cmp_view_md: "\n\n".join(lines),
            ui.cmp_token: gr.update(maximum=max(1, n - 1), value=k),
            **attn,
            ui.cmp_attn_md: attn_md,
        }

    def compare_value(self, kind, model, side: str = "A"):
        """A Compare side's value box for its criterion and model: its label, and the default when known
        without loading the model (the model's own L1 threshold, 25 dB, four iterations' tokens)."""
        label = f"{side}: {VALUE_LABELS.get(kind, VALUE_LABELS[L1])}"
        tok = self.cache.peek(None if model == BUNDLED else model)
        if (is_karl(tok) if tok is not None else named_karl(model)) and kind == L1:
            return gr.update(label=f"{side}: KARL's desired L1 (its quality, 0 to 1)", value=KARL_QUALITY)
        if kind == PSNR:
            return gr.update(label=label, value=DEFAULT_PSNR)
        if kind == BUDGET:
            return gr.update(label=label, value=4 * (tok.config.latents_per_iteration if tok else 32))
        if tok is not None:
            return gr.update(label=label, value=tok.default_threshold)
        if str(model).startswith("official:"):
            return gr.update(label=label, value=alit_core.DEFAULT_THRESHOLD)
        return gr.update(label=label)

    def compare_mode(self, mode):
        """Two images: image B, with A's settings for both; two settings: B's settings, on image A."""
        ui, two = self.ui, mode == TWO_SETTINGS
        return {ui.cmp_image_b_box: gr.update(visible=not two), ui.cmp_settings_b: gr.update(visible=two),
                ui.cmp_settings_a_md: COMPARE_SETTINGS_A[two], ui.cmp_b_md: COMPARE_B[two]}

    # --- Share -----------------------------------------------------------------------------------
    def share_view(self, run: Run | None, cmp: Comparison | None, tabs: dict, kind, l1, psnr, budget, measure,
                   iteration, token, head, opacity, cmp_iteration, cmp_token) -> str:
        """What a link to this page reopens, as JSON: the tabs shown, the Explore run's image and settings
        (with the criterion and measure as they are now: they re-select without a new run) at the attention
        view's iteration, token, head and opacity, and the comparison's inputs at its iteration and token.

        It is the value of a hidden box; gradio's deep link (/gradio_api/deep_link) keeps the page's
        values, this one among them, under the link's id. The box is the one value a link needs: gradio
        keeps a component's later values under another id once an update has rebuilt it (a slider whose
        range a run set), so the sliders' own values would not come back."""
        view = {"tabs": tabs or {}}
        if run is not None and run.done:
            view["explore"] = {**run.inputs, "kind": kind, "l1": l1, "psnr": psnr, "budget": budget,
                               "measure": measure}
            view["attention"] = {"iteration": iteration, "token": token, "head": head, "opacity": opacity}
        if cmp is not None:
            view["compare"] = dict(cmp.inputs)
            view["compare_view"] = {"iteration": cmp_iteration, "token": cmp_token}
        return json.dumps(view)

    def restore(self, view: str | None, progress=gr.Progress()):
        """A page opened from a shared link: its controls, tabs, run and comparison as share_view kept
        them, computed again. A page opened without a link has nothing to restore."""
        ui = self.ui
        try:
            view = json.loads(view) if view else {}
        except ValueError:
            view = {}
        if not view:
            return {ui.tab_state: gr.skip()}  # (an empty dict would be taken for one output's value)
        tabs = {k: v for k, v in view.get("tabs", {}).items() if k in ("tabs", "explore_tabs")}
        update = {ui.tab_state: tabs, **{getattr(ui, k): gr.update(selected=v) for k, v in tabs.items()}}
        if view.get("explore"):
            update.update(self.restore_explore(view["explore"], view.get("attention", {}), progress))
        if view.get("compare"):
            update.update(self.restore_compare(view["compare"], view.get("compare_view", {}), progress))
        return update

    def restore_explore(self, values: dict, attention: dict, progress) -> dict:
        ui = self.ui
        kind = values["kind"]
        values = {"quality": KARL_QUALITY, **values}  # (links made before KARL had no quality)
        update = {ui.image: values["image"], **{getattr(ui, n): values[n] for n in EXPLORE_SETTINGS},
                  ui.l1: gr.update(value=values["l1"], visible=kind == L1),
                  ui.psnr: gr.update(value=values["psnr"], visible=kind == PSNR),
                  ui.budget: gr.update(value=values["budget"], visible=kind == BUDGET)}
        if not linkable(values["image"]):
            return {**update, ui.image: None, ui.status: status_md(error=GONE)}
        restored = dict(update)
        for step in self.run(values["image"], *(values[n] for n in EXPLORE_SETTINGS), progress=progress):
            update.update(step)
        run = update.get(ui.record)
        if run is None or not run.done:
            return update  # refused: its status line says why
        for comp, value in restored.items():  # the controls keep their values, a KARL run its family's visibility
            shown = update[comp]
            if shown is not value:
                update[comp] = value if not (run.rec.karl and isinstance(shown, dict)) else {
                    **shown, **{k: v for k, v in (value if isinstance(value, dict) else {"value": value}).items()
                                if k != "visible"}}
        n = len(run.rec.tokens)
        t = int(min(max(int(attention.get("iteration", n - 1)), 0), n - 1))
        heads = update[ui.head]["choices"]
        head = str(attention.get("head", "mean"))
        head = head if head in heads else "mean"
        update.update(self.attention_views(run, t, attention.get("token", 0), head, attention.get("opacity", 0.5),
                                           None))
        update[ui.iteration] = gr.update(value=t, maximum=max(1, n - 1), interactive=n > 1)
        update[ui.head] = gr.update(choices=heads, value=head)
        update[ui.opacity] = attention.get("opacity", 0.5)
        return update

    def restore_compare(self, values: dict, at: dict, progress) -> dict:
        ui = self.ui
        update = {getattr(ui, n): values[n] for n in COMPARE_INPUTS}
        for side in "ab":
            kind = values[f"cmp_kind_{side}"]
            update[getattr(ui, f"cmp_value_{side}")] = gr.update(
                value=values[f"cmp_value_{side}"], label=f"{side.upper()}: {VALUE_LABELS.get(kind, VALUE_LABELS[L1])}")
        update.update(self.compare_mode(values["cmp_mode"]))
        images = ["cmp_image_a"] + (["cmp_image_b"] if values["cmp_mode"] != TWO_SETTINGS else [])
        gone = [n for n in images if not linkable(values[n])]
        if gone:
            return {**update, **{getattr(ui, n): None for n in gone}, ui.cmp_status: status_md(error=GONE)}
        update.update(self.compare(*(values[n] for n in COMPARE_INPUTS), progress=progress))
        cmp = update.get(ui.cmp_record)
        if cmp is None:
            return update
        t = int(min(max(int(at.get("iteration", 0)), 0), cmp.iterations - 1))
        update.update(self.comparison_views(cmp, t, at.get("token", 0)))
        update[ui.cmp_iteration] = gr.update(value=t, maximum=max(1, cmp.iterations - 1),
                                             interactive=cmp.iterations > 1)
        return update

    # --- Settings --------------------------------------------------------------------------------
    def model_defaults(self, model, device, dtype, kind=L1):
        """A model chosen under Model brings its family's settings (ALIT's criteria, iterations and halting,
        or KARL's desired L1) and its own L1 threshold and token counts, when they are known without
        loading it (it is in memory, or it is a released checkpoint: the official 0.07, KARL's 0.05).
        A local file shows its family's settings when it runs."""
        ui = self.ui
        tok = self.cache.peek(None if model == BUNDLED else model, device, dtype)
        karl = is_karl(tok) if tok is not None else named_karl(model)
        if tok is None and not karl and not str(model).startswith("official:"):
            return {ui.quality: gr.skip()}  # (an empty dict would be taken for one output's value)
        update = self.family_controls(karl, kind)
        if karl:
            update[ui.quality] = gr.update(visible=True, value=tok.config.default_quality if tok else KARL_QUALITY)
        elif tok is not None:
            update[ui.l1] = gr.update(value=tok.default_threshold, visible=kind == L1)
            update[ui.budget] = gr.update(**budget_slider(tok.config), visible=kind == BUDGET)
        else:
            update[ui.l1] = gr.update(value=alit_core.DEFAULT_THRESHOLD, visible=kind == L1)
        return update


GONE = ("The image of this link is no longer on the server (it keeps files for a while only): upload it again, "
        "or pick an example.")  # also for a path that is not one of its images (linkable)
COMPARE_SETTINGS_A = {False: "**Model and settings** (for both images)", True: "**A**: model and settings"}
COMPARE_B = {False: "**Image B**", True: "**B**: model and settings (on image A)"}


def linkable(path) -> bool:
    """An image a link may name: a file still in gradio's cache (uploads and examples as served) or a
    bundled example; never another file of the server's, whatever the link's values say."""
    if not path:
        return False
    p = Path(str(path)).resolve()
    roots = (Path(gr.utils.get_upload_folder()).resolve(), (explorer.ASSETS / "samples").resolve())
    return p.is_file() and any(p.is_relative_to(root) for root in roots)


def known_head(rec: Record, t: int, head) -> str:
    """"mean" or a head index the model has (a head typed for another model falls back to the mean)."""
    return str(head) if str(head).isdigit() and int(head) < rec.maps[t].shape[0] else "mean"


def read_upload(path: str, size: int) -> np.ndarray:
    """An uploaded file through alit_core's loader; whatever is wrong with it becomes a message."""
    try:
        return explorer.prepare(path, size)
    except ALITError as err:
        raise Refused(upload_message(err, path)) from err


def upload_message(err: Exception, path: str, name: str | None = None) -> str:
    # alit_core names the file it read, which is gradio's temporary copy on the server; the user
    # knows it by its own name (gradio keeps that as the copy's file name).
    return str(err).replace(repr(str(path)), repr(name or Path(path).name))


KARL_QUALITY = alit_core.KARLConfig.default_quality  # the official encode()'s desired L1


def named_karl(model) -> bool:
    """A KARL model by its name alone (a released one or a preset), without loading it."""
    name = str(model)
    return name.startswith("preset:karl_") or (name.startswith("official:")
                                              and name.split(":", 1)[1].strip().lower() in alit_core.KARL_CHECKPOINTS)


def download_progress(progress, model):
    """A released checkpoint's download, in gradio's progress bar (bytes); None without a bar."""
    if progress is None:
        return None

    def report(done: int, total: int | None):
        size = f" of {total / 2**20:.0f}" if total else ""
        progress((done, total), desc=f"downloading {model}: {done / 2**20:.0f}{size} MB")

    return report


def check_halting(tok, halting: str) -> None:
    """Refuse a halting mode the model does not take (VAE-based models have no stochastic halting; KARL
    halts latents by its own halting head, which is deterministic)."""
    if is_karl(tok):
        if halting != "deterministic":
            raise Refused(f"KARL halts latents with its own halting head, in one pass: halting {halting!r} is ALIT's; "
                          "choose 'deterministic' for a KARL model.")
        return
    if halting not in tok.halting_modes:
        raise Refused(f"This model takes halting {' or '.join(map(repr, tok.halting_modes))}, not {halting!r}"
                      + (" (VAE-based models have no stochastic halting)." if tok.is_vae else "."))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def expand_uploads(paths: list[str], limit: int = 200, max_entry_bytes: int = 50 * 2**20,
                   max_total_bytes: int = 500 * 2**20, dest: str | Path | None = None,
                   ) -> tuple[list[tuple[str, str]], list[str]]:
    """Uploaded files, with zips opened: (name, path) pairs, at most `limit`, and what was skipped.

    A zip is unpacked entry by entry against the sizes its directory declares (zipfile never reads
    past them), so a zip bomb stops at the caps instead of filling the disk. Entries go into `dest`
    (default: a new temporary folder); the caller removes it when the images are read.
    """
    out, skipped, total, unused = [], [], 0, 0
    for p in paths:
        if not zipfile.is_zipfile(p):
            if len(out) < limit:
                out.append((Path(p).name, p))
            else:
                unused += 1
            continue
        if dest is None:
            dest = tempfile.mkdtemp(prefix="alit_zip_")
        dest = Path(dest)
        try:
            with zipfile.ZipFile(p) as z:
                for info in z.infolist():
                    if info.is_dir() or Path(info.filename).suffix.lower() not in IMAGE_SUFFIXES:
                        continue
                    if len(out) >= limit:
                        unused += 1
                        continue
                    name = Path(info.filename).name
                    if info.file_size > max_entry_bytes:
                        skipped.append(f"{name}: too large unpacked ({info.file_size / 2**20:.0f} MB, "
                                       f"the limit is {max_entry_bytes / 2**20:.0f} MB)")
                        continue
                    if total + info.file_size > max_total_bytes:
                        skipped.append(f"{name}: the zips unpack to more than {max_total_bytes / 2**20:.0f} MB "
                                       "in all")
                        continue
                    target = dest / f"{len(out):04d}_{name}"
                    target.write_bytes(z.read(info))
                    total += info.file_size
                    out.append((name, str(target)))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as err:
            # damaged, encrypted (RuntimeError) or an unsupported compression (NotImplementedError)
            skipped.append(f"{Path(p).name}: cannot unpack this zip ({err})")
    if unused:
        skipped.append(f"{unused} image(s) beyond the first {limit} were not used")
    return out, skipped
