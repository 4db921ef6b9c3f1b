"""Synthetic evaluation images (numpy + PIL only): low-complexity probes and out-of-distribution kinds.

* ``simple_image`` flat colour, gradients, a few flat shapes (low-complexity probes)
* ``ood_image``    uniform noise, rendered text, clip-art on flat colour, screenshots, textures

Every function takes a seeded ``numpy.random.Generator`` and draws from it in a fixed order,
so the same seed always gives identical arrays.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .photo_bank import IndexLike, as_bank, paste_stamps

SIMPLE_KINDS = ("flat", "gradient", "shapes")
OOD_KINDS = ("noise", "text", "clipart", "screenshot", "texture")


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
        bank = as_bank(index)
        canvas = np.empty((size, size, 3), np.float32)
        canvas[:] = np.array(_random_colour(rng), np.float32)
        masks = np.zeros((size, size), np.int16)
        k = int(rng.integers(1, 4))
        paste_stamps(canvas, masks, rng, bank, bank.select("clipart", split), k, (0.3, 0.7), 0.25)
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    raise ValueError(f"unknown ood kind {kind!r}; expected one of {OOD_KINDS}")
