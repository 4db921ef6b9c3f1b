"""Which tuxpaint stamps are photographs ('object') and which are clip art.


Photo vs clip-art stamps (``stamp_role``): inside the stamp's fully opaque interior
(alpha == 255, eroded by 2 px) we measure

    clean  fraction of pixels whose discrete Laplacian is within +-2 in every channel:
           flat fills and smooth vector gradients are (nearly) exactly linear, while
           photographs carry sensor noise and texture almost everywhere;
    flat   fraction of horizontally adjacent opaque pixel pairs with identical colour;
    top16  fraction of opaque pixels covered by the 16 most frequent colours.

A stamp is a photograph ('object') when it has at least 200 interior pixels, clean < 0.30,
top16 < 0.35 and flat < 0.30 (the flat test is skipped for palette images, whose
quantisation makes photos look flat), and no SVG drawing of the same name ships next to
it; otherwise it is 'clipart'. Stamps without any transparency are skipped. The rule was
calibrated by eye on contact sheets of the 796 tuxpaint stamps; it errs on a few noisy
bitmap drawings (they come out as 'object') and a few very smooth photos (gravestones,
"""

from __future__ import annotations

import numpy as np
from PIL import Image

ROLES = ("background", "object", "clipart")


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        o = out.copy()
        o[1:] &= out[:-1]
        o[:-1] &= out[1:]
        o[:, 1:] &= out[:, :-1]
        o[:, :-1] &= out[:, 1:]
        o[0] = o[-1] = False
        o[:, 0] = o[:, -1] = False
        out = o
    return out


def stamp_stats(rgba: np.ndarray) -> dict[str, float]:
    """The numbers behind ``stamp_role`` for an RGBA uint8 array (see the module doc)."""
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError("stamp_stats needs an HxWx4 RGBA array")
    alpha = a[..., 3]
    rgb = a[..., :3].astype(np.int32)
    opaque = alpha > 127
    n = int(opaque.sum())
    if n == 0:
        return {"interior": 0, "clean": 1.0, "flat": 1.0, "top16": 1.0}
    codes = (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])[opaque]
    counts = np.sort(np.unique(codes, return_counts=True)[1])[::-1]
    top16 = float(counts[:16].sum() / n)
    pair = opaque[:, 1:] & opaque[:, :-1]
    same = (rgb[:, 1:] == rgb[:, :-1]).all(-1)[pair]
    flat = float(same.mean()) if same.size else 1.0
    interior = _erode(alpha == 255, 2)
    lap = np.zeros(rgb.shape, np.int32)
    lap[1:-1, 1:-1] = 4 * rgb[1:-1, 1:-1] - rgb[:-2, 1:-1] - rgb[2:, 1:-1] - rgb[1:-1, :-2] - rgb[1:-1, 2:]
    ni = int(interior.sum())
    clean = float((np.abs(lap).max(-1)[interior] <= 2).mean()) if ni else 1.0
    return {"interior": ni, "clean": round(clean, 4), "flat": round(flat, 4), "top16": round(top16, 4)}


def stamp_role(image: Image.Image | np.ndarray, has_svg: bool = False) -> str:
    """'object' for a photographic cut-out, 'clipart' for a drawing (module doc: heuristic)."""
    if isinstance(image, Image.Image):
        palette = image.mode == "P"
        rgba = np.asarray(image.convert("RGBA"))
    else:
        palette = False
        rgba = np.asarray(image)
    return role_from_stats(stamp_stats(rgba), palette, has_svg)


def role_from_stats(s: dict[str, float], palette: bool, has_svg: bool) -> str:
    photo = (
        not has_svg
        and s["interior"] >= 200
        and s["clean"] < 0.30
        and s["top16"] < 0.35
        and (palette or s["flat"] < 0.30)
    )
    return "object" if photo else "clipart"
