"""Training only: ALIT's regression loss on a VAE's latents, weighted by principal component.

Why: a plain MSE weighs each direction of the latent space by how much the latents vary along it. The
VAE behind explorer_128_vae (step 11,052) spreads its latents over 8 principal components holding 30% ...
5% of the variance each, and its decoder needs all 8 (top 2 / 4 / 6 / 8 components: 18.30 / 20.63 /
21.39 / 22.51 dB on the test photos). Pilot B, trained on the plain MSE, recovered 89% and 81% of
components 1 and 2 but only 12-39% of components 3 and 5-8 (assets/MODEL_CARD.md, session 12): the
loss it minimises hardly asks for the small ones.

`LatentWeighting` rotates the error into the principal basis of the code pack's latents and weighs
component i by var_i^-power (power 0: the plain MSE; 1: every component counts as much as the
largest), with variances floored at `floor` times the largest (the near-empty components stay cheap).
The weights are scaled so that an error shaped like the latents themselves costs what the plain MSE
charges: losses and learning rates stay comparable across powers.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class LatentWeighting(nn.Module):
    """MSE in the principal basis of a set of latents, component i weighted by its variance^-power."""

    def __init__(self, basis: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("basis", basis)  # (C, C): column i is principal direction i, largest first
        self.register_buffer("weights", weights)  # (C,)

    @classmethod
    def from_latents(cls, latents: torch.Tensor, power: float, floor: float = 0.1) -> LatentWeighting:
        """latents (..., C), e.g. a code pack's targets (N, P, C)."""
        flat = rearrange(latents.float(), "... c -> (...) c")
        centred = flat - flat.mean(0)
        variance, basis = torch.linalg.eigh(centred.T @ centred / len(centred))  # ascending
        variance, basis = variance.flip(0).clamp_min(0), basis.flip(1)
        weights = variance.clamp_min(floor * variance[0]) ** -power
        weights = weights * variance.sum() / (weights * variance).sum()
        return cls(basis, weights)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """prediction, target (B, P, C) -> the weighted mean squared error (a scalar)."""
        error = (prediction.float() - target.float()) @ self.basis
        return (error.square() * self.weights).mean()
