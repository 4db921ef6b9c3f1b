"""A fixed pack of training images with their VQGAN features and codes (or VAE latents), computed once.

ALIT's stage 1 freezes the base tokenizer, so its encoding of a training image never changes.
Storing the features and targets of a fixed set of images takes the base encoder and the scene
synthesis out of every training step; the step then runs only the ALIT transformers (and the patch
embedding, which trains, from the stored pixels).

    python -m alit_train.code_pack --vqgan runs/vq128/last.pt --out runs/pack128.pt --images 8192
    python -m alit_train.code_pack --vqgan runs/vae128/last.pt --model explorer_128_vae --out runs/vaepack128.pt
    python -m alit_train.train alit --codes runs/pack128.pt ...

The pack holds uint8 images (N, 3, S, S), float16 features (N, C, g, g) and int16 codes (N, P); for
a VAE model the features are the posterior means (scaled) and the targets the same latents, float16
(N, P, C).
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
from einops import rearrange
from torch import nn

from alit_core.files.atomic import written_whole
from alit_core.model.config import ALITConfig
from alit_core.model.vae import KLVAE
from alit_core.model.vqgan import VQGAN

from .streams import SceneStream
from .train_config import TrainConfig, model_config, parse_mix

BLOCK = 64  # images made and encoded together


@dataclass
class CodePack:
    images: torch.Tensor  # (N, 3, S, S) uint8
    features: torch.Tensor  # (N, C, g, g) float16
    targets: torch.Tensor  # (N, P) int16 codes, or (N, P, C) float16 VAE latents
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
        """(images float [0, 1], features float32, targets int64 codes or float32 latents) of a step,
        deterministic in (seed, rank, step)."""
        rng = np.random.default_rng([seed, rank, step, 7])
        pick = torch.from_numpy(rng.choice(len(self), size=batch_size, replace=False))
        targets = self.targets[pick]
        targets = targets.float() if targets.is_floating_point() else targets.long()
        return (self.images[pick].float() / 255.0, self.features[pick].float(), targets)


def base_state(path: str, base: str = "vqgan") -> dict[str, torch.Tensor]:
    """The base tokenizer's weights ("vqgan" or "vae") in a training state: a vqgan or vae stage's EMA,
    or an alit stage's (frozen) base tokenizer."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    prefix = base + "."
    if any(k.startswith(prefix) for k in ck["model"]):
        return {k[len(prefix):]: v.float() if v.is_floating_point() else v
                for k, v in ck["model"].items() if k.startswith(prefix)}
    # a compact state keeps only the EMA entries that differ from the weights (frozen ones do not)
    ema = {**ck["model"], **ck["ema"]} if ck.get("compact") else ck["ema"]
    return {k: v.float() if v.is_floating_point() else v for k, v in ema.items()}


DECODER_SIDE = ("decoder.", "post_quant_conv.")  # base tokenizer weights that read codes or latents, never make them


def fingerprint(base: nn.Module) -> float:
    """A number that tells one set of base tokenizer weights from another (float16-rounded, as packs are
    made), so that ALIT is never trained on the codes or latents of another VQGAN or VAE than its own.
    Only the weights that make a pack's codes or latents count: a decoder trained on since (a decoder-only
    vqgan or vae run) leaves the pack valid."""
    return round(sum(float(p.detach().half().double().abs().sum()) for k, p in base.state_dict().items()
                     if p.is_floating_point() and not k.startswith(DECODER_SIDE)), 3)


def base_from(path: str, model_cfg: ALITConfig) -> VQGAN | KLVAE:
    """The VQGAN (or, for a VAE model, the KL VAE) of a training state (`base_state`), frozen, in float32
    with float16-rounded weights."""
    base = KLVAE(model_cfg.vae) if model_cfg.vae is not None else VQGAN(model_cfg.vqgan)
    state = base_state(path, model_cfg.base_name)
    # rounded as the exported model and the compact training state store it, so that a pack made from
    # either gives the codes the shipped model computes
    base.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state.items()})
    return base.eval().requires_grad_(False)


def encode_for_pack(base: VQGAN | KLVAE, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What a pack stores of images (B, 3, S, S): float16 features (B, C, g, g) and the targets, int16
    VQGAN codes (B, P) or float16 VAE latents (B, P, C) (the posterior mean, scaled)."""
    if isinstance(base, KLVAE):
        latents, _ = base.latents(images, "mean")
        return latents.half(), rearrange(latents, "b c h w -> b (h w) c").half()
    h = base.encode(images)  # float32: bfloat16 flips nearest-code decisions (see ALIT.image_tokens)
    return h.half(), base.indices(h).to(torch.int16)


@torch.no_grad()
def build(vqgan: str, model_cfg: ALITConfig, index: str, n: int, mix: dict, seed: int = 0) -> CodePack:
    base = base_from(vqgan, model_cfg)
    # the training stream's images, seeded apart from the steps' own draws
    stream = SceneStream(index, model_cfg.resolution, mix, seed=seed + 104729, rank=0)
    images, features, targets = [], [], []
    t0 = time.time()
    for block in range((n + BLOCK - 1) // BLOCK):
        x = stream.batch(block, min(BLOCK, n - block * BLOCK))
        feats, targs = encode_for_pack(base, x)
        images.append((x * 255).round().to(torch.uint8))
        features.append(feats)
        targets.append(targs)
        done = min(n, (block + 1) * BLOCK)
        print(f"\rcode pack: {done}/{n} images ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    meta = {"vqgan": str(vqgan), "base_fingerprint": fingerprint(base), "index": str(index), "mix": dict(mix),
            "seed": seed, "images": n,
            "resolution": model_cfg.resolution, "model_config": model_cfg.to_dict()}
    return CodePack(torch.cat(images), torch.cat(features), torch.cat(targets), meta)


class PackStream:
    """Batches (images, base features, codes or VAE latents) drawn from a code pack, deterministic in
    (seed, rank, step)."""

    def __init__(self, path: str, seed: int, rank: int):
        self.pack, self.seed, self.rank = CodePack.load(path), seed, rank

    def check_base(self, base: nn.Module, path: str) -> None:
        """Stop when the pack was made by other base weights than the model's frozen ones (packs made
        before the fingerprint was recorded are taken as they are)."""
        made_by = self.pack.meta.get("base_fingerprint")
        if made_by is not None and made_by != fingerprint(base):
            raise SystemExit(f"the code pack {path} was made by another VQGAN or VAE ({self.pack.meta['vqgan']}) "
                             "than the one this ALIT trains on: make a new pack from it (python -m "
                             "alit_train.code_pack) or pass the base it was made from")

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, ...]:
        return self.pack.batch(step, batch_size, self.seed, self.rank)


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(prog="python -m alit_train.code_pack", description=__doc__.split("\n")[0])
    p.add_argument("--vqgan", required=True, help="a vqgan-stage training checkpoint (its EMA weights), or a vae-stage "
                                                 "one for a VAE model, or an ALIT training state")
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
