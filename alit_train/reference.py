"""The app's reference set: token counts and complexity measures of held-out images, computed
with the shipped model and shipped as data (assets/reference_set.json).

    python -m alit_train.reference --out assets/reference_set.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from alit_core import Criterion, complexity, load_tokenizer

from .evaluate import eval_sets, to_tensor

GROUPS = {"photos": "photo", "scenes": "scene", "simple": "simple", "ood_noise": "noise", "ood_text": "text",
          "ood_clipart": "clip art"}


def build(checkpoint: str | None, index: str, n: int = 16, threshold: float | None = None, seed: int = 777) -> dict:
    tok = load_tokenizer(checkpoint, device="cpu")
    threshold = tok.default_threshold if threshold is None else threshold
    sets = eval_sets(index, tok.resolution, n, seed)
    rows = []
    for name in GROUPS:  # the app's groups (the evaluation's test photos are not among them)
        images = [im for im, _ in sets[name]]
        enc = tok.encode(to_tensor(images), threshold=threshold)
        for i, (im, tokens) in enumerate(zip(images, enc.num_tokens)):
            row = {"name": f"{GROUPS[name]} {i + 1}", "group": GROUPS[name], "tokens": tokens,
                   "l1": round(enc.l1[i], 5), "psnr": round(enc.psnr[i], 3)}
            row.update({k: round(v, 5) for k, v in complexity(im).items()})
            rows.append(row)
    return {"model": str(checkpoint or "bundled"), "threshold": threshold, "criterion": Criterion.make(threshold).kind,
            "resolution": tok.resolution, "images": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alit_train.reference", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint")
    p.add_argument("--index", default="data/index.json")
    p.add_argument("--n", type=int, default=16, help="images per group")
    p.add_argument("--threshold", type=float, default=None, help="L1 threshold (default: the model's own)")
    p.add_argument("--out", default="assets/reference_set.json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    data = build(args.checkpoint, args.index, args.n, args.threshold)
    Path(args.out).write_text(json.dumps(data, indent=1))
    counts = {g: float(np.median([r["tokens"] for r in data["images"] if r["group"] == g])) for g in GROUPS.values()}
    print(f"wrote {len(data['images'])} images to {args.out}; median tokens per group: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
