"""Training only: the decoder reads a random subset of the latents, so that a latent has to speak for more than
the patch of grid it started out anchored over (issue 13: "few latents force grouping").

Why: the attention segmentation has stayed a jigsaw near the grid's score since step 1,100 of the VAE line
(FG-ARI 0.24-0.25 against 0.196 for equal cells; assets/MODEL_CARD.md, sessions 16-17), and shrinking the
latents' spatial anchors did not move it (`--layout-decay`, a fork in session 17). With every latent present
a position can read its content from the latent anchored nearest to it. With some of them missing it has to
read a latent anchored elsewhere, and the one that serves it best is one that describes the same thing (the
same object or surface), which is the grouping object discovery scores. Each latent's input to the decoder
(the quantized latent before `decoder_embed`) is zeroed with probability p, per image and per iteration,
at least one kept; the decoder then sees only its bias and position for it. Inference reads every latent:
the architecture and the weights are the plain model's.
"""

from __future__ import annotations

import torch
from torch import nn

from alit_core.model.alit import ALIT


class LatentDropout:
    """A forward pre-hook on the decoder's latent embedding that zeroes a random share `p` of the latents in
    training mode."""

    def __init__(self, model: ALIT, p: float):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"latent dropout is a probability below 1, not {p}")
        self.p = p
        self.handle = model.decoder.decoder_embed.register_forward_pre_hook(self)

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor]) -> tuple[torch.Tensor] | None:
        if not (module.training and self.p):
            return None  # the input unchanged
        zq = inputs[0]  # (B, N, d)
        keep = torch.rand(zq.shape[:2], device=zq.device) >= self.p  # (B, N)
        # at least one latent per image: a random one where the draw dropped them all
        none = ~keep.any(1)
        if none.any():
            keep[none, torch.randint(zq.shape[1], (int(none.sum()),), device=zq.device)] = True
        return (zq * keep[..., None].to(zq.dtype),)
