"""The recurrent rollout: one `Step` per iteration, yielded as soon as it is computed.

Because `rollout` is a generator, a caller that stops iterating stops the computation: that
is how early exit works (see `Tokenizer.encode`), and how a UI shows each iteration live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from .alit import ALIT
from .halting import Halting
from .metrics import l1_error, psnr


@dataclass
class Step:
    """Everything one iteration computed. Shapes: B images, N = num_tokens latents, P positions.

    latents      (B, N, W)  encoder output for the latents, before encoder_ln_post
    factorized   (B, N, d)  the d = 12 bottleneck before quantisation
    quantized    (B, N, d)  what the decoder reads (normalised code rows, or `factorized`)
    codes        (B, N)     latent codebook indices; None for continuous-latent models
    logits       (B, P, K)  decoder logits over the K VQGAN codes for every 2D position
    p_gt         (B, P)     probability of the ground-truth VQGAN code
    targets      (B, P)     the ground-truth VQGAN codes of the input
    recon        (B, 3, H, W) pixel reconstruction (not clamped); None when decoding is off
    l1, psnr     (B,)       per-image mean |recon - image| (the official criterion) and PSNR (dB,
                            on the reconstruction clamped to [0, 1]); None when decoding is off
    halt_mask    (B, P)     image positions masked in the encoder after this iteration; None if
                            halting is off. The last iteration's mask is drawn but never applied.
    attention    {layer: (B, L, L) or (B, heads, L, L)} decoder self-attention weights of the
                 requested layers, L = 1 + P + N; see `attention_maps.latent_attention_maps`.
    """

    iteration: int
    num_tokens: int
    latents: torch.Tensor
    factorized: torch.Tensor
    quantized: torch.Tensor
    codes: torch.Tensor | None
    logits: torch.Tensor
    p_gt: torch.Tensor
    targets: torch.Tensor
    recon: torch.Tensor | None = None
    l1: torch.Tensor | None = None
    psnr: torch.Tensor | None = None
    halt_mask: torch.Tensor | None = None
    attention: dict[int, torch.Tensor] = field(default_factory=dict)


def attention_layer_set(layers, depth: int) -> frozenset[int]:
    """Normalise None / int / iterable / "all" (negative indices count from the end)."""
    if layers is None:
        return frozenset()
    if layers == "all":
        return frozenset(range(depth))
    if isinstance(layers, int):
        layers = [layers]
    out = set()
    for i in layers:
        j = i + depth if i < 0 else i
        if not 0 <= j < depth:
            raise ValueError(f"decoder attention layer {i} does not exist; the decoder has {depth} layers")
        out.add(j)
    return frozenset(out)


def rollout(
    model: ALIT,
    images: torch.Tensor,
    *,
    halting: Halting,
    max_iterations: int | None = None,
    decode: bool = True,
    attention_layers=None,
    attention_heads: str = "mean",
) -> Iterator[Step]:
    """Run the recurrent tokenizer on images (B, 3, H, W) in [0, 1], yielding each iteration.

    Runs under whatever grad / autocast context the caller set up.
    """
    cfg = model.cfg
    if attention_heads not in ("mean", "all"):
        raise ValueError(f"attention_heads must be 'mean' or 'all', not {attention_heads!r}")
    layers = attention_layer_set(attention_layers, cfg.dec_depth)
    iterations = cfg.iterations if max_iterations is None else max(1, min(int(max_iterations), cfg.iterations))
    p = cfg.num_positions

    tokens, targets = model.image_tokens(images)
    x = model.initial_sequence(tokens)
    for t in range(iterations):
        x, _ = model.encoder(x)
        latents = x[:, p + 1 :]
        z, zq, codes = model.bottleneck(latents)
        logits, maps = model.decode_logits(zq, layers)
        logits = logits.float()
        p_gt = torch.softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
        step = Step(
            iteration=t,
            num_tokens=cfg.tokens_at(t),
            latents=latents.float(),
            factorized=z.float(),
            quantized=zq.float(),
            codes=codes,
            logits=logits,
            p_gt=p_gt,
            targets=targets,
            halt_mask=halting.mask(t, p_gt),
            attention={i: (w.mean(1) if attention_heads == "mean" else w).float() for i, w in maps.items()},
        )
        if decode:
            step.recon = model.reconstruct(logits).float()
            step.l1 = l1_error(step.recon, images)
            step.psnr = psnr(step.recon, images)
        yield step
        if t + 1 < iterations:
            if step.halt_mask is not None:
                x = model.mask_image_tokens(x, step.halt_mask)
            x = model.extend_sequence(x, t + 1)
