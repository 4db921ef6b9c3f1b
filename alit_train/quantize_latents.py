"""Turn a continuous-latent ALIT into the official quantized variant, to continue training from.

Why: a continuous 12-d latent can carry almost any amount of information, so 96 of them already
hold everything the 16 x 16 VQGAN codes say, and the error curve of the continuous bundled model
flattens after three iterations (mean L1 falls 1.36x from 32 to 256 tokens; model card, session
5). With the official 4096-entry latent codebook a token holds at most 12 bits: 32 tokens hold
384 bits, 256 tokens 3,072 bits, about what the 256 codes of a 1,024-entry VQGAN can say
(2,560 bits). Every iteration then has something left to add, which is what lets a threshold
tell simple images from complex ones.

Trained from scratch on this CPU, the latent codebook collapsed to one entry within 150 steps
(config.py, explorer_64). Here it starts from spherical k-means of the continuous model's own
latents, so every entry starts in use, and the decoder's input projection is rescaled by the
latents' mean norm, because the quantiser hands it unit vectors where it was trained on raw ones.

    python -m alit_train.quantize_latents $(bash alit_train/phase1_state.sh) runs/q128_init.pt \
        --codes runs/pack128.pt
    python -m alit_train.train alit --init runs/q128_init.pt --codes runs/pack128.pt ...
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from alit_core.model.alit import ALIT, LatentQuantizer
from alit_core.model.halting import Halting
from alit_core.running.rollout import ImageTokens, rollout

from .code_pack import CodePack
from .training_state import initial_model


@torch.no_grad()
def latent_samples(model: ALIT, pack: CodePack, images: int, batch: int = 32) -> torch.Tensor:
    """The factorised 12-d latents of every iteration for the first `images` of a code pack: (M, 12)."""
    out = []
    for start in range(0, min(images, len(pack)), batch):
        x = pack.images[start : start + batch].float() / 255.0
        feats = pack.features[start : start + batch].float()
        inputs = ImageTokens(x, model.tokens_from_features(feats, x), pack.targets[start : start + batch].long())
        for step in rollout(model, inputs, halting=Halting.make("off"), decode=False):
            last = step.factorized
        out.append(last.flatten(0, 1).float())  # the last iteration holds every iteration's latents
    return torch.cat(out)


def kmeans_plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k seeds among the unit rows of x, each drawn with probability ~ its squared distance to the
    nearest seed so far (Arthur & Vassilvitskii 2007): random seeds often share a cluster and
    k-means cannot split them apart again."""
    seeds = [int(torch.randint(len(x), (1,), generator=gen))]
    nearest = (2 - 2 * x @ x[seeds[0]]).clamp_min(0)  # squared distance between unit vectors
    for _ in range(k - 1):
        seeds.append(int(torch.multinomial(nearest + 1e-12, 1, generator=gen)))
        nearest = torch.minimum(nearest, (2 - 2 * x @ x[seeds[-1]]).clamp_min(0))
    return x[seeds].clone()


def spherical_kmeans(x: torch.Tensor, k: int, iterations: int = 20, seed: int = 0) -> torch.Tensor:
    """k unit centres of the directions of x (M, d), k-means++ seeded."""
    x = F.normalize(x.float(), dim=-1)
    gen = torch.Generator().manual_seed(seed)
    if len(x) < k:
        raise ValueError(f"{len(x)} latents are too few for {k} codebook entries")
    centres = kmeans_plus_plus(x, k, gen)
    for _ in range(iterations):
        assign = torch.cat([(chunk @ centres.t()).argmax(-1) for chunk in x.split(8192)])
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        empty = counts == 0
        # an empty centre moves to a random sample, so every entry is in use when training starts
        sums[empty] = x[torch.randint(len(x), (int(empty.sum()),), generator=gen)]
        centres = F.normalize(sums, dim=-1)
    return centres


@torch.no_grad()
def quantized_from(model: ALIT, pack: CodePack, images: int = 512, seed: int = 0) -> ALIT:
    """A quantized-latent ALIT with `model`'s weights, its codebook from k-means of model's latents."""
    if model.cfg.quantize_latents:
        raise ValueError("the model's latents are already quantized")
    z = latent_samples(model, pack, images)
    quantized = ALIT(replace(model.cfg, quantize_latents=True))
    missing, unexpected = quantized.load_state_dict(model.state_dict(), strict=False)
    assert missing == ["quantize.embedding.weight"] and not unexpected, (missing, unexpected)
    quantized.quantize.embedding.weight.copy_(spherical_kmeans(z, quantized.cfg.latent_codebook_size, seed=seed))
    quantized.decoder.decoder_embed.weight.mul_(z.norm(dim=-1).mean())
    return quantized


class AnnealedQuantizer(LatentQuantizer):
    """Training only: the decoder reads code + residual * (z - code), z the normalised latent.

    Why: quantizing the continuous model's latents at once takes its code accuracy from 0.35-0.75 to
    0.04-0.05 (every iteration), since it had spread its message over the fine detail of 12 continuous
    numbers, and 80 steps of training did not move it. Shrinking the residual step by step lets the
    encoder move its latents onto codebook entries while the decoder still reads them; the same
    weights and state_dict keys as the official quantiser, which inference uses unchanged.
    """

    residual = 0.0

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zq, idx = super().forward(z)
        if self.residual:  # same straight-through gradient: d(zq)/dz is that of normalised z
            zq = zq + self.residual * (F.normalize(z.float(), dim=-1) - zq)
        return zq, idx


def over_codebook(model: ALIT, make):
    """Replace model's quantiser by `make(size, dim, commitment)`, a training subclass, over the same codebook
    parameter (so the state_dict keys and the optimiser's parameter stay); return the new quantiser."""
    old = model.quantize
    new = make(len(old.embedding.weight), old.embedding.weight.shape[1], old.commitment)
    new.embedding = old.embedding
    model.quantize = new
    return new


def anneal_quantizer(model: ALIT) -> AnnealedQuantizer:
    """Put an AnnealedQuantizer over model's codebook (the same parameter) and return it."""
    return over_codebook(model, AnnealedQuantizer)


def residual_at(step: int, ramp: int) -> float:
    """1 at step 0, falling linearly to 0 at step `ramp`. (The converted model's accuracy is already at
    0.08 with a residual of 0.3, so the ramp spends as long near 1 as near 0.)"""
    return max(0.0, 1.0 - step / ramp)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("state", help="a continuous-latent ALIT: training state, compact state or alit_core checkpoint")
    p.add_argument("out", help="where to write the quantized model (a training checkpoint for --init)")
    p.add_argument("--codes", required=True, help="a code pack made with the model's VQGAN (alit_train.code_pack)")
    p.add_argument("--images", type=int, default=512, help="pack images whose latents seed the codebook")
    p.add_argument("--weights", choices=["ema", "model"], default="ema")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = initial_model(args.state, args.weights).eval()
    quantized = quantized_from(model, CodePack.load(args.codes), args.images)
    state = quantized.state_dict()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "ema": state, "step": 0, "model_config": quantized.cfg.to_dict()}, out)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
