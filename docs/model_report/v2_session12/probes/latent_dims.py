"""How much a VAE's latents hold per cell, on whole unseen photos: of compact VAE states (vae stage, EMA weights),
the latents' RMS, the share of their variance that 2x2 and 4x4 block means keep (spatial redundancy), the
correlation of horizontal neighbours, and the share of the 16 channels' variance in the top 4 and 8 principal
components (the dimensions a regression of the latents has to get right).

    git show c673d92:assets/training_state/explorer_128_vae.pt > /tmp/vae1800.pt   # the step-1,800 state
    git show c4d9159:assets/training_state/explorer_128_vae.pt > /tmp/vae11052.pt  # committed until session 13
    PYTHONPATH=. python docs/model_report/v2_session12/probes/latent_dims.py /tmp/vae1800.pt /tmp/vae11052.pt
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from alit_core.model.config import ALITConfig
from alit_core.model.vae import KLVAE
from alit_train.calibration import whole_photos
from alit_train.latent_weighting import principal_components

torch.set_num_threads(1)


def kept_by_blocks(z: torch.Tensor, k: int) -> float:
    """The share of z's variance (z centred) that its means over k x k blocks of cells keep."""
    blocks = F.interpolate(F.avg_pool2d(z, k), scale_factor=k, mode="nearest")
    return float(1 - (z - blocks).pow(2).mean() / z.pow(2).mean())


photos = None
for path in sys.argv[1:]:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    cfg = ALITConfig.from_dict(ck["model_config"])
    if photos is None:
        photos = whole_photos("data/index.json", "test", cfg.resolution)
        photos = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float() / 255
    state = {**ck["model"], **ck["ema"]} if ck.get("compact") else ck["ema"]
    vae = KLVAE(cfg.vae)
    vae.load_state_dict({k: v.float() for k, v in state.items()})
    vae.eval()
    with torch.no_grad():
        lat = torch.cat([vae.latents(photos[i:i + 16], "mean")[0] for i in range(0, len(photos), 16)])
    z = lat - lat.mean((0, 2, 3), keepdim=True)  # (N, C, g, g), centred per channel
    neighbours = float((z[..., 1:] * z[..., :-1]).mean() / z.pow(2).mean())
    cells = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    pca, _ = principal_components(cells)
    print(f"step {int(ck['step'])}: {len(photos)} test photos; latent RMS {lat.pow(2).mean().sqrt():.3f}; "
          f"variance kept by 2x2 block means {kept_by_blocks(z, 2):.3f}, 4x4 {kept_by_blocks(z, 4):.3f}; "
          f"neighbour correlation {neighbours:.3f}; channel variance in the top 4 / 8 principal components "
          f"{pca[:4].sum() / pca.sum():.3f} / {pca[:8].sum() / pca.sum():.3f}")
