"""Tests for alit_train.data: index fields, licences, the split by source photo, the
photo / clip-art heuristic and fetch idempotency, on a tiny fake source tree (no downloads)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fake_packages import DEP5_MATE, _clipart_stamp, _photo_rgb, _photo_stamp, _write_source
from PIL import Image

from alit_train import data as D

REPO = Path(__file__).resolve().parents[1]
REAL_INDEX = REPO / "data" / "index.json"


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
