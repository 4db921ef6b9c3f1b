import numpy as np
from alit_core import spearman
from alit_train.calibration import calibrate, selected_tokens
import sys
d = np.load(sys.argv[1])
for j, name in ((0, "to input"), (1, "to VQGAN recon")):
    found = calibrate(d[f"calib_{j}"], 32)
    print(name, found)
    for s in ("test", "samples"):
        t, fb = selected_tokens(d[f"{s}_{j}"], found["threshold"], 32)
        print(f"  {s}: median {np.median(t)}, fallback {fb.mean():.3f}, rho png {spearman(t, d[s+'_png']):.2f} jpeg {spearman(t, d[s+'_jpeg']):.2f}")
        if s == "samples": print("   ", t.tolist())
    for thr in (0.008, 0.01, 0.012, 0.015, 0.02, 0.03):
        if j == 0: break
        t, fb = selected_tokens(d[f"test_{j}"], thr, 32)
        ts, _ = selected_tokens(d[f"samples_{j}"], thr, 32)
        pool_t = np.concatenate([t, ts]); pool_p = np.concatenate([d["test_png"], d["samples_png"]])
        print(f"  thr {thr}: test median {np.median(t)} fb {fb.mean():.2f} hist {np.bincount(t//32, minlength=9)[1:].tolist()} rho png {spearman(t, d['test_png']):.2f} jpeg {spearman(t, d['test_jpeg']):.2f} samples {ts.tolist()}")
