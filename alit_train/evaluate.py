"""Evaluation of a checkpoint on held-out data: a JSON report plus PNG plots.

    python -m alit_train.evaluate --checkpoint assets/alit_default.pt --out reports/default

Measures (validation split only, plus the 'test' split where the index has it: photos of packages
that no training run reads; every set is generated from fixed seeds):
- reconstruction: per-iteration mean L1, PSNR and SSIM on held-out photo crops (and on the
  test photos), next to the model's own VQGAN (the ceiling of the soft-code reconstructions);
- token count (at a threshold) against image complexity (PNG / JPEG bits per pixel, entropy,
  edge density, high-frequency energy): Spearman rho with a bootstrap 95% interval, over
  photos + scenes + simple images together (and with the test photos added) and within each set,
  and (PNG) across thresholds;
- object discovery on generated scenes with ground-truth masks: attention segmentation
  (alit_core.analysis.segmentation) scored by FG-ARI and matched mIoU, next to a grid of as many cells;
- out of distribution: token counts of noise, rendered text and clip art against photos;
- compression: bits per image (tokens x log2 of the latent codebook; 16 bits per number for
  continuous latents) against JPEG and WebP
  files of the nearest size, with the PSNR of each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from alit_core import Criterion, load_tokenizer, select_iterations
from alit_core.analysis.complexity import MEASURES, complexity
from alit_core.analysis.compression import codec_at_size
from alit_core.analysis.segmentation import attention_segments, fg_ari, grid_segments, matched_miou
from alit_core.analysis.statistics import bootstrap_ci, spearman

from . import scenes, synthetic
from .attention_probe import object_discovery, probe_scenes
from .calibration import selected_tokens, whole_photos
from .data import TEST_SPLIT
from .training_state import on_one_axis, phase_starts, read_log


# --- metrics ------------------------------------------------------------------------------------
def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image (B,) of images in [0, 1], Gaussian window, computed per channel."""
    coords = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).float()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, window, window).contiguous()

    def blur(t):
        return F.conv2d(t, kernel, groups=x.shape[1])

    x, y = x.float().clamp(0, 1), y.float()
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


# --- data ---------------------------------------------------------------------------------------
def eval_sets(index: str, size: int, n: int, seed: int = 1234, with_unfamiliar: bool = True) -> dict[str, list]:
    """Fixed held-out sets: name -> list of (uint8 image, masks or None)."""
    bank = scenes.PhotoBank.from_index(index)

    def make(k, fn):
        rng = np.random.default_rng([seed, k])
        return [fn(rng) for _ in range(n)]

    out = {
        "photos": [(im, None) for im in make(0, lambda r: scenes.photo_crop(bank, r, size, split="val"))],
        "scenes": [(s.image, s.masks) for s in
                   make(1, lambda r: scenes.make_scene(bank, r, size=size, k_objects=(2, 4), split="val"))],
        "simple": [(im, None) for im in make(2, lambda r: synthetic.simple_image(r, size, kind=r.choice(["flat", "gradient", "shapes"])))],
    }
    for j, kind in enumerate(("noise", "text", "clipart")):
        out[f"ood_{kind}"] = [(im, None) for im in make(3 + j, lambda r, kind=kind: synthetic.ood_image(r, size, kind, index=bank, split="val"))]
    if bank.select("background", TEST_SPLIT):  # photos of packages no training run reads
        crops = make(6, lambda r: scenes.photo_crop(bank, r, size, split=TEST_SPLIT))
        out["photos_test"] = [(im, None) for im in crops]
        # the same photos whole, as a user uploads them (square crop, resized)
        out["uploads_test"] = [(im, None) for im in whole_photos(index, TEST_SPLIT, size)]
    if with_unfamiliar:
        for j, kind in enumerate(("screenshot", "texture")):
            out[f"ood_{kind}"] = [(im, None) for im in make(7 + j, lambda r, kind=kind: synthetic.ood_image(r, size, kind))]
    return out


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


# --- the evaluation -----------------------------------------------------------------------------
def run_set(tok, images: list[np.ndarray], layer: int, batch: int = 16) -> dict:
    """Full rollouts (all iterations, deterministic halting): histories and last-layer attention."""
    l1s, psnrs, ssims, attn = [], [], [], []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i : i + batch])
        steps = list(tok.rollout(x, attention_layers=layer))
        l1s.append(torch.stack([s.l1 for s in steps]))
        psnrs.append(torch.stack([s.psnr for s in steps]))
        ssims.append(torch.stack([ssim(s.recon, x) for s in steps]))
        attn.append([s.attention[layer] for s in steps])
    return {
        "l1": torch.cat(l1s, 1), "psnr": torch.cat(psnrs, 1), "ssim": torch.cat(ssims, 1),
        "attention": [torch.cat([a[t] for a in attn]) for t in range(len(attn[0]))],
    }


def base_psnr(tok, images: list[np.ndarray]) -> list[float]:
    """PSNR of the base tokenizer alone (the VQGAN of each image's codes, or the VAE of its latents)."""
    with torch.inference_mode():
        return tok.base_reconstruction(to_tensor(images)).psnr.tolist()


def evaluate(checkpoint: str | None, index: str, out: Path, n: int = 48, threshold: float | None = None,
             layer: int = -1, seed: int = 1234, bootstrap: int = 1000, speed_repeats: int = 7) -> dict:
    tok = load_tokenizer(checkpoint, device="cpu")
    threshold = tok.default_threshold if threshold is None else threshold
    cfg = tok.config
    layer = layer % cfg.dec_depth
    size, grid = cfg.resolution, cfg.grid_size
    sets = eval_sets(index, size, n, seed)
    criterion = Criterion.make(threshold=threshold)
    results, report = {}, {"checkpoint": checkpoint or "bundled", "threshold": threshold, "n_per_set": n,
                           "resolution": size, "attention_layer": layer}
    for name, items in sets.items():
        print(f"evaluating {name} ({len(items)} images)", file=sys.stderr)
        r = run_set(tok, [im for im, _ in items], layer)
        r["iterations"] = select_iterations(r["l1"], r["psnr"], criterion, cfg.latents_per_iteration)
        r["tokens"] = [cfg.tokens_at(t) for t in r["iterations"]]
        results[name] = r

    photos = results["photos"]
    report["reconstruction"] = reconstruction(tok, results["photos"], sets["photos"], cfg)
    if "photos_test" in results:
        report["reconstruction_test_photos"] = reconstruction(tok, results["photos_test"], sets["photos_test"], cfg)
        report["reconstruction_uploads"] = reconstruction(tok, results["uploads_test"], sets["uploads_test"], cfg)

    comp_of = complexity_report(report, results, sets, bootstrap)
    report["threshold_sweep"] = threshold_sweep(results, {s: comp_of[s] for s in POOLED_SETS}, cfg, threshold)
    report["token_counts"] = {name: {"median": float(np.median(r["tokens"])), "mean": float(np.mean(r["tokens"]))}
                              for name, r in results.items()}
    report["object_discovery"] = discovery_at_selection(results["scenes"], sets["scenes"], grid, size)
    report["allocation"] = allocation(results, cfg, threshold)
    report["object_discovery_by_layer"] = discovery_by_layer(tok.model, index, n, seed)
    report["speed"] = rollout_speed(tok, size, repeats=speed_repeats)
    report["ood"] = out_of_distribution(results)
    report["compression"] = compression(photos, sets["photos"][: min(n, 24)], cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    plot(report, results, sets, comp_of, cfg, out)
    return report


UNFAMILIAR_POOL = ("ood_text", "ood_texture")  # the text/texture images of the pooled rank correlation


# token count against complexity, over photos, scenes and simple images together, and within each
# set: the pool mixes sets whose difficulty for the model differs from their file size (PNG codes
# smooth gradients at more bits per pixel than flat shapes with sharp edges; for the model it is
# the other way round)
POOLED_SETS = ("photos", "scenes", "simple")


def complexity_report(report: dict, results: dict, sets: dict, bootstrap: int) -> dict:
    """Rank correlations of token counts with each complexity measure (pooled and per set) into
    `report`; returns the complexity measures of each set's images."""
    measured = (*POOLED_SETS, *(["photos_test"] if "photos_test" in results else []))
    measured += tuple(name for name in UNFAMILIAR_POOL + ("uploads_test",) if name in results)
    comp_of = {name: [complexity(im) for im, _ in sets[name]] for name in measured}

    def rank_stats(toks, cs) -> dict:
        return {m: {"spearman": spearman(toks, v), "ci95": bootstrap_ci(toks, v, n=bootstrap)}
                for m in MEASURES for v in [np.array([c[m] for c in cs])]}

    def pooled_stats(names) -> dict:
        return rank_stats(np.array([t for name in names for t in results[name]["tokens"]]),
                          [c for name in names for c in comp_of[name]])

    report["complexity"] = pooled_stats(POOLED_SETS)
    if "photos_test" in results:  # the same pool with the photos of held-out packages added
        report["complexity_with_test_photos"] = pooled_stats(measured)
    report["complexity_by_set"] = {name: rank_stats(results[name]["tokens"], cs) for name, cs in comp_of.items()}
    if "uploads_test" in results:
        # the pool: held-out photos as uploaded, simple images, text and texture images
        report["complexity_uploads_pool"] = pooled_stats(("uploads_test", "simple", *UNFAMILIAR_POOL))
    return comp_of


def discovery_at_selection(scenes: dict, items: list, grid: int, size: int) -> dict:
    """FG-ARI and matched mIoU of the attention segmentation at each scene's selected iteration,
    and of a grid of as many cells."""
    seg = {"fg_ari": [], "miou": [], "grid_fg_ari": [], "grid_miou": [], "segments": []}
    for i, (_, masks) in enumerate(items):
        t = scenes["iterations"][i]
        labels = attention_segments(scenes["attention"][t][i : i + 1], grid, size=size)[0].numpy()
        k = len(np.unique(labels))
        base = grid_segments(k, size)
        seg["fg_ari"].append(fg_ari(masks, labels))
        seg["miou"].append(matched_miou(masks, labels))
        seg["grid_fg_ari"].append(fg_ari(masks, base))
        seg["grid_miou"].append(matched_miou(masks, base))
        seg["segments"].append(k)
    found = {k: float(np.nanmean(v)) for k, v in seg.items()}
    found["fg_ari_vs_grid"] = found["fg_ari"] / max(1e-9, found["grid_fg_ari"])
    return found


def out_of_distribution(results: dict) -> dict:
    """Median token count of each out-of-distribution set, and whether it is above the photos'."""
    ind = float(np.median(results["photos"]["tokens"]))
    ood = {name: {"median_tokens": float(np.median(results[name]["tokens"])),
                  "above_photos": float(np.median(results[name]["tokens"])) > ind}
           for name in results if name.startswith("ood_")}
    ood["photos_median_tokens"] = ind
    return ood


def compression(photos: dict, items: list, cfg) -> dict:
    """ALIT's bits at the selected count against JPEG and WebP at the nearest size (means over items)."""
    rows = []
    for i, (im, _) in enumerate(items):
        t = photos["iterations"][i]
        nbytes = cfg.tokens_at(t) * cfg.bits_per_token / 8
        rows.append({"alit_bytes": nbytes, "alit_psnr": float(photos["psnr"][t, i]),
                     "jpeg": codec_at_size(im, "JPEG", nbytes), "webp": codec_at_size(im, "WEBP", nbytes)})
    return {
        "alit_bytes": float(np.mean([r["alit_bytes"] for r in rows])),
        "alit_psnr": float(np.mean([r["alit_psnr"] for r in rows])),
        "jpeg_bytes": float(np.mean([r["jpeg"][0] for r in rows])),
        "jpeg_psnr": float(np.mean([r["jpeg"][1] for r in rows])),
        "webp_bytes": float(np.mean([r["webp"][0] for r in rows])),
        "webp_psnr": float(np.mean([r["webp"][1] for r in rows])),
    }


def allocation(results: dict, cfg, threshold: float) -> dict:
    """Token counts on held-out photos as uploaded, simple and unfamiliar images at the threshold."""
    out = {}
    photos = "uploads_test" if "uploads_test" in results else "photos"
    tokens, fallback = selected_tokens(results[photos]["l1"].numpy(), threshold, cfg.latents_per_iteration)
    out["photos"] = {"set": photos, "images": len(tokens), "median_tokens": float(np.median(tokens)),
                     "fallback_fraction": float(fallback.mean())}
    simple = np.asarray(results["simple"]["tokens"])
    out["simple"] = {"median_tokens": float(np.median(simple)), "at_first_count": float(np.mean(simple == cfg.tokens_at(0)))}
    out["unfamiliar"] = {name: float(np.median(r["tokens"])) for name, r in results.items() if name.startswith("ood_")}
    out["unfamiliar_above_photos"] = {name: m > out["photos"]["median_tokens"] for name, m in out["unfamiliar"].items()}
    return out


def discovery_by_layer(model, index: str, n: int, seed: int) -> dict:
    """FG-ARI per iteration and layer: the best pair chosen on validation scenes, scored on others.

    Both sets are validation-split scenes (backgrounds and objects no training run reads), drawn
    from different seeds, so the choice is not scored on the scenes it was made on.
    """
    size = model.cfg.resolution
    chosen = object_discovery(model, *probe_scenes(index, size, n, seed=seed + 1))["best"]
    held_out = object_discovery(model, *probe_scenes(index, size, n, seed=seed + 2))
    it, layer = chosen["iteration"], chosen["layer"]
    ours, grid = held_out["fg_ari"][it][layer], held_out["grid_fg_ari"][it][layer]
    return {"chosen_on_validation": {"iteration": it, "layer": layer},
            "fg_ari": ours, "grid_fg_ari": grid, "fg_ari_vs_grid": ours / max(1e-9, grid),
            "per_iteration_and_layer": held_out["fg_ari"], "grid_per_iteration_and_layer": held_out["grid_fg_ari"],
            "scenes": n}


def rollout_speed(tok, size: int, repeats: int = 7) -> dict:
    """Median seconds of a full rollout with pixels, and of the first iteration, for one image."""
    import time

    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    full, first = [], []
    for _ in range(repeats + 1):  # the first run warms up
        t0 = time.perf_counter()
        steps = tok.rollout(x)
        next(steps)
        t1 = time.perf_counter()
        for _ in steps:
            pass
        t2 = time.perf_counter()
        first.append(t1 - t0)
        full.append(t2 - t0)
    return {"full_rollout_s": float(np.median(full[1:])), "first_iteration_s": float(np.median(first[1:])),
            "repeats": repeats, "threads": torch.get_num_threads()}


def reconstruction(tok, result: dict, items: list, cfg) -> dict:
    """Per-iteration mean L1, PSNR and SSIM of one set, and its own base tokenizer's PSNR ("base_psnr", of the
    tokenizer named in "base": "vqgan" or "vae"; reports before session 18 called it "vqgan_psnr" for both)."""
    per = [{"tokens": cfg.tokens_at(t), "l1": float(result["l1"][t].mean()), "psnr": float(result["psnr"][t].mean()),
            "ssim": float(result["ssim"][t].mean())} for t in range(cfg.iterations)]
    l1 = [row["l1"] for row in per]
    return {"per_iteration": per, "base": cfg.base_name,
            "base_psnr": float(np.mean(base_psnr(tok, [im for im, _ in items]))),
            "l1_falls_every_iteration": all(a > b for a, b in itertools.pairwise(l1))}


def threshold_sweep(results: dict, comp_of: dict, cfg, default: float, steps: int = 13) -> list[dict]:
    """Spearman rho (tokens vs PNG bpp) and median tokens at L1 thresholds around the default.

    The selection is re-run on the stored error curves, so this costs no model time; it shows
    how much the complexity relation depends on where the threshold puts each set.
    """
    png = {name: np.array([c["png_bpp"] for c in cs]) for name, cs in comp_of.items()}
    rows = []
    for thr in sorted({*np.round(np.geomspace(default / 3, default * 1.5, steps), 4).tolist(), default}):
        crit = Criterion.make(threshold=float(thr))
        tokens = {name: np.array([cfg.tokens_at(t) for t in
                                  select_iterations(results[name]["l1"], results[name]["psnr"], crit,
                                                    cfg.latents_per_iteration)]) for name in png}
        pooled_t = np.concatenate([tokens[n] for n in png])
        pooled_c = np.concatenate([png[n] for n in png])
        rows.append({"threshold": float(thr), "spearman_pooled": spearman(pooled_t, pooled_c),
                     **{f"spearman_{n}": spearman(tokens[n], png[n]) for n in png},
                     "median_tokens": {n: float(np.median(tokens[n])) for n in png}})
    return rows


def plot(report, results, sets, comp_of, cfg, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"photos": "held-out photos", "photos_test": "photos of an unseen package", "scenes": "scenes",
              "simple": "simple", "uploads_test": "unseen photos, whole", "ood_text": "text",
              "ood_texture": "texture"}
    fig, ax = plt.subplots(1, 4, figsize=(18, 4))
    for key, name in (("reconstruction", "photos"), ("reconstruction_test_photos", "photos_test")):
        if key not in report:
            continue
        per = report[key]["per_iteration"]
        line, = ax[0].plot([r["tokens"] for r in per], [r["psnr"] for r in per], "o-", label=f"ALIT, {labels[name]}")
        ax[0].axhline(report[key]["base_psnr"], color=line.get_color(), ls="--",
                      label="its own VAE" if cfg.vae is not None else "its own VQGAN")
    ax[0].set(xlabel="tokens", ylabel="PSNR (dB)", title="reconstruction per iteration")
    ax[0].legend(fontsize=7)
    jitter = np.random.default_rng(0)
    for name, cs in comp_of.items():  # one colour per set: the sets sit differently on the PNG axis
        toks = np.asarray(results[name]["tokens"], dtype=float)
        ax[1].scatter([c["png_bpp"] for c in cs], toks + jitter.uniform(-4, 4, len(toks)), s=10, alpha=0.6,
                      label=f"{labels[name]} ({report['complexity_by_set'][name]['png_bpp']['spearman']:.2f})")
    rho = report["complexity"]["png_bpp"]["spearman"]
    ax[1].set(xlabel="PNG bits per pixel", ylabel=f"tokens at L1 < {report['threshold']}",
              title=f"tokens vs complexity (Spearman {rho:.2f}, photos + scenes + simple)")
    ax[1].legend(fontsize=7, title="set (its own rho)", title_fontsize=7)
    names = ["photos", *(["photos_test"] if "photos_test" in results else []), "simple"]
    names += [n for n in results if n.startswith("ood_")]
    ax[2].boxplot([results[n]["tokens"] for n in names], tick_labels=names)
    ax[2].set(ylabel="tokens", title="out of distribution")
    ax[2].tick_params(axis="x", rotation=30)
    sweep = report["threshold_sweep"]
    thr = [r["threshold"] for r in sweep]
    for key, label in (("spearman_pooled", "photos + scenes + simple"), ("spearman_photos", "photos"),
                       ("spearman_scenes", "scenes")):
        ax[3].plot(thr, [r[key] for r in sweep], "o-", ms=3, label=label)
    ax[3].axvline(report["threshold"], color="grey", ls="--", label="model's threshold")
    ax[3].set(xlabel="L1 threshold", ylabel="Spearman rho, tokens vs PNG bpp", title="complexity relation by threshold")
    ax[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "summary.png", dpi=110)
    plt.close(fig)

    # attention segmentations of a few scenes
    sc = results["scenes"]
    k = min(6, len(sets["scenes"]))
    fig, ax = plt.subplots(3, k, figsize=(2.2 * k, 6.6))
    for i in range(k):
        im, masks = sets["scenes"][i]
        t = sc["iterations"][i]
        labels = attention_segments(sc["attention"][t][i : i + 1], cfg.grid_size, size=cfg.resolution)[0]
        ax[0, i].imshow(im)
        ax[1, i].imshow(masks, cmap="tab10", interpolation="nearest")
        ax[2, i].imshow(labels, cmap="tab20", interpolation="nearest")
        ax[0, i].set_title(f"{sc['tokens'][i]} tokens", fontsize=8)
        for a in ax[:, i]:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(out / "segments.png", dpi=110)
    plt.close(fig)


def training_curves(metrics: str | Path, out: Path) -> dict:
    """The object-discovery probes of a training run's metrics.jsonl and its prediction loss at the first and
    last iteration (code cross-entropy, or for VAE models the latent MSE), plotted.

    Returns {"steps", "fg_ari" (best pair per probe), "grid_fg_ari", "first_iteration_fg_ari", "loss": {"name",
    "iterations" (first, last), "steps", "first", "last"}}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = on_one_axis(read_log(metrics))
    probes = [r for r in rows if r.get("probe") == "object_discovery"]
    steps = [r for r in rows if "loss" in r]
    curve = {"steps": [r["step"] for r in probes], "fg_ari": [r["best"]["fg_ari"] for r in probes],
             "grid_fg_ari": [r["best"]["grid_fg_ari"] for r in probes],
             "first_iteration_fg_ari": [max(r["fg_ari"][0]) for r in probes]}
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    ax[0].plot(curve["steps"], curve["fg_ari"], "o-", label="attention, best iteration and layer")
    ax[0].plot(curve["steps"], curve["first_iteration_fg_ari"], "s-", ms=3, label="attention, first iteration")
    ax[0].plot(curve["steps"], curve["grid_fg_ari"], "--", color="grey", label="grid of as many cells")
    for a in ax:
        for start, phase in phase_starts(rows):
            a.axvline(start, color="k", lw=0.6, ls=":")
            a.text(start, 1.0, f" {phase}", transform=a.get_xaxis_transform(), fontsize=7, va="top")
    ax[0].set(xlabel="training step", ylabel="FG-ARI (validation scenes)", title="object discovery during training")
    ax[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    # VQGAN models log each iteration's code cross-entropy (ce_t); VAE models, which have no codes, the MSE of
    # their regressed latents (mse_t)
    key, name = ("ce", "code cross-entropy") if any("ce_0" in r for r in steps) else ("mse", "latent MSE")
    its = sorted({int(k.split("_")[1]) for r in steps for k in r if k.startswith(f"{key}_")})
    shown = (its[0], its[-1]) if its else ()
    logged = [r for r in steps if all(f"{key}_{t}" in r for t in shown)]
    curve["loss"] = {"name": name, "iterations": list(shown), "steps": [r["step"] for r in logged]}
    for which, t in zip(("first", "last"), shown, strict=True):
        curve["loss"][which] = [r[f"{key}_{t}"] for r in logged]
        ax[1].plot(curve["loss"]["steps"], curve["loss"][which], lw=0.8, label=f"iteration {t}")
    ax[1].set(xlabel="training step", ylabel=name, title="loss")
    if shown:
        ax[1].legend(fontsize=7)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "training.png", dpi=110)
    plt.close(fig)
    return curve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alit_train.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="checkpoint path (default: the bundled model)")
    p.add_argument("--index", default="data/index.json")
    p.add_argument("--out", default="reports/eval")
    p.add_argument("--n", type=int, default=48, help="images per set")
    p.add_argument("--threshold", type=float, default=None, help="L1 threshold (default: the model's own)")
    p.add_argument("--layer", type=int, default=-1, help="decoder layer for attention segmentation")
    p.add_argument("--metrics", help="a training run's metrics.jsonl: adds its FG-ARI curve (training.png)")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report = evaluate(args.checkpoint, args.index, Path(args.out), args.n, args.threshold, args.layer)
    if args.metrics:
        report["training_probes"] = training_curves(args.metrics, Path(args.out))
        (Path(args.out) / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
