"""Deterministic synthetic scenes: photo backgrounds with pasted cut-outs and exact instance masks.

Every function takes a seeded ``numpy.random.Generator`` and draws from it in a fixed order,
so the same seed always gives identical arrays. ``index`` arguments accept what
``alit_train.photo_bank`` takes (a ``PhotoBank``, a path to index.json, or index entries).

* ``make_scene``   photo background crop + 0..4 pasted photographic cut-outs with exact
                   instance masks (training data and in-distribution scenes)
* ``photo_crop``   plain random crops of background photos (in-distribution evaluation)
* ``whole_photo``  a background photo's whole shorter side, as a user uploads it

The simple and out-of-distribution evaluation images are in ``alit_train.synthetic``.
``python -m alit_train.scenes preview --out DIR`` writes sample scenes (image | masks).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from alit_train.data import DEFAULT_INDEX

from .photo_bank import IndexLike, PhotoBank, as_bank, background_crop, paste_stamps
from .synthetic import OOD_KINDS, SIMPLE_KINDS, ood_image, simple_image

__all__ = ["IndexLike", "PhotoBank", "Scene", "make_scene", "mask_overlay", "photo_crop", "whole_photo"]


@dataclass
class Scene:
    """A composed scene. ``masks`` holds instance ids: 0 background, 1..K in paste order
    (later pastes occlude earlier ones). ``boxes[i]`` is (x0, y0, x1, y1) of object i+1's
    pasted stamp; ``objects[i]`` and ``background`` are index paths."""

    image: np.ndarray  # uint8 (H, W, 3)
    masks: np.ndarray  # int16 (H, W)
    num_objects: int
    background: str = ""
    objects: list[str] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


def _num_objects(rng: np.random.Generator, k_objects: int | tuple[int, int]) -> int:
    if isinstance(k_objects, (int, np.integer)):
        return int(k_objects)
    lo, hi = k_objects
    return int(rng.integers(lo, hi + 1))


def make_scene(
    index: IndexLike,
    rng: np.random.Generator,
    size: int = 128,
    k_objects: int | tuple[int, int] = (0, 4),
    split: str = "train",
    object_scale: tuple[float, float] = (0.25, 0.6),
    min_visible: float = 0.25,
) -> Scene:
    """A background crop of a photo of ``split`` with photographic cut-outs pasted on it.

    Background: square crop, side uniform in 0.3..1 of the photo's shorter side, random
    position and horizontal flip, resized to size x size. Objects: K uniform in
    ``k_objects`` (inclusive; an int fixes K) stamps of role 'object' of the same split,
    longer side uniform in ``object_scale`` x size, random flip, placed fully inside the
    scene, composited with their real alpha; alpha > 127 marks the object's mask pixels.
    A placement that would leave an earlier object under ``min_visible`` of its pixels is
    redrawn (up to 10 times; the last draw stands). Deterministic given ``rng``.
    """
    bank = as_bank(index)
    image, bg = background_crop(bank, rng, size, split)
    k = _num_objects(rng, k_objects)
    canvas = image.astype(np.float32)
    masks = np.zeros((size, size), np.int16)
    names: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    if k > 0:
        entries = bank.select("object", split)
        names, boxes = paste_stamps(canvas, masks, rng, bank, entries, k, object_scale, min_visible)
    out = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return Scene(image=out, masks=masks, num_objects=len(names), background=bg, objects=names, boxes=boxes)


def photo_crop(index: IndexLike, rng: np.random.Generator, size: int = 128, split: str = "val") -> np.ndarray:
    """A plain random crop of a background photo (same crop law as ``make_scene``)."""
    return background_crop(as_bank(index), rng, size, split)[0]


def whole_photo(index: IndexLike, rng: np.random.Generator, size: int = 128, split: str = "val") -> np.ndarray:
    """A background photo as a user uploads it: a square of its whole shorter side (at a random offset along
    the longer), resized. Plain crops (`photo_crop`) show on average two thirds of that side, so they carry
    less detail per pixel than the whole photos the app and the calibration see."""
    return background_crop(as_bank(index), rng, size, split, scale=(1.0, 1.0))[0]


# --------------------------------------------------------------------------- preview


def mask_overlay(scene: Scene) -> np.ndarray:
    """The scene with each instance tinted a distinct colour (for eyeballing masks)."""
    palette = np.array(
        [
            [0, 0, 0],
            [230, 25, 75],
            [60, 180, 75],
            [255, 225, 25],
            [0, 130, 200],
            [245, 130, 48],
            [145, 30, 180],
            [70, 240, 240],
        ],
        np.float32,
    )
    img = scene.image.astype(np.float32)
    m = scene.masks.astype(np.int64)
    colour = palette[np.where(m > 0, (m - 1) % (len(palette) - 1) + 1, 0)]
    out = np.where((m > 0)[..., None], 0.45 * img + 0.55 * colour, 0.35 * img)
    # instance boundaries in white
    edge = np.zeros(m.shape, bool)
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    out[edge] = 255
    return np.clip(out, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alit_train.scenes")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("preview", help="write sample scenes as PNG (image | masks)")
    p.add_argument("--index", default=str(DEFAULT_INDEX))
    p.add_argument("--out", default="/tmp/scenes_preview")
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--split", default="train")
    p.add_argument("--zoom", type=int, default=2)
    p.add_argument("--extras", action="store_true", help="also write simple/ood/photo samples")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bank = PhotoBank.from_index(args.index)
    z = args.zoom
    for i in range(args.n):
        rng = np.random.default_rng([args.seed, i])
        s = make_scene(bank, rng, size=args.size, split=args.split)
        pair = np.concatenate([s.image, mask_overlay(s)], axis=1)
        im = Image.fromarray(pair).resize((pair.shape[1] * z, pair.shape[0] * z), Image.Resampling.NEAREST)
        im.save(out / f"scene_{i:02d}.png")
        print(f"scene_{i:02d}.png: {s.num_objects} objects on {s.background}")
        for name, box in zip(s.objects, s.boxes):
            print(f"    {box} {name}")
    if args.extras:
        tiles = []
        rng = np.random.default_rng(args.seed)
        for kind in SIMPLE_KINDS:
            tiles.append(simple_image(rng, args.size, kind))
        for kind in OOD_KINDS:
            tiles.append(ood_image(rng, args.size, kind, index=bank))
        tiles.append(photo_crop(bank, rng, args.size, "val"))
        row = np.concatenate(tiles, axis=1)
        Image.fromarray(row).save(out / "extras.png")
        print("extras.png: " + ", ".join([*SIMPLE_KINDS, *OOD_KINDS, "photo_crop"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
