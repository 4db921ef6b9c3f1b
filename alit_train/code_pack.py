"""A fixed pack of training images with their VQGAN features and codes, computed once.

ALIT's stage 1 freezes the VQGAN, so its encoding of a training image never changes. Storing the
features and codes of a fixed set of images takes the VQGAN encoder and the scene synthesis out
of every training step; the step then runs only the ALIT transformers (and the patch embedding,
which trains, from the stored pixels).

    python -m alit_train.code_pack --vqgan runs/vq128/last.pt --out runs/pack128.pt --images 8192
    python -m alit_train.train alit --codes runs/pack128.pt ...

The pack holds uint8 images (N, 3, S, S), float16 features (N, C, g, g) and int16 codes (N, P).
Its images are those of `SceneStream` (train split only), seeded by (seed, 0, i) for block i, so
the same command writes the same pack.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from alit_core.files.atomic import written_whole
from alit_core.model.config import ALITConfig
from alit_core.model.vqgan import VQGAN

from .streams import SceneStream
from .train_config import TrainConfig, model_config, parse_mix

BLOCK = 64  # images made and encoded together


@dataclass
class CodePack:
    images: torch.Tensor  # (N, 3, S, S) uint8
    features: torch.Tensor  # (N, C, g, g) float16
    targets: torch.Tensor  # (N, P) int16
    meta: dict

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def load(cls, path: str | Path) -> CodePack:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        return cls(ck["images"], ck["features"], ck["targets"], ck["meta"])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with written_whole(path) as tmp:
            torch.save({"images": self.images, "features": self.features, "targets": self.targets,
                        "meta": self.meta}, tmp)
        return path

    def batch(self, step: int, batch_size: int, seed: int, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images float [0, 1], features float32, targets int64) of a step, deterministic in (seed, rank, step)."""
        rng = np.random.default_rng([seed, rank, step, 7])
        pick = torch.from_numpy(rng.choice(len(self), size=batch_size, replace=False))
        return (self.images[pick].float() / 255.0, self.features[pick].float(), self.targets[pick].long())


def vqgan_state(path: str) -> dict[str, torch.Tensor]:
    """The VQGAN weights of a training state: a vqgan stage's EMA, or an alit stage's (frozen) VQGAN."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if any(k.startswith("vqgan.") for k in ck["model"]):
        return {k[len("vqgan."):]: v.float() if v.is_floating_point() else v
                for k, v in ck["model"].items() if k.startswith("vqgan.")}
    return ck["ema"]


def vqgan_from(path: str, model_cfg: ALITConfig) -> VQGAN:
    """The VQGAN of a training state (`vqgan_state`), frozen, in float32 with float16-rounded weights."""
    vq = VQGAN(model_cfg.vqgan)
    # rounded as the exported model and the compact training state store it, so that a pack made from
    # either gives the codes the shipped model computes
    vq.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in vqgan_state(path).items()})
    return vq.eval().requires_grad_(False)


@torch.no_grad()
def build(vqgan: str, model_cfg: ALITConfig, index: str, n: int, mix: dict, seed: int = 0) -> CodePack:
    vq = vqgan_from(vqgan, model_cfg)
    # the training stream's images, seeded apart from the steps' own draws
    stream = SceneStream(index, model_cfg.resolution, mix, seed=seed + 104729, rank=0)
    images, features, targets = [], [], []
    t0 = time.time()
    for block in range((n + BLOCK - 1) // BLOCK):
        x = stream.batch(block, min(BLOCK, n - block * BLOCK))
        h = vq.encode(x)  # float32: bfloat16 flips nearest-code decisions (see ALIT.image_tokens)
        images.append((x * 255).round().to(torch.uint8))
        features.append(h.half())
        targets.append(vq.indices(h).to(torch.int16))
        done = min(n, (block + 1) * BLOCK)
        print(f"\rcode pack: {done}/{n} images ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    meta = {"vqgan": str(vqgan), "index": str(index), "mix": dict(mix), "seed": seed, "images": n,
            "resolution": model_cfg.resolution, "model_config": model_cfg.to_dict()}
    return CodePack(torch.cat(images), torch.cat(features), torch.cat(targets), meta)


class PackStream:
    """Batches (images, VQGAN features, codes) drawn from a code pack, deterministic in (seed, rank, step)."""

    def __init__(self, path: str, seed: int, rank: int):
        self.pack, self.seed, self.rank = CodePack.load(path), seed, rank

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, ...]:
        return self.pack.batch(step, batch_size, self.seed, self.rank)


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(prog="python -m alit_train.code_pack", description=__doc__.split("\n")[0])
    p.add_argument("--vqgan", required=True, help="a vqgan-stage training checkpoint (its EMA weights)")
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="explorer_128")
    p.add_argument("--index", default=TrainConfig.index)
    p.add_argument("--images", type=int, default=8192)
    p.add_argument("--mix", type=parse_mix, default=TrainConfig().mix)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pack = build(args.vqgan, model_config(args.model), args.index, args.images, args.mix, args.seed)
    print(pack.save(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
