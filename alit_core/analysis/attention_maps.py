"""Where each latent token looks: decoder attention from the 2D positions to the latents.

In the decoder sequence, index 0 is the class token, 1..P the mask tokens of the P grid
positions and P+1+k latent k. The map of latent k is rows 1..P, column P+1+k. (The official
notebook reads column P+k, one to the left: docs/method.md §5.)
"""

from __future__ import annotations

import torch
from einops import rearrange


def latent_attention_maps(attention: torch.Tensor, grid_size: int, class_token: bool = True) -> torch.Tensor:
    """Full decoder attention (..., L, L) -> per-latent maps (..., N, grid, grid), N = L - 1 - P.

    class_token=False: KARL's decoder, which has none (P positions, then latent k at P+k).
    """
    c = int(class_token)
    p = grid_size * grid_size
    n = attention.shape[-1] - c - p
    if n < 0 or attention.shape[-2] != attention.shape[-1]:
        raise ValueError(f"attention of shape {tuple(attention.shape)} is not a decoder map for a {grid_size}^2 grid")
    rows = attention[..., c : p + c, p + c :]  # (..., P, N)
    return rearrange(rows, "... (h w) n -> ... n h w", h=grid_size)
