"""Image complexity measures, to set token counts against.

Compression size is the classic proxy (Spearman 0.5-0.8 against human ratings, docs/method.md §8); the
others look at intensity statistics and edges. Every function takes an RGB image as a uint8
array (H, W, 3), a PIL image, or a float tensor (3, H, W) in [0, 1], and measures it as given
(no resizing), so compare images of the same size.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import torch
from PIL import Image

MEASURES = ("png_bpp", "jpeg_bpp", "entropy", "edge_density", "high_freq_energy")


def as_uint8(image) -> np.ndarray:
    """RGB uint8 (H, W, 3) from a PIL image, a uint8 array or a float tensor/array in [0, 1]."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        t = image.detach().float().cpu()
        if t.dim() == 3 and t.shape[0] == 3:
            t = t.permute(1, 2, 0)
        image = t.numpy()
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {arr.shape}")
    return arr


def _bits_per_pixel(arr: np.ndarray, fmt: str, **save) -> float:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **save)
    return 8 * buf.tell() / (arr.shape[0] * arr.shape[1])


def png_bpp(image) -> float:
    """Lossless PNG size (maximum compression), in bits per pixel."""
    return _bits_per_pixel(as_uint8(image), "PNG", optimize=True)


def jpeg_bpp(image, quality: int = 90) -> float:
    """JPEG size at a fixed quality, in bits per pixel."""
    return _bits_per_pixel(as_uint8(image), "JPEG", quality=quality)


def entropy(image) -> float:
    """Shannon entropy (bits) of the 8-bit grey-level histogram."""
    grey = cv2.cvtColor(as_uint8(image), cv2.COLOR_RGB2GRAY)
    p = np.bincount(grey.ravel(), minlength=256) / grey.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def edge_density(image, low: int = 100, high: int = 200) -> float:
    """Fraction of pixels on Canny edges."""
    grey = cv2.cvtColor(as_uint8(image), cv2.COLOR_RGB2GRAY)
    return float((cv2.Canny(grey, low, high) > 0).mean())


def high_freq_energy(image, cutoff: float = 0.25) -> float:
    """Share of the grey image's spectral energy (DC excluded) above `cutoff` x Nyquist."""
    grey = cv2.cvtColor(as_uint8(image), cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    spec = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    h, w = grey.shape
    fy, fx = np.meshgrid(np.linspace(-1, 1, h, endpoint=False), np.linspace(-1, 1, w, endpoint=False), indexing="ij")
    total = spec.sum()
    return float(spec[np.hypot(fy, fx) > cutoff].sum() / total) if total > 0 else 0.0


def complexity(image) -> dict[str, float]:
    """All measures of one image."""
    arr = as_uint8(image)
    return {name: float(globals()[name](arr)) for name in MEASURES}
