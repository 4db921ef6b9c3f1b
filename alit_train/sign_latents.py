"""Training only: latents quantized to the signs of their 12 numbers, 12 bits per token from the first step.

Why: a continuous latent carries too much. Phase 1's model reproduces its VQGAN with 96 tokens (its mean
L1 on the `calib` photos is within 0.0011 of the VQGAN's own from the fourth iteration on), so its
error curve is flat after that and a threshold cannot spread photos over the counts (assets/MODEL_CARD.md,
sessions 5 and 8). The official models cap a token at 12 bits with a learned 4096-entry cosine codebook,
but a learned codebook collapsed to one entry on this CPU (config.py, explorer_64), converting a trained
model to one lost its code accuracy (session 6), and noise as a stand-in, from the first step, stalled
at the codes' prior (session 7).

The corners of the 12-d hypercube are a codebook that cannot collapse or die: the nearest corner of a
normalised latent, by the cosine quantiser's own rule, is the one with the same signs, so quantizing is
taking signs ("lookup-free quantization", Yu et al., MAGVIT-v2, 2023), and 2^12 = 4096 corners is the
official codebook size. Without more, an untrained encoder gives most latents the same signs (180 of
the 4,096 codes in use after 460 steps of session 8's first try, and a third of phase 1's accuracy);
MAGVIT-v2's entropy terms in factorised form made it worse (5 codes by step 200: each latent's bits grew
confident faster than the batch's split). Training adds a balance term instead (`SignQuantizer`): the
signs of each token slot independent fair coins over the batch, so that every token says something about
its image. The model is a plain quantized ALIT (the official layout: `quantize_latents`,
`quantize.embedding.weight` holding the corners, normalised), so alit_core loads and runs it unchanged.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import torch
import torch.nn.functional as F

from alit_core.model.alit import ALIT, LatentQuantizer
from alit_core.model.config import ALITConfig

from .quantize_latents import over_codebook


def hypercube_corners(dim: int) -> torch.Tensor:
    """The 2^dim corners of [-1, 1]^dim scaled to unit length (2^dim, dim); row i's signs are i's bits."""
    signs = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=dim)))
    return signs / dim**0.5


def sign_latent_config(cfg: ALITConfig) -> ALITConfig:
    """cfg with its latents quantized to a codebook of the latent space's corners."""
    if cfg.latent_dim > 16:
        raise ValueError(f"a {cfg.latent_dim}-d latent has 2^{cfg.latent_dim} corners, too many to list as a codebook")
    return replace(cfg, quantize_latents=True, latent_codebook_size=2**cfg.latent_dim)


def sign_latent_model(cfg: ALITConfig) -> ALIT:
    """A fresh ALIT whose latent codebook is the hypercube's corners (frozen once `as_sign_latent` trains it)."""
    model = ALIT(sign_latent_config(cfg))
    with torch.no_grad():
        model.quantize.embedding.weight.copy_(hypercube_corners(cfg.latent_dim))
    return model


def as_sign_latent(model: ALIT, balance: float) -> SignQuantizer:
    """Prepare a sign-latent model for training: its codebook frozen, its quantiser a `SignQuantizer` with
    this balance weight. The weights may be loaded afterwards (`has_corner_codebook` checks them then)."""
    book = model.quantize.embedding.weight if model.cfg.quantize_latents else None
    if book is None or book.shape[0] != 2 ** book.shape[1]:
        raise ValueError("not a sign-latent model: its latent codebook is not the 2^d corners of its latent space")
    model.quantize.requires_grad_(False)
    return over_codebook(model, lambda size, dim, commitment: SignQuantizer(size, dim, commitment, balance))


def has_corner_codebook(model: ALIT) -> bool:
    """Whether a model's latent codebook is the corners of its latent space (up to float16 rounding)."""
    if not model.cfg.quantize_latents:
        return False
    book = model.quantize.book()
    return book.shape[0] == 2 ** book.shape[1] and torch.allclose(book, hypercube_corners(book.shape[1]), atol=1e-3)


class SignQuantizer(LatentQuantizer):
    """Training only: the corner quantiser whose loss adds `weight` x a balance term that asks each token
    slot's signs to be independent fair coins over the batch: its normalised latents' batch mean m (d,) near
    0 and their second moments M = mean(z z^T) (d, d) near I / d, i.e. ||m||^2 + ||M - I/d||^2, averaged over
    slots: 2 - 1/d when every image gets the same code, 1 - 1/d when a slot's signs flip together (one bit),
    0 for all 2^d codes equally often (independent fair coins in a batch of B score about 2/B, from
    sampling). A slot whose signs are the same for every image says nothing about any of them; the mean
    alone was not enough: the signs of a slot flipped together, one bit told 12 times (session 8). The same
    weights and state_dict keys as the plain quantiser.

    After each loss `balance` holds the term (unweighted) and `codes_per_slot` the number of distinct
    codes a slot takes over the batch (mean over slots; at most the batch size).
    """

    def __init__(self, size: int, dim: int, commitment: float = 0.25, weight: float = 1.0):  # weight 0: plain
        super().__init__(size, dim, commitment)
        self.weight = weight
        self.balance = torch.zeros(())
        self.codes_per_slot = torch.zeros(())

    def loss(self, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """z (B, N, d) this iteration's latents before normalisation, idx (B, N) their codes."""
        zn = F.normalize(z.float(), dim=-1)
        d = zn.shape[-1]
        mean = zn.mean(0)  # (N, d)
        moments = torch.einsum("bni,bnj->nij", zn, zn) / zn.shape[0]  # (N, d, d)
        balance = mean.pow(2).sum(-1) + (moments - torch.eye(d, device=zn.device) / d).pow(2).sum((-1, -2))
        self.balance = balance.mean().detach()
        ordered = idx.sort(0).values  # each slot's codes over the batch, sorted: a new code where they change
        self.codes_per_slot = (1.0 + (ordered[1:] != ordered[:-1]).sum(0).float()).mean()
        return super().loss(z, idx) + self.weight * balance.mean()
