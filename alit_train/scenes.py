"""Deterministic synthetic scenes and evaluation images (numpy + PIL only).

Every function takes a seeded ``numpy.random.Generator`` and draws from it in a fixed order,
so the same seed always gives identical arrays. ``index`` arguments accept a ``PhotoBank``
(fastest: images are loaded once), a path to index.json, or a list of index entries (see
``alit_train.data``); banks built from paths or lists are cached.

* ``make_scene``   photo background crop + 0..4 pasted photographic cut-outs with exact
                   instance masks (training data and in-distribution scenes)
* ``photo_crop``   plain random crops of background photos (in-distribution evaluation)
* ``simple_image`` flat colour, gradients, a few flat shapes (low-complexity probes)
* ``ood_image``    uniform noise, rendered text, clip-art on flat colour (out of distribution)

``python -m alit_train.scenes preview --out DIR`` writes sample scenes (image | masks).
"""

from __future__ import annotations

import argparse
import functools
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from alit_train.data import DATA_ROOT, DEFAULT_INDEX, load_index

RESAMPLE = Image.Resampling.LANCZOS
SIMPLE_KINDS = ("flat", "gradient", "shapes")
OOD_KINDS = ("noise", "text", "clipart", "screenshot", "texture")


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


class PhotoBank:
    """The index's images, each loaded once and kept in memory.

    Backgrounds are downscaled so the shorter side is at most ``max_background_side``
    (letterbox bars are trimmed); stamps are cropped to their alpha bounding box and
    downscaled so the shorter side is at most ``max_stamp_side``. Stamps whose longer side
    is under ``min_stamp_side`` are not offered (they would be blown up).
    """

    def __init__(
        self,
        entries: Sequence[dict],
        root: str | Path | None = None,
        max_background_side: int = 512,
        max_stamp_side: int = 256,
        min_stamp_side: int = 32,
    ) -> None:
        self.entries = sorted(entries, key=lambda e: e["path"])
        self.root = Path(root) if root is not None else DATA_ROOT
        self.max_background_side = max_background_side
        self.max_stamp_side = max_stamp_side
        self.min_stamp_side = min_stamp_side
        self._images: dict[str, Image.Image] = {}
        self._select: dict[tuple[str, str | None], list[dict]] = {}

    @classmethod
    def from_index(cls, path: str | Path = DEFAULT_INDEX, **kwargs) -> PhotoBank:
        return cls(load_index(path), **kwargs)

    def __len__(self) -> int:
        return len(self.entries)

    def _file(self, entry: dict) -> Path:
        if entry.get("abs_path"):
            return Path(entry["abs_path"])
        return self.root / entry["path"]

    def select(self, role: str, split: str | None = None) -> list[dict]:
        """Entries of a role ('background', 'object', 'clipart'), optionally of one split."""
        key = (role, split)
        if key not in self._select:
            out = [e for e in self.entries if e["role"] == role and (split is None or e["split"] == split)]
            if role != "background":
                out = [e for e in out if max(e["width"], e["height"]) >= self.min_stamp_side]
            self._select[key] = out
        return self._select[key]

    def image(self, entry: dict) -> Image.Image:
        """The cached, downscaled PIL image of an entry (RGB background / RGBA stamp)."""
        key = entry["path"]
        im = self._images.get(key)
        if im is None:
            if entry["role"] == "background":
                im = _load_background(self._file(entry), self.max_background_side)
            else:
                im = _load_stamp(self._file(entry), self.max_stamp_side)
            self._images[key] = im
        return im


IndexLike = PhotoBank | str | Path | Sequence[dict]


@functools.lru_cache(maxsize=4)
def _bank_for_path(path: str) -> PhotoBank:
    return PhotoBank.from_index(path)


_LIST_BANKS: dict[tuple, PhotoBank] = {}


def _as_bank(index: IndexLike) -> PhotoBank:
    if isinstance(index, PhotoBank):
        return index
    if isinstance(index, (str, Path)):
        return _bank_for_path(str(Path(index).resolve()))
    key = tuple((e.get("abs_path") or e["path"], e["role"], e["split"]) for e in index)
    bank = _LIST_BANKS.get(key)
    if bank is None:
        if len(_LIST_BANKS) >= 4:
            _LIST_BANKS.pop(next(iter(_LIST_BANKS)))
        bank = _LIST_BANKS[key] = PhotoBank(index)
    return bank


def _dark_run(profile: np.ndarray) -> int:
    """Length of a black letterbox bar at the start of a row/column brightness profile."""
    n = 0
    while n < len(profile) and profile[n] <= 8:
        n += 1
    if n < 4:
        return 0
    extra = 0
    while n < len(profile) and profile[n] <= 40 and extra < 4:  # JPEG-blurred edge
        n += 1
        extra += 1
    return min(n, len(profile) // 5)


def _load_background(path: Path, max_side: int) -> Image.Image:
    with Image.open(path) as im:
        w, h = im.size
        scale = max_side / min(w, h)
        if scale < 1 and im.format == "JPEG":
            im.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))
        im = im.convert("RGB")
    w, h = im.size
    if min(w, h) > max_side:
        s = max_side / min(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), RESAMPLE)
    a = np.asarray(im).max(-1)
    rows, cols = np.percentile(a, 99, axis=1), np.percentile(a, 99, axis=0)
    top, bottom = _dark_run(rows), _dark_run(rows[::-1])
    left, right = _dark_run(cols), _dark_run(cols[::-1])
    if top or bottom or left or right:
        im = im.crop((left, top, im.width - right, im.height - bottom))
    return im


def _load_stamp(path: Path, max_side: int) -> Image.Image:
    with Image.open(path) as im:
        im = im.convert("RGBA")
    bbox = im.getchannel("A").getbbox()
    if bbox is not None:
        im = im.crop(bbox)
    w, h = im.size
    if min(w, h) > max_side:
        s = max_side / min(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), RESAMPLE)
    return im


def _pick(rng: np.random.Generator, items: Sequence[dict], what: str) -> dict:
    if not items:
        raise ValueError(f"the index has no {what}")
    return items[int(rng.integers(len(items)))]


def _background_crop(bank: PhotoBank, rng: np.random.Generator, size: int, split: str | None) -> tuple[np.ndarray, str]:
    entry = _pick(rng, bank.select("background", split), f"background photos (split {split})")
    im = bank.image(entry)
    w, h = im.size
    c = max(1, round(rng.uniform(0.3, 1.0) * min(w, h)))
    x = int(rng.integers(0, w - c + 1))
    y = int(rng.integers(0, h - c + 1))
    flip = bool(rng.random() < 0.5)
    crop = im.resize((size, size), RESAMPLE, box=(x, y, x + c, y + c))
    if flip:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8), entry["path"]


def _paste(
    canvas: np.ndarray,
    masks: np.ndarray,
    rng: np.random.Generator,
    bank: PhotoBank,
    entries: list[dict],
    k: int,
    scale: tuple[float, float],
    min_visible: float,
    tries: int = 10,
) -> tuple[list[str], list[tuple[int, int, int, int]]]:
    """Paste k random stamps onto canvas (float32 HxWx3, in place), ids into masks."""
    size_h, size_w = masks.shape
    names: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    areas: list[int] = []
    for _ in range(k):
        entry = _pick(rng, entries, "stamps")
        stamp = bank.image(entry)
        longer = rng.uniform(scale[0], scale[1]) * min(size_h, size_w)
        flip = bool(rng.random() < 0.5)
        f = longer / max(stamp.size)
        nw = int(min(size_w, max(1, round(stamp.width * f))))
        nh = int(min(size_h, max(1, round(stamp.height * f))))
        im = stamp.resize((nw, nh), RESAMPLE)
        if flip:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = np.asarray(im)
        alpha = arr[..., 3]
        inside = alpha > 127
        if not inside.any():
            continue
        oid = len(names) + 1
        x = y = 0
        for _attempt in range(tries):
            x = int(rng.integers(0, size_w - nw + 1))
            y = int(rng.integers(0, size_h - nh + 1))
            hidden = np.bincount(masks[y : y + nh, x : x + nw][inside], minlength=oid)
            visible = np.bincount(masks.ravel(), minlength=oid)
            if all(visible[j] - hidden[j] >= min_visible * areas[j - 1] for j in range(1, oid)):
                break
        a = (alpha.astype(np.float32) / 255.0)[..., None]
        region = canvas[y : y + nh, x : x + nw]
        region *= 1.0 - a
        region += arr[..., :3].astype(np.float32) * a
        masks[y : y + nh, x : x + nw][inside] = oid
        names.append(entry["path"])
        boxes.append((x, y, x + nw, y + nh))
        areas.append(int(inside.sum()))
    return names, boxes


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
    bank = _as_bank(index)
    image, bg = _background_crop(bank, rng, size, split)
    k = _num_objects(rng, k_objects)
    canvas = image.astype(np.float32)
    masks = np.zeros((size, size), np.int16)
    names: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    if k > 0:
        entries = bank.select("object", split)
        names, boxes = _paste(canvas, masks, rng, bank, entries, k, object_scale, min_visible)
    out = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return Scene(image=out, masks=masks, num_objects=len(names), background=bg, objects=names, boxes=boxes)


def photo_crop(index: IndexLike, rng: np.random.Generator, size: int = 128, split: str = "val") -> np.ndarray:
    """A plain random crop of a background photo (same crop law as ``make_scene``)."""
    return _background_crop(_as_bank(index), rng, size, split)[0]


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _luma(c: Sequence[int]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _contrasting(rng: np.random.Generator, bg: Sequence[int], min_diff: float = 60.0):
    c = _random_colour(rng)
    for _ in range(20):
        if abs(_luma(c) - _luma(bg)) >= min_diff:
            break
        c = _random_colour(rng)
    return c


def simple_image(rng: np.random.Generator, size: int = 128, kind: str = "flat") -> np.ndarray:
    """Low-complexity images: 'flat' colour, 'gradient' (linear or radial, two colours),
    'shapes' (1..3 flat-coloured rectangles / ellipses / triangles on a flat background)."""
    if kind == "flat":
        return np.broadcast_to(np.array(_random_colour(rng), np.uint8), (size, size, 3)).copy()
    if kind == "gradient":
        c0 = rng.integers(0, 256, 3).astype(np.float32)
        c1 = rng.integers(0, 256, 3).astype(np.float32)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
        if rng.random() < 0.5:
            theta = rng.uniform(0, 2 * np.pi)
            t = (xx - 0.5) * np.cos(theta) + (yy - 0.5) * np.sin(theta)
        else:
            cx, cy = rng.uniform(0, 1, 2)
            t = np.hypot(xx - cx, yy - cy)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if kind == "shapes":
        bg = _random_colour(rng)
        im = Image.new("RGB", (size, size), bg)
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4))):
            colour = _contrasting(rng, bg, 30.0)
            shape = ("rectangle", "ellipse", "triangle")[int(rng.integers(3))]
            w, h = (rng.uniform(0.15, 0.6, 2) * size).astype(int) + 1
            x0 = int(rng.integers(0, size - w + 1))
            y0 = int(rng.integers(0, size - h + 1))
            box = (x0, y0, x0 + int(w) - 1, y0 + int(h) - 1)
            if shape == "rectangle":
                draw.rectangle(box, fill=colour)
            elif shape == "ellipse":
                draw.ellipse(box, fill=colour)
            else:
                pts = [(int(x0 + rng.uniform(0, w)), y0), (x0, y0 + int(h) - 1), (x0 + int(w) - 1, y0 + int(h) - 1)]
                draw.polygon(pts, fill=colour)
        return np.asarray(im, dtype=np.uint8).copy()
    raise ValueError(f"unknown simple kind {kind!r}; expected one of {SIMPLE_KINDS}")


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: only the fixed bitmap font
        return ImageFont.load_default()


def _text_image(rng: np.random.Generator, size: int) -> np.ndarray:
    bg = _random_colour(rng)
    im = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(im)
    alphabet = string.ascii_letters + string.digits
    fs = int(rng.integers(max(8, size // 14), max(9, size // 5) + 1))
    font = _font(fs)
    y = float(rng.integers(0, max(1, fs // 2)))
    while y < size - fs * 0.5:
        colour = _contrasting(rng, bg)
        words = []
        for _ in range(int(rng.integers(2, 8))):
            n = int(rng.integers(1, 9))
            words.append("".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), n)))
        x = int(rng.integers(0, max(1, size // 8)))
        draw.text((x, y), " ".join(words), fill=colour, font=font)
        y += fs * float(rng.uniform(1.1, 1.6))
    return np.asarray(im, dtype=np.uint8).copy()


def _screenshot_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A made-up application window: title bar, side bar, lines of small text, buttons, a table."""
    light = tuple(int(v) for v in rng.integers(225, 256, 3))
    im = Image.new("RGB", (size, size), light)
    draw = ImageDraw.Draw(im)
    ink = tuple(int(v) for v in rng.integers(0, 70, 3))
    accent = _random_colour(rng)
    fs = int(rng.integers(max(7, size // 18), max(8, size // 11) + 1))
    font = _font(fs)
    alphabet = string.ascii_letters + string.digits

    def words(n):
        return " ".join("".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), int(rng.integers(2, 8))))
                        for _ in range(n))

    bar = fs + 4
    draw.rectangle((0, 0, size, bar), fill=accent)
    draw.text((4, 2), words(2), fill=_contrasting(rng, accent), font=font)
    side = int(size * rng.uniform(0.2, 0.35))
    draw.rectangle((0, bar, side, size), fill=tuple(max(0, c - 25) for c in light))
    y = bar + 3
    while y < size - fs:
        draw.text((3, y), words(1), fill=ink, font=font)
        y += fs + 3
    y = bar + 4
    while y < size - 2 * fs:
        if rng.random() < 0.25:  # a row of buttons
            x = side + 4
            for _ in range(int(rng.integers(1, 4))):
                w = int(rng.integers(3, 6)) * fs
                if x + fs >= size - 2:  # no room for another button
                    break
                draw.rectangle((x, y, min(size - 2, x + w), y + fs + 4), fill=accent, outline=ink)
                draw.text((x + 3, y + 2), words(1)[:4], fill=_contrasting(rng, accent), font=font)
                x += w + 6
            y += fs + 10
        elif rng.random() < 0.2:  # a table with grid lines
            rows = int(rng.integers(2, 5))
            for r in range(rows + 1):
                draw.line((side + 4, y + r * (fs + 3), size - 4, y + r * (fs + 3)), fill=ink)
            for c in np.linspace(side + 4, size - 4, int(rng.integers(2, 5))):
                draw.line((int(c), y, int(c), y + rows * (fs + 3)), fill=ink)
            for r in range(rows):
                draw.text((side + 6, y + r * (fs + 3) + 1), words(2), fill=ink, font=font)
            y += rows * (fs + 3) + 6
        else:
            draw.text((side + 4, y), words(int(rng.integers(2, 7))), fill=ink, font=font)
            y += fs + 3
    return np.asarray(im, dtype=np.uint8).copy()


def _texture_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """Fine periodic patterns: a few oriented gratings of 2-8 pixel periods in two colours, plus
    a little noise; dense detail everywhere, unlike photos' smooth regions."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    field = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(2.5, 8.0)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
        field += np.sign(wave) if rng.random() < 0.5 else wave
    field = (field - field.min()) / max(float(field.max() - field.min()), 1e-6)
    c0 = np.array(_random_colour(rng), np.float32)
    c1 = np.array(_contrasting(rng, c0), np.float32)
    img = c0 * (1 - field[..., None]) + c1 * field[..., None] + rng.normal(0, 6, (size, size, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def ood_image(
    rng: np.random.Generator,
    size: int = 128,
    kind: str = "noise",
    index: IndexLike | None = None,
    split: str | None = None,
) -> np.ndarray:
    """Out-of-distribution images: 'noise' (uniform RGB), 'text' (lines of random words in
    PIL's default font, random colours, flat background), 'clipart' (1..3 clip-art stamps
    of the index, optionally of one split, on a flat colour; needs ``index``), 'screenshot'
    (a made-up application window) and 'texture' (fine periodic patterns)."""
    if kind == "noise":
        return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    if kind == "text":
        return _text_image(rng, size)
    if kind == "screenshot":
        return _screenshot_image(rng, size)
    if kind == "texture":
        return _texture_image(rng, size)
    if kind == "clipart":
        if index is None:
            raise ValueError("ood_image(kind='clipart') needs index=")
        bank = _as_bank(index)
        canvas = np.empty((size, size, 3), np.float32)
        canvas[:] = np.array(_random_colour(rng), np.float32)
        masks = np.zeros((size, size), np.int16)
        k = int(rng.integers(1, 4))
        _paste(canvas, masks, rng, bank, bank.select("clipart", split), k, (0.3, 0.7), 0.25)
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    raise ValueError(f"unknown ood kind {kind!r}; expected one of {OOD_KINDS}")


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
