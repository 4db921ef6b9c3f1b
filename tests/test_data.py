"""Tests for alit_train.data: index fields, licences, the split by source photo, the
photo / clip-art heuristic and fetch idempotency, on a tiny fake source tree (no downloads)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, features

from alit_train import data as D
from alit_train.data import sources as S

REPO = Path(__file__).resolve().parents[1]
REAL_INDEX = REPO / "data" / "index.json"


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


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    data_root = tmp_path_factory.mktemp("data")
    root = data_root / "sources"
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


@pytest.fixture(scope="module")
def fake_index(fake_root) -> list[dict]:
    return D.build_index(fake_root)


def _by_name(entries: list[dict]) -> dict[str, dict]:
    return {Path(e["path"]).name: e for e in entries}


def test_index_fields(fake_root, fake_index):
    names = _by_name(fake_index)
    assert "opaque.png" not in names  # no transparency: not a cut-out
    assert "ihc.png" not in names  # licence not clearly free
    assert len(fake_index) == 8 + 7 + 3 + 1 + 1
    for e in fake_index:
        for k in D.REQUIRED_KEYS:
            assert k in e, k
        assert e["role"] in D.ROLES and e["split"] in D.SPLITS
        f = fake_root.parent / e["path"]  # relative to the data root (parent of sources/)
        assert f.is_file()
        assert D.sha256_file(f) == e["sha256"]
        with Image.open(f) as im:
            assert im.size == (e["width"], e["height"])
    assert names["dune.jpg"]["version"] == "1.0-1"
    assert names["dune.jpg"]["role"] == "background"
    assert names["chelsea.png"]["role"] == "background"


def test_licences(fake_index):
    names = _by_name(fake_index)
    assert names["aqua.jpg"]["licence"] == "CC0-1.0"  # per-file stanza wins over Files: *
    assert "Somebody Else" in names["aqua.jpg"]["copyright"]
    assert names["blinds.jpg"]["licence"] == "GPL-2+"
    assert names["photoa.png"]["licence"] == "GPL-2"
    assert names["chelsea.png"]["licence"] == "CC0-1.0"
    assert "Stefan van der Walt" in names["chelsea.png"]["licence_note"]


def test_licence_text_classification():
    assert D.classify_licence_text("released into the public domain") == ("public-domain", True)
    assert D.classify_licence_text("No known copyright restrictions.")[1] is False
    assert D.classify_licence_text("nothing said") == ("unknown", False)
    table = D.sklearn_licences(
        "Image: china.jpg\nReleased under [1]\n[1] https://creativecommons.org/licenses/by/2.0/\n"
    )
    assert table["china.jpg"][:2] == ("CC-BY-2.0", True)


def test_stamp_roles(fake_index):
    names = _by_name(fake_index)
    for n in ("photoa.png", "photob.png", "photof.png", "photoa_mirror.png"):
        assert names[n]["role"] == "object", (n, names[n]["stamp_stats"])
    for n in ("drawinga.png", "drawingb.png", "drawingc.png"):
        assert names[n]["role"] == "clipart", (n, names[n]["stamp_stats"])
    assert names["vector.png"]["role"] == "clipart"  # an SVG of it ships: a drawing


def test_heuristic_photo_vs_clipart():
    assert D.stamp_role(_photo_stamp(7)) == "object"
    assert D.stamp_role(np.asarray(_photo_stamp(8))) == "object"
    assert D.stamp_role(_clipart_stamp()) == "clipart"
    # the same photo-like stamp is clip-art when a vector drawing of it exists
    assert D.stamp_role(_photo_stamp(7), has_svg=True) == "clipart"


def test_split_by_source_file(fake_root, fake_index):
    names = _by_name(fake_index)
    # a file and its mirrored copy come from one photo: same group, same split
    assert names["photoa.png"]["group"] == names["photoa_mirror.png"]["group"]
    assert names["photoa.png"]["split"] == names["photoa_mirror.png"]["split"]
    # deterministic: rebuilding gives the same split for every file
    again = _by_name(D.build_index(fake_root))
    assert {n: e["split"] for n, e in again.items()} == {n: e["split"] for n, e in names.items()}
    # both splits for a package with >= 5 files, per role
    for pkg, role in (("mate-backgrounds", "background"), ("tuxpaint-stamps-default", "object")):
        splits = {e["split"] for e in fake_index if e["package"] == pkg and e["role"] == role}
        assert splits == {"train", "val"}, (pkg, role)


def test_assign_splits_stratified_and_stable():
    entries = [{"package": "p", "role": "object", "group": f"p:g{i}"} for i in range(200)]
    D.assign_splits(entries)
    val = sum(e["split"] == "val" for e in entries)
    assert 20 <= val <= 60  # about 20 %
    # a file's split depends only on its own group when the stratum is large enough
    sub = [dict(e) for e in entries[:100]]
    D.assign_splits(sub)
    assert [e["split"] for e in sub] == [e["split"] for e in entries[:100]]
    # a small stratum still gets both splits
    small = [{"package": "q", "role": "background", "group": f"q:{i}"} for i in range(2)]
    D.assign_splits(small)
    assert {e["split"] for e in small} == {"train", "val"}


def test_group_key():
    assert D.group_key("t", "a/b/tugboat_mirror.png") == D.group_key("t", "a/b/tugboat.png")
    assert D.group_key("t", "a/b/frog-1.png") == D.group_key("t", "a/b/frog.png")
    assert D.group_key("t", "a/b/frog.png") != D.group_key("t", "a/c/frog.png")
    plasma = "plasma-workspace-wallpapers"
    assert D.group_key(plasma, "usr/share/wallpapers/Path/contents/images/1920x1080.jpg") == (
        D.group_key(plasma, "usr/share/wallpapers/Path/contents/images/2560x1600.jpg")
    )


def test_write_and_load_index(tmp_path, fake_root, fake_index):
    out = fake_root.parent / "index.json"
    D.write_index(fake_index, out)
    loaded = D.load_index(out)
    assert [e["path"] for e in loaded] == [e["path"] for e in fake_index]
    assert all(Path(e["abs_path"]).is_file() for e in loaded)
    assert "abs_path" not in json.loads(out.read_text())[0]
    assert D.verify_index(loaded) == []
    summary = D.summarize(loaded)
    assert summary["total"] == len(loaded)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"path": "x"}]))
    with pytest.raises(D.DataError):
        D.load_index(bad)


def test_held_out_package_is_all_test_and_moves_no_other_split(tmp_path, fake_root, fake_index):
    import shutil

    root = tmp_path / "sources"
    shutil.copytree(fake_root, root)
    pkg = "lomiri-wallpapers-16.04"
    base = root / pkg
    _write_source(base, pkg, "20.04.0-2")
    photos = base / "usr/share/backgrounds"
    photos.mkdir(parents=True)
    for i, name in enumerate(D.LOMIRI_PHOTOS):
        _photo_rgb(300 + i).save(photos / f"{name}.jpg", quality=90)
    _photo_rgb(399).save(photos / "umang_by_Abhishek_Mudgal.jpg")  # a render: not listed, not indexed
    doc = base / "usr/share/doc" / pkg
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: 16.04/*\nCopyright: 2018 Someone\nLicense: CC-BY-SA-4.0\n\n"
                                   "Files: 16.04/friends_by_Aitzol_Berasategi.jpg\nCopyright: 2018 Aitzol\n"
                                   "License: CC-BY-4.0\n")
    entries = D.build_index(root)
    held = [e for e in entries if e["package"] == pkg]
    assert len(held) == len(D.LOMIRI_PHOTOS) and {e["split"] for e in held} == {D.TEST_SPLIT}
    assert {e["role"] for e in held} == {"background"}
    licences = {Path(e["path"]).stem: e["licence"] for e in held}  # debian/copyright's 16.04/<file> entries
    assert licences.pop("friends_by_Aitzol_Berasategi") == "CC-BY-4.0"
    assert set(licences.values()) == {"CC-BY-SA-4.0"}
    others = {e["path"].split("sources/", 1)[1]: e["split"] for e in entries if e["package"] != pkg}
    assert others == {e["path"].split("sources/", 1)[1]: e["split"] for e in fake_index}


def test_dep5_parsing():
    paras = D.parse_dep5(DEP5_MATE)
    assert D.dep5_licence(paras, "usr/share/backgrounds/mate/nature/aqua.jpg")[0] == "CC0-1.0"
    assert D.dep5_licence(paras, "usr/share/backgrounds/mate/nature/blinds.jpg")[0] == "GPL-2+"


def test_fetch_is_idempotent(tmp_path, monkeypatch):
    """With the downloads and unpacked trees present, fetch runs no command at all."""
    out = tmp_path / "sources"
    cache = out / D.DOWNLOADS
    cache.mkdir(parents=True)
    for pkg in D.DEB_PACKAGES + D.HELD_OUT_PACKAGES:
        deb = f"{pkg}_1.0_all.deb"
        (cache / deb).write_bytes(b"x")
        (out / pkg).mkdir()
        (out / pkg / D.SOURCE_FILE).write_text(json.dumps({"package": pkg, "version": "1.0", "file": deb}))
    for pkg, version in D.PYPI_PACKAGES.items():
        whl = f"{pkg.replace('-', '_')}-{version}-py3-none-any.whl"
        (cache / whl).write_bytes(b"x")
        (out / pkg).mkdir()
        (out / pkg / D.SOURCE_FILE).write_text(json.dumps({"package": pkg, "version": version, "file": whl}))

    def no_commands(*args, **kwargs):
        raise AssertionError(f"fetch ran a command: {args}")

    monkeypatch.setattr(subprocess, "run", no_commands)
    info = D.fetch_sources(out)
    assert set(info) == set(D.DEB_PACKAGES) | set(D.HELD_OUT_PACKAGES) | set(D.PYPI_PACKAGES)
    assert not any(d["downloaded"] for d in info.values())


needs_real_index = pytest.mark.skipif(not REAL_INDEX.exists(),
                                      reason="data/index.json absent: run `python -m alit_train.data all`")


@needs_real_index
def test_real_index():
    entries = D.load_index(REAL_INDEX)
    bg = [e for e in entries if e["role"] == "background"]
    obj = [e for e in entries if e["role"] == "object"]
    assert len(bg) >= 20 and len(obj) >= 100
    assert {e["split"] for e in bg if e["package"] not in D.HELD_OUT_PACKAGES} == {"train", "val"}
    assert {e["split"] for e in bg if e["package"] in D.TEST_PACKAGES} == {D.TEST_SPLIT}
    assert {e["split"] for e in bg if e["package"] in D.CALIB_TEST_PACKAGES} == set(D.HELD_OUT_SPLITS)
    assert {e["split"] for e in obj} == {"train", "val"}
    assert all(Path(e["abs_path"]).is_file() for e in bg + obj)


# The (path, split) pairs of the index before the 'calib' packages were added (856 entries: the
# training packages and lomiri-wallpapers-16.04), as a digest of the sorted "path<TAB>split" lines.
EARLIER_ENTRIES = 856
EARLIER_SPLITS_SHA256 = "4b1611a4f5fab4efdcacadebcf8867f23d8aacad21a4edcde6d260bb78110c85"


@needs_real_index
def test_real_index_held_out_photos_moved_no_earlier_split():
    entries = D.load_index(REAL_INDEX)
    earlier = [e for e in entries if e["package"] not in D.CALIB_TEST_PACKAGES]
    lines = sorted(f"{e['path']}\t{e['split']}\n" for e in earlier)
    assert len(lines) == EARLIER_ENTRIES
    assert hashlib.sha256("".join(lines).encode()).hexdigest() == EARLIER_SPLITS_SHA256
    held = [e for e in entries if e["package"] in D.HELD_OUT_PACKAGES]
    assert {e["role"] for e in held} == {"background"}
    calib = [e for e in held if e["split"] == D.CALIB_SPLIT]
    new_test = [e for e in held if e["split"] == D.TEST_SPLIT and e["package"] in D.CALIB_TEST_PACKAGES]
    assert len(calib) >= 20 and len(new_test) >= 20
    assert sum(e["package"] == "lomiri-wallpapers-16.04" and e["split"] == D.TEST_SPLIT for e in held) == 13
    # several sources on each side, every one with a licence read from the package
    assert len({e["package"] for e in calib}) >= 3 and len({e["package"] for e in new_test}) >= 3
    assert all(e["licence"] != "unknown" for e in held)
    # nothing of them reaches the splits that training and validation read
    assert not any(e["split"] in D.SPLITS for e in held)


# --------------------------------------------------------------------------- the 'calib' packages


def _rcc_bytes(files: dict[str, bytes], compress: tuple[str, ...] = ()) -> bytes:
    """A Qt resource file (format 3) holding files {path: bytes}; names in compress are zlib'd."""
    tree: dict = {}
    for path, blob in files.items():
        d = tree
        parts = path.split("/")
        for part in parts[:-1]:
            d = d.setdefault(part, {})
        d[parts[-1]] = blob
    names = bytearray()
    offsets: dict[str, int] = {}

    def name_offset(n: str) -> int:
        if n not in offsets:
            offsets[n] = len(names)
            names.extend(struct.pack(">HI", len(n), 0) + n.encode("utf-16-be"))
        return offsets[n]

    payload = bytearray()
    nodes: list[tuple[str, object]] = [("", tree)]
    records = []
    i = 0
    while i < len(nodes):
        name, value = nodes[i]
        if isinstance(value, dict):
            first = len(nodes)
            nodes += sorted(value.items())
            records.append(struct.pack(">IHII", name_offset(name) if i else 0, 2, len(value), first) + bytes(8))
        else:
            flags = 1 if name in compress else 0
            blob = struct.pack(">I", len(value)) + zlib.compress(value) if flags else value
            records.append(struct.pack(">IHHHI", name_offset(name), flags, 0, 0, len(payload)) + bytes(8))
            payload += struct.pack(">I", len(blob)) + blob
        i += 1
    header = 24
    data_at = header
    names_at = data_at + len(payload)
    tree_at = names_at + len(names)
    head = b"qres" + struct.pack(">IIIII", 3, tree_at, data_at, names_at, 0)
    return head + bytes(payload) + bytes(names) + b"".join(records)


def _image_bytes(seed: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    _photo_rgb(seed, 120, 80).save(buf, format=fmt)
    return buf.getvalue()


def test_rcc_files_round_trip():
    files = {"a/b/one.txt": b"hello", "a/two.bin": bytes(range(256)) * 4, "top": b"x"}
    got = D.rcc_files(_rcc_bytes(files, compress=("two.bin",)))
    assert got == files
    with pytest.raises(D.DataError):
        D.rcc_files(b"nope" + bytes(20))


def test_licence_helpers():
    assert D.normalise_licence("CC-BY-SA 4.0") == "CC-BY-SA-4.0"
    assert D.normalise_licence("CC-BY 2.0") == "CC-BY-2.0"
    assert D.normalise_licence("CC0-1.0") == "CC0-1.0"
    assert D.normalise_licence("Public domain") == "public-domain"
    assert D.normalise_licence("GPLv3") == "GPL-3"
    readme = ("Copyright: Someone, 2020\nLicense: CC-BY-SA 4.0\nFiles:\nx.svg\ny.svg\n\n"
              "Copyright: Photographer\nSource: https://commons.wikimedia.org/wiki/File:Z.jpg\n"
              "License: CC0-1.0\nComments: cropping\nFiles: z.webp\n")
    table = D.readme_licences(readme)
    assert set(table) == {"x.svg", "y.svg", "z.webp"}
    assert table["z.webp"]["source"].endswith("File:Z.jpg") and table["z.webp"]["comments"] == "cropping"
    assert table["y.svg"]["license"] == "CC-BY-SA 4.0"
    table = D.scribus_licences(SCRIBUS_COPYRIGHT)
    assert table["br2"] == ("public-domain", "2004 Riku Leino <tsoots@gmail.com>")
    assert table["ruler"][0] == "GPL-2+" and "Zastrow" in table["ruler"][1]


def test_assign_splits_with_other_names():
    entries = [{"package": "p", "role": "background", "group": f"p:g{i}"} for i in range(100)]
    D.assign_splits(entries, 0.5, splits=(D.TEST_SPLIT, D.CALIB_SPLIT))
    calib = sum(e["split"] == D.CALIB_SPLIT for e in entries)
    assert {e["split"] for e in entries} == set(D.HELD_OUT_SPLITS) and 35 <= calib <= 65
    # the same hash rule as train / val: 'calib' exactly where the default would say 'val'
    same = [dict(e) for e in entries]
    D.assign_splits(same, 0.5)
    assert [e["split"] == "val" for e in same] == [e["split"] == D.CALIB_SPLIT for e in entries]


SCRIBUS_COPYRIGHT = """Additional Scribus templates have been packaged by Someone.

Materials in this package are distributed under varied conditions.

Copyright (c) 2004 Riku Leino <tsoots@gmail.com>:
    - Simple brochure with a nightly theme (br2)
    - Simple A4 portrait calendar (cal2)

Scribus templates by Riku Leino listed above and distributed in the
scribus-template package have been placed into public domain by their author.

------------------------------------------------------------------------

Copyright (c) 2004:

Thomas Zastrow <chef@thomas-zastrow.de>:
    - Scribus Ruler (ruler)

This program is free software; you can redistribute it and/or modify
it under the terms of the GNU General Public License as published by
the Free Software Foundation; either version 2 of the License, or
(at your option) any later version.
"""


def _copyright(base: Path, pkg: str, text: str) -> None:
    doc = base / "usr/share/doc" / pkg
    doc.mkdir(parents=True, exist_ok=True)
    (doc / "copyright").write_text(text)


def _save(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


@pytest.fixture(scope="module")
def calib_root(tmp_path_factory, fake_root) -> Path:
    """fake_root plus the held-out packages, each with photos that are listed and images that are not."""
    root = tmp_path_factory.mktemp("calib") / "sources"
    shutil.copytree(fake_root, root)
    # lomiri-wallpapers-16.04: the 'test' package from before
    pkg = "lomiri-wallpapers-16.04"
    base = root / pkg
    _write_source(base, pkg, "20.04.0-2")
    for i, name in enumerate(D.LOMIRI_PHOTOS):
        _save(_photo_rgb(300 + i), base / "usr/share/backgrounds" / f"{name}.jpg")
    _copyright(base, pkg, "Files: 16.04/*\nCopyright: 2018 Someone\nLicense: CC-BY-4.0\n")
    # gcompris-qt-data: photos inside .rcc files, licences in the README beside them
    pkg = "gcompris-qt-data"
    base = root / pkg
    _write_source(base, pkg, "3.1-2")
    fmt = "WEBP" if features.check("webp") else "PNG"  # PIL reads either whatever the name says
    erase = D.GCOMPRIS_PHOTOS["erase"][0]
    readme = ("Copyright: Dietmar Rabich / Wikimedia Commons\nSource: https://commons.wikimedia.org/wiki/File:A.jpg\n"
              "License: CC-BY-SA-4.0\nComments: cropping, sharpening\nFiles: alpaca.webp\n\n"
              "Copyright: Somebody\nLicense: Public domain\nFiles: drawing.webp\n")
    rcc = {f"{erase}/alpaca.webp": _image_bytes(400, fmt),
           f"{erase}/bee.webp": _image_bytes(401, fmt),  # listed, but its README says nothing of it
           f"{erase}/drawing.webp": _image_bytes(402, fmt),  # not listed: not a photo
           f"{erase}/README": readme.encode(),
           f"{erase}/Erase.qml": b"Item {}"}
    rcc_dir = base / D.GCOMPRIS_RCC_DIR
    rcc_dir.mkdir(parents=True)
    (rcc_dir / "erase.rcc").write_bytes(_rcc_bytes(rcc, compress=("README",)))
    monuments = D.GCOMPRIS_PHOTOS["explore_monuments"][0]
    readme = ("Copyright: Berthold Werner\nLicense: Public Domain\nSource: https://commons.wikimedia.org/x\n"
              "Files:\ngermany/audaPalatina.webp\n\nCopyright: Gary Todd\nLicense: CC0-1.0\nFiles:\n"
              "germany/wormsCathedral.webp\n")
    rcc = {f"{monuments}/germany/aulaPalatina.webp": _image_bytes(403, fmt),
           f"{monuments}/germany/wormsCathedral.webp": _image_bytes(404, fmt),
           f"{monuments}/README": readme.encode()}
    (rcc_dir / "explore_monuments.rcc").write_bytes(_rcc_bytes(rcc))
    _copyright(base, pkg, "Files: *\nCopyright: 2010 Someone\nLicense: GPL-3+\n\n"
                          "Files: src/activities/erase/resource/old.jpg\nCopyright: X\nLicense: GPL-3+\n")
    extracted = S._extract_gcompris(base)  # what fetching does after dpkg-deb -x
    assert "usr/share/gcompris-qt/rcc/erase/" + erase + "/alpaca.webp" in extracted
    assert not any(x.endswith(".qml") for x in extracted)
    # lxqt-themes: debian/copyright says LGPL-2.1+, the wallpapers' own License file CC-BY-SA-3.0
    pkg = "lxqt-themes"
    base = root / pkg
    _write_source(base, pkg, "1.2.0-1")
    wp = base / "usr/share/lxqt/wallpapers"
    _save(_photo_rgb(410), wp / "fog.jpg")
    _save(_photo_rgb(411), wp / "flowers.png")
    _save(_photo_rgb(412), wp / "triangles.png")  # a render: not listed
    (wp / "License").write_text("Copyright 2022: LXQt Project Team\nLicensed under CC-BY-SA-3.0\n")
    _copyright(base, pkg, "Files: *\nCopyright: 2012 LXQt team\nLicense: LGPL-2.1+\n\n"
                          "Files: wallpapers/kde-plasma.png\nCopyright: 2014 Nuno\nLicense: LGPL-3\n")
    # scribus-template: copyright file not machine-readable
    pkg = "scribus-template"
    base = root / pkg
    _write_source(base, pkg, "1.2.4.1-6")
    templates = base / "usr/share/scribus/templates"
    _save(_photo_rgb(420), templates / "br2/moon.jpg")
    _save(_photo_rgb(421), templates / "cal2/moon.jpg")
    _save(_photo_rgb(422), templates / "ruler/ruler.png")  # a page thumbnail: not listed
    _copyright(base, pkg, SCRIBUS_COPYRIGHT)
    # puzzle-jigsaw, sddm-theme-maldives, lomiri-wallpapers-20.04: DEP-5
    pkg = "puzzle-jigsaw"
    base = root / pkg
    _write_source(base, pkg, "1.0.2-4")
    for i, name in enumerate(D.PUZZLE_JIGSAW_PHOTOS):
        _save(_photo_rgb(430 + i), base / "usr/share/puzzle-jigsaw/samples" / f"{name}.jpg")
    _copyright(base, pkg, "Files: *\nCopyright: 2020 DanSoft\nLicense: GPL-3+\n\n"
                          "Files: samples/*\nCopyright: 2016-2017 Pexels\nLicense: CC0-1.0\n")
    pkg = "sddm-theme-maldives"
    base = root / pkg
    _write_source(base, pkg, "0.19.0-5")
    _save(_photo_rgb(440), base / "usr/share/sddm/themes/maldives/background.jpg")
    _save(_photo_rgb(441), base / "usr/share/sddm/themes/maldives/maldives.jpg")  # a screenshot
    _copyright(base, pkg, "Files: *\nCopyright: 2013 A\nLicense: GPL-2+\n\n"
                          "Files: data/themes/maldives/*\nCopyright: 2013 A\nLicense: CC-BY-SA-3.0\n\n"
                          "Files: data/themes/maldives/background.jpg\nCopyright: 2008, Nevit Dilmen\n"
                          "License: CC-BY-3.0\n")
    pkg = "lomiri-wallpapers-20.04"
    base = root / pkg
    _write_source(base, pkg, "20.04.0-2")
    _save(_photo_rgb(450), base / "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg")
    _save(_photo_rgb(451), base / "usr/share/backgrounds/Fossa_by_Jasper_Roks.jpg")  # a drawing
    _copyright(base, pkg, "Files: 20.04/Kleiber_by_Lukas_Baubkus.jpg\nCopyright: 2021, Lukas Baubkus\n"
                          "License: CC-BY-SA-3.0\n\nFiles: 20.04/Fossa_by_Jasper_Roks.jpg\nCopyright: J\n"
                          "License: CC-BY-SA-3.0\n")
    return root


def test_calib_packages_are_held_out_and_move_no_other_split(calib_root, fake_index):
    entries = D.build_index(calib_root)
    by_pkg: dict[str, dict[str, dict]] = {}
    for e in entries:
        by_pkg.setdefault(e["package"], {})[e["path"].split("/", 2)[2]] = e  # path inside the package
    gc = "usr/share/gcompris-qt/rcc/"
    erase, monuments = D.GCOMPRIS_PHOTOS["erase"][0], D.GCOMPRIS_PHOTOS["explore_monuments"][0]
    expected = {
        "gcompris-qt-data": {f"{gc}erase/{erase}/alpaca.webp",
                             f"{gc}explore_monuments/{monuments}/germany/aulaPalatina.webp",
                             f"{gc}explore_monuments/{monuments}/germany/wormsCathedral.webp"},
        "lxqt-themes": {"usr/share/lxqt/wallpapers/fog.jpg", "usr/share/lxqt/wallpapers/flowers.png"},
        "scribus-template": {"usr/share/scribus/templates/br2/moon.jpg", "usr/share/scribus/templates/cal2/moon.jpg"},
        "puzzle-jigsaw": {f"usr/share/puzzle-jigsaw/samples/{n}.jpg" for n in D.PUZZLE_JIGSAW_PHOTOS},
        "sddm-theme-maldives": {"usr/share/sddm/themes/maldives/background.jpg"},
        "lomiri-wallpapers-20.04": {"usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"},
    }
    assert set(expected) == set(D.CALIB_TEST_PACKAGES)
    for pkg, paths in expected.items():
        assert set(by_pkg[pkg]) == paths, pkg
    new = [e for pkg in D.CALIB_TEST_PACKAGES for e in by_pkg[pkg].values()]
    assert {e["split"] for e in new} == set(D.HELD_OUT_SPLITS)
    assert {e["role"] for e in new} == {"background"}
    for pkg in D.CALIB_TEST_PACKAGES:  # stratified: every package with two photos has both splits
        if len(by_pkg[pkg]) >= 2:
            assert {e["split"] for e in by_pkg[pkg].values()} == set(D.HELD_OUT_SPLITS), pkg
    # the 'test' package stays all 'test'; nothing else moved
    assert {e["split"] for e in by_pkg["lomiri-wallpapers-16.04"].values()} == {D.TEST_SPLIT}
    others = {e["path"].split("sources/", 1)[1]: e["split"] for e in entries if e["package"] not in D.HELD_OUT_PACKAGES}
    assert others == {e["path"].split("sources/", 1)[1]: e["split"] for e in fake_index}
    # deterministic
    again = D.build_index(calib_root)
    assert [(e["path"], e["split"]) for e in again] == [(e["path"], e["split"]) for e in entries]
    # files and checksums as for every entry
    for e in new:
        f = calib_root.parent / e["path"]
        assert D.sha256_file(f) == e["sha256"]
        with Image.open(f) as im:
            assert im.size == (e["width"], e["height"])


def test_calib_package_licences(calib_root):
    entries = {e["path"].rsplit("/", 2)[-2] + "/" + Path(e["path"]).name: e for e in D.build_index(calib_root)}
    alpaca = entries["resource/alpaca.webp"]
    assert alpaca["licence"] == "CC-BY-SA-4.0"  # the README's, not debian/copyright's Files: * fallback
    assert "Dietmar Rabich" in alpaca["copyright"] and "commons.wikimedia.org" in alpaca["copyright"]
    assert "GPL-3+" in alpaca["licence_note"] and "cropping" in alpaca["licence_note"]
    assert entries["germany/aulaPalatina.webp"]["licence"] == "public-domain"  # README spells it audaPalatina
    assert entries["germany/wormsCathedral.webp"]["licence"] == "CC0-1.0"
    fog = entries["wallpapers/fog.jpg"]
    assert fog["licence"] == "LGPL-2.1+" and "CC-BY-SA-3.0" in fog["licence_note"]
    moon = entries["br2/moon.jpg"]
    assert moon["licence"] == "public-domain" and "Riku Leino" in moon["copyright"]
    assert entries["maldives/background.jpg"]["licence"] == "CC-BY-3.0"
    assert "Nevit Dilmen" in entries["maldives/background.jpg"]["copyright"]
    assert entries["backgrounds/Kleiber_by_Lukas_Baubkus.jpg"]["licence"] == "CC-BY-SA-3.0"
    assert {entries[f"samples/{n}.jpg"]["licence"] for n in D.PUZZLE_JIGSAW_PHOTOS} == {"CC0-1.0"}
