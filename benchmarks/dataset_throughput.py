"""Throughput of `encode-dataset`, end to end (file decoding, encoding, Parquet), against the official way.

    python -m benchmarks.dataset_throughput PHOTOS --limit 64 --repeats 3
    python -m benchmarks.dataset_throughput PHOTOS --checkpoint preset:small --limit 8 --batch 8
    python -m benchmarks.dataset_throughput PHOTOS --limit 64 --out benchmarks/dataset_cpu    # .md and .json

Every row is a whole `encode_dataset` run over the same images with the same weights (one model
shared by every row), timed from the file list to the merged Parquet file. The first row is the
official way: float32, every iteration, a pixel decode per iteration, one image at a time, files
decoded in the main process, none of the inference options. Each later row switches one more
speed-up on (early exit, batching, batched VQGAN decodes, the inference options, bfloat16, file
decoding in worker processes), so the parts are measured one at a time. Rows are run in turn
within each repeat (not one row's repeats back to back), so that a slow spell on a shared
machine spreads over all rows; medians and the min-max range are reported, with the load average.
Every row's token counts are compared with the official way's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from alit_core.datasets.dataset_encoding import DatasetEncodeConfig, encode_dataset, list_images
from alit_core.files.loading import load_tokenizer
from alit_core.running.inference import InferenceOptions
from alit_core.running.tokenizer import Tokenizer

from .timing import machine


@dataclass(frozen=True)
class Variant:
    name: str
    dtype: str
    options: InferenceOptions
    early_exit: bool
    batch: int
    workers: int


def variants(resolution: int, batch: int, workers: int, device: str, base: str = "VQGAN") -> list[Variant]:
    """The rows of the table; base: the model's base tokenizer as the rows name it (VQGAN or VAE)."""
    plain = InferenceOptions.plain()
    one_per_decode = replace(plain, decode_pixels=resolution * resolution)  # one image per base decoder call
    default_chunk = InferenceOptions().decode_batch(torch.device(device), resolution)
    return [
        Variant("official way: float32, every iteration, a pixel decode per iteration, one image at a time",
                "float32", plain, False, 1, 0),
        Variant("+ early exit (stop at the selected iteration)", "float32", plain, True, 1, 0),
        Variant(f"+ batching: {batch} images per encode call, decided images leave ({base} decodes one image per call)",
                "float32", one_per_decode, True, batch, 0),
        Variant(f"+ batched {base} decodes ({default_chunk} images per decoder call)",
                "float32", replace(plain, decode_pixels=None), True, batch, 0),
        Variant(f"+ inference options in float32 (channels-last {base} decoder, decoder rows read only)",
                "float32", InferenceOptions(), True, batch, 0),
        Variant("+ bfloat16 (autocast, weight cache, fused linear layers)", "bfloat16", InferenceOptions(), True,
                batch, 0),
        Variant(f"+ files decoded in {workers} worker process{'es' if workers > 1 else ''}", "bfloat16",
                InferenceOptions(), True, batch, workers),
    ]


def pick_files(root: Path, limit: int | None) -> list[str]:
    """limit files spread evenly over the sorted list (so that every source folder is sampled)."""
    files = list_images(root)
    if limit and limit < len(files):
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def link_folder(root: Path, files: list[str], dest: Path) -> Path:
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        (dest / f).symlink_to((root / f).resolve())
    return dest


def run(root: Path, checkpoint: str | None = None, limit: int | None = 64, repeats: int = 3, batch: int = 32,
        workers: int = 1, device: str = "cpu", shard_size: int = 1024) -> dict:
    base = load_tokenizer(checkpoint, device=device, dtype="float32", options=InferenceOptions.plain())
    files = pick_files(root, limit)
    vs = variants(base.resolution, batch, workers, device, getattr(base.config, "base_name", "vqgan").upper())
    toks = [Tokenizer(base.model, base.device, v.dtype, v.options) for v in vs]
    times: list[list[float]] = [[] for _ in vs]
    loads: list[float] = []
    tokens: list[dict[str, int]] = [{} for _ in vs]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = link_folder(root, files, tmp / "images")
        warm = link_folder(root, files[:2], tmp / "warm")

        def once(i: int, folder: Path) -> float:
            v = vs[i]
            cfg = DatasetEncodeConfig(root=folder, out=tmp / f"out{i}.parquet", checkpoint=checkpoint, batch=v.batch,
                                      workers=v.workers, early_exit=v.early_exit, shard_size=shard_size,
                                      overwrite=True, progress=False)
            t0 = time.perf_counter()
            encode_dataset(cfg, tokenizer=toks[i])
            return time.perf_counter() - t0

        for i in range(len(vs)):  # weight caches, oneDNN kernels, first-call costs
            once(i, warm)
        for r in range(repeats):
            for i in range(len(vs)):
                loads.append(os.getloadavg()[0])
                times[i].append(once(i, data))
                print(f"repeat {r + 1}/{repeats}: {vs[i].name}: {len(files) / times[i][-1]:.2f} images/s",
                      file=sys.stderr, flush=True)
                if r == 0:
                    import pyarrow.parquet as pq

                    t = pq.read_table(tmp / f"out{i}.parquet", columns=["path", "num_tokens"]).to_pydict()
                    tokens[i] = dict(zip(t["path"], t["num_tokens"]))
        shutil.rmtree(data)
    n = len(files)
    ref = statistics.median(times[0])
    rows = []
    for v, ts, tk in zip(vs, times, tokens):
        med = statistics.median(ts)
        rows.append({
            "name": v.name, "dtype": v.dtype, "early_exit": v.early_exit, "batch": v.batch, "workers": v.workers,
            "options": v.options.__dict__, "seconds": ts, "median_s": med,
            "images_per_s": n / med, "images_per_s_min": n / max(ts), "images_per_s_max": n / min(ts),
            "speedup": ref / med, "same_tokens_as_official": sum(tk[p] == tokens[0][p] for p in tk),
            "tokens_mean": statistics.fmean(tk.values()),
        })
    return {
        "root": str(root), "images": n, "checkpoint": checkpoint or "bundled", "device": str(base.device),
        "resolution": base.resolution, "iterations": base.config.iterations, "repeats": repeats,
        "machine": machine(), "load_average_1min": {"min": min(loads), "median": statistics.median(loads),
                                                    "max": max(loads)},
        "rows": rows,
    }


def markdown(res: dict, command: str) -> str:
    m = res["machine"]
    la = res["load_average_1min"]
    lines = [
        f"### encode-dataset throughput: {res['checkpoint']} ({res['resolution']} px, {res['iterations']} iterations) "
        f"on {res['device']}",
        "",
        f"Written by `{command}`. {res['images']} images from `{res['root']}`, end to end (file decoding, "
        f"encoding, Parquet), {res['repeats']} timed runs per row after a warm-up, rows taken in turn; "
        f"{m['cpu']}, {m['cpu_count']} cores, {m['threads']} threads, torch {m['torch']}. "
        f"1-minute load average during the runs: {la['min']:.1f} - {la['max']:.1f} (median {la['median']:.1f}).",
        "",
        "| configuration (each row adds to the one above) | images/s (median) | min - max | speed-up | "
        "tokens per image (mean) | same tokens as official |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['name']} | {r['images_per_s']:.2f} | {r['images_per_s_min']:.2f} - "
                     f"{r['images_per_s_max']:.2f} | {r['speedup']:.2f}x | {r['tokens_mean']:.1f} | "
                     f"{r['same_tokens_as_official']}/{res['images']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dataset_throughput", description=__doc__.split("\n")[0])
    p.add_argument("root", type=Path, help="folder of images")
    p.add_argument("--checkpoint", help="checkpoint path, official:<name> or preset:<name> (default: bundled)")
    p.add_argument("--limit", type=int, default=64, help="images, spread over the folder (default 64; 0: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="worker processes in the last row (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", help="write PREFIX.md and PREFIX.json")
    args = p.parse_args(argv)
    res = run(args.root, args.checkpoint, args.limit or None, args.repeats, args.batch, args.workers, args.device)
    command = "python -m benchmarks.dataset_throughput " + " ".join(argv if argv is not None else sys.argv[1:])
    res["command"] = command
    text = markdown(res, command)
    print(json.dumps(res, indent=2) if args.json else text)
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
        Path(args.out + ".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
