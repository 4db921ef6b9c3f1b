"""Command line: `python -m alit_core encode|encode-dataset|info|official|download ...`.

    python -m alit_core encode photo.jpg other.png --threshold 0.05 --json
    python -m alit_core encode-dataset photos/ --out results.parquet --batch 32
    python -m alit_core info assets/alit_default.pt
    python -m alit_core official                 # the released checkpoints and where they go
    python -m alit_core download in100-small-vqgan-quantized
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .checkpoints import BUNDLED_CHECKPOINT, _unwrap, infer_config, load_tokenizer, official_to_ours, read_file
from .config import ALITConfig, get_preset
from .errors import ALITError, CheckpointError, ImageInputError
from .image_io import load_image
from .registry import KARL_CHECKPOINTS, OFFICIAL_CHECKPOINTS, cached_path, fetch_official


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
    p = argparse.ArgumentParser(prog="python -m alit_core", description="ALIT adaptive-length image tokenizer")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="token count and per-iteration error of each image")
    e.add_argument("images", nargs="+", help="image files (any format PIL reads)")
    e.add_argument("--checkpoint", help="checkpoint path, official:<name> or preset:<name> (default: bundled model)")
    crit = e.add_mutually_exclusive_group()
    crit.add_argument("--threshold", type=float, help="L1 threshold (default: the model's own; 0.07, the official value, for official models)")
    crit.add_argument("--psnr", type=float, help="PSNR target in dB instead of an L1 threshold")
    crit.add_argument("--tokens", type=int, help="a fixed token budget instead of an error target")
    e.add_argument("--halting", default="deterministic", choices=["deterministic", "stochastic", "off"])
    e.add_argument("--seed", type=int, default=0, help="seed for --halting stochastic")
    e.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    e.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")
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
    ds.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16 (bfloat16: faster on "
                                                       "recent CPUs and GPUs)")
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
    i.add_argument("checkpoint", nargs="?", help="path, preset:<name> (default: bundled model)")
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
    results, failed = [], 0
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
        enc = tok.encode(torch.stack(images), args.threshold, psnr=args.psnr, tokens=args.tokens,
                         halting=args.halting, seed=args.seed)
        for i, path in enumerate(paths):
            results.append(encode_result(enc, i, path, tok.config))
            if not args.json:
                print_result(results[-1], tok.config.iterations)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def cmd_encode_dataset(args) -> int:
    from .dataset_encoding import DatasetEncodeConfig, default_workers, encode_dataset

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


def print_result(r: dict, max_iterations: int) -> None:
    c = r["criterion"]
    unit = {"l1": "L1 <", "psnr": "PSNR >=", "tokens": "budget"}[c["kind"]]
    met = {"l1": r["l1"] < c["value"], "psnr": r["psnr"] >= c["value"], "tokens": r["num_tokens"] <= c["value"]}[c["kind"]]
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
    if args.checkpoint and args.checkpoint.startswith("preset:"):
        cfg = get_preset(args.checkpoint.split(":", 1)[1])
        shapes = preset_shapes(cfg)
        source = args.checkpoint
    else:
        path = Path(args.checkpoint) if args.checkpoint else BUNDLED_CHECKPOINT
        obj = read_file(path)
        if obj.get("format") == "alit-explorer":
            cfg, sd = ALITConfig.from_dict(obj["config"]), obj["state_dict"]
        else:
            sd = official_to_ours(_unwrap(obj))
            try:
                cfg = infer_config(sd, args.heads)
            except CheckpointError as err:
                if "pass heads" not in str(err):
                    raise
                print(f"note: {str(err).replace('heads=<n>', '--heads N')}; showing 1 head", file=sys.stderr)
                cfg = infer_config(sd, 1)
        shapes = {k: tuple(v.shape) for k, v in sd.items()}
        source = str(path)
    counts = parameter_counts(shapes)
    if args.json:
        print(json.dumps({"source": source, "config": cfg.to_dict(), "parameters": counts}, indent=2))
        return 0
    print(f"{source}")
    print(f"  resolution {cfg.resolution} px, {cfg.grid_size}x{cfg.grid_size} grid, patch {cfg.patch_size}")
    print(f"  encoder {cfg.width} wide x {cfg.depth} layers x {cfg.heads} heads; "
          f"decoder {cfg.dec_width} x {cfg.dec_depth} x {cfg.dec_heads}")
    print(f"  {cfg.latents_per_iteration} tokens per iteration x {cfg.iterations} iterations "
          f"(up to {cfg.max_tokens} tokens), {cfg.latent_dim}-d latents, "
          + (f"quantised ({cfg.latent_codebook_size} codes)" if cfg.quantize_latents else "continuous"))
    if cfg.vae is not None:
        v = cfg.vae
        print(f"  KL-16 VAE ch {v.ch}, ch_mult {list(v.ch_mult)}, {v.num_res_blocks} blocks/level, "
              f"{v.embed_dim}-d latents (x {v.latent_scale}) regressed by the decoder, "
              f"halting where the code error < {cfg.code_error_threshold}")
    else:
        v = cfg.vqgan
        print(f"  VQGAN ch {v.ch}, ch_mult {list(v.ch_mult)}, {v.num_res_blocks} blocks/level, "
              f"{v.z_channels}-d features, codebook {v.codebook_size}")
    for part, n in counts.items():
        print(f"  parameters {part:>8s}: {n:>13,d}")
    return 0


def preset_shapes(cfg: ALITConfig) -> dict[str, tuple]:
    from .alit import ALIT

    with torch.device("meta"):
        model = ALIT(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def parameter_counts(shapes: dict[str, tuple]) -> dict[str, int]:
    base = "vae" if any(k.startswith("vae.") for k in shapes) else "vqgan"
    counts = {base: 0, "encoder": 0, "decoder": 0, "other": 0}
    for k, s in shapes.items():
        n = int(torch.Size(s).numel())
        part = (base if k.startswith(base + ".") else "decoder" if k.startswith("decoder") else
                "encoder" if k.startswith(("encoder", "latent", "timestep", "patch_embed", "pre_quantizer", "quantize"))
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
