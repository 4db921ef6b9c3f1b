"""The page's explanations that depend on the loaded model: what its attention measurably does.

A model file of ours may record, under metadata["object_discovery"], how well the regions of its
decoder attention match objects: {"fg_ari", "grid_fg_ari", "iteration" (0-based, optional),
"layer", "command"}. The page says what those numbers mean for this model; without them (the
released checkpoints) it says what the paper reports and claims no number.
"""

from __future__ import annotations

# FG-ARI at least this many times a plain grid's counts as object-aligned; below it the regions
# are mostly the grid the latents start from.
OBJECT_ALIGNED_VS_GRID = 2.0


def base_decodes(base: str) -> str:
    """What the base tokenizer alone ("VQGAN" or "VAE") decodes of an image: its own codes, or its latents."""
    return "latents" if base == "VAE" else "codes"


def faster_precision(device: str, faster: str) -> str:
    """The Precision dropdown's note on which precision runs faster on `device` (alit_core.faster_precision:
    measured on a CPU, known for a GPU)."""
    kind = device.split(":")[0]
    if kind == "cuda":
        return ("bfloat16 is the faster choice on this GPU" if faster == "bfloat16" else
                "this GPU has no bfloat16 support: use float32 or float16")
    if kind != "cpu":
        return "float32 is the default here; bfloat16 and float16 were not measured on this device"
    if faster == "bfloat16":
        return "bfloat16 is the faster choice on this CPU (measured when the page was built)"
    # (alit_core asks bfloat16 to be clearly faster, so "no faster" would be untrue where it is only a little faster)
    return ("float32 is the faster choice on this CPU: bfloat16 measured slower, or not clearly faster (measured "
            "when the page was built)")


def l1_label(threshold: float) -> str:
    """The L1 threshold box's label, naming the threshold of the model loaded (it changes with the model)."""
    return f"L1 threshold (0 to 1; this model's own: {threshold:g})"


def object_discovery(metadata: dict | None) -> dict | None:
    """The model's measured object discovery, if recorded and well-formed."""
    od = (metadata or {}).get("object_discovery")
    if not isinstance(od, dict):
        return None
    try:
        fg, grid = float(od["fg_ari"]), float(od["grid_fg_ari"])
    except (KeyError, TypeError, ValueError):
        return None
    out = {"fg_ari": fg, "grid_fg_ari": grid, "command": str(od.get("command", ""))}
    for key in ("iteration", "layer"):
        if isinstance(od.get(key), int) and not isinstance(od.get(key), bool):
            out[key] = od[key]
    return out


def attention_finding(od: dict | None) -> str:
    """One paragraph: what this model's attention regions are, with its numbers when measured."""
    if od is None:
        return ("This model's attention has not been measured here. For the released checkpoints the paper "
                "reports that the latent tokens' attention tends to align with objects and parts (object "
                "discovery); whether it does for this model, the view above shows, image by image.")
    fg, grid = od["fg_ari"], od["grid_fg_ari"]
    ratio = fg / grid if grid > 0 else float("inf")
    where = ", ".join(
        x for x in (f"decoder layer {od['layer']}" if "layer" in od else "",
                    f"iteration {od['iteration']}" if "iteration" in od else "each scene's selected iteration")
        if x)
    measured = (f"Measured on scenes of 2-4 objects ({where}): regions match the objects with FG-ARI "
                f"{fg:.2f}, against {grid:.2f} for a plain grid of as many cells ({ratio:.1f}x)")
    if od["command"]:
        measured += f"; `{od['command']}`"
    if ratio < OBJECT_ALIGNED_VS_GRID:
        return (f"**This model's attention is mostly a spatial grid**, not objects. {measured}. The released "
                "checkpoints (`official:...` under *Model*) show object-aligned attention, as the paper reports.")
    return f"**This model's attention follows objects.** {measured}."


HOW_IT_WORKS = """
### How ALIT decides how many tokens an image needs

ALIT (*Adaptive Length Image Tokenization via Recurrent Allocation*, Duggal, Isola, Torralba and
Freeman, ICLR 2025, [arXiv 2411.02393](https://arxiv.org/abs/2411.02393)) turns an image into a
**variable** number of 1D tokens.

```
{top}
   ┌──────────────► encoder transformer ◄── + {per} new latent tokens (each iteration)
   │                        │
   │             latent tokens so far ({counts})
   │                        ▼
   │                 decoder transformer ──► {output} for every 2D position ──► pixels
   │                        │
   └── image tokens that are already well predicted are masked (dynamic halting)
```

1. Every **iteration** adds {per} latent tokens and lets the encoder refine the old ones, while it
   looks at the image tokens again. Iterations are numbered from 0, here as in the exports and the
   command line: iteration *t* has {per} x (*t* + 1) tokens.
2. After each iteration the decoder reconstructs the image from the tokens so far. The first
   iteration whose reconstruction error is below a **threshold** gives the image's token count:
   simple images stop early, complex or unfamiliar ones need more.
3. Image regions the decoder already predicts confidently are **masked** in the encoder, so later
   tokens concentrate on what is still missing.
4. The decoder's attention from each 2D position to the latent tokens shows **which token
   describes which region** (the *Attention* tab). {finding}

This app runs {model} (the released checkpoints, 256 px, can be loaded by name under *Model*).
"""


HOW_KARL = """
### How KARL decides how many tokens an image needs

This page now runs {model}: **KARL** (*Single-pass Adaptive Image Tokenization for Minimum Program
Search*, Duggal et al., [arXiv 2507.07995](https://arxiv.org/abs/2507.07995)), ALIT's successor by
the same authors. Where ALIT adds 32 tokens per iteration and re-runs, KARL decides in **one pass**:

1. The encoder sees the image tokens, a **budget** of T latent tokens and the **desired L1**
   reconstruction error (rounded up to one of its {bins} quality bins, {low:g} to {high:g}).
2. A halting head marks the latents that are not needed for that quality; the decoder
   reconstructs from the others. **KARL's count** is T minus the latents that halt: its estimate
   of how many tokens the image needs (its approximate Kolmogorov complexity), for T = {budget} by default.
3. The Explore tab runs one independent pass per budget (a budget sweep): each gives a
   reconstruction and a count, and shows which latents halt. The decoder's attention from each
   image position to the latents is shown as for ALIT; a halted latent gets none.
"""


# What the diagram names by the model's base tokenizer: its encoder (padded so that the diagram's lines still
# meet) and what the decoder predicts for each position
BASE_WORDS = {"vqgan": ("──VQGAN encoder──", "VQGAN code"), "vae": ("──VAE encoder────", "VAE latent")}


def how_it_works(model: str, config, metadata: dict | None, karl: bool = False) -> str:
    """The How it works tab for a model: its label, its configuration (an ALITConfig or a KARLConfig: the
    sizes, bins and base tokenizer the text names are this model's), its file's metadata, its family."""
    if karl:
        bins = config.quality_bins
        return HOW_KARL.format(model=model, bins=len(bins), low=bins[0], high=bins[-1], budget=config.encode_budget)
    encoder, output = BASE_WORDS[config.base_name]
    g = config.grid_size
    top = f" image {encoder}► {g}x{g} image tokens ─┐"
    top += "\n" + " " * top.index("┐") + "▼"  # the arrow under the corner, whatever the grid's digits
    counts = [config.tokens_at(t) for t in range(config.iterations)]
    counts = ", ".join(map(str, counts)) if len(counts) <= 3 else f"{counts[0]}, {counts[1]}, ... {counts[-1]}"
    return HOW_IT_WORKS.format(finding=attention_finding(object_discovery(metadata)), model=model, encoder=encoder,
                               output=output, top=top, per=config.latents_per_iteration, counts=counts)
