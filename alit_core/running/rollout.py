"""The recurrent rollout: one `Step` per iteration, yielded as soon as it is computed.

Because `rollout` is a generator, a caller that stops iterating stops the computation: that
is how early exit works (see `Tokenizer.encode`), and how a UI shows each iteration live.

Pixel reconstructions are decoded either as each iteration finishes (`decode=True`, which
streams) or all together after the last iteration (`decode="batched"`: fewer, larger VQGAN
decoder calls, which is faster for small images on a CPU and on GPUs; the steps then arrive
together at the end). Both give the same pixels up to floating-point rounding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..analysis.metrics import l1_error, psnr
from ..model.alit import ALIT
from ..model.halting import Halting


@dataclass
class Step:
    """Everything one iteration computed. Shapes: B images, N = num_tokens latents, P positions.

    latents      (B, N, W)  encoder output for the latents, before encoder_ln_post
    factorized   (B, N, d)  the d = 12 bottleneck before quantisation
    quantized    (B, N, d)  what the decoder reads (normalised code rows, or `factorized`)
    codes        (B, N)     latent codebook indices; None for continuous-latent models
    targets      (B, P)     the ground-truth VQGAN codes of the input; VAE models: the scaled VAE
                 (B, P, C)  latents of the input (C = 16), the regression target
    logits       (B, P, K)  decoder logits over the K VQGAN codes for every 2D position (None: VAE)
    p_gt         (B, P)     probability of the ground-truth VQGAN code (None: VAE)
    code         (B, P, C)  VAE models: the decoder's regressed latent per position (None: VQGAN)
    code_error   (B, P)     VAE models: mean_c |code - targets|, the halting score (None: VQGAN)
    recon        (B, 3, H, W) pixel reconstruction (not clamped); None when decoding is off
    l1, psnr     (B,)       per-image mean |recon - image| (the official criterion) and PSNR (dB,
                            on the reconstruction clamped to [0, 1]); None when decoding is off
    halt_mask    (B, P)     image positions masked in the encoder after this iteration; None if
                            halting is off. The last iteration's mask is drawn but never applied.
    attention    {layer: (B, L, L) or (B, heads, L, L)} decoder self-attention weights of the
                 requested layers, L = 1 + P + N; see `attention_maps.latent_attention_maps`.
    index        (B,) which images of the input batch these rows are, when a `keep` callback
                 dropped some from the rollout; None when every image is here, in order.
    """

    iteration: int
    num_tokens: int
    latents: torch.Tensor
    factorized: torch.Tensor
    quantized: torch.Tensor
    codes: torch.Tensor | None
    targets: torch.Tensor
    logits: torch.Tensor | None = None
    p_gt: torch.Tensor | None = None
    code: torch.Tensor | None = None
    code_error: torch.Tensor | None = None
    recon: torch.Tensor | None = None
    l1: torch.Tensor | None = None
    psnr: torch.Tensor | None = None
    halt_mask: torch.Tensor | None = None
    attention: dict[int, torch.Tensor] = field(default_factory=dict)
    index: torch.Tensor | None = None

    def rows(self, batch: int) -> list[int]:
        """The input-batch image of each row (batch: the input batch size)."""
        return list(range(batch)) if self.index is None else self.index.tolist()


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


@dataclass
class ImageTokens:
    """A batch after the base encoding, the part of a rollout that does not depend on halting.

    images (B, 3, H, W) float32 in [0, 1]; tokens (B, P, W) the L2-normalised 2D tokens; targets
    (B, P) the VQGAN codes, or (B, P, C) the scaled VAE latents. noise (B, C, g, g): VAE models,
    the posterior draw the latents were made with (pass it as `posterior=` to replay it); None
    for the posterior mean and for VQGAN models. A rollout given these skips the base encoder.
    """

    images: torch.Tensor
    tokens: torch.Tensor
    targets: torch.Tensor
    noise: torch.Tensor | None = None

    @classmethod
    def of(cls, model: ALIT, images: torch.Tensor, posterior="mean") -> ImageTokens:
        return cls(images, *model.image_tokens_and_noise(images, posterior))


DECODE_MODES = (True, False, "each", "batched")


def reconstruct(model: ALIT, probs: torch.Tensor, chunk: int | None = None, float32: bool = False) -> torch.Tensor:
    """Pixels (n, 3, H, W) from code probabilities (n, P, K), or for VAE models from the regressed
    latents (n, P, C), `chunk` images per decoder call.

    float32=True switches autocast off for the base decoder (see InferenceOptions.float32_pixels).
    """
    chunk = chunk or probs.shape[0]
    with torch.autocast(probs.device.type, enabled=False) if float32 else contextlib.nullcontext():
        return torch.cat([model.pixels(probs[i : i + chunk]).float()
                          for i in range(0, probs.shape[0], chunk)])


def _add_pixels(step: Step, recon: torch.Tensor, images: torch.Tensor) -> None:
    step.recon = recon
    step.l1 = l1_error(recon, images)
    step.psnr = psnr(recon, images)


@dataclass
class BaseReconstruction:
    """The base tokenizer's own reconstruction of images, with its errors (`Tokenizer.base_reconstruction`).

    recon (B, 3, H, W) unclamped, l1 (B,) and psnr (B,) against the images, as a Step's.
    """

    recon: torch.Tensor
    l1: torch.Tensor
    psnr: torch.Tensor


def base_reconstruction(model: ALIT, tokens: ImageTokens, chunk: int | None = None,
                        float32: bool = False) -> BaseReconstruction:
    """What the base tokenizer alone draws of `tokens.images`: the VQGAN decoder of each image's own codes
    (the targets ALIT predicts), or the VAE decoder of its latents. A rollout whose every prediction were
    right would draw exactly this: a reference for its error curve, not a bound (decoding a mix of codes
    can come out a little closer to the image, e.g. on flat ones)."""
    target = tokens.targets if model.is_vae else F.one_hot(tokens.targets, model.vqgan.cfg.codebook_size).float()
    recon = reconstruct(model, target, chunk, float32)
    return BaseReconstruction(recon, l1_error(recon, tokens.images), psnr(recon, tokens.images))


def _check_arguments(model: ALIT, halting: Halting, decode, attention_heads: str, keep) -> None:
    if attention_heads not in ("mean", "all"):
        raise ValueError(f"attention_heads must be 'mean' or 'all', not {attention_heads!r}")
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be True, False, 'each' or 'batched', not {decode!r}")
    if keep is not None and (decode == "batched" or halting.mode not in ("deterministic", "off")):
        raise ValueError("keep= needs streamed steps and deterministic (or no) halting")
    score = "code_error" if model.is_vae else "p_gt"
    if halting.mode in ("deterministic", "stochastic") and halting.score != score:
        raise ValueError(f"this model's halting reads {score}, but the policy was made for {halting.score}; "
                         f"use Halting.make(..., score={score!r})")


def _head_outputs(model: ALIT, out: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """An iteration's decoder head output (B, P, K or C) as (what its pixels decode from, its Step
    fields, the score halting reads)."""
    if model.is_vae:
        code_error = (out - targets).abs().mean(-1)  # out: the regressed latents themselves
        return out, dict(code=out, code_error=code_error), code_error
    probs = torch.softmax(out, dim=-1)  # once: p_gt and the soft codes both read it
    p_gt = probs.gather(-1, targets[..., None])[..., 0]
    return probs, dict(logits=out, p_gt=p_gt), p_gt


def rollout(
    model: ALIT,
    images: torch.Tensor | ImageTokens,
    *,
    halting: Halting,
    posterior="mean",
    max_iterations: int | None = None,
    decode: bool | str = True,
    decode_batch: int | None = None,
    float32_pixels: bool = False,
    attention_layers=None,
    attention_heads: str = "mean",
    keep: Callable[[], torch.Tensor] | None = None,
) -> Iterator[Step]:
    """Run the recurrent tokenizer on images (B, 3, H, W) in [0, 1], yielding each iteration.

    images may also be `ImageTokens` from an earlier base encoding of the same batch.
    posterior (VAE models): "mean", "sample" or a noise tensor, see `KLVAE.latents`; ignored for
    `ImageTokens`, which were encoded already.
    decode: True / "each" (pixels per iteration), "batched" (all at the end) or False.
    decode_batch: images per VQGAN decoder call (None: all of them in one call); float32_pixels:
    decode in float32 even under autocast.
    keep: called after each step has been taken, returns a bool (B,) over the input batch: the
    images that still need iterations. The others leave the batch, so later steps hold fewer rows
    (`Step.index` says which images they are) and cost only what the remaining images need. Each
    image's numbers are those of the full batch up to floating-point rounding. Not with
    decode="batched" (the steps arrive together at the end) nor with stochastic or replayed
    halting (their masks are drawn or given for the whole batch).
    Runs under whatever grad / autocast context the caller set up.
    """
    # Over 80 lines with its signature and docstring; the body (about 50) is the one loop of the
    # method, kept whole so that what happens to the batch between iterations reads in order.
    cfg = model.cfg
    _check_arguments(model, halting, decode, attention_heads, keep)
    layers = attention_layer_set(attention_layers, cfg.dec_depth)
    iterations = cfg.iterations if max_iterations is None else max(1, min(int(max_iterations), cfg.iterations))
    p = cfg.num_positions

    inputs = images if isinstance(images, ImageTokens) else ImageTokens.of(model, images, posterior)
    images, targets = inputs.images, inputs.targets
    x = model.initial_sequence(inputs.tokens)
    index = None  # the input-batch images still in the rollout, when some have left
    held: list[tuple[Step, torch.Tensor]] = []  # batched decoding: steps and their probabilities
    for t in range(iterations):
        x, _ = model.encoder(x)
        latents = x[:, p + 1 :]
        z, zq, codes = model.bottleneck(latents)
        out, maps = model.decode_logits(zq, layers)
        probs, head, score = _head_outputs(model, out.float(), targets)
        step = Step(
            iteration=t,
            num_tokens=cfg.tokens_at(t),
            latents=latents.float(),
            factorized=z.float(),
            quantized=zq.float(),
            codes=codes,
            targets=targets,
            **head,
            halt_mask=halting.mask(t, score),
            attention={i: (w.mean(1) if attention_heads == "mean" else w).float() for i, w in maps.items()},
            index=index,
        )
        if decode == "batched":
            held.append((step, probs))
        else:
            if decode:
                _add_pixels(step, reconstruct(model, probs, decode_batch, float32_pixels), images)
            yield step
        if t + 1 < iterations:
            mask = step.halt_mask
            if keep is not None:
                rows = keep().to(x.device)
                rows = rows if index is None else rows[index]  # of the images still in the batch
                if not rows.any():
                    return
                if not rows.all():
                    sel = rows.nonzero()[:, 0]
                    index = sel if index is None else index[sel]
                    x, images, targets, mask = (None if v is None else v[sel] for v in (x, images, targets, mask))
            if mask is not None:
                x = model.mask_image_tokens(x, mask)
            x = model.extend_sequence(x, t + 1)
    if held:
        recon = reconstruct(model, torch.cat([pr for _, pr in held]), decode_batch, float32_pixels)
        for (step, _), pixels in zip(held, recon.split(images.shape[0])):
            _add_pixels(step, pixels, images)
            yield step
