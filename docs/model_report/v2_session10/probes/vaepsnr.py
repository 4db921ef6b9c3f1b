"""KL VAE PSNR on whole unseen photos (posterior mean, decoded), of a vae-stage checkpoint's EMA and weights.

    SPLIT=test PYTHONPATH=. python docs/model_report/v2_session10/probes/vaepsnr.py runs/vae128/last.pt
"""
import os
import sys

import numpy as np
import torch

from alit_core.analysis.metrics import psnr
from alit_core.model.config import ALITConfig
from alit_core.model.vae import KLVAE
from alit_train.calibration import whole_photos

torch.set_num_threads(1)
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
cfg = ALITConfig.from_dict(ck["model_config"])
split = os.environ.get("SPLIT", "test")
photos = torch.from_numpy(np.stack(whole_photos("data/index.json", split, cfg.resolution))).permute(0, 3, 1, 2).float() / 255
for weights in ("ema", "model"):
    state = {**ck["model"], **ck["ema"]} if weights == "ema" and ck.get("compact") else ck[weights]
    vae = KLVAE(cfg.vae)
    vae.load_state_dict({k: v.float() for k, v in state.items()})
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.latents(photos[i:i + 16], "mean")[0] for i in range(0, len(photos), 16)])
        recon = torch.cat([vae.decode(latents[i:i + 16]) for i in range(0, len(photos), 16)]).clamp(0, 1)
    print(f"step {int(ck['step'])} {weights}: PSNR on {len(photos)} {split} photos {psnr(recon, photos).mean():.3f} dB; "
          f"latent RMS {latents.pow(2).mean().sqrt():.3f}, per-channel std {latents.std((0, 2, 3)).mean():.3f}")
