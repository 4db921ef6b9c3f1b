"""VQGAN PSNR (through the codebook) on whole unseen photos, of a vqgan-stage checkpoint's EMA and weights."""
import sys, numpy as np, torch
torch.set_num_threads(1)
from alit_core.model.vqgan import VQGAN
from alit_core.model.config import ALITConfig
from alit_core.analysis.metrics import psnr
from alit_train.calibration import whole_photos
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
cfg = ALITConfig.from_dict(ck["model_config"])
import os; test = torch.from_numpy(np.stack(whole_photos("data/index.json", os.environ.get("SPLIT", "test"), 128))).permute(0, 3, 1, 2).float() / 255
for w in ("ema", "model"):
    vq = VQGAN(cfg.vqgan); vq.load_state_dict({k: v.float() for k, v in ck[w].items()}); vq.eval()
    with torch.no_grad():
        out = [vq(test[i:i+16]) for i in range(0, len(test), 16)]
    rec = torch.cat([o[0] for o in out]).clamp(0, 1); idx = torch.cat([o[1] for o in out])
    print(f"step {int(ck['step'])} {w}: PSNR on {len(test)} unseen photos {psnr(rec, test).mean():.3f} dB; codes used {len(idx.unique())}")
