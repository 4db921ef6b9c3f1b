"""Command line: `python -m alit_core encode|encode-dataset|info|official|download ...`.

    python -m alit_core encode photo.jpg other.png --threshold 0.05 --json
    python -m alit_core encode-dataset photos/ --out results.parquet --batch 32
    python -m alit_core info assets/alit_default.pt
    python -m alit_core encode photo.jpg --checkpoint official:karl-in100-small-vqgan-quantized --threshold 0.05
    python -m alit_core info preset:karl_small_vqgan_quantized
    python -m alit_core official                 # the released checkpoints and where they go
    python -m alit_core download in100-small-vqgan-quantized
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .errors import ALITError, CheckpointError, ImageInputError
from .files.checkpoints import (
    FORMAT,
    _unwrap,
    bundled_file,
    infer_config,
    official_to_ours,
    read_file,
)
from .files.image_io import load_image
from .files.karl_checkpoints import infer_karl_config, is_karl_checkpoint
from .files.loading import load_tokenizer
from .files.registry import KARL_CHECKPOINTS, OFFICIAL_CHECKPOINTS, cached_path, fetch_official
from .model.alit import ALIT
from .model.config import ALITConfig, VAEConfig, get_preset
from .model.karl import KARL, KARL_PRESETS, KARLConfig
from .running.selection import Criterion


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ALITError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m alit_core",
                                description="ALIT (and KARL) adaptive-length image tokenizers")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="token count and error of each image (ALIT: per iteration; KARL: one pass)")
    e.add_argument("images", nargs="+", help="image files (any format PIL reads)")
    e.add_argument("--checkpoint", help="checkpoint path, official:<name> or preset:<name> (default: bundled model); "
                                        "a KARL model gives KARL's own count per image")
    crit = e.add_mutually_exclusive_group()
    crit.add_argument("--threshold", type=float,
                      help="L1 threshold (default: the model's own; 0.07, the official value, for official models); "
                           "for KARL the desired reconstruction L1 its pass is conditioned on (default 0.05)")
    crit.add_argument("--psnr", type=float, help="PSNR target in dB instead of an L1 threshold (ALIT)")
    crit.add_argument("--tokens", type=int, help="a fixed token budget instead of an error target (ALIT)")
    e.add_argument("--budget", type=int, help="KARL: latents T of the pass (default 256, the official encode's)")
    e.add_argument("--halting", choices=["deterministic", "stochastic", "off"],
                   help="ALIT's halting (default deterministic)")
    e.add_argument("--seed", type=int, help="seed for --halting stochastic (default 0)")
    e.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    e.add_argument("--dtype", default="float32", help="float32, bfloat16, float16, or auto (the faster here, measured)")
    e.add_argument("--heads", type=int, help="attention heads, for official checkpoints of non-standard size")
    e.add_argument("--batch", type=int, default=1,
                   help="images per encode call (default 1); larger batches are faster, and each image still "
                        "stops at its own iteration")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.set_defaults(run=cmd_encode)

    ds = sub.add_parser("encode-dataset", help="token counts of a folder tree of images, into a Parquet file",
                        description="Encode every image under ROOT (class subfolders optional) into one Parquet "
                                    "file: path, class, num_tokens, per-iteration l1 and psnr, complexity. Resumable: "
                                    "run the same command again after an interruption. Under torchrun the files "
                                    "are shared among the processes.")
    ds.add_argument("root", help="folder of images; the first level of subfolders, if any, is the class")
    ds.add_argument("--out", required=True, help="the Parquet file to write (e.g. results.parquet)")
    ds.add_argument("--checkpoint", help="checkpoint path, official:<name> or preset:<name> (default: bundled model)")
    dcrit = ds.add_mutually_exclusive_group()
    dcrit.add_argument("--threshold", type=float, help="L1 threshold (default: the model's own)")
    dcrit.add_argument("--psnr", type=float, help="PSNR target in dB instead of an L1 threshold")
    dcrit.add_argument("--tokens", type=int, help="a fixed token budget instead of an error target")
    ds.add_argument("--halting", default="deterministic", choices=["deterministic", "off"])
    ds.add_argument("--max-iterations", type=int, help="stop after this many iterations")
    ds.add_argument("--device", help="cpu, cuda, mps (default: best available; under torchrun each process "
                                     "takes the GPU of its local rank)")
    ds.add_argument("--dtype", default="float32", help="float32, bfloat16, float16, or auto: the faster of bfloat16 "
                                                       "and float32 here, measured (bfloat16 is faster on GPUs and "
                                                       "CPUs with AMX or AVX-512 BF16, far slower on AVX2-only ones)")
    ds.add_argument("--heads", type=int, help="attention heads, for official checkpoints of non-standard size")
    ds.add_argument("--batch", type=int, default=32, help="images per encode call (default 32)")
    ds.add_argument("--shard-size", type=int, default=1024,
                    help="files per shard (default 1024): the unit of resuming and of work per process")
    ds.add_argument("--workers", type=int, default=None,
                    help="processes decoding images ahead of the encoder (default: half the cores; 0: none)")
    ds.add_argument("--no-complexity", action="store_true", help="leave out the complexity measures")
    ds.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ds.add_argument("--restart", action="store_true", help="discard an unfinished earlier run instead of resuming it")
    ds.add_argument("--quiet", action="store_true", help="no progress output")
    ds.set_defaults(run=cmd_encode_dataset)

    i = sub.add_parser("info", help="configuration and parameter counts of a checkpoint or preset")
    i.add_argument("checkpoint", nargs="?", help="path, preset:<name> of ALIT or KARL (default: bundled model)")
    i.add_argument("--heads", type=int)
    i.add_argument("--json", action="store_true")
    i.set_defaults(run=cmd_info)

    o = sub.add_parser("official", help="list the released checkpoints and whether they are cached")
    o.set_defaults(run=cmd_official)

    d = sub.add_parser("download", help="download a released checkpoint into the cache")
    d.add_argument("name", choices=[*OFFICIAL_CHECKPOINTS, *KARL_CHECKPOINTS])
    d.set_defaults(run=cmd_download)
    return p


def cmd_encode(args) -> int:
    if args.batch < 1:
        print("error: --batch must be at least 1", file=sys.stderr)
        return 2
    tok = load_tokenizer(args.checkpoint, device=args.device, dtype=args.dtype, heads=args.heads)
    karl = tok.family == "karl"
    alit_only = {"--psnr": args.psnr, "--tokens": args.tokens, "--halting": args.halting, "--seed": args.seed}
    refused = [flag for flag, value in (alit_only.items() if karl else [("--budget", args.budget)])
               if value is not None]
    if refused:
        print(f"error: {', '.join(refused)}: not for a{' KARL' if karl else 'n ALIT'} model", file=sys.stderr)
        return 2
    if karl and args.budget is not None and not 1 <= args.budget <= tok.config.max_tokens:
        print(f"error: --budget must be from 1 to {tok.config.max_tokens} (this model's largest), not {args.budget}",
              file=sys.stderr)
        return 2
    results, failed = [], 0
    if not karl:  # one criterion for every batch, made once
        criterion = Criterion.make(args.threshold, args.psnr, args.tokens, default=tok.default_threshold)
    for start in range(0, len(args.images), args.batch):
        paths, images = [], []
        for path in args.images[start : start + args.batch]:
            try:
                images.append(load_image(path, size=tok.resolution))
                paths.append(path)
            except ImageInputError as err:
                print(f"error: {err}", file=sys.stderr)
                failed += 1
        if not images:
            continue
        if karl:  # one pass at T latents conditioned on the desired L1: KARL's own count
            enc = tok.encode(torch.stack(images), args.threshold, budget=args.budget)
            budget = tok.default_budget if args.budget is None else args.budget
        else:
            enc = tok.encode(torch.stack(images), criterion=criterion, halting=args.halting or "deterministic",
                             seed=args.seed or 0)
        for i, path in enumerate(paths):
            results.append(karl_result(enc, i, path, budget) if karl else encode_result(enc, i, path, tok.config))
            if args.json:
                continue
            if karl:
                print_karl_result(results[-1])
            else:
                print_result(results[-1], tok.config.iterations)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def cmd_encode_dataset(args) -> int:
    from .datasets.dataset_encoding import DatasetEncodeConfig, default_workers, encode_dataset

    cfg = DatasetEncodeConfig(
        root=args.root, out=args.out, checkpoint=args.checkpoint, threshold=args.threshold, psnr=args.psnr,
        tokens=args.tokens, halting=args.halting, max_iterations=args.max_iterations, device=args.device,
        dtype=args.dtype, heads=args.heads, batch=args.batch, shard_size=args.shard_size,
        workers=default_workers() if args.workers is None else args.workers, complexity=not args.no_complexity,
        overwrite=args.overwrite, restart=args.restart, progress=not args.quiet,
    )
    encode_dataset(cfg)
    return 0  # bad files are listed, not failures: the run did what it was asked


def encode_result(enc, i: int, path: str, cfg: ALITConfig) -> dict:
    """Image i of an Encoding as a plain dict; its iterations are those it ran (decided images leave a batch)."""
    ran = [t for t in range(enc.iterations_run) if not torch.isnan(enc.l1_history[t, i])]
    return {
        "image": path,
        "family": "alit",
        "num_tokens": enc.num_tokens[i],
        "iteration": enc.iterations[i],
        "l1": round(enc.l1[i], 6),
        "psnr": round(enc.psnr[i], 3),
        "criterion": {"kind": enc.criterion.kind, "value": enc.criterion.value},
        "iterations_run": len(ran),
        "per_iteration": [
            {"tokens": cfg.tokens_at(t), "l1": round(float(enc.l1_history[t, i]), 6),
             "psnr": round(float(enc.psnr_history[t, i]), 3)}
            for t in ran
        ],
    }


def karl_result(enc, i: int, path: str, budget: int) -> dict:
    """Image i of a KARL Encoding as a plain dict: its estimated count out of `budget` latents."""
    return {
        "image": path,
        "family": "karl",
        "num_tokens": enc.num_tokens[i],
        "budget": budget,
        "l1": round(enc.l1[i], 6),
        "psnr": round(enc.psnr[i], 3),
        "criterion": {"kind": enc.criterion.kind, "value": enc.criterion.value},
    }


def print_karl_result(r: dict) -> None:
    print(f"{r['image']}: {r['num_tokens']} tokens of {r['budget']} (KARL's one-pass estimate for a desired "
          f"L1 of {r['criterion']['value']:g}; reconstruction from them: L1 {r['l1']:.4f}, PSNR {r['psnr']:.2f} dB)")


def print_result(r: dict, max_iterations: int) -> None:
    c = r["criterion"]
    unit = {"l1": "L1 <", "psnr": "PSNR >=", "tokens": "budget"}[c["kind"]]
    met = Criterion(c["kind"], c["value"]).reached(r["num_tokens"], r["l1"], r["psnr"])
    if c["kind"] == "tokens":
        why = (f"the largest count within budget {c['value']:g}" if met
               else f"budget {c['value']:g} is below the first iteration's count")
    else:
        why = f"{unit} {c['value']:g}" if met else f"no iteration met {unit} {c['value']:g}: the lowest-error one"
    print(f"{r['image']}: {r['num_tokens']} tokens (iteration {r['iteration']}, {why}; "
          f"L1 {r['l1']:.4f}, PSNR {r['psnr']:.2f} dB)")
    for t, it in enumerate(r["per_iteration"]):
        mark = "  <- selected" if t == r["iteration"] else ""
        print(f"  iteration {t}: {it['tokens']:4d} tokens  L1 {it['l1']:.4f}  PSNR {it['psnr']:6.2f} dB{mark}")
    if r["iterations_run"] < max_iterations:
        print(f"  (stopped early: {r['iterations_run']} of {max_iterations} iterations were needed)")


def cmd_info(args) -> int:
    cfg, shapes, source = model_info(args.checkpoint, args.heads)
    family = "karl" if isinstance(cfg, KARLConfig) else "alit"
    counts = parameter_counts(shapes)
    if args.json:
        print(json.dumps({"source": source, "family": family, "config": cfg.to_dict(), "parameters": counts}, indent=2))
        return 0
    print(f"{source}")
    print(f"  {family.upper()}: resolution {cfg.resolution} px, {cfg.grid_size}x{cfg.grid_size} grid, "
          f"patch {cfg.patch_size}")
    print(f"  encoder {cfg.width} wide x {cfg.depth} layers x {cfg.heads} heads; "
          f"decoder {cfg.dec_width} x {cfg.dec_depth} x {cfg.dec_heads}")
    latents = (f"{cfg.latent_dim}-d latents, "
               + (f"quantised ({cfg.latent_codebook_size} codes)" if cfg.quantize_latents else "continuous"))
    if family == "karl":
        bins = cfg.quality_bins
        print(f"  one pass over up to {cfg.max_tokens} latents (encode: T = {cfg.default_budget}), {latents}; "
              f"a latent halts where its halting probability > {cfg.halting_threshold}; {len(bins)} desired-L1 "
              f"bins {bins[0]:g} ... {bins[-1]:g} (default {cfg.default_quality:g})")
    else:
        print(f"  {cfg.latents_per_iteration} tokens per iteration x {cfg.iterations} iterations "
              f"(up to {cfg.max_tokens} tokens), {latents}")
    v = cfg.base
    if isinstance(v, VAEConfig):
        halting = "" if family == "karl" else f", halting where the code error < {cfg.code_error_threshold}"
        print(f"  KL-16 VAE ch {v.ch}, ch_mult {list(v.ch_mult)}, {v.num_res_blocks} blocks/level, "
              f"{v.embed_dim}-d latents (x {v.latent_scale}) regressed by the decoder{halting}")
    else:
        print(f"  VQGAN ch {v.ch}, ch_mult {list(v.ch_mult)}, {v.num_res_blocks} blocks/level, "
              f"{v.z_channels}-d features, codebook {v.codebook_size}")
    for part, n in counts.items():
        print(f"  parameters {part:>8s}: {n:>13,d}")
    return 0


def model_info(checkpoint: str | None, heads: int | None) -> tuple[ALITConfig | KARLConfig, dict[str, tuple], str]:
    """Configuration, parameter shapes and source name of a preset or a checkpoint file, ALIT or KARL."""
    if checkpoint and checkpoint.startswith("preset:"):
        name = checkpoint.split(":", 1)[1]
        cfg = KARL_PRESETS[name] if name in KARL_PRESETS else get_preset(name)
        return cfg, preset_shapes(cfg), checkpoint
    path = bundled_file(checkpoint) or Path(checkpoint)
    obj = read_file(path)
    karl = is_karl_checkpoint(obj)
    if obj.get("format") == FORMAT:
        cfg, sd = (KARLConfig if karl else ALITConfig).from_dict(obj["config"]), obj["state_dict"]
    else:
        sd = official_to_ours(_unwrap(obj))
        infer = infer_karl_config if karl else infer_config
        try:
            cfg = infer(sd, heads)
        except CheckpointError as err:
            if "pass heads" not in str(err):
                raise
            print(f"note: {str(err).replace('heads=<n>', '--heads N')}; showing 1 head", file=sys.stderr)
            cfg = infer(sd, 1)
    return cfg, {k: tuple(v.shape) for k, v in sd.items()}, str(path)


def preset_shapes(cfg: ALITConfig | KARLConfig) -> dict[str, tuple]:
    with torch.device("meta"):
        model = KARL(cfg) if isinstance(cfg, KARLConfig) else ALIT(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def parameter_counts(shapes: dict[str, tuple]) -> dict[str, int]:
    base = "vae" if any(k.startswith("vae.") for k in shapes) else "vqgan"
    counts = {base: 0, "encoder": 0, "decoder": 0, "other": 0}
    for k, s in shapes.items():
        n = int(torch.Size(s).numel())
        part = (base if k.startswith(base + ".") else "decoder" if k.startswith("decoder") else
                "encoder" if k.startswith(("encoder", "latent", "timestep", "patch_embed", "pre_quantizer", "quantize",
                                           "halting_mlp", "rec_loss_embeddings"))  # the last two: KARL's
                else "other")
        counts[part] += n
    counts["total"] = sum(counts.values())
    return counts


def cmd_official(args) -> int:
    for name, ck in {**OFFICIAL_CHECKPOINTS, **KARL_CHECKPOINTS}.items():
        path = cached_path(name)
        state = "cached" if path.exists() else ("not supported" if not ck.supported else "not downloaded")
        print(f"{name:34s} {ck.preset:32s} {state}")
        print(f"{'':34s} -> {path}")
    return 0


def cmd_download(args) -> int:
    path = fetch_official(args.name)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
