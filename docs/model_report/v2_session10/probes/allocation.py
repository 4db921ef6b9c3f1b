"""Allocation of an exported ALIT: threshold calibrated on the `calib` photos (calibration.calibrate), then on the
`test` photos the median count, the share falling back, the share whose base tokenizer alone misses the threshold,
Spearman rho of tokens against PNG / JPEG bits per pixel, and the counts of the app's ten samples.

    PYTHONPATH=. python docs/model_report/v2_session10/probes/allocation.py CHECKPOINT
"""
import sys
from pathlib import Path

import numpy as np
import torch

from alit_core import load_image, load_tokenizer
from alit_core.analysis.complexity import complexity
from alit_core.analysis.statistics import spearman
from alit_train.calibration import calibrate, l1_curves, selected_tokens, whole_photos

torch.set_num_threads(1)
tok = load_tokenizer(sys.argv[1], device="cpu")
n = tok.config.latents_per_iteration
calib = whole_photos("data/index.json", "calib", tok.resolution)
test = whole_photos("data/index.json", "test", tok.resolution)
cal = calibrate(l1_curves(tok, calib), n)
thr = cal["threshold"]
curves = l1_curves(tok, test)
tokens, fallback = selected_tokens(curves, thr, n)
x = torch.from_numpy(np.stack(test)).permute(0, 3, 1, 2).float() / 255
with torch.inference_mode():
    alone = torch.cat([tok.base_reconstruction(x[i:i + 16]).l1 for i in range(0, len(x), 16)]).numpy()
png = np.array([complexity(im)["png_bpp"] for im in test])
jpeg = np.array([complexity(im)["jpeg_bpp"] for im in test])
samples = sorted(Path("assets/samples").glob("*.png"))
sx = torch.stack([load_image(p, size=tok.resolution) for p in samples])
with torch.inference_mode():
    scurves = torch.stack([s.l1 for s in tok.rollout(sx)]).numpy()
stokens, _ = selected_tokens(scurves, thr, n)
print(f"threshold {thr} (calib: {cal['images']} photos, median {cal['median_tokens']:.0f}, "
      f"{cal['fallback']:.1%} falling back)")
print(f"test: {len(test)} photos, median {np.median(tokens):.0f} tokens, {fallback.mean():.1%} falling back, "
      f"base alone above the threshold {np.mean(alone >= thr):.1%}; counts "
      + ", ".join(f"{c}: {int((tokens == c).sum())}" for c in range(n, n * curves.shape[0] + 1, n)))
print(f"rho tokens vs PNG / JPEG bpp on the test photos: {spearman(tokens, png):.2f} / {spearman(tokens, jpeg):.2f}")
print("samples: " + ", ".join(f"{p.stem}: {t}" for p, t in zip(samples, stokens)))
