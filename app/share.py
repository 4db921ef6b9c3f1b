"""Share this view: a link that reopens the page as it is (tabs, the Explore run and its attention view, the
comparison), through gradio's own deep links; and the page opened from such a link, computed again.
Mixed into `handlers.Handlers` (a restored page runs through the same handlers as a visitor's clicks)."""

from __future__ import annotations

import json

import gradio as gr

from .choices import BUDGET, EXPLORE_SETTINGS, KARL_QUALITY, L1, PSNR, TABS, slider_index
from .runs import Comparison, Run
from .status import status_md
from .uploads import GONE, linkable

UNREADABLE = "This link's view cannot be reopened (it was made by another version of the page, or changed)."


class ShareHandlers:
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
        if not view or not isinstance(view, dict):
            return {ui.tab_state: gr.skip()}  # (an empty dict would be taken for one output's value)
        tabs = view.get("tabs") if isinstance(view.get("tabs"), dict) else {}
        tabs = {k: v for k, v in tabs.items() if k in TABS and v in TABS[k]}
        update = {ui.tab_state: tabs, **{getattr(ui, k): gr.update(selected=v) for k, v in tabs.items()}}
        parts = (("explore", "attention", self.restore_explore, ui.status),
                 ("compare", "compare_view", self.restore_compare, ui.cmp_status))
        for name, at, restore_part, status in parts:
            if not view.get(name):
                continue
            try:
                update.update(restore_part(dict(view[name]), dict(view.get(at) or {}), progress))
            except (KeyError, TypeError, ValueError, AttributeError):
                # a link made by another version of the page, or edited: what it holds cannot be reopened
                update[status] = status_md(error=UNREADABLE)
        return update

    def restore_explore(self, values: dict, attention: dict, progress) -> dict:
        ui = self.ui
        kind = values["kind"]
        values = {"quality": KARL_QUALITY, **values}  # (links made before KARL had no quality)
        update = {ui.image: values["image"], **{getattr(ui, n): values[n] for n in EXPLORE_SETTINGS},
                  ui.l1: gr.update(value=values["l1"], visible=kind == L1),
                  ui.psnr: gr.update(value=values["psnr"], visible=kind == PSNR),
                  ui.budget: gr.update(value=values["budget"], visible=kind == BUDGET)}
        if not linkable(values["image"], self.outputs.root):
            return {**update, ui.image: None, ui.status: status_md(error=GONE)}
        restored = dict(update)
        for step in self.run(values["image"], *(values[n] for n in EXPLORE_SETTINGS), progress=progress):
            update.update(step)
        run = update.get(ui.record)
        if run is None or not run.done:
            return update  # refused: its status line says why
        # the controls keep their values, a KARL run its family's visibility, and what else the run set on them
        # (the threshold box's label, naming the model's own threshold)
        for comp, value in restored.items():
            shown = update[comp]
            if shown is value:
                continue
            if not isinstance(shown, dict) or not (run.rec.karl or isinstance(value, dict)):
                update[comp] = value
                continue
            kept = value if isinstance(value, dict) else {"value": value}
            update[comp] = {**shown, **{k: v for k, v in kept.items() if not (run.rec.karl and k == "visible")}}
        n = len(run.rec.tokens)
        t = slider_index(attention.get("iteration", n - 1), n)
        heads = update[ui.head]["choices"]
        head = str(attention.get("head", "mean"))
        head = head if head in heads else "mean"
        update.update(self.attention_views(run, t, attention.get("token", 0), head, attention.get("opacity", 0.5),
                                           None))
        update[ui.iteration] = gr.update(value=t, maximum=max(1, n - 1), interactive=n > 1)
        update[ui.head] = gr.update(choices=heads, value=head)
        update[ui.opacity] = attention.get("opacity", 0.5)
        return update
