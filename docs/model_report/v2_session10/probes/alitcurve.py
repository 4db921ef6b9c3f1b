"""An exported ALIT's mean L1 and PSNR per iteration on whole unseen photos, beside its base tokenizer alone.

    python -m alit_train.train export runs/va_pilot/last.pt /tmp/va.pt --dtype float32
    SPLIT=test PYTHONPATH=. python docs/model_report/v2_session10/probes/alitcurve.py /tmp/va.pt
"""
import os
import sys

import numpy as np
import torch

from alit_core import load_tokenizer
from alit_train.calibration import whole_photos

torch.set_num_threads(1)
tok = load_tokenizer(sys.argv[1], device="cpu")
split = os.environ.get("SPLIT", "test")
photos = torch.from_numpy(np.stack(whole_photos("data/index.json", split, tok.resolution))).permute(0, 3, 1, 2).float() / 255
l1, ps, base_l1, base_ps = [], [], [], []
with torch.inference_mode():
    for i in range(0, len(photos), 16):
        x = photos[i:i + 16]
        steps = list(tok.rollout(x, halting="off"))
        l1.append(torch.stack([s.l1 for s in steps]))
        ps.append(torch.stack([s.psnr for s in steps]))
        alone = tok.base_reconstruction(x)
        base_l1.append(alone.l1)
        base_ps.append(alone.psnr)
l1, ps = torch.cat(l1, 1), torch.cat(ps, 1)
print(f"{len(photos)} {split} photos; tokens: " + ", ".join(str(tok.config.tokens_at(t)) for t in range(len(l1))))
print("mean L1 per iteration:", ", ".join(f"{v:.4f}" for v in l1.mean(1).tolist()))
print("mean PSNR per iteration (dB):", ", ".join(f"{v:.2f}" for v in ps.mean(1).tolist()))
print(f"base tokenizer alone: L1 {torch.cat(base_l1).mean():.4f}, PSNR {torch.cat(base_ps).mean():.2f} dB")
