"""The tiny fake source tree the alit_train.data tests index (no downloads): images, licence texts, packages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from alit_train import data as D


def _photo_rgb(seed: int, w: int = 96, h: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 2.0, yy * 3.0, (xx + yy) * 1.0], -1) + rng.uniform(0, 120, 3)
    img = base + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _photo_stamp(seed: int, size: int = 64) -> Image.Image:
    """Smooth shading plus sensor-like noise inside a soft-edged disk: photo-like."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.hypot(xx - size / 2, yy - size / 2)
    shade = 200 - 1.5 * r
    rgb = np.stack([shade, shade * 0.7, shade * 0.4], -1) + rng.normal(0, 6, (size, size, 3))
    alpha = np.clip((size * 0.45 - r) * 128, 0, 255)
    arr = np.dstack([np.clip(rgb, 0, 255), alpha]).astype(np.uint8)
    return Image.fromarray(arr, "RGBA")


def _clipart_stamp(size: int = 64, colour=(250, 200, 0)) -> Image.Image:
    """Three flat colours (fill, outline, a patch) on transparency: a drawing."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.ellipse((4, 4, size - 5, size - 5), fill=colour + (255,), outline=(0, 0, 0, 255), width=3)
    d.rectangle((size // 3, size // 3, size // 2, size // 2), fill=(200, 30, 30, 255))
    return im


BACKGROUNDS = ("aqua", "blinds", "dune", "garden", "meadow", "storm", "wings", "wood")

DEP5_MATE = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2008 Someone
License: GPL-2+

Files: nature/aqua.jpg
Copyright: 2010 Somebody Else
 2011 And Another
License: CC0-1.0

Files: debian/*
Copyright: 2020 Packager
License: MIT

License: GPL-2+
 long text
 .
 more text
"""

FETCHERS = '''
def chelsea():
    """Chelsea the cat.

    Notes
    -----
    No copyright restrictions.  CC0 by the photographer (Stefan van der Walt).
    """
    return _load("data/chelsea.png")


def immunohistochemistry():
    """IHC.

    No known copyright restrictions.
    """
    return _load("data/ihc.png")
'''


def _write_source(base: Path, pkg: str, version: str) -> None:
    base.mkdir(parents=True, exist_ok=True)
    (base / D.SOURCE_FILE).write_text(json.dumps({"package": pkg, "version": version}))


def write_fake_sources(root: Path) -> Path:
    """Three packages as fetching leaves them (Debian backgrounds, Tux Paint stamps, scikit-image's data)
    under root, a folder named sources not made yet: index paths are relative to its parent."""
    # Debian backgrounds: 8 photos
    mate = root / "mate-backgrounds"
    _write_source(mate, "mate-backgrounds", "1.0-1")
    nature = mate / "usr/share/backgrounds/mate/nature"
    nature.mkdir(parents=True)
    for i, name in enumerate(BACKGROUNDS):
        _photo_rgb(i).save(nature / f"{name}.jpg", quality=90)
    doc = mate / "usr/share/doc/mate-backgrounds"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(DEP5_MATE)
    # stamps: photos (one with a mirror twin), drawings, and a PNG rendered from an SVG
    st = root / "tuxpaint-stamps-default"
    _write_source(st, "tuxpaint-stamps-default", "2022.06.04-1")
    things = st / "usr/share/tuxpaint/stamps/things"
    things.mkdir(parents=True)
    for i in range(6):
        _photo_stamp(100 + i).save(things / f"photo{chr(97 + i)}.png")
    _photo_stamp(100).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(things / "photoa_mirror.png")
    for i, c in enumerate([(250, 200, 0), (0, 120, 250), (40, 200, 40)]):
        _clipart_stamp(colour=c).save(things / f"drawing{chr(97 + i)}.png")
    _photo_stamp(200).save(things / "vector.png")
    (things / "vector.svg").write_text("<svg/>")
    Image.new("RGBA", (40, 40), (10, 20, 30, 255)).save(things / "opaque.png")
    sdoc = st / "usr/share/doc/tuxpaint-stamps-default"
    sdoc.mkdir(parents=True)
    (sdoc / "copyright").write_text("Files: *\nCopyright: 2002 Bill\nLicense: GPL-2\n")
    # scikit-image wheel contents: one CC0 photo, one with an unclear licence
    sk = root / "scikit-image"
    _write_source(sk, "scikit-image", "0.26.0")
    skd = sk / "skimage/data"
    skd.mkdir(parents=True)
    (skd / "_fetchers.py").write_text(FETCHERS)
    _photo_rgb(50).save(skd / "chelsea.png")
    _photo_rgb(51).save(skd / "ihc.png")
    return root
