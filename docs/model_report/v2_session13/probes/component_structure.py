"""What each principal component of a VAE's latents looks like in space, and how much of it an ALIT gets, on
whole unseen photos.

Of an exported ALIT on a VAE, over the VAE's latents (posterior mean) of the `test` photos, for each of the
top 8 principal components of the 16 channels: its variance; the correlation of horizontal and vertical
neighbour cells (about 0 for detail that changes from one 8-pixel cell to the next); the share of its
variance that 4 x 4 block means keep; and the share of its variance the ALIT recovers (1 - squared error /
variance) at iterations 0, 2 and 7.

    python -m alit_train.train export runs/vb_pilot/last.pt /tmp/b.pt --dtype float32
    PYTHONPATH=. python docs/model_report/v2_session13/probes/component_structure.py /tmp/b.pt
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from alit_core import load_tokenizer
from alit_train.calibration import whole_photos
from alit_train.latent_weighting import principal_components

torch.set_num_threads(1)
tok = load_tokenizer(sys.argv[1], device="cpu")
photos = torch.from_numpy(np.stack(whole_photos("data/index.json", "test", tok.resolution)))
photos = rearrange(photos, "n h w c -> n c h w").float() / 255
batches = [photos[i:i + 16] for i in range(0, len(photos), 16)]
ITERATIONS = (0, 2, tok.config.iterations - 1)
with torch.inference_mode():
    lat = torch.cat([tok.model.vae.latents(b, "mean")[0] for b in batches])  # (N, C, g, g)
    cells = rearrange(lat - lat.mean((0, 2, 3), keepdim=True), "n c h w -> (n h w) c")
    variances, axes = principal_components(cells)
    pcs = rearrange(cells @ axes, "(n h w) c -> n c h w", n=lat.shape[0], h=lat.shape[2])
    sq_error = {t: torch.zeros(lat.shape[1]) for t in ITERATIONS}
    for b in batches:
        steps = list(tok.rollout(b, halting="off", decode=False))
        for t in ITERATIONS:
            miss = rearrange(steps[t].code - steps[t].targets, "b p c -> (b p) c")
            sq_error[t] += (miss @ axes).pow(2).sum(0)
print(f"{len(photos)} test photos; top 8 of {lat.shape[1]} components hold "
      f"{variances[:8].sum() / variances.sum():.1%} of the variance")
print("component | variance | neighbour correlation | kept by 4x4 block means | recovered at iterations "
      + ", ".join(str(t) for t in ITERATIONS))
for i in range(8):
    p = pcs[:, i]
    neighbours = float(((p[..., 1:] * p[..., :-1]).mean() + (p[:, 1:] * p[:, :-1]).mean()) / 2 / p.pow(2).mean())
    blocks = F.interpolate(F.avg_pool2d(p[:, None], 4), scale_factor=4, mode="nearest")[:, 0]
    kept = float(1 - (p - blocks).pow(2).mean() / p.pow(2).mean())
    recovered = [float(1 - sq_error[t][i] / len(cells) / variances[i]) for t in ITERATIONS]
    print(f"{i + 1} | {variances[i]:.3f} | {neighbours:.2f} | {kept:.2f} | " + ", ".join(f"{r:.0%}" for r in recovered))
