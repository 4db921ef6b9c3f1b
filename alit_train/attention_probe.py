"""Object discovery during training: FG-ARI of the decoder-attention segmentation per iteration and layer.

Training logs it every few hundred steps (`train --probe-every`), so a run shows whether the
attention is moving from its spatial starting layout towards objects; evaluation uses the same
function to choose the iteration and layer the app shows by default.

Scenes are validation-split backgrounds with 2-4 pasted validation-split objects (exact masks),
fixed by the seed. Segments: each grid position goes to the latent it attends to most
(`alit_core.analysis.segmentation.attention_segments`); the baseline is a grid of as many equal cells.
"""

from __future__ import annotations

import numpy as np
import torch

from alit_core.analysis.segmentation import attention_segments, fg_ari, grid_segments
from alit_core.model.alit import ALIT
from alit_core.model.halting import Halting
from alit_core.running.rollout import rollout

from . import scenes


def probe_scenes(index, size: int, n: int, seed: int, split: str = "val") -> tuple[torch.Tensor, list[np.ndarray]]:
    """n scenes (images (n, 3, S, S) in [0, 1], instance masks) of `split`, fixed by the seed."""
    bank = index if isinstance(index, scenes.PhotoBank) else scenes.PhotoBank.from_index(index)
    rng = np.random.default_rng([seed, 17])
    made = [scenes.make_scene(bank, rng, size=size, k_objects=(2, 4), split=split) for _ in range(n)]
    images = torch.from_numpy(np.stack([s.image for s in made])).permute(0, 3, 1, 2).float() / 255.0
    return images, [s.masks for s in made]


@torch.no_grad()
def object_discovery(model: ALIT, images: torch.Tensor, masks: list[np.ndarray]) -> dict:
    """FG-ARI of the attention segments and of equal-cell grids, (iterations, layers) arrays of means.

    Deterministic halting, as the explorer runs the model.
    """
    cfg = model.cfg
    size, grid = cfg.resolution, cfg.grid_size
    ours = np.zeros((cfg.iterations, cfg.dec_depth))
    cells = np.zeros_like(ours)
    halting = Halting.for_model(cfg, "deterministic")
    was_training = model.training
    model.eval()
    try:
        for step in rollout(model, images, halting=halting, decode=False, attention_layers="all"):
            for layer, attention in step.attention.items():
                labels = attention_segments(attention.float(), grid, size=size).numpy()
                a, b = [], []
                for lab, m in zip(labels, masks):
                    a.append(fg_ari(m, lab))
                    b.append(fg_ari(m, grid_segments(len(np.unique(lab)), size)))
                ours[step.iteration, layer] = np.nanmean(a)
                cells[step.iteration, layer] = np.nanmean(b)
    finally:
        model.train(was_training)
    best = np.unravel_index(np.nanargmax(ours), ours.shape)
    return {"fg_ari": ours.round(4).tolist(), "grid_fg_ari": cells.round(4).tolist(),
            "best": {"iteration": int(best[0]), "layer": int(best[1]), "fg_ari": float(ours[best]),
                     "grid_fg_ari": float(cells[best])}}
