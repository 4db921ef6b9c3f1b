"""KARL's single pass beside ALIT's rollout on the same images, measured in one run.

    python -m benchmarks.rollout_speed --checkpoint preset:tiny --karl preset:karl_small_vqgan_quantized \\
        --karl-sizes-from-alit --threads 1 --repeats 3 --out benchmarks/karl_vs_alit_cpu

ALIT finds an image's token count by a recurrent rollout (32, 64, ... 256 tokens, one iteration
each, a reconstruction per iteration to check its error); KARL estimates it in one pass at
T = 256 latents conditioned on the desired error. For each precision this times, on one batch of
random images, with both models' default inference options:

    ALIT  one iteration + pixels        the cheapest early-exit `encode` (it stops at the first count)
    ALIT  full rollout, no pixels       every count, none decoded
    ALIT  full rollout + pixels         every count with its reconstruction: `encode` without early exit
    KARL  one pass at T, no pixels      its estimated count alone
    KARL  one pass at T + pixels        `KARLTokenizer.encode`: the count and its reconstruction
    KARL  budget sweep + pixels         one pass per ALIT count (base encoding once): reconstructions
                                        at the counts ALIT's rollout gives

T is ALIT's largest count (256 for the released models), so both reach the same token count.
`--karl-sizes-from-alit` gives the KARL model the ALIT model's transformer sizes and base
tokenizer (random weights), so that the two differ only in the method. FLOPs per image come from
`alit_core.analysis.flops.count_flops`.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch

from alit_core.analysis.flops import count_flops
from alit_core.files.loading import load_tokenizer
from alit_core.model.config import ALITConfig
from alit_core.model.karl import KARL, KARLConfig
from alit_core.running.karl_tokenizer import KARLTokenizer
from alit_core.running.tokenizer import Tokenizer

from .speed_tables import MEASUREMENT_HEADER, measurement_line, timing_row
from .timing import drain, machine, matmul_peak, timed

SIZE_FIELDS = ("width", "depth", "heads", "decoder_width", "decoder_depth", "decoder_heads", "mlp_ratio",
               "patch_size")


def karl_sized_like(karl: KARLConfig, alit: ALITConfig) -> KARLConfig:
    """KARL's layout (quantiser, halting head, tables) with ALIT's transformer sizes and base tokenizer."""
    return replace(karl, **{k: getattr(alit, k) for k in SIZE_FIELDS}, vqgan=alit.vqgan, vae=alit.vae)


def load_pair(checkpoint, karl, device=None, sizes_from_alit: bool = False) -> tuple[Tokenizer, KARLTokenizer]:
    """The two models in float32: ALIT from `checkpoint`, KARL from `karl` (path, preset:, official:)."""
    alit = load_tokenizer(checkpoint, device=device, dtype="float32")
    other = load_tokenizer(karl, device=device, dtype="float32")
    if not isinstance(alit, Tokenizer) or not isinstance(other, KARLTokenizer):
        raise ValueError("--checkpoint must name an ALIT model and --karl a KARL model")
    if sizes_from_alit:
        torch.manual_seed(0)  # random weights, as a preset's
        other = KARLTokenizer(KARL(karl_sized_like(other.config, alit.config)), alit.device, "float32")
    if other.resolution != alit.resolution:
        raise ValueError(f"KARL takes {other.resolution} px images and ALIT {alit.resolution} px; "
                         "the comparison needs one image size (--karl-sizes-from-alit gives KARL ALIT's)")
    if alit.config.max_tokens > other.config.max_tokens:
        raise ValueError(f"KARL's largest budget {other.config.max_tokens} is below ALIT's largest count "
                         f"{alit.config.max_tokens}")
    return alit, other


def _sizes(tok) -> dict:
    cfg = tok.config
    return {"family": tok.family, "width": cfg.width, "depth": cfg.depth, "heads": cfg.heads,
            "decoder": [cfg.dec_width, cfg.dec_depth, cfg.dec_heads], "resolution": cfg.resolution,
            "grid": cfg.grid_size, "base": "VAE" if cfg.vae is not None else "VQGAN",
            "quantized": cfg.quantize_latents, "parameters": sum(p.numel() for p in tok.model.parameters())}


def measure(alit: Tokenizer, karl: KARLTokenizer, x: torch.Tensor, repeats: int, peak: float | None) -> dict:
    """The six rows (see the module docstring) for one precision: {key: row}."""
    dt = str(alit.dtype).replace("torch.", "")
    f, cfg = count_flops(alit.config, decoder_rows=alit.options.decoder_rows), alit.config
    counts = [cfg.tokens_at(t) for t in range(cfg.iterations)]
    t = counts[-1]
    k = count_flops(karl.config, budget=t)
    # the sweep encodes the images once, then one pass per count with its reconstruction
    sweep = k.vqgan_encode + k.image_tokens + sum(count_flops(karl.config, budget=n).transformer for n in counts)
    sweep += len(counts) * k.reconstruction
    first = f.vqgan_encode + f.image_tokens + f.encoder[0] + f.bottleneck[0] + f.decoder[0] + f.reconstruction
    span = f"{counts[0]}, {counts[1]}, ... {t} tokens" if len(counts) > 2 else ", ".join(map(str, counts)) + " tokens"
    plan = {
        "alit_one_iteration": (f"ALIT: one iteration + pixels ({counts[0]} tokens; the cheapest early-exit encode)",
                               lambda: drain(alit.rollout(x, max_iterations=1)), first),
        "alit_rollout_no_decode": (f"ALIT: full rollout, no pixels ({cfg.iterations} iterations, {span})",
                                   lambda: drain(alit.rollout(x, decode=False)), f.rollout(decode=False)),
        "alit_rollout_with_decode": ("ALIT: full rollout + pixels, decoded each iteration (encode without early "
                                     "exit)", lambda: drain(alit.rollout(x)), f.rollout(decode=True)),
        "karl_pass_no_decode": (f"KARL: one pass at T = {t}, no pixels (its estimated count)",
                                lambda: karl.tokenize(x, t, decode=False), k.single_pass(decode=False)),
        "karl_pass_with_decode": (f"KARL: one pass at T = {t} + pixels (its encode: count and reconstruction)",
                                  lambda: karl.tokenize(x, t), k.single_pass(decode=True)),
        "karl_budget_sweep": (f"KARL: budget sweep + pixels ({len(counts)} passes at ALIT's counts, {span})",
                              lambda: drain(karl.budget_sweep(x, counts)), sweep),
    }
    b = x.shape[0]
    return {key: timing_row(name, dt, timed(fn, repeats, alit.device), b * flops, peak)
            for key, (name, fn, flops) in plan.items()}


# ALIT's time over KARL's for like results: key -> (column heading, ALIT row, KARL row).
RATIOS = {
    "rollout_no_pixels_over_pass_no_pixels": ("ALIT rollout, no pixels / KARL pass, no pixels",
                                              "alit_rollout_no_decode", "karl_pass_no_decode"),
    "rollout_with_pixels_over_pass_with_pixels": ("ALIT rollout + pixels / KARL pass + pixels",
                                                  "alit_rollout_with_decode", "karl_pass_with_decode"),
    "one_iteration_over_pass_with_pixels": ("ALIT one iteration + pixels / KARL pass + pixels",
                                            "alit_one_iteration", "karl_pass_with_decode"),
    "rollout_with_pixels_over_budget_sweep": ("ALIT rollout + pixels / KARL budget sweep + pixels",
                                              "alit_rollout_with_decode", "karl_budget_sweep"),
}


def ratios(rows: dict, stat: str = "median_s") -> dict[str, float]:
    """ALIT's time over KARL's for each of RATIOS, from the rows' medians (or "min_s": their fastest runs)."""
    return {key: rows[a][stat] / rows[b][stat] for key, (_, a, b) in RATIOS.items()}


def run(checkpoint, karl, device=None, dtypes=("float32", "bfloat16"), batch: int = 1, repeats: int = 3,
        peak_size: int | None = None, sizes_from_alit: bool = False) -> dict:
    alit32, karl32 = load_pair(checkpoint, karl, device, sizes_from_alit)
    dev, r = alit32.device, alit32.resolution
    x = torch.rand(batch, 3, r, r, generator=torch.Generator().manual_seed(0))
    res = {
        "checkpoint": str(checkpoint), "karl": str(karl), "karl_sizes_from_alit": sizes_from_alit,
        "device": str(dev), "machine": machine(), "batch": batch, "repeats": repeats,
        "config": {"alit": _sizes(alit32), "karl": _sizes(karl32)},
        "flops_per_image": {"alit": count_flops(alit32.config).as_dict(),
                            "karl": count_flops(karl32.config, budget=alit32.config.max_tokens).as_dict()},
        "matmul_peak_gflops": {dt: matmul_peak(getattr(torch, dt), dev, peak_size) for dt in dtypes},
        "rows": {}, "karl_count": {}, "summary": {},
        # how busy the machine was: the times are only comparable within one run
        "niceness": os.nice(0), "load_average_start": os.getloadavg()[0],
    }
    for dt in dtypes:
        alit = Tokenizer(alit32.model, dev, dt)
        other = KARLTokenizer(karl32.model, dev, dt)
        rows = res["rows"][dt] = measure(alit, other, x, repeats, res["matmul_peak_gflops"][dt])
        # the count itself (random weights: it says nothing about the image, only that both precisions agree)
        res["karl_count"][dt] = other.tokenize(x, alit.config.max_tokens, decode=False).num_tokens
        res["summary"][dt] = ratios(rows)
    res["load_average_end"] = os.getloadavg()[0]
    return res


def table(res: dict) -> str:
    m, a, k = res["machine"], res["config"]["alit"], res["config"]["karl"]

    def model(c, source):
        return (f"{source}: {c['width']} wide x {c['depth']} layers x {c['heads']} heads (decoder "
                f"{' x '.join(map(str, c['decoder']))}), {c['resolution']} px, {c['grid']}x{c['grid']} grid, "
                f"{c['base']}, {'quantized' if c['quantized'] else 'continuous'}, "
                f"{c['parameters'] / 1e6:.1f} M parameters")

    karl_source = res["karl"] + (" with ALIT's transformer sizes and base tokenizer" if res["karl_sizes_from_alit"]
                                 else "")
    peaks = ", ".join(f"{dt} {v:.0f}" for dt, v in res["matmul_peak_gflops"].items())
    lines = [
        "### KARL single pass beside ALIT rollout",
        "",
        *([f"Written by `{res['command']}`.", ""] if "command" in res else []),
        f"{m['cpu']}, {m['cpu_count']} CPUs, {m['threads']} torch thread(s), torch {m['torch']}"
        f"{', ' + m['gpu'] if 'gpu' in m else ''}, on {res['device']}; batch {res['batch']} of random images, "
        f"median of {res['repeats']} runs after a warm-up. Matmul peak (GFLOP/s): {peaks}. Process niceness "
        f"{res['niceness']}; 1-minute load average {res['load_average_start']:.1f} at the start and "
        f"{res['load_average_end']:.1f} at the end on {m['cpu_count']} CPUs (above the threads used: other jobs "
        "shared the machine, so compare rows of this run only).",
        "",
        f"- ALIT {model(a, res['checkpoint'])}.",
        f"- KARL {model(k, karl_source)}.",
        "- Random weights: the times do not depend on them (halting masks KARL's decoder but changes no "
        "amount of work), the counts do, so no count here describes an image. Both models run with their "
        "default inference options. GFLOP per call from `count_flops`.",
        "",
        *MEASUREMENT_HEADER,
    ]
    for rows in res["rows"].values():
        lines += [measurement_line(row) for row in rows.values()]
    if any(row.get("fraction_of_peak", 0) > 1 for rows in res["rows"].values() for row in rows.values()):
        lines += ["", "A % of peak above 100 means the matmul peak was measured while the machine was busier "
                      "than during that row."]
    lines += ["", "| time ratio | " + " | ".join(heading for heading, _, _ in RATIOS.values()) + " |",
              "|---|" + "---|" * len(RATIOS)]
    # the fastest runs too: on a busy machine other jobs lengthen some runs, never shorten them
    for dt, rows in res["rows"].items():
        for stat, label in (("median_s", "medians"), ("min_s", "fastest runs")):
            lines.append(f"| {dt}, {label} | " + " | ".join(f"{v:.2f}x" for v in ratios(rows, stat).values()) + " |")
    counts = "; ".join(f"{dt} {c}" for dt, c in res["karl_count"].items())
    budget = res["flops_per_image"]["karl"]["budget"]
    lines += ["", f"KARL's estimated count at T = {budget} (random weights), per image: {counts}."]
    return "\n".join(lines)
