"""Which images hold the pooled rank correlation against PNG size down: the issue's pool (the 79 held-out
photos as uploaded, simple, text and texture images; evaluate's sets with --n 16), each set's token counts
and PNG / JPEG bits per pixel, and the pooled Spearman rho with each set left out in turn.

    PYTHONPATH=. python docs/model_report/v2_session20/probes/png_pool.py CHECKPOINT
"""
import sys

import numpy as np
import torch

from alit_core import load_tokenizer
from alit_core.analysis.complexity import complexity
from alit_core.analysis.statistics import spearman
from alit_train.evaluate import eval_sets, to_tensor

torch.set_num_threads(1)
tok = load_tokenizer(sys.argv[1], device="cpu")
sets = eval_sets("data/index.json", tok.config.resolution, 16)
pool = ("uploads_test", "simple", "ood_text", "ood_texture")
tokens, png, jpeg = {}, {}, {}
for name in pool:
    images = [im for im, _ in sets[name]]
    counts = []
    for i in range(0, len(images), 16):
        counts += list(tok.encode(to_tensor(images[i:i + 16])).num_tokens)
    tokens[name] = np.array(counts)
    cs = [complexity(im) for im in images]
    png[name] = np.array([c["png_bpp"] for c in cs])
    jpeg[name] = np.array([c["jpeg_bpp"] for c in cs])
    print(f"{name}: {len(images)} images, median tokens {np.median(tokens[name]):.0f}, median PNG bpp "
          f"{np.median(png[name]):.2f}, median JPEG bpp {np.median(jpeg[name]):.2f}", flush=True)
for left_out in (None, *pool):
    names = [n for n in pool if n != left_out]
    t = np.concatenate([tokens[n] for n in names])
    print(f"pool without {left_out}: rho vs PNG {spearman(t, np.concatenate([png[n] for n in names])):.3f}, "
          f"vs JPEG {spearman(t, np.concatenate([jpeg[n] for n in names])):.3f}")
