"""Speed of the tokenizer, next to the official way of running it, measured in one run.

    python -m benchmarks.rollout_speed                         # bundled model + sample images, float32 and bfloat16
    python -m benchmarks.rollout_speed --checkpoint preset:small --dtype bfloat16 --repeats 3 --json
    python -m benchmarks.rollout_speed --suite --out benchmarks/cpu_results   # the full set (about 10 min on 2 cores)
    python -m benchmarks.rollout_speed --checkpoint preset:tiny --karl preset:karl_small_vqgan_quantized \
        --karl-sizes-from-alit --threads 1 --out benchmarks/karl_vs_alit_cpu   # KARL's single pass beside it

For each precision it times (median, min-max of `--repeats` runs after a warm-up): one iteration;
the transformer alone (a full rollout from cached VQGAN tokens, no pixels); full rollouts without
and with the pixel reconstructions (streamed per iteration, and batched at the end); the VQGAN
encoding and one decode; early-exit `encode` per image over an image set; images per second at
larger batches. Next to them: FLOPs per image counted from the configuration (`flops.py`), the
GFLOP/s reached and its fraction of a measured matrix-product peak of that precision, peak memory,
and agreement with float32.

The *official-equivalent* rows run the same model the official way: float32, every iteration,
one VQGAN decode per iteration, no early exit, none of the inference options (`InferenceOptions
.plain()`). The *ablation* rows switch the speed-ups on one at a time for the full rollout with
pixels. Timings on shared machines are noisy: compare numbers from one run.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from alit_core.analysis.flops import count_flops
from alit_core.files.checkpoints import BUNDLED_CHECKPOINT
from alit_core.files.image_io import load_image
from alit_core.files.loading import load_tokenizer
from alit_core.running.inference import InferenceOptions
from alit_core.running.selection import Criterion, select_iterations
from alit_core.running.tokenizer import Tokenizer

from . import karl_vs_alit
from .operator_profile import operator_profile
from .speed_tables import suite_markdown, table, timing_row
from .timing import drain, machine, matmul_peak, synchronize, timed

SAMPLES = BUNDLED_CHECKPOINT.parent / "samples"


ALL = ("one_iteration", "transformer", "rollout_no_decode", "rollout_with_decode", "rollout_batched_decode",
       "vqgan_encode", "vqgan_decode")
OFFICIAL = ("one_iteration", "transformer", "rollout_no_decode", "rollout_with_decode", "vqgan_encode",
            "vqgan_decode")


def measure_tokenizer(tok: Tokenizer, x: torch.Tensor, repeats: int, peak: float | None, label: str,
                      which=ALL) -> dict[str, dict]:
    """The measurements `which` of one tokenizer on the batch x."""
    dt = str(tok.dtype).replace("torch.", "")
    f = count_flops(tok.config, decoder_rows=tok.options.decoder_rows)
    b = x.shape[0]
    tokens = tok.image_tokens(x)
    m = tok.inference_model
    with tok._context():  # what the base decoder alone reads: the VAE latents, or the codes' vectors
        z = tokens.targets if m.is_vae else m.vqgan.codes_to_features(m.vqgan.codebook[tokens.targets])

    def decode():
        with tok._context():
            m.reconstruct_latents(z) if m.is_vae else m.vqgan.decode(z)

    base = "VAE" if m.is_vae else "VQGAN"  # the keys stay vqgan_* so that result files compare across models
    plan = {
        "one_iteration": (f"one iteration from pixels ({base} encoding + iteration 0, no decode)",
                          lambda: drain(tok.rollout(x, max_iterations=1, decode=False)),
                          f.vqgan_encode + f.image_tokens + f.encoder[0] + f.bottleneck[0] + f.decoder[0]),
        "transformer": (f"transformer only ({f.iterations} iterations from cached {base} tokens)",
                        lambda: drain(tok.rollout(tokens, decode=False)), f.transformer),
        "rollout_no_decode": ("full rollout, no pixels", lambda: drain(tok.rollout(x, decode=False)),
                              f.rollout(decode=False)),
        "rollout_with_decode": ("full rollout + pixels, decoded each iteration", lambda: drain(tok.rollout(x)),
                                f.rollout(decode=True)),
        "rollout_batched_decode": ("full rollout + pixels, decoded together at the end",
                                   lambda: drain(tok.rollout(x, decode="batched")), f.rollout(decode=True)),
        "vqgan_encode": (f"{base} encoding (+ targets, patch embedding)", lambda: tok.image_tokens(x),
                         f.vqgan_encode + f.image_tokens),
        "vqgan_decode": (f"{base} decode", decode, f.vqgan_decode),
    }
    out = {}
    for key in which:
        name, fn, flops = plan[key]
        out[key] = timing_row(f"{label}{name}", dt, timed(fn, repeats, tok.device), b * flops, peak)
    return out


def measure_images(tok: Tokenizer, images: torch.Tensor, repeats: int, label: str, early_exit: bool,
                   batched: bool = False) -> dict:
    """Time per image over an image set at the default threshold: one at a time, or as one batch.

    early_exit=False is the official way: every iteration with its reconstruction, then select.
    """
    dt = str(tok.dtype).replace("torch.", "")
    counts: list[int] = []
    iterations: list[int] = []  # iterations run, per call

    def official(x):
        steps = drain(tok.rollout(x))
        picks = select_iterations(torch.stack([s.l1 for s in steps]), criterion=Criterion.make(default=tok.default_threshold))
        iterations.append(len(steps))
        return [steps[t].num_tokens for t in picks]

    def encode(x):
        enc = tok.encode(x)
        iterations.append(enc.iterations_run)
        return enc.num_tokens

    how = encode if early_exit else official
    per_call: list[list[float]] = []  # seconds per call, for each run

    def run_all():
        counts.clear()
        iterations.clear()
        per_call.append([])
        for x in ([images] if batched else [im[None] for im in images]):
            t0 = time.perf_counter()
            counts.extend(how(x))
            synchronize(tok.device)
            per_call[-1].append(time.perf_counter() - t0)

    name = "encode, early exit" if early_exit else "all iterations + pixels, then select (official)"
    name += f", whole set as one batch of {len(images)}" if batched else ", one image at a time"
    row = timing_row(f"{label}{name}: per image", dt, timed(run_all, repeats, tok.device))
    n = len(images)
    for k in ("median_s", "min_s", "max_s"):
        row[k] /= n
    row["images"] = n
    row["tokens"] = list(counts)
    if not batched:  # each image's median over the timed runs (the first run is the warm-up)
        row["per_image_s"] = [statistics.median(run[i] for run in per_call[1:]) for i in range(n)]
    row["iterations_run_mean"] = sum(iterations) / len(iterations)
    return row


def agreement(tok: Tokenizer, ref: Tokenizer, x: torch.Tensor) -> dict:
    """How far tok's full rollout is from ref's (float32): reconstructions, L1, selected iterations."""
    a, b = drain(tok.rollout(x)), drain(ref.rollout(x))
    la, lb = torch.stack([s.l1 for s in a]), torch.stack([s.l1 for s in b])
    return {
        "recon_max_abs_diff": max(float((s.recon - r.recon).abs().max()) for s, r in zip(a, b)),
        "recon_mean_abs_diff": max(float((s.recon - r.recon).abs().mean()) for s, r in zip(a, b)),
        "l1_max_abs_diff": float((la - lb).abs().max()),
        "same_selection_random_batch": select_iterations(la) == select_iterations(lb),
    }


def run(checkpoint=None, device=None, dtypes=("float32", "bfloat16"), batch: int = 1, repeats: int = 3,
        images: list[str] | None = None, throughput: list[int] | None = None, ablation: bool = True,
        compile: bool = False, peak_size: int | None = None, operators: bool = False) -> dict:
    base = load_tokenizer(checkpoint, device=device, dtype="float32", options=InferenceOptions.plain())
    cfg, dev = base.config, base.device
    r = cfg.resolution
    x = torch.rand(batch, 3, r, r, generator=torch.Generator().manual_seed(0))
    f = count_flops(cfg)
    res = {
        "checkpoint": str(checkpoint or BUNDLED_CHECKPOINT),
        "device": str(dev),
        "machine": machine(),
        "batch": batch,
        "repeats": repeats,
        "config": {"width": cfg.width, "depth": cfg.depth, "heads": cfg.heads, "resolution": r,
                   "iterations": cfg.iterations, "parameters": sum(p.numel() for p in base.model.parameters())},
        "flops_per_image": f.as_dict(),
        "matmul_peak_gflops": {dt: matmul_peak(getattr(torch, dt), dev, peak_size)
                               for dt in dict.fromkeys(("float32", *dtypes))},
    }
    peaks = res["matmul_peak_gflops"]

    # The tokenizers: the official way, ours per precision, and ours with float32 pixels.
    model = copy.deepcopy(base.model) if compile else base.model  # compiling must not touch the baseline
    variants = {"official": (base, OFFICIAL)}
    for dt in dtypes:
        variants[dt] = (Tokenizer(model, dev, dt, InferenceOptions(compile=compile)), ALL)
        if dt != "float32":
            variants[f"{dt}, float32 pixels"] = (
                Tokenizer(model, dev, dt, InferenceOptions(compile=compile, float32_pixels=True)),
                ("rollout_with_decode", "rollout_batched_decode"))
    labels = {name: "official-equivalent: " if name == "official" else "" if name in dtypes else f"{name}: "
              for name in variants}
    rows = res["rows"] = {}
    for name, (tok, which) in variants.items():
        label = labels[name]
        rows[name] = measure_tokenizer(tok, x, repeats, peaks[str(tok.dtype).replace("torch.", "")], label, which)
    res["agreement"] = {name: agreement(tok, base, x) for name, (tok, _) in variants.items() if name != "official"}

    if images:
        ims = torch.stack([load_image(p, size=r) for p in images])
        res["images"] = [str(p) for p in images]
        for batched in (False, True):
            key = "images_batch" if batched else "images"
            rows["official"][key] = ref = measure_images(base, ims, repeats, "official-equivalent: ", False, batched)
            for name, (tok, _) in variants.items():
                if name != "official":
                    row = measure_images(tok, ims, repeats, labels[name], True, batched)
                    row["same_tokens_as_official"] = sum(a == b for a, b in zip(row["tokens"], ref["tokens"]))
                    rows[name][key] = row

    if ablation:
        res["ablation"] = run_ablation(base, x, repeats, rows, dtypes, compile)

    if operators:
        res["operators"] = {dt: operator_profile(variants[dt][0], variants[dt][0].image_tokens(x), peaks[dt], repeats)
                            for dt in dtypes}

    if throughput:
        dt = dtypes[-1]
        tok = variants[dt][0]
        res["throughput"] = []
        for b in throughput:
            xb = torch.rand(b, 3, r, r, generator=torch.Generator().manual_seed(1))
            t = timed(lambda xb=xb: drain(tok.rollout(xb, decode="batched")), repeats, dev)
            res["throughput"].append(timing_row(f"full rollout + pixels (batched), batch {b}", dt, t,
                                          b * f.rollout(True), peaks[dt], images=b))
    res["summary"] = summarise(res)
    return res


def run_ablation(base: Tokenizer, x: torch.Tensor, repeats: int, rows: dict, dtypes, compile: bool) -> list[dict]:
    """The full rollout with pixels as the speed-ups are switched on one after the other."""
    out = [dict(rows["official"]["rollout_with_decode"], name="official-equivalent (float32, plain)")]
    if "float32" in rows:
        out.append(dict(rows["float32"]["rollout_with_decode"],
                        name="float32 + channels-last VQGAN decoder + decoder rows read only"))
    low = [dt for dt in dtypes if dt != "float32"]
    if low:
        dt = low[0]
        steps = [("autocast, weights cast on every call", InferenceOptions.plain()),
                 ("+ weight cache", InferenceOptions(channels_last=False, fused_linear=False, decode_pixels=0,
                                                     decoder_rows=False)),
                 ("+ fused linear (CPU: packed weights, bias and GELU in the product)",
                  InferenceOptions(channels_last=False, decode_pixels=0, decoder_rows=False)),
                 ("+ decoder's last block on the rows it reads only",
                  InferenceOptions(channels_last=False, decode_pixels=0))]
        for name, opts in steps:
            tok = Tokenizer(base.model, base.device, dt, opts)
            t = timed(lambda tok=tok: drain(tok.rollout(x)), repeats, base.device)
            out.append(timing_row(f"{dt} {name}", dt, t))
        out.append(dict(rows[dt]["rollout_with_decode"], name=f"{dt} + channels-last VQGAN decoder"))
        out.append(dict(rows[dt]["rollout_batched_decode"], name=f"{dt} + batched pixel decoding"))
        out.append(dict(rows[f"{dt}, float32 pixels"]["rollout_batched_decode"],
                        name=f"{dt}, but the VQGAN decoder in float32 (float32_pixels)"))
    if compile:
        for row in out[1:]:
            row["name"] += " (torch.compile)"
    ref = out[0]["median_s"]
    for row in out:
        row["speedup_vs_official"] = ref / row["median_s"]
    return out


def summarise(res: dict) -> dict:
    """The headline numbers: per variant, the full rollout with pixels and encode, against official."""
    rows = res["rows"]
    off = rows["official"]
    out = {"official_rollout_with_decode_s": off["rollout_with_decode"]["median_s"],
           "official_transformer_fraction_of_peak": off["transformer"].get("fraction_of_peak")}
    for name, r in rows.items():
        if name == "official":
            continue
        best = min(r[k]["median_s"] for k in ("rollout_with_decode", "rollout_batched_decode") if k in r)
        s = {"rollout_with_decode_s": best, "rollout_speedup": off["rollout_with_decode"]["median_s"] / best}
        if "transformer" in r:
            s["transformer_fraction_of_peak"] = r["transformer"].get("fraction_of_peak")
        for key in ("images", "images_batch"):
            if key in r:
                s[f"encode_{key}_per_image_s"] = r[key]["median_s"]
                s[f"encode_{key}_speedup"] = off[key]["median_s"] / r[key]["median_s"]
                s[f"encode_{key}_same_tokens"] = f"{r[key]['same_tokens_as_official']}/{r[key]['images']}"
                if "per_image_s" in r[key] and "per_image_s" in off[key]:
                    # the other reading of "faster on average": the mean of each image's own speed-up
                    s[f"encode_{key}_mean_per_image_speedup"] = statistics.mean(
                        a / b for a, b in zip(off[key]["per_image_s"], r[key]["per_image_s"]))
        out[name] = s
    return out


def suite(repeats: int, device=None) -> list[dict]:
    """The issue-5 measurements: alit_small (random weights) and the bundled model on the samples."""
    samples = sorted(str(p) for p in SAMPLES.glob("*.png"))
    return [
        run("preset:small", device, ("float32", "bfloat16"), 1, repeats, None, None, True, operators=True),
        run(None, device, ("float32", "bfloat16"), 1, max(repeats, 5), samples, [1, 8, 32], True),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rollout_speed", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="path, preset:<name> or official:<name> (default: bundled model)")
    p.add_argument("--device")
    p.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], help="precisions to measure")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--images", nargs="*", help="images for the encode timing (default for the bundled model: "
                                                "assets/samples/*.png)")
    p.add_argument("--no-images", action="store_true", help="skip the encode timing")
    p.add_argument("--throughput", type=int, nargs="*", default=[], help="batch sizes for images per second")
    p.add_argument("--no-ablation", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the fast tokenizers")
    p.add_argument("--peak-size", type=int, help="matrix size for the matmul peak (default 2048 on CPU, 8192 on GPU)")
    p.add_argument("--operators", action="store_true",
                   help="profile the transformer by kind of operator (time, GFLOP/s, %% of peak, each product alone)")
    p.add_argument("--suite", action="store_true", help="alit_small and the bundled model, everything")
    p.add_argument("--karl", help="a KARL model (path, preset:karl_<name> or official:karl-<name>): time its "
                                  "single pass beside the --checkpoint ALIT model's rollout instead "
                                  "(benchmarks/karl_vs_alit.py; uses --device, --dtype, --batch, --repeats, --peak-size)")
    p.add_argument("--karl-sizes-from-alit", action="store_true",
                   help="with --karl: give KARL the ALIT model's transformer sizes and base tokenizer (random weights)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--out", help="also write OUT.json and OUT.md")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.karl:
        results = [karl_vs_alit.run(args.checkpoint, args.karl, args.device, tuple(args.dtype), args.batch,
                                    args.repeats, args.peak_size, args.karl_sizes_from_alit)]
        results[0]["command"] = " ".join(["python -m benchmarks.rollout_speed", *(argv or sys.argv[1:])])
        text = karl_vs_alit.table(results[0])
    elif args.suite:
        results = suite(args.repeats, args.device)
        text = suite_markdown(results)
    else:
        images = args.images
        if images is None and args.checkpoint is None:
            images = sorted(str(p) for p in SAMPLES.glob("*.png"))
        if args.no_images:
            images = None
        results = [run(args.checkpoint, args.device, tuple(args.dtype), args.batch, args.repeats, images,
                       args.throughput, not args.no_ablation, args.compile, args.peak_size, args.operators)]
        text = table(results[0])
    print(json.dumps(results if args.suite else results[0], indent=2) if args.json else text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(results, indent=2))
        out.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
