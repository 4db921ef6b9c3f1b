"""Does an ALIT on a VAE regress its training images' latents better than new ones, and at which iterations?

Of an exported ALIT on a VAE, the latent MSE and the pixel PSNR at every iteration on four sets of images:
images of the training pack (what every step draws from), new images of the same stream (a seed the pack
never used: new crops of the same training photos, new synthetic scenes), new crops of the training photos
alone, and the whole `test` photos (as alitcurve.py scores them). A gap between the first two that grows with
the iteration means the later iterations fit the pack's images rather than images like them.

    python -m alit_train.train export assets/training_state/explorer_128_vae.pt /tmp/x.pt --dtype float32
    PYTHONPATH=. python docs/model_report/v2_session14/probes/generalisation.py /tmp/x.pt runs/vaepack11k.pt
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from alit_core import load_tokenizer
from alit_core.analysis.metrics import psnr
from alit_train.calibration import whole_photos
from alit_train.code_pack import CodePack
from alit_train.streams import SceneStream

N = 96
torch.set_num_threads(1)
tok = load_tokenizer(sys.argv[1], device="cpu")
pack = CodePack.load(sys.argv[2])
photos = torch.from_numpy(np.stack(whole_photos("data/index.json", "test", tok.resolution)))
sets = {
    "training pack": pack.images[:N].float() / 255,
    "same stream, new draws": SceneStream("data/index.json", tok.resolution, pack.meta["mix"], seed=424242,
                                          rank=0).batch(0, N),
    "training photos, new crops": SceneStream("data/index.json", tok.resolution, {"photo": 1.0}, seed=424242,
                                              rank=0).batch(0, N),
    "test photos (whole)": rearrange(photos, "n h w c -> n c h w").float() / 255,
}
print(f"{sys.argv[1]}: latent MSE per iteration, then PSNR (dB) per iteration; {N} images a set "
      f"({len(photos)} test photos)")
with torch.inference_mode():
    for name, images in sets.items():
        mse = np.zeros(tok.config.iterations)
        psnr_sum = np.zeros(tok.config.iterations)
        for b in images.split(16):
            for step in tok.rollout(b, halting="off", decode=False):
                t = step.iteration
                mse[t] += F.mse_loss(step.code, step.targets, reduction="sum").item() / step.code[0].numel()
                psnr_sum[t] += psnr(tok.model.pixels(step.code), b).sum().item()
        n = len(images)
        print(f"{name:28s} MSE " + " ".join(f"{m / n:.3f}" for m in mse) + " | PSNR "
              + " ".join(f"{p / n:.2f}" for p in psnr_sum))
