"""An independent check of the selection threshold on photos no split holds: the 23 colour photographs among
OpenCV's documentation images and palapeli's puzzles (reserved for independent evaluation; never trained or
calibrated on). Chosen by eye from a contact sheet of every image of at least 200 px in
opencv-doc's examples/data and palapeli-data's collection; grey photos, renders, drawings, paintings,
charts, text and duplicates left out.

    mkdir -p /tmp/reserved && cd /tmp/reserved && apt-get download opencv-doc palapeli-data
    for d in *.deb; do dpkg-deb -x "$d" x; done
    cd - && PYTHONPATH=. python docs/model_report/v2_session19/probes/reserved_photos.py /tmp/reserved/x \
        bundled:default bundled:v2-preview reports/v2s19/line3307.pt@0.07287

A model given as CHECKPOINT@THRESHOLD is scored at that threshold instead of its own.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from alit_core import load_tokenizer
from alit_core.files.image_io import square_crop_resize
from alit_train.calibration import l1_curves, selected_tokens

OPENCV = ("aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "building.jpg", "butterfly.jpg", "chicky_512.png",
          "ela_original.jpg", "fruits.jpg", "graf1.png", "home.jpg", "leuvenA.jpg", "licenseplate_motion.jpg",
          "messi5.jpg", "orange.jpg", "rubberwhale1.png", "squirrel_cls.jpg", "stuff.jpg")
PALAPELI = ("castle-maintenon.jpg", "cincinnati-bridge.jpg", "citrus-fruits.jpg", "european-honey-bee.jpg",
            "panther-chameleon-female.jpg")

root = Path(sys.argv[1])
files = ([root / "usr/share/doc/opencv-doc/examples/data" / f for f in OPENCV]
         + [root / "usr/share/palapeli/collection" / f for f in PALAPELI])
torch.set_num_threads(1)
for spec in sys.argv[2:]:
    checkpoint, *given = spec.split("@")
    tok = load_tokenizer(checkpoint, device="cpu")
    photos = []
    for f in files:
        with Image.open(f) as im:
            photos.append(np.asarray(square_crop_resize(im.convert("RGB"), tok.resolution), dtype=np.uint8))
    curves = l1_curves(tok, photos)
    threshold = float(given[0]) if given else tok.default_threshold
    tokens, fallback = selected_tokens(curves, threshold, tok.config.latents_per_iteration)
    print(f"{checkpoint} at L1 < {threshold}: median {np.median(tokens):.0f} tokens, {fallback.sum()}/{len(files)} "
          f"fall back ({fallback.mean():.1%}); counts {sorted(tokens.tolist())}")
