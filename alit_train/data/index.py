"""The index of the unpacked sources: one entry per image, with its licence, role and split.


    path        the file, relative to the folder that holds index.json (the data root)
    package     source package name; version: its version
    licence     short licence name (Debian copyright file / skimage docstrings / sklearn README /
                for GCompris the README that ships with each photo, see ``_index_gcompris``)
    licence_note, copyright   free text backing the licence (attribution where needed)
    role        'background' (full photo), 'object' (photographic stamp with alpha) or
                'clipart' (drawn stamp)
    width, height, sha256
    group       the split key: files derived from one source photo share it
    split       'train' or 'val'; 'calib' or 'test' for the packages in HELD_OUT_PACKAGES
                (photos added after the bundled model was trained, which no training run reads:
                'calib' to calibrate the selection threshold, 'test' for evaluation only)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alit_core.files.atomic import written_whole

from .licences import (
    dep5_licence,
    normalise_licence,
    parse_dep5,
    readme_licences,
    scribus_licences,
    skimage_licences,
    sklearn_licences,
)
from .sources import (
    DEFAULT_INDEX,
    DEFAULT_SOURCES,
    GCOMPRIS_PHOTOS,
    GCOMPRIS_RCC_DIR,
    GCOMPRIS_README_ALIASES,
    IMAGE_EXTS,
    LOMIRI_2004_PHOTOS,
    LOMIRI_PHOTOS,
    LXQT_PHOTOS,
    MALDIVES_PHOTOS,
    PHOTO_EXTS,
    PLASMA_PHOTOS,
    PUZZLE_JIGSAW_PHOTOS,
    PYPI_PACKAGES,
    SCRIBUS_PHOTOS,
    SKIMAGE_CANDIDATES,
    SKLEARN_IMAGES,
    SOURCE_FILE,
    DataError,
    log,
    sha256_file,
)
from .splits import CALIB_FRACTION, CALIB_SPLIT, TEST_SPLIT, assign_splits, group_key
from .stamps import role_from_stats, stamp_stats


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _deb_info(root: Path, pkg: str) -> tuple[Path, str, list[dict]]:
    base = root / pkg
    info_file = base / SOURCE_FILE
    version = json.loads(info_file.read_text())["version"] if info_file.exists() else "unknown"
    cfile = base / "usr/share/doc" / pkg / "copyright"
    paragraphs = parse_dep5(cfile.read_text(errors="replace")) if cfile.exists() else []
    return base, version, paragraphs


def _entry(
    path: Path, base: Path, pkg: str, version: str, role: str, licence: str, note: str = "", copyright_: str = ""
) -> dict:
    w, h = _image_size(path)
    rel_pkg = path.relative_to(base).as_posix()
    e = {
        "file": str(path),
        "package": pkg,
        "version": version,
        "licence": licence,
        "role": role,
        "width": w,
        "height": h,
        "sha256": sha256_file(path),
        "group": group_key(pkg, rel_pkg),
    }
    if note:
        e["licence_note"] = note
    if copyright_:
        e["copyright"] = " ".join(copyright_.split())
    return e


def _index_debian_backgrounds(root: Path, pkg: str, files: Iterable[Path], extra_note=None,
                              upstream=None) -> list[dict]:
    """upstream: maps an installed path to the path debian/copyright names, where the two differ
    by more than a leading folder (dep5_licence tries every trailing part of the installed path)."""
    base, version, paragraphs = _deb_info(root, pkg)
    out = []
    for f in files:
        rel = f.relative_to(base).as_posix()
        licence, copyright_ = dep5_licence(paragraphs, upstream(rel) if upstream else rel)
        note = "debian/copyright of " + pkg
        if extra_note:
            note += "; " + extra_note(f)
        out.append(_entry(f, base, pkg, version, "background", licence, note, copyright_))
    return out


def _plasma_files(base: Path) -> list[Path]:
    files = []
    for name in PLASMA_PHOTOS:
        imgs = [
            p
            for p in (base / "usr/share/wallpapers" / name / "contents/images").glob("*")
            if p.suffix.lower() in IMAGE_EXTS
        ]
        if not imgs:
            continue

        def area(p: Path) -> int:
            m = re.match(r"(\d+)x(\d+)", p.stem)
            return int(m.group(1)) * int(m.group(2)) if m else 0

        files.append(max(imgs, key=lambda p: (area(p), p.name)))
    return files


def _plasma_note(f: Path) -> str:
    wp = f.parents[2]
    meta = wp / "metadata.json"
    try:
        plugin = json.loads(meta.read_text())["KPlugin"]
        authors = ", ".join(a.get("Name", "") for a in plugin.get("Authors", []))
        return f"upstream metadata.json: {plugin.get('License', '?')} by {authors}"
    except (OSError, ValueError, KeyError):
        return ""


def _index_stamps(root: Path) -> list[dict]:
    pkg = "tuxpaint-stamps-default"
    base, version, paragraphs = _deb_info(root, pkg)
    out = []
    for f in sorted((base / "usr/share/tuxpaint/stamps").rglob("*.png")):
        with Image.open(f) as im:
            palette = im.mode == "P"
            rgba = np.asarray(im.convert("RGBA"))
        if rgba[..., 3].min() == 255:
            log(f"skip {f.relative_to(root)}: no transparency, not a cut-out")
            continue
        stats = stamp_stats(rgba)
        role = role_from_stats(stats, palette, f.with_suffix(".svg").exists())
        rel = f.relative_to(base).as_posix()
        licence, copyright_ = dep5_licence(paragraphs, rel)
        e = _entry(f, base, pkg, version, role, licence, "debian/copyright of " + pkg, copyright_)
        e["stamp_stats"] = stats
        out.append(e)
    return out


def _photo_files(folder: Path, stems: Iterable[str]) -> list[Path]:
    """The file of each by-eye listed stem in folder (any of PHOTO_EXTS); missing ones are logged."""
    files = []
    for stem in stems:
        found = [folder / f"{stem}{ext}" for ext in PHOTO_EXTS if (folder / f"{stem}{ext}").is_file()]
        if found:
            files.append(found[0])
        else:
            log(f"skip {folder / stem}: not in this version of the package")
    return files


def _lxqt_note(f: Path) -> str:
    licence = f.parent / "License"  # upstream's note on the wallpapers
    try:
        return "upstream wallpapers/License: " + " ".join(licence.read_text().split())
    except OSError:
        return ""


def _index_gcompris(root: Path) -> list[dict]:
    """GCompris photos with the author, licence and source of their upstream README.

    debian/copyright of gcompris-qt-data names these activities' older .jpg files only, so for the
    .webp photos it falls back to its 'Files: *' stanza (GPL-3+); the README that ships with the
    photos, inside the same .rcc file, is the specific statement, and the entry's licence."""
    pkg = "gcompris-qt-data"
    base, version, paragraphs = _deb_info(root, pkg)
    out = []
    for rcc_name, (folder, stems) in GCOMPRIS_PHOTOS.items():
        photo_dir = base / GCOMPRIS_RCC_DIR / rcc_name / folder
        readme = photo_dir / "README"
        table = readme_licences(readme.read_text(errors="replace")) if readme.exists() else {}
        for f in _photo_files(photo_dir, stems):
            name = f.relative_to(photo_dir).as_posix()
            stanza = table.get(name) or table.get(GCOMPRIS_README_ALIASES.get(name, ""))
            if not stanza or "license" not in stanza:
                log(f"exclude {f.relative_to(root)}: not in its README")
                continue
            upstream = folder.split("gcompris/", 1)[1] + "/" + name  # src/activities/...
            deb_licence = dep5_licence(paragraphs, upstream)[0]
            note = (f"upstream README in {rcc_name}.rcc ({folder}/README)"
                    + (f"; its comments: {stanza['comments']}" if stanza.get("comments") else "")
                    + f"; debian/copyright of {pkg} (Files: * fallback): {deb_licence}")
            copyright_ = stanza.get("copyright", "") + (f"; source: {stanza['source']}" if stanza.get("source") else "")
            out.append(_entry(f, base, pkg, version, "background", normalise_licence(stanza["license"]), note,
                              copyright_))
    return out


def _index_scribus(root: Path) -> list[dict]:
    pkg = "scribus-template"
    base, version, _ = _deb_info(root, pkg)
    cfile = base / "usr/share/doc" / pkg / "copyright"
    table = scribus_licences(cfile.read_text(errors="replace")) if cfile.exists() else {}
    out = []
    templates = base / "usr/share/scribus/templates"
    for rel in SCRIBUS_PHOTOS:
        folder, stem = rel.split("/")
        for f in _photo_files(templates / folder, [stem]):
            licence, holder = table.get(folder, ("unknown", ""))
            note = f"debian/copyright of {pkg} (not machine-readable): the section listing ({folder})"
            out.append(_entry(f, base, pkg, version, "background", licence, note, holder))
    return out


def _index_calib_test(root: Path) -> list[dict]:
    """The photos of CALIB_TEST_PACKAGES (those present under root), splits not yet set."""
    out: list[dict] = []
    if (root / "gcompris-qt-data").is_dir():
        out += _index_gcompris(root)
    pkg = "lxqt-themes"
    if (root / pkg).is_dir():
        files = _photo_files(root / pkg / "usr/share/lxqt/wallpapers", LXQT_PHOTOS)
        out += _index_debian_backgrounds(root, pkg, files, _lxqt_note)
    if (root / "scribus-template").is_dir():
        out += _index_scribus(root)
    pkg = "puzzle-jigsaw"
    if (root / pkg).is_dir():
        files = _photo_files(root / pkg / "usr/share/puzzle-jigsaw/samples", PUZZLE_JIGSAW_PHOTOS)
        out += _index_debian_backgrounds(root, pkg, files)
    pkg = "sddm-theme-maldives"
    if (root / pkg).is_dir():
        files = _photo_files(root / pkg / "usr/share/sddm/themes/maldives", MALDIVES_PHOTOS)
        # debian/copyright (of the sddm source) names them data/themes/maldives/<file>
        out += _index_debian_backgrounds(root, pkg, files,
                                         upstream=lambda rel: "data/" + rel.split("usr/share/sddm/", 1)[1])
    pkg = "lomiri-wallpapers-20.04"
    if (root / pkg).is_dir():
        files = _photo_files(root / pkg / "usr/share/backgrounds", LOMIRI_2004_PHOTOS)
        out += _index_debian_backgrounds(root, pkg, files, upstream=lambda rel: "20.04/" + Path(rel).name)
    return out


def _index_wheel(root: Path, pkg: str) -> list[dict]:
    base = root / pkg
    info_file = base / SOURCE_FILE
    if not info_file.exists():
        return []
    version = json.loads(info_file.read_text())["version"]
    if pkg == "scikit-image":
        folder = base / "skimage/data"
        fetchers = folder / "_fetchers.py"
        table = skimage_licences(fetchers.read_text()) if fetchers.exists() else {}
        names = SKIMAGE_CANDIDATES
        general = "scikit-image (BSD-3-Clause); per-image note from skimage/data/_fetchers.py"
    else:
        folder = base / "sklearn/datasets/images"
        readme = folder / "README.txt"
        table = sklearn_licences(readme.read_text()) if readme.exists() else {}
        names = SKLEARN_IMAGES
        general = "sklearn/datasets/images/README.txt"
    out = []
    for name in names:
        f = folder / name
        if not f.exists():
            continue
        licence, free, note = table.get(name, ("unknown", False, ""))
        if not free:
            log(f"exclude {f.relative_to(root)}: licence {licence}")
            continue
        out.append(_entry(f, base, pkg, version, "background", licence, f"{general}: {note}"))
    return out


def build_index(root: str | os.PathLike = DEFAULT_SOURCES, base: str | os.PathLike | None = None) -> list[dict]:
    """Index the unpacked sources under ``root``.

    Paths are stored relative to ``base`` (default: the parent of ``root``, i.e. the data
    root that holds index.json). Packages missing under ``root`` are skipped.
    """
    root = Path(root).resolve()
    base = Path(base).resolve() if base is not None else root.parent
    entries: list[dict] = []
    pkg = "mate-backgrounds"
    if (root / pkg).is_dir():
        files = sorted((root / pkg / "usr/share/backgrounds/mate/nature").glob("*.jpg"))
        entries += _index_debian_backgrounds(root, pkg, files)
    pkg = "plasma-workspace-wallpapers"
    if (root / pkg).is_dir():
        entries += _index_debian_backgrounds(root, pkg, _plasma_files(root / pkg), _plasma_note)
    pkg = "tuxpaint-data"
    if (root / pkg).is_dir():
        files = sorted((root / pkg / "usr/share/tuxpaint/templates").glob("*.jpg"))
        entries += _index_debian_backgrounds(root, pkg, files)
    if (root / "tuxpaint-stamps-default").is_dir():
        entries += _index_stamps(root)
    for pkg in PYPI_PACKAGES:
        if (root / pkg).is_dir():
            entries += _index_wheel(root, pkg)
    assign_splits(entries)
    pkg = "lomiri-wallpapers-16.04"
    if (root / pkg).is_dir():
        files = [root / pkg / "usr/share/backgrounds" / f"{name}.jpg" for name in LOMIRI_PHOTOS]
        # debian/copyright names them 16.04/<file>; they install to usr/share/backgrounds/<file>
        held_out = _index_debian_backgrounds(root, pkg, files, upstream=lambda rel: "16.04/" + Path(rel).name)
        for e in held_out:
            e["split"] = TEST_SPLIT
        entries += held_out
    # dealt between 'calib' and 'test' on their own, so they move no other file's split either
    calib_test = _index_calib_test(root)
    assign_splits(calib_test, CALIB_FRACTION, splits=(TEST_SPLIT, CALIB_SPLIT))
    entries += calib_test
    for e in entries:
        e["path"] = os.path.relpath(e.pop("file"), base).replace(os.sep, "/")
    entries.sort(key=lambda e: e["path"])
    return entries


def write_index(entries: list[dict], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = [{k: v for k, v in e.items() if k != "abs_path"} for e in entries]
    with written_whole(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=1, sort_keys=True) + "\n")


REQUIRED_KEYS = ("path", "package", "version", "licence", "role", "width", "height", "sha256", "split")


def load_index(path: str | os.PathLike = DEFAULT_INDEX) -> list[dict]:
    """Read index.json; each entry gets 'abs_path' resolved against the index's folder."""
    path = Path(path)
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise DataError(f"{path}: the index must be a JSON list")
    for e in entries:
        missing = [k for k in REQUIRED_KEYS if k not in e]
        if missing:
            raise DataError(f"{path}: entry {e.get('path')!r} lacks {missing}")
        e["abs_path"] = str((path.parent / e["path"]).resolve())
    return entries


def verify_index(entries: list[dict]) -> list[str]:
    """Paths (from load_index entries) whose file is missing or whose sha256 differs."""
    bad = []
    for e in entries:
        p = Path(e["abs_path"])
        if not p.exists() or sha256_file(p) != e["sha256"]:
            bad.append(e["path"])
    return bad


def summarize(entries: list[dict]) -> dict[str, Any]:
    """Counts per role, per (role, split), per package and licence."""
    out: dict[str, Any] = {"total": len(entries), "role": {}, "role_split": {}, "package": {}, "licence": {}}
    for e in entries:
        out["role"][e["role"]] = out["role"].get(e["role"], 0) + 1
        rs = f"{e['role']}/{e['split']}"
        out["role_split"][rs] = out["role_split"].get(rs, 0) + 1
        pk = f"{e['package']} {e['version']}"
        d = out["package"].setdefault(pk, {})
        key = f"{e['role']}/{e['split']}"
        d[key] = d.get(key, 0) + 1
        lk = f"{e['package']}: {e['licence']}"
        out["licence"][lk] = out["licence"].get(lk, 0) + 1
    for k in ("role", "role_split", "package", "licence"):
        out[k] = dict(sorted(out[k].items()))
    out["package"] = {k: dict(sorted(v.items())) for k, v in out["package"].items()}
    return out
