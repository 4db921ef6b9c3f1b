"""Tests for alit_train.data's held-out packages: Qt resource files, README / copyright licences, the calib split."""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from fake_packages import _photo_rgb, _write_source
from PIL import Image, features

from alit_train import data as D
from alit_train.data import sources as S


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


def _add_lomiri_16_04(root: Path) -> None:
    """lomiri-wallpapers-16.04: the 'test' package from before."""
    pkg = "lomiri-wallpapers-16.04"
    base = root / pkg
    _write_source(base, pkg, "20.04.0-2")
    for i, name in enumerate(D.LOMIRI_PHOTOS):
        _save(_photo_rgb(300 + i), base / "usr/share/backgrounds" / f"{name}.jpg")
    _copyright(base, pkg, "Files: 16.04/*\nCopyright: 2018 Someone\nLicense: CC-BY-4.0\n")


def _add_gcompris(root: Path) -> None:
    """gcompris-qt-data: photos inside .rcc files, licences in the README beside them."""
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


def _add_lxqt_themes(root: Path) -> None:
    """lxqt-themes: debian/copyright says LGPL-2.1+, the wallpapers' own License file CC-BY-SA-3.0."""
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


def _add_scribus_templates(root: Path) -> None:
    """scribus-template: copyright file not machine-readable."""
    pkg = "scribus-template"
    base = root / pkg
    _write_source(base, pkg, "1.2.4.1-6")
    templates = base / "usr/share/scribus/templates"
    _save(_photo_rgb(420), templates / "br2/moon.jpg")
    _save(_photo_rgb(421), templates / "cal2/moon.jpg")
    _save(_photo_rgb(422), templates / "ruler/ruler.png")  # a page thumbnail: not listed
    _copyright(base, pkg, SCRIBUS_COPYRIGHT)


def _add_puzzle_jigsaw(root: Path) -> None:
    """puzzle-jigsaw: DEP-5 (as are sddm-theme-maldives and lomiri-wallpapers-20.04)."""
    pkg = "puzzle-jigsaw"
    base = root / pkg
    _write_source(base, pkg, "1.0.2-4")
    for i, name in enumerate(D.PUZZLE_JIGSAW_PHOTOS):
        _save(_photo_rgb(430 + i), base / "usr/share/puzzle-jigsaw/samples" / f"{name}.jpg")
    _copyright(base, pkg, "Files: *\nCopyright: 2020 DanSoft\nLicense: GPL-3+\n\n"
                          "Files: samples/*\nCopyright: 2016-2017 Pexels\nLicense: CC0-1.0\n")


def _add_sddm_maldives(root: Path) -> None:
    """sddm-theme-maldives: DEP-5, a per-file stanza for the photo."""
    pkg = "sddm-theme-maldives"
    base = root / pkg
    _write_source(base, pkg, "0.19.0-5")
    _save(_photo_rgb(440), base / "usr/share/sddm/themes/maldives/background.jpg")
    _save(_photo_rgb(441), base / "usr/share/sddm/themes/maldives/maldives.jpg")  # a screenshot
    _copyright(base, pkg, "Files: *\nCopyright: 2013 A\nLicense: GPL-2+\n\n"
                          "Files: data/themes/maldives/*\nCopyright: 2013 A\nLicense: CC-BY-SA-3.0\n\n"
                          "Files: data/themes/maldives/background.jpg\nCopyright: 2008, Nevit Dilmen\n"
                          "License: CC-BY-3.0\n")


def _add_lomiri_20_04(root: Path) -> None:
    """lomiri-wallpapers-20.04: DEP-5, one photo and one drawing."""
    pkg = "lomiri-wallpapers-20.04"
    base = root / pkg
    _write_source(base, pkg, "20.04.0-2")
    _save(_photo_rgb(450), base / "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg")
    _save(_photo_rgb(451), base / "usr/share/backgrounds/Fossa_by_Jasper_Roks.jpg")  # a drawing
    _copyright(base, pkg, "Files: 20.04/Kleiber_by_Lukas_Baubkus.jpg\nCopyright: 2021, Lukas Baubkus\n"
                          "License: CC-BY-SA-3.0\n\nFiles: 20.04/Fossa_by_Jasper_Roks.jpg\nCopyright: J\n"
                          "License: CC-BY-SA-3.0\n")


@pytest.fixture(scope="module")
def calib_root(tmp_path_factory, fake_root) -> Path:
    """fake_root plus the held-out packages, each with photos that are listed and images that are not."""
    root = tmp_path_factory.mktemp("calib") / "sources"
    shutil.copytree(fake_root, root)
    for add in (_add_lomiri_16_04, _add_gcompris, _add_lxqt_themes, _add_scribus_templates,
                _add_puzzle_jigsaw, _add_sddm_maldives, _add_lomiri_20_04):
        add(root)
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
