"""Which directions of a VAE's latents matter for pixels, and which an ALIT on it gets right, on whole unseen photos.

Of an exported ALIT on a VAE: the principal components of the VAE's latents over the 16 channels (posterior
mean, `test` photos); the VAE's PSNR when its decoder gets only the top k components; the ALIT's squared error
of its regressed latents along each component at iterations 0, 2 and 7, beside each component's variance.

    python -m alit_train.train export runs/vb_pilot/last.pt /tmp/b.pt --dtype float32
    PYTHONPATH=. python docs/model_report/v2_session12/probes/latent_error_by_component.py /tmp/b.pt
"""
import sys

import numpy as np
import torch

from alit_core import load_tokenizer
from alit_core.analysis.metrics import psnr
from alit_train.calibration import whole_photos
from alit_train.latent_weighting import principal_components

torch.set_num_threads(1)
tok = load_tokenizer(sys.argv[1], device="cpu")
vae = tok.model.vae
photos = torch.from_numpy(np.stack(whole_photos("data/index.json", "test", tok.resolution))).permute(0, 3, 1, 2)
photos = photos.float() / 255
batches = range(0, len(photos), 16)
with torch.inference_mode():
    lat = torch.cat([vae.latents(photos[i:i + 16], "mean")[0] for i in batches])  # (N, C, g, g)
    mean = lat.mean((0, 2, 3), keepdim=True)
    cells = (lat - mean).permute(0, 2, 3, 1).reshape(-1, lat.shape[1])
    variances, axes = principal_components(cells)
    for k in (2, 4, 6, 8, lat.shape[1]):
        kept = (cells @ axes[:, :k] @ axes[:, :k].T).reshape(lat.shape[0], *lat.shape[2:], -1).permute(0, 3, 1, 2)
        recon = torch.cat([vae.decode((kept + mean)[i:i + 16]) for i in batches]).clamp(0, 1)
        print(f"the VAE's decoder on the top {k} components: PSNR {psnr(recon, photos).mean():.2f} dB")
    errors = {t: [] for t in (0, 2, 7)}
    for i in batches:
        steps = list(tok.rollout(photos[i:i + 16], halting="off", decode=False))
        for t in errors:
            miss = (steps[t].code - steps[t].targets).reshape(-1, lat.shape[1])  # (B P, C)
            errors[t].append((miss @ axes).pow(2).sum(0))
    print("variance of the top 8 components: " + ", ".join(f"{v:.3f}" for v in variances[:8]))
    for t, parts in errors.items():
        err = torch.stack(parts).sum(0) / len(cells)
        print(f"ALIT iteration {t} ({tok.config.tokens_at(t)} tokens): squared error along them: "
              + ", ".join(f"{v:.3f}" for v in err[:8]))
