"""Timing of the tokenizer: load, one iteration, full rollouts, early-exit encode, VQGAN passes.

    python -m alit_core.benchmark                       # the bundled model, CPU, float32
    python -m alit_core.benchmark --checkpoint preset:small --dtype bfloat16 --repeats 3 --json

Every measurement runs once to warm up, then `--repeats` times; the table gives the median and
the spread (min-max). Timings on shared machines are noisy: compare numbers from one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from .checkpoints import BUNDLED_CHECKPOINT, load_tokenizer
from .image_io import load_image


def timed(fn, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": repeats}


def run(checkpoint=None, device=None, dtype="float32", batch: int = 1, repeats: int = 5,
        images: list[str] | None = None) -> dict:
    source = checkpoint or BUNDLED_CHECKPOINT
    results = {"checkpoint": str(source), "dtype": dtype, "batch": batch, "threads": torch.get_num_threads()}
    results["load"] = timed(lambda: load_tokenizer(checkpoint, device=device, dtype=dtype), repeats, warmup=0)
    tok = load_tokenizer(checkpoint, device=device, dtype=dtype)
    results["device"] = str(tok.device)
    r = tok.resolution
    x = torch.rand(batch, 3, r, r, generator=torch.Generator().manual_seed(0))

    def rollout(**kw):
        return lambda: [None for _ in tok.rollout(x, **kw)]

    results["one_iteration"] = timed(rollout(max_iterations=1, decode=False), repeats)
    results["rollout_no_decode"] = timed(rollout(decode=False), repeats)
    results["rollout_with_decode"] = timed(rollout(), repeats)
    with torch.inference_mode():
        feats = tok.model.vqgan.encode(x)
        results["vqgan_encode"] = timed(lambda: tok.model.vqgan.encode(x), repeats)
        results["vqgan_decode"] = timed(lambda: tok.model.vqgan.decode(feats), repeats)
    if images:
        batch_images = torch.stack([load_image(p, size=r) for p in images])
        counts = tok.encode(batch_images).num_tokens
        results["encode_images"] = {"images": len(images), "num_tokens": counts,
                                    **timed(lambda: [tok.encode(im[None]) for im in batch_images], repeats)}
    return results


def print_table(res: dict) -> None:
    print(f"{res['checkpoint']} on {res['device']} ({res['dtype']}, batch {res['batch']}, {res['threads']} threads)")
    for key, v in res.items():
        if isinstance(v, dict) and "median_s" in v:
            print(f"  {key:22s} median {v['median_s'] * 1000:9.1f} ms   (min {v['min_s'] * 1000:.1f}, "
                  f"max {v['max_s'] * 1000:.1f}, {v['runs']} runs)")
    if "encode_images" in res:
        print(f"  tokens per image: {res['encode_images']['num_tokens']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alit_core.benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="path, preset:<name> or official:<name> (default: bundled model)")
    p.add_argument("--device")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--images", nargs="*", help="images for the early-exit encode timing")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    res = run(args.checkpoint, args.device, args.dtype, args.batch, args.repeats, args.images)
    print(json.dumps(res, indent=2)) if args.json else print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
