"""Training only: ALIT's regression loss on a VAE's latents, weighted by principal component.

Why: a plain MSE weighs each direction of the latent space by how much the latents vary along it. The
VAE behind explorer_128_vae (step 11,052) spreads its latents over 8 principal components holding 30% ...
5% of the variance each over the training pack, and its decoder needs all 8 (top 2 / 4 / 6 / 8
components: 18.30 / 20.63 / 21.39 / 22.51 dB on the test photos). Pilot B, trained on the plain MSE,
recovered 89% and 81% of components 1 and 2 but only 12-39% of components 3 and 5-8 (assets/MODEL_CARD.md,
session 12). Session 13 found that variance is not the whole story: components 2 and 3 vary about as much,
and the one that changes from cell to cell (3) is recovered about half as well. So this weighting is a
try at the part that variance explains, to be measured against a run without it.

`LatentWeighting` rotates the error into the principal basis of the code pack's latents and weighs
component i by var_i^-power (power 0: the plain MSE; 1: every component counts as much as the
largest). Variances are floored at `floor` times the largest, which caps every weight at floor^-power
times the largest component's, so the near-empty directions (variance near 0) cannot blow the loss up.
The weights are scaled so that an error shaped like the latents themselves costs what the plain MSE
charges: losses and learning rates stay comparable across powers.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


def principal_components(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """latents (..., C) -> (variances (C,), basis (C, C) whose column i is direction i), largest first."""
    flat = rearrange(latents.float(), "... c -> (...) c")
    centred = flat - flat.mean(0)
    variances, basis = torch.linalg.eigh(centred.T @ centred / len(centred))  # ascending
    return variances.flip(0).clamp_min(0), basis.flip(1)


class LatentWeighting(nn.Module):
    """MSE in the principal basis of a set of latents, component i weighted by its variance^-power."""

    def __init__(self, basis: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("basis", basis)  # (C, C): column i is principal direction i, largest first
        self.register_buffer("weights", weights)  # (C,)

    @classmethod
    def from_latents(cls, latents: torch.Tensor, power: float, floor: float = 0.1) -> LatentWeighting:
        """latents (..., C), e.g. a code pack's targets (N, P, C)."""
        variances, basis = principal_components(latents)
        weights = variances.clamp_min(floor * variances[0]) ** -power
        weights = weights * variances.sum() / (weights * variances).sum()
        return cls(basis, weights)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """prediction, target (B, P, C) -> the weighted mean squared error (a scalar)."""
        # the rotation is a matrix product, which autocast would run in 16 bits; the plain MSE it replaces is
        # computed in float32
        with torch.autocast(prediction.device.type, enabled=False):
            error = (prediction.float() - target.float()) @ self.basis
            return (error.square() * self.weights).mean()
