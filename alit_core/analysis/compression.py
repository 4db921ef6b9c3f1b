"""Classic codecs at a given size, to set ALIT's token bits against."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from .complexity import as_uint8
from .metrics import psnr


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (H, W, 3), as `metrics.psnr` computes it."""
    as_batch = [torch.from_numpy(x)[None].float() / 255.0 for x in (a, b)]
    return float(psnr(*as_batch))


def codec_at_size(image, fmt: str, target_bytes: float) -> tuple[int, float]:
    """Encode with the quality setting (1..100, step 3) whose file is nearest `target_bytes`.

    fmt: "JPEG" or "WEBP". Returns (file bytes, PSNR in dB of the decoded file).
    """
    arr = as_uint8(image)
    best = None
    for q in range(1, 101, 3):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt, quality=q)
        n = buf.tell()
        if best is None or abs(n - target_bytes) < abs(best[0] - target_bytes):
            decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            best = (n, psnr_uint8(decoded, arr))
    return best
