"""The VAE's and the ALIT's PSNR on whole held-out photos with the VAE decoder of another run (session 20's
decoder-only vae runs): the same ALIT and VAE encoder, only the decoder swapped.

    PYTHONPATH=. python docs/model_report/v2_session20/probes/decoder_psnr.py ALIT_STATE [DECODER_RUN ...]

For each decoder (the ALIT state's own when none is given): the VAE's PSNR (posterior mean, decoded) and ALIT's at 32,
64, 128 and 256 tokens, mean over the photos of SPLIT (default calib; test for the reported figures).
"""
import os
import sys

import numpy as np
import torch

from alit_core import Tokenizer
from alit_core.analysis.metrics import psnr
from alit_train.calibration import whole_photos
from alit_train.code_pack import base_state
from alit_train.training_state import initial_model

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
split = os.environ.get("SPLIT", "calib")
model = initial_model(sys.argv[1]).eval()
photos = torch.from_numpy(np.stack(whole_photos("data/index.json", split, model.cfg.resolution)))
photos = photos.permute(0, 3, 1, 2).float() / 255
for source in sys.argv[2:] or sys.argv[1:2]:
    state = base_state(source, "vae")
    model.vae.decoder.load_state_dict({k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")})
    tok = Tokenizer(model, "cpu")
    with torch.no_grad():
        base, alit = [], {1: [], 2: [], 4: [], 8: []}
        for i in range(0, len(photos), 16):
            x = photos[i:i + 16]
            latents = model.vae.latents(x, "mean")[0]
            base.append(psnr(model.vae.decode(latents).clamp(0, 1), x))
            for step in tok.rollout(x):
                if step.iteration + 1 in alit:
                    alit[step.iteration + 1].append(step.psnr)
    base = float(torch.cat(base).mean())
    cells = ", ".join(f"{32 * k}: {float(torch.cat(v).mean()):.2f}" for k, v in alit.items())
    print(f"{source}: {len(photos)} {split} photos, VAE {base:.2f} dB; ALIT {cells} dB", flush=True)
