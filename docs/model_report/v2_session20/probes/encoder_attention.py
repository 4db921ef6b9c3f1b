"""Object discovery from the *encoder's* attention at the first iteration, beside the decoder's (the app's):
does the encoder, where the latents gather from the image tokens, group by object more than the decoder does?

    PYTHONPATH=. python docs/model_report/v2_session20/probes/encoder_attention.py ALIT_STATE [N_SCENES]

Encoder sequence at iteration 0: [class ; P image tokens ; N latents]. Two readouts per layer, heads averaged:
each image position goes to the latent that (a) it attends to most (image rows, latent columns), or (b)
attends to it most (latent rows, image columns: the latents' gathering maps). FG-ARI on validation scenes
(alit_train.attention_probe.probe_scenes), against a grid of as many cells and the decoder's best layer.
"""
import sys

import numpy as np
import torch
from einops import rearrange

from alit_core.analysis.segmentation import fg_ari, grid_segments
from alit_train.attention_probe import object_discovery, probe_scenes
from alit_train.training_state import initial_model

torch.set_num_threads(1)
model = initial_model(sys.argv[1]).eval()
n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
cfg = model.cfg
images, masks = probe_scenes("data/index.json", cfg.resolution, n, seed=0)
p, g, size = cfg.num_positions, cfg.grid_size, cfg.resolution


def score(assign: torch.Tensor) -> tuple[float, float]:
    """assign (B, P) latent per grid position -> mean FG-ARI, and a grid's with as many cells."""
    labels = rearrange(assign, "b (h w) -> b h w", h=g).float()[:, None]
    labels = torch.nn.functional.interpolate(labels, size=(size, size), mode="nearest")[:, 0].long().numpy()
    ours = [fg_ari(m, lab) for lab, m in zip(labels, masks)]
    grid = [fg_ari(m, grid_segments(len(np.unique(lab)), size)) for lab, m in zip(labels, masks)]
    return float(np.nanmean(ours)), float(np.nanmean(grid))


with torch.no_grad():
    tokens, _ = model.image_tokens(images)
    x = model.initial_sequence(tokens)
    _, maps = model.encoder(x, frozenset(range(cfg.depth)))
    for layer, w in sorted(maps.items()):
        w = w.float().mean(1)  # (B, L, L), heads averaged
        rows = w[:, 1:p + 1, p + 1:]  # image positions -> latents
        cols = w[:, p + 1:, 1:p + 1]  # latents -> image positions
        a, ga = score(rows.argmax(-1))
        b, gb = score(cols.argmax(1))
        print(f"encoder layer {layer}: positions' attention {a:.3f} (grid {ga:.3f}); latents' gathering {b:.3f} "
              f"(grid {gb:.3f})", flush=True)
    dec = object_discovery(model, images, masks)
    print("decoder, iteration 0, per layer:", dec["fg_ari"][0], "grid", dec["grid_fg_ari"][0])
