"""What a visitor may choose on the page and what each model allows: the selection criteria with their
ranges and labels, the token-budget slider of a model, its attention layer, its halting modes, a KARL
model known by its name, and a released model's download shown in the progress bar."""

from __future__ import annotations

import alit_core

from .explorer import is_karl
from .status import Refused

L1, PSNR, BUDGET = "L1 threshold", "PSNR target (dB)", "token budget"
CRITERIA = [L1, PSNR, BUDGET]
DEFAULT_PSNR = 25.0
# What a visitor may type (the budget is a slider, bounded by the model's counts).
L1_RANGE, PSNR_RANGE = (0.0, 1.0), (1.0, 100.0)
KARL_CRITERION = ("A KARL model's count is set by the desired L1 (its quality, the L1 threshold's value): choose "
                  "the L1 threshold criterion for it.")
# The top tabs and the Explore tab's own, by id (a shared link reopens the ones shown; app/layout.py draws them).
TABS = {"tabs": ("explore", "compare", "batch", "dataset", "how"), "explore_tabs": ("attention", "export")}
# The inputs of the Explore run after the image, and of Compare, by component name (app/layout.py wires them).
EXPLORE_SETTINGS = ("model", "device", "dtype", "kind", "l1", "psnr", "budget", "max_iter", "halting", "seed", "layer",
                    "measure", "quality")
VALUE_LABELS = {L1: "L1 threshold (0 to 1)", PSNR: "PSNR target (dB, 1 to 100)", BUDGET: "token budget (tokens)"}


def slider_index(value, count: int) -> int:
    """A slider's or a shared link's value as an index among `count` (a stale or hand-edited value, e.g. from
    an earlier image with more iterations, lands on the nearest end)."""
    return min(max(int(value), 0), count - 1)


def token_slider(k: int, token, top: int, shown_top: int | None) -> dict:
    """The token slider's update after a redraw that showed token k (the slider's value was `token`): its range
    follows the iteration, 0 to `top`; `shown_top` is the range's top as the page last got it (None: unknown).
    The value is sent only when it must change: k was clamped into the range, or the range shrank (a token
    the visitor moved to while the redraw ran could lie outside it, and gradio refuses every event whose slider
    value is out of range). Otherwise a token moved during the redraw stays: the slider's next event (trigger
    mode always_last) reads the slider's value after this update, and sending k would put the old one back.
    (A value can still end above the range if two listeners redraw one view at once and their answers arrive
    in the other order: Explore's run-end redraw and a slider's. gradio then refuses the slider's next event
    until the visitor moves it.)"""
    if k != int(token) or shown_top is None or top < shown_top:
        return dict(maximum=top, value=k)
    return dict(maximum=top)


def budget_slider(config) -> dict:
    """The token-budget slider's range, step, default and label for a model: multiples of its latents per
    iteration up to its last iteration's count (the value is always in range: gradio refuses every event
    whose slider value lies outside the slider)."""
    step, most = config.latents_per_iteration, config.tokens_at(config.iterations - 1)
    return dict(minimum=step, maximum=most, step=step, value=min(most, 4 * step),
                label=f"Token budget (the largest count that fits; {step} to {most})")


def iteration_label(karl: bool, per_iteration: int) -> str:
    """The attention view's iteration slider's label: an ALIT model's iterations of its own size, or KARL's passes."""
    return ("Pass of the budget sweep (0 = the smallest budget)" if karl else
            f"Iteration (0 = the first {per_iteration} tokens)")


def halting_choices(tok, halting=None) -> dict:
    """A halting dropdown's choices for a model: the modes an ALIT tokenizer takes (no stochastic for a
    VAE-based one), every mode while the model is not known (None; a KARL model has no halting to choose).
    With the visitor's `halting`, also the value: it, where it is one of them, else the first (None: the
    value is left as it is, and is one of every mode)."""
    modes = list(tok.halting_modes if tok is not None and not is_karl(tok) else alit_core.HALTING_MODES)
    return {"choices": modes} if halting is None else {"choices": modes,
                                                         "value": halting if halting in modes else modes[0]}


def alit_model_controls(tok, budget=None, max_iterations=None, halting=None) -> dict[str, dict]:
    """The ALIT settings sized to a model, by component name: the budget slider (`budget` kept where it lies in
    the model's range, else its default), the iteration limit (1 to its iterations; `max_iterations` kept where
    it fits, else all of them) and the halting modes it takes (`halting_choices`). Values always in range:
    gradio refuses every event whose slider or dropdown value lies outside it."""
    cfg = tok.config
    slider = budget_slider(cfg)
    if budget is not None and slider["minimum"] <= float(budget) <= slider["maximum"]:
        slider["value"] = budget
    kept = cfg.iterations if max_iterations is None else min(max(int(max_iterations), 1), cfg.iterations)
    return {"budget": slider,
            "max_iter": {"minimum": 1, "maximum": cfg.iterations, "value": kept},
            "halting": halting_choices(tok, halting)}


def attention_layer(discovery: dict | None) -> int:
    """The decoder layer whose attention is shown: where the model's object discovery was measured, else the last."""
    return discovery["layer"] if discovery and "layer" in discovery else -1


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
