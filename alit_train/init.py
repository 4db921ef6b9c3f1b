"""A spatial initialisation for ALIT training: tokens start out local instead of uniform.

Why: with the default random initialisation every decoder position attends almost uniformly to
every latent, so all positions read the same average and the model first has to break that
symmetry; on a CPU budget training stalls there (about 12 dB for hundreds of steps). Here every
2D position and every latent gets a 2D sine-cosine embedding of a place on the grid, and the
query and key projections start out equal, so a position initially attends to the latents
anchored near it. Latents are anchored in a coarse-to-fine order: the 32 of iteration 0 spread
over the whole grid, later iterations fill in between, which is the refinement the recurrence
should learn. Only starting values change; the architecture and the parameters are the official
ones and all of them stay trainable.
"""

from __future__ import annotations

import math

import torch

from alit_core.model.alit import ALIT


def sincos_2d(yx: torch.Tensor, width: int) -> torch.Tensor:
    """(n, 2) coordinates in [0, 1] -> (n, width) sine-cosine features with unit RMS."""
    quarter = width // 4
    freqs = torch.exp(torch.linspace(0, math.log(32), quarter)) * math.pi
    parts = []
    for axis in (0, 1):
        angle = yx[:, axis : axis + 1] * freqs
        parts += [torch.sin(angle), torch.cos(angle)]
    out = torch.cat(parts, dim=1)
    out = torch.nn.functional.pad(out, (0, width - out.shape[1]))
    return out * math.sqrt(2.0)


def coarse_to_fine(grid: int, count: int) -> torch.Tensor:
    """`count` grid cells as (n, 2) coordinates in [0, 1], each prefix spread over the grid.

    Greedy farthest-point order from the centre: every new anchor is the cell farthest from all
    earlier ones.
    """
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    cells = torch.stack([ys.flatten(), xs.flatten()], 1).float()
    order = [int(((cells - (grid - 1) / 2) ** 2).sum(1).argmin())]
    dist = ((cells - cells[order[0]]) ** 2).sum(1)
    while len(order) < count:
        nxt = int(dist.argmax())
        order.append(nxt)
        dist = torch.minimum(dist, ((cells - cells[nxt]) ** 2).sum(1))
    return cells[order] / max(1, grid - 1)


@torch.no_grad()
def spatial_init(model: ALIT, scale: float = 1.0, embed_gain: float = 0.3) -> ALIT:
    cfg = model.cfg
    g, n, t = cfg.grid_size, cfg.latents_per_iteration, cfg.iterations
    ys, xs = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    grid = torch.stack([ys.flatten(), xs.flatten()], 1).float() / max(1, g - 1)
    anchors = coarse_to_fine(g, min(n * t, g * g))
    if len(anchors) < n * t:  # more latents than cells: wrap around
        anchors = anchors.repeat(math.ceil(n * t / len(anchors)), 1)[: n * t]

    def emb(yx, width):
        # unit-RMS features scaled to norm `scale` per token (the random init has norm ~1)
        return sincos_2d(yx, width) * scale * width**-0.5

    w, dw = cfg.width, cfg.dec_width
    model.encoder_positional_embedding[1:] = emb(grid, w)
    lat = emb(anchors, w).view(t, n, w)
    model.latent_token_positional_embedding.copy_(lat[0])
    model.timestep_embedding.copy_(lat - lat[0:1])
    model.decoder_positional_embedding[1:] = emb(grid, dw)
    model.decoder.latent_token_positional_embedding[: n * t] = emb(anchors, dw)
    model.decoder.decoder_embed.weight.mul_(embed_gain)
    for transformer in (model.encoder, model.decoder):
        for block in transformer.transformer:
            width = block.attn.in_proj_weight.shape[1]
            q = block.attn.in_proj_weight[:width]
            q.copy_(torch.eye(width) + 0.02 * torch.randn(width, width))
            block.attn.in_proj_weight[width : 2 * width] = q
    return model


# The spatial layout spatial_init writes: where each latent is anchored, in the encoder (its positional and
# per-iteration embeddings) and in the decoder (the keys 2D positions find it by). The latents' own learned
# tokens are left, so the latents stay distinct without it.
LAYOUT = ("latent_token_positional_embedding", "timestep_embedding", "decoder.latent_token_positional_embedding")


@torch.no_grad()
def decay_layout(model: ALIT, rate: float) -> None:
    """Shrink the layout by a factor (1 - rate), once per training step: the anchors fade unless the loss keeps
    them, so that the attention may group positions by content (issue 13, "annealing the spatial starting layout
    away"); the optimiser still moves these parameters as it moves every other."""
    for name in LAYOUT:
        model.get_parameter(name).mul_(1.0 - rate)
