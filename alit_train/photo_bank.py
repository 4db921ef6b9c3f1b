"""The photos and cut-outs of the data index, loaded once, and the two ways scenes use them:
background crops (`background_crop`) and photographic cut-outs pasted with their alpha (`paste_stamps`).

``index`` arguments accept a ``PhotoBank`` (fastest: images are loaded once), a path to
index.json, or a list of index entries (see ``alit_train.data``); banks built from paths or lists
are cached. Every function draws from a seeded ``numpy.random.Generator`` in a fixed order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from alit_train.data import DATA_ROOT, DEFAULT_INDEX, load_index

RESAMPLE = Image.Resampling.LANCZOS


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


def as_bank(index: IndexLike) -> PhotoBank:
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


def background_crop(bank: PhotoBank, rng: np.random.Generator, size: int, split: str | None,
                    scale: tuple[float, float] = (0.3, 1.0)) -> tuple[np.ndarray, str]:
    """A random square crop of a background photo, its side uniform in `scale` of the photo's shorter side,
    resized to size x size, flipped half the time; and the photo's path."""
    entry = _pick(rng, bank.select("background", split), f"background photos (split {split})")
    im = bank.image(entry)
    w, h = im.size
    c = max(1, round(rng.uniform(*scale) * min(w, h)))
    x = int(rng.integers(0, w - c + 1))
    y = int(rng.integers(0, h - c + 1))
    flip = bool(rng.random() < 0.5)
    crop = im.resize((size, size), RESAMPLE, box=(x, y, x + c, y + c))
    if flip:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8), entry["path"]


def paste_stamps(
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
