"""The Compare tab's handlers: two runs side by side on one iteration slider, two images under one model
or one image under two models or settings. Mixed into `handlers.Handlers` (runs start there: model,
criterion, halting and the image are checked once for every tab)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

import alit_core

from . import explorer, figures
from .choices import (
    BUDGET,
    DEFAULT_PSNR,
    KARL_CRITERION,
    KARL_QUALITY,
    L1,
    PSNR,
    VALUE_LABELS,
    attention_layer,
    halting_choices,
    named_karl,
    slider_index,
    token_slider,
)
from .explorer import BUNDLED, is_karl
from .runs import Comparison
from .status import Refused, sentences, status_md
from .uploads import GONE, linkable

COMPARE_INPUTS = ("cmp_mode", "cmp_image_a", "cmp_image_b", "cmp_model_a", "cmp_halting_a", "cmp_kind_a",
                  "cmp_value_a", "cmp_model_b", "cmp_halting_b", "cmp_kind_b", "cmp_value_b")
# The Compare tab's two ways, and the label of each criterion's value there.
TWO_IMAGES, TWO_SETTINGS = "two images, one model", "one image, two models or settings"
COMPARE_MODES = [TWO_IMAGES, TWO_SETTINGS]
DIFFERENCE_TOP = 0.5  # the third picture's colour scale (difference or errors): 0 to this much of the full range
# The third picture: the two reconstructions' difference (one image, two settings), or each one's error against
# its own image (two images)
DIFFERENCE_LABEL = "Difference |A − B| of the reconstructions"
ERROR_LABEL = "Error of each against its image (A left, B right)"
COMPARE_SETTINGS_A = {False: "**Model and settings** (for both images)", True: "**A**: model and settings"}
# Each column opens with a heading, so that image A and image B start at the same height.
COMPARE_A = {False: "**Image A**", True: "**Image** (for both runs)"}
COMPARE_B = {False: "**Image B**", True: "**B**: model and settings (on image A)"}


class CompareHandlers:
    def compare(self, mode, image_a, image_b, model_a, halting_a, kind_a, value_a, model_b, halting_b, kind_b,
                value_b, previous: Comparison | None = None, progress=gr.Progress()):
        """Two runs side by side: two images under A's model and settings (TWO_IMAGES), or image A under
        A's and B's models or settings (TWO_SETTINGS). Each run is computed whole, with the attention
        of its model's own layer; one rollout serves both when image, model and halting are the same.
        `previous`: the comparison the page shows, which a refused one leaves there (its error says so)."""
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
            shown = "" if previous is None else ("The comparison below is still the previous one, of "
                                                 f"{previous.runs[0].rec.name} and {previous.runs[1].rec.name}.")
            return {ui.cmp_status: status_md(error=sentences(str(err), shown))}
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
                     target=c.value if c.kind != "tokens" else None,
                     floor=None if r.rec.base_l1 is None else (r.rec.base, r.rec.base_l1))
                for lab, r, c, sel in zip("AB", cmp.runs, cmp.crits, cmp.selected)]),
            # a slider needs two ends: a one-iteration comparison shows its one iteration on a fixed slider
            ui.cmp_iteration: gr.update(value=it, maximum=max(1, n - 1), interactive=n > 1, label=cmp.step_label),
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
            ratio = f" ({nb / na:.2g}x)" if na else ""  # (a KARL pass may keep no latent at all)
            lines.append(f"B selects **{abs(nb - na)} {'more' if nb > na else 'fewer'} tokens** than A{ratio}.")
        if cmp.runs[0] is cmp.runs[1]:
            lines.append("One rollout serves both (the same image, model and halting): the reconstructions are the "
                         "same at every iteration, only the selections differ.")
        return "\n\n".join(lines)

    def comparison_views(self, cmp: Comparison, iteration, token) -> dict:
        ui = self.ui
        t = slider_index(iteration, cmp.iterations)
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
        two_images = cmp.inputs.get("cmp_mode") != TWO_SETTINGS  # (as compare() reads the mode)
        if two_images:
            # two images: A's reconstruction minus B's is no measure of anything; where each still errs is
            diff, means = figures.error_pair([(rec.recons[ti], rec.image) for rec, ti in zip(recs, ts)],
                                             vmax=DIFFERENCE_TOP)
            diff_label = ERROR_LABEL
            lines.append(f"**Error** |reconstruction − its image|: A mean {means[0]:.4f}, B mean {means[1]:.4f} of "
                         f"the full range (A left, B right; black where right, brightest from {DIFFERENCE_TOP:g})")
        else:
            diff, mean = figures.difference_map(recs[0].recons[ts[0]], recs[1].recons[ts[1]], vmax=DIFFERENCE_TOP)
            diff_label = DIFFERENCE_LABEL
            sizes = [rec.recons[ti].shape[0] for rec, ti in zip(recs, ts)]
            scaled = (f"; A is {sizes[0]} px and B {sizes[1]} px, both enlarged to the picture's size, so the "
                      "difference holds the coarser one's blur too") if sizes[0] != sizes[1] else ""
            lines.append(f"**Difference** |A − B| of the two reconstructions: mean {mean:.4f} of the full range "
                         f"(black where they agree, brightest from {DIFFERENCE_TOP:g}){scaled}")
        # a token both runs have at their iteration
        n = min(rec.columns(ti) for rec, ti in zip(recs, ts))
        k = slider_index(token, n)
        token_update = token_slider(k, token, max(1, n - 1), cmp.token_top)
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
        cmp.token_top = token_update["maximum"]  # once the view is drawn: what the page will get
        return {
            ui.cmp_recon_a: cmp.runs[0].recon(ts[0]),
            ui.cmp_recon_b: cmp.runs[1].recon(ts[1]),
            ui.cmp_diff: gr.update(value=cmp.runs[0].pictures.get(
                f"{'error' if two_images else 'difference'}_{id(cmp.runs[1])}_{ts[0]}_{ts[1]}", lambda: diff),
                label=diff_label),
            ui.cmp_view_md: "\n\n".join(lines),
            ui.cmp_token: gr.update(**token_update),
            **attn,
            ui.cmp_attn_md: attn_md,
        }

    def compare_value(self, kind, model, side: str = "A"):
        """A Compare side's value box for its criterion and model: its label, and the default when known
        without a download (the model's own L1 threshold, 25 dB, four iterations' tokens)."""
        label = f"{side}: {VALUE_LABELS.get(kind, VALUE_LABELS[L1])}"
        tok = self.cache.known(None if model == BUNDLED else model)
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

    def compare_halting(self, model, halting):
        """A Compare side's halting list for its model: the modes it takes when known without a download (no
        stochastic for a VAE-based model), the visitor's kept where it takes it; every mode otherwise (the
        comparison then refuses one the model lacks, saying so)."""
        return gr.update(**halting_choices(self.cache.known(None if model == BUNDLED else model), halting))

    def compare_mode(self, mode):
        """Two images: image B, with A's settings for both; two settings: B's settings, on image A."""
        ui, two = self.ui, mode == TWO_SETTINGS
        return {ui.cmp_image_b_box: gr.update(visible=not two), ui.cmp_settings_b: gr.update(visible=two),
                ui.cmp_a_md: COMPARE_A[two], ui.cmp_settings_a_md: COMPARE_SETTINGS_A[two],
                ui.cmp_b_md: COMPARE_B[two]}

    def restore_compare(self, values: dict, at: dict, progress) -> dict:
        ui = self.ui
        update = {getattr(ui, n): values[n] for n in COMPARE_INPUTS}
        for side in "ab":
            kind = values[f"cmp_kind_{side}"]
            update[getattr(ui, f"cmp_value_{side}")] = gr.update(
                value=values[f"cmp_value_{side}"], label=f"{side.upper()}: {VALUE_LABELS.get(kind, VALUE_LABELS[L1])}")
        update.update(self.compare_mode(values["cmp_mode"]))
        images = ["cmp_image_a"] + (["cmp_image_b"] if values["cmp_mode"] != TWO_SETTINGS else [])
        gone = [n for n in images if not linkable(values[n], self.outputs.root)]
        if gone:
            return {**update, **{getattr(ui, n): None for n in gone}, ui.cmp_status: status_md(error=GONE)}
        update.update(self.compare(*(values[n] for n in COMPARE_INPUTS), progress=progress))
        cmp = update.get(ui.cmp_record)
        if cmp is None:
            return update
        t = slider_index(at.get("iteration", 0), cmp.iterations)
        cmp.token_top = None  # compare()'s own view is replaced here: the page never got its token slider
        update.update(self.comparison_views(cmp, t, at.get("token", 0)))
        update[ui.cmp_iteration] = gr.update(value=t, maximum=max(1, cmp.iterations - 1),
                                             interactive=cmp.iterations > 1, label=cmp.step_label)
        return update
