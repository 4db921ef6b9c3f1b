"""A model: L1 to the input vs L1 to its VQGAN's own reconstruction, per iteration, on whole photos and the samples.
    PYTHONPATH=. python baseprobe.py CHECKPOINT OUT.npz"""
import sys, numpy as np, torch
torch.set_num_threads(1)
from PIL import Image
from pathlib import Path
from alit_core import Tokenizer
from alit_core.analysis.complexity import png_bpp, jpeg_bpp
from alit_core.files.image_io import square_crop_resize
from alit_train.training_state import initial_model
from alit_train.calibration import whole_photos
m = initial_model(sys.argv[1], "ema").eval(); tok = Tokenizer(m, "cpu"); R = m.cfg.resolution
def curves(images):
    a, b = [], []
    for i in range(0, len(images), 16):
        x = torch.from_numpy(np.stack(images[i:i+16])).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            base, _ = m.vqgan(x)
            steps = list(tok.rollout(x))
        a.append(torch.stack([s.l1 for s in steps]).float())
        b.append(torch.stack([(s.recon.float() - base.float()).abs().mean((1, 2, 3)) for s in steps]))
    return torch.cat(a, 1).numpy(), torch.cat(b, 1).numpy()
sets = {"calib": whole_photos("data/index.json", "calib", R), "test": whole_photos("data/index.json", "test", R)}
samples = sorted(Path("assets/samples").glob("*.png"))
sets["samples"] = [np.asarray(square_crop_resize(Image.open(p).convert("RGB"), R)) for p in samples]
out = {k: curves(v) for k, v in sets.items()}
import os; os.makedirs(os.path.dirname(sys.argv[2]) or ".", exist_ok=True)
np.savez(sys.argv[2], **{f"{k}_{j}": out[k][j] for k in out for j in (0, 1)},
         **{f"{k}_png": np.array([png_bpp(i) for i in v]) for k, v in sets.items()},
         **{f"{k}_jpeg": np.array([jpeg_bpp(i) for i in v]) for k, v in sets.items()})
for k in out:
    print(k, "L1 to input", np.round(out[k][0].mean(1), 4), "L1 to VQGAN recon", np.round(out[k][1].mean(1), 4))
print([p.name for p in samples])
