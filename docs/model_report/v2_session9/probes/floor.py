import sys, numpy as np, torch
torch.set_num_threads(1)

from alit_train.calibration import whole_photos, l1_curves
from alit_train.training_state import initial_model
from alit_core import Tokenizer
path = sys.argv[1]; thr = float(sys.argv[2])
m = initial_model(path, "ema").eval(); tok = Tokenizer(m, "cpu"); R = m.cfg.resolution
for split in ("calib", "test"):
    ims = whole_photos("data/index.json", split, R)
    x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float() / 255
    floor = torch.cat([tok.base_reconstruction(x[i:i+16]).l1 for i in range(0, len(x), 16)]).numpy()
    curves = l1_curves(tok, ims)
    fb = curves.min(0) >= thr
    blocked = floor >= thr
    print(f"{path} {split} thr {thr}: {len(ims)} photos, fall back {fb.mean():.3f}; VQGAN alone above the threshold {blocked.mean():.3f}; "
          f"of those falling back, floor-blocked {(fb & blocked).sum()}/{fb.sum()}; median floor {np.median(floor):.4f}, ALIT best median {np.median(curves.min(0)):.4f}")
