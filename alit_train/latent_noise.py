"""Training only: a limit on what one continuous latent token can carry, by noise on what the decoder reads.

Why: a continuous 12-d latent can carry almost any amount of information, so the continuous bundled
model put everything the 16 x 16 VQGAN codes say into its first 96 tokens and its error curve went flat
after three iterations (mean L1 falls 1.36x from 32 to 256 tokens; assets/MODEL_CARD.md, session 5). A
threshold then cannot spread photos over the counts. The official models limit a token to 12 bits with a
4096-entry latent codebook; switching this model to it (alit_train.quantize_latents) took its code
accuracy from 0.35-0.75 to 0.04-0.05 and 300 CPU steps did not bring it back (model card, session 6).

Gaussian noise on the decoder's input is the usual stand-in for quantization when training (learned
image compression: Ballé et al., "End-to-end optimized image compression", 2017): with noise of
standard deviation `sigma` times the latent's own RMS, a token of d numbers carries at most
d/2 * log2(1 + 1/sigma^2) bits (sigma = 0.58: 12 bits, as the official codebook), whatever scale the
encoder picks. The limit is raised from 0 step by step, so the model keeps working while it learns to
put the coarse content first. Inference reads the latents without noise: the architecture and the
weights are the plain continuous model's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from alit_core.model.alit import ALIT


class LatentNoise:
    """A forward hook on the model's 12-d projection (`pre_quantizer_mlp`) that adds the noise in training mode."""

    def __init__(self, model: ALIT):
        if model.cfg.quantize_latents:
            raise ValueError("latent noise is for continuous-latent models; a quantized one is limited by its codebook")
        self.sigma = 0.0
        self.handle = model.pre_quantizer_mlp.register_forward_hook(self)

    def __call__(self, module: nn.Module, inputs, z: torch.Tensor) -> torch.Tensor | None:
        if not (module.training and self.sigma):
            return None  # the output unchanged
        rms = z.detach().float().pow(2).mean(-1, keepdim=True).sqrt()
        return z + (self.sigma * rms * torch.randn_like(z, dtype=torch.float32)).to(z.dtype)


def sigma_at(step: int, target: float, ramp: int, start: int = 0) -> float:
    """0 until step `start`, rising linearly to `target` over the next `ramp` steps, then `target` (a run
    continued from another's state brings the noise in from where it took over)."""
    if step < start:
        return 0.0
    return target * min(1.0, (step - start) / ramp) if ramp else target


def bits_per_token(sigma: float, dim: int) -> float:
    """The most one token of `dim` numbers can carry through noise `sigma` x its RMS (Gaussian channel)."""
    return math.inf if sigma == 0 else dim / 2 * math.log2(1 + 1 / sigma**2)
