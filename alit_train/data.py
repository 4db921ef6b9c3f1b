"""Registry-only photo data for training the small default model.

Everything here comes from the package registries (no hub downloads work here), so the data set
can be rebuilt anywhere with ``python -m alit_train.data all``:

* Debian packages ``mate-backgrounds``, ``plasma-workspace-wallpapers``, ``tuxpaint-data``,
  ``tuxpaint-stamps-default`` and (held out, see below) ``lomiri-wallpapers-16.04``,
  ``gcompris-qt-data``, ``lxqt-themes``, ``scribus-template``, ``puzzle-jigsaw``,
  ``sddm-theme-maldives`` and ``lomiri-wallpapers-20.04`` are fetched with ``apt-get download``
  (never installed) and unpacked with ``dpkg-deb -x``. GCompris keeps its images inside Qt resource
  files: the photos and READMEs of the folders in GCOMPRIS_PHOTOS are extracted (``rcc_files``)
  into ``usr/share/gcompris-qt/rcc/<name>/`` beside each ``<name>.rcc``.
* PyPI wheels of ``scikit-image`` and ``scikit-learn`` are fetched with
  ``pip download --no-deps`` (never installed) and their sample photos are read out of the
  wheel (a zip file).

Layout (defaults)::

    data/                      the data root (git-ignored)
      index.json               the index: a JSON list, one dict per image
      sources/                 --out of ``fetch`` / --root of ``index``
        _downloads/            the .deb and .whl files as downloaded (the cache)
        <package>/             the unpacked tree of each package, plus SOURCE.json

Index entries (``build_index``) have the keys

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
    stamp_stats only for stamps: the numbers behind the photo / clip-art decision

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
planets: 'clipart').

Split: by source photo, never by crop. Each file gets a group key (its path relative to its
package, with mirror / numbered-variant suffixes removed so that ``tugboat.png`` and
``tugboat_mirror.png`` share a group); sha256 of the key mapped to [0, 1) puts the group in
'val' when below 0.2. Stratified per (package, role): if a stratum with two or more groups
ends up with an empty split, the group whose hash is nearest the threshold is moved over.
The photos of HELD_OUT_PACKAGES take no part in that draw, so adding them changed no other
file's split. Those of TEST_PACKAGES (lomiri-wallpapers-16.04, 13 photos, the first held-out
source) are all 'test'. Those of CALIB_TEST_PACKAGES are dealt by the same rule on their own:
a group whose hash is below CALIB_FRACTION (0.5) goes to 'calib', the others to 'test',
stratified per package so that each package with two or more photos has both. Which images of
the held-out packages are photographs (not renders, drawings or screenshots) was decided by eye
on contact sheets; the lists are the *_PHOTOS constants.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO_ROOT / "data"
DEFAULT_SOURCES = DATA_ROOT / "sources"
DEFAULT_INDEX = DATA_ROOT / "index.json"
DOWNLOADS = "_downloads"
SOURCE_FILE = "SOURCE.json"

DEB_PACKAGES = (
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "tuxpaint-data",
    "tuxpaint-stamps-default",
)
# Photos added after the bundled model was trained, held out by source package, not only by photo:
# no training run reads the splits they go to. Those of TEST_PACKAGES are all 'test'; those of
# CALIB_TEST_PACKAGES are dealt between 'calib' (for calibrating the selection threshold) and 'test'
# by the hash of their group key (see the module doc).
TEST_PACKAGES = ("lomiri-wallpapers-16.04",)
CALIB_TEST_PACKAGES = (
    "gcompris-qt-data",
    "lxqt-themes",
    "scribus-template",
    "puzzle-jigsaw",
    "sddm-theme-maldives",
    "lomiri-wallpapers-20.04",
)
HELD_OUT_PACKAGES = TEST_PACKAGES + CALIB_TEST_PACKAGES
# lomiri-wallpapers-16.04's wallpapers that are photographs (umang is a render, analogpattern an
# abstract texture); chosen by eye.
LOMIRI_PHOTOS = (
    "Bridge_by_Sander_Klootwijk",
    "Dragonfly_by_Bolly",
    "Picture_0B_by_freespace",
    "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede",
    "aitzgorri_by_Aitzol_Berasategi",
    "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi",
    "greentock_by_Peter_Nerlich",
    "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt",
    "sunset_by_Aitzol_Berasategi",
)
# The photographs among the other held-out packages' images, all chosen by eye from contact sheets.
# GCompris (educational activities) ships its images inside Qt resource files (.rcc); fetching
# extracts the photos and their upstream README (per-file author, licence and source, nearly all
# Wikimedia Commons) of these folders. Per rcc file: (folder inside it, photo stems). Not taken: the 'lang'
# words (drawings), 'details' (crops of paintings), 'solar_system' (composites and renders),
# 'louis-braille' (about 250 px), 'paintings' (artwork).
GCOMPRIS_PHOTOS = {
    "erase": (
        "gcompris/src/activities/erase/resource",
        (
            "alpaca", "bee", "butterfly", "calf", "camels", "caterpillar", "chamaeleon", "cheetah",
            "crab", "dolphin", "flying_fox", "gibbon", "giraffe", "goat", "gorilla", "gosling",
            "heron", "horse", "kingfisher", "kitten", "long_nosed_monkey", "macaque", "meerkats",
            "northern_harrier", "nubian_ibex", "penguin", "pika", "red_panda", "rhinoceros",
            "spoonbills", "squirrel", "swans", "toucan",
        ),
    ),
    "explore_farm_animals": (
        "gcompris/src/activities/explore_farm_animals/resource/animals",
        ("cat", "chicken", "cow", "dog", "duck", "horse", "owl", "pig", "sheep"),
    ),
    "explore_world_animals": (
        "gcompris/src/activities/explore_world_animals/resource/animals",
        (
            "bison", "chameleon", "crocodile", "dragon", "giraffe", "hedgehog", "jaguar", "kangaroo",
            "koala", "lemur", "moose", "narwhal", "panda", "polar_bear", "scarlet_macaw",
        ),
    ),
    "explore_world_music": (
        "gcompris/src/activities/explore_world_music/resource/music",
        ("africa", "america", "australia", "ireland", "italy", "japan", "mexico", "middleeast", "orchestra"),
    ),
    "explore_monuments": (
        "gcompris/src/activities/explore_monuments/resource",
        (
            "egypt/bentPyramid", "egypt/greatPyramidOfGiza", "egypt/meidumPyramid", "egypt/redPyramid",
            "france/arlesAmphitheater", "france/chateaudeChambord", "france/chateaudeChenonceau",
            "france/citedeCarcassonne", "france/eiffelTower", "france/montStMichel",
            "france/palaisdesPapes", "france/pontduGard", "france/reimsCathedral", "france/rocamadour",
            "germany/aulaPalatina", "germany/berlinCathedral", "germany/brandenburgGate",
            "germany/neuschwansteinCastle", "germany/schwerinPalace", "germany/trierImperialBaths",
            "germany/wormsCathedral", "india/ajantaCave", "india/charminar", "india/gatewayofIndia",
            "india/goldenTemple", "india/greatStupa", "india/hawaMahal", "india/konarkSunTemple",
            "india/mysorePalace", "india/qutubMinar", "india/rangGhar", "india/victoriaMemorial",
            "usa/cabrillo", "usa/canyondeChelly", "usa/castillodeSanMarcos", "usa/castleClinton",
            "usa/fortSumter", "usa/georgeWashingtonBirthplace", "usa/lincolnMemorial",
            "usa/mountRushmore", "usa/navajo", "usa/statueofLiberty", "wonders/chichenItza",
            "wonders/christTheRedeemer", "wonders/colosseum", "wonders/greatWallofChina",
            "wonders/machuPicchu", "wonders/petra", "wonders/tajMahal",
        ),
    ),
}
# The monuments README names aulaPalatina.webp 'audaPalatina.webp' (its source, the Konstantinbasilika
# in Trier, is the Aula Palatina).
GCOMPRIS_README_ALIASES = {"germany/aulaPalatina.webp": "germany/audaPalatina.webp"}
GCOMPRIS_RCC_DIR = "usr/share/gcompris-qt/rcc"  # <name>.rcc there; extracted into <name>/ beside it
# LXQt wallpapers that are photographs (the origami, triangles, waves and plasma ones are renders).
LXQT_PHOTOS = (
    "Butterfly-Kenneth-Wimer",
    "Valendas",
    "after-the-rain",
    "appleflower",
    "beam",
    "butterfly",
    "cloud",
    "drop",
    "flowers",
    "fog",
    "this-is-not-windows",
)
# Photographs in the public-domain templates of scribus-template (template folder/stem); its other
# pictures are thumbnails of pages, screenshots, or photos under 300 px.
SCRIBUS_PHOTOS = (
    "br2/brightness",
    "br2/halfmoon",
    "br2/moon",
    "br2/nature",
    "br2/sunset",
    "cal2/moon",
    "menu2/pizza",
)
# The sample pictures of puzzle-jigsaw (two Pexels photos, CC0: a cat and a tiger in snow).
PUZZLE_JIGSAW_PHOTOS = ("cat-animal-cat-portrait-mackerel", "pexels-photo-302304")
# sddm's Maldives theme: its background photo (maldives.jpg is a screenshot of the login screen).
MALDIVES_PHOTOS = ("background",)
# lomiri-wallpapers-20.04: the nuthatch photo (Fossa and Painting-Colors are drawings, Infinite-Sea a
# photo montage with drawn gradients).
LOMIRI_2004_PHOTOS = ("Kleiber_by_Lukas_Baubkus",)

# Pinned so that the data set is the same wherever it is rebuilt.
PYPI_PACKAGES = {"scikit-image": "0.26.0", "scikit-learn": "1.9.1"}

# Plasma wallpapers that are photographs (the others are renders and illustrations);
# chosen by eye from the package's screenshots.
PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)

# Photographic RGB images shipped inside the scikit-image wheel (the synthetic colour
# wheel, the RGB chessboard, the logo and the grey images are not candidates). Whether each
# is used depends on the licence its loader's docstring states, read from the wheel.
SKIMAGE_CANDIDATES = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)
SKLEARN_IMAGES = ("china.jpg", "flower.jpg")

VAL_FRACTION = 0.2
ROLES = ("background", "object", "clipart")
SPLITS = ("train", "val")  # what assign_splits deals out
TEST_SPLIT = "test"  # the held-out packages' photos: evaluation only
CALIB_SPLIT = "calib"  # held-out photos for calibrating the selection threshold
HELD_OUT_SPLITS = (CALIB_SPLIT, TEST_SPLIT)  # no training run reads these
CALIB_FRACTION = 0.5  # of CALIB_TEST_PACKAGES' groups, by hash
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
PHOTO_EXTS = IMAGE_EXTS + (".webp",)  # the held-out packages' photos


class DataError(RuntimeError):
    """Fetching or indexing the registry data failed."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:  # pragma: no cover - depends on the machine
        raise DataError(f"{cmd[0]} is not available on this machine") from exc
    if proc.returncode != 0:
        raise DataError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- fetching


def _apt_has_candidate(pkg: str) -> bool:
    out = subprocess.run(["apt-cache", "policy", pkg], capture_output=True, text=True, check=False).stdout
    m = re.search(r"Candidate:\s*(\S+)", out)
    return bool(m) and m.group(1) != "(none)"


def _fetch_deb(pkg: str, out: Path, cache: Path, state: dict) -> dict:
    dest = out / pkg
    marker = dest / SOURCE_FILE
    debs = sorted(cache.glob(f"{pkg}_*.deb"))
    if marker.exists() and debs:
        info = json.loads(marker.read_text())
        if (cache / info["file"]).exists():
            return {**info, "downloaded": False}
    if not debs:
        if not state.get("apt_updated") and not _apt_has_candidate(pkg):
            _log("apt-cache shows no candidate: running apt-get update")
            _run(["apt-get", "update"])
            state["apt_updated"] = True
        _log(f"apt-get download {pkg}")
        _run(["apt-get", "-o", "APT::Sandbox::User=root", "download", pkg], cwd=cache)
        debs = sorted(cache.glob(f"{pkg}_*.deb"))
        if not debs:
            raise DataError(f"apt-get download {pkg} produced no .deb in {cache}")
        downloaded = True
    else:
        downloaded = False
    deb = debs[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    _log(f"dpkg-deb -x {deb.name}")
    _run(["dpkg-deb", "-x", str(deb), str(dest)])
    info = {
        "package": pkg,
        "version": version,
        "kind": "deb",
        "file": deb.name,
        "sha256": sha256_file(deb),
    }
    if pkg == "gcompris-qt-data":
        info["extracted"] = _extract_gcompris(dest)
    marker.write_text(json.dumps(info, indent=1) + "\n")
    return {**info, "downloaded": downloaded}


def rcc_files(data: bytes) -> dict[str, bytes]:
    """{path: bytes} of every file in a compiled Qt resource file (.rcc, format versions 1-3).

    Layout: 'qres', version, then the offsets of the node tree, the data and the names. A tree
    node is (name offset, flags) followed by (child count, first child) for a directory or
    (country, language, data offset) for a file, plus a modification time from version 2 on.
    Flag 1: zlib-compressed (a 4-byte size precedes the stream); flag 4: zstd (not supported).
    """
    if data[:4] != b"qres":
        raise DataError("not a Qt resource file (no 'qres' magic)")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    if version not in (1, 2, 3):
        raise DataError(f"Qt resource format version {version} is not supported")
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        at = names + offset
        n = struct.unpack(">H", data[at : at + 2])[0]
        return data[at + 6 : at + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}

    def walk(i: int, prefix: str) -> None:
        at = tree + i * node_size
        name_offset, flags = struct.unpack(">IH", data[at : at + 6])
        path = prefix + name(name_offset) if i else ""
        if flags & 2:
            count, first = struct.unpack(">II", data[at + 6 : at + 14])
            for child in range(first, first + count):
                walk(child, path + "/" if path else "")
            return
        offset = payload + struct.unpack(">I", data[at + 10 : at + 14])[0]
        size = struct.unpack(">I", data[offset : offset + 4])[0]
        blob = data[offset + 4 : offset + 4 + size]
        if flags & 4:
            raise DataError(f"{path}: zstd-compressed resource, not supported")
        if flags & 1:
            blob = zlib.decompress(blob[4:])
        out[path] = blob

    walk(0, "")
    return out


def _extract_gcompris(dest: Path) -> list[str]:
    """Write the photos and README files of GCOMPRIS_PHOTOS' folders out of their .rcc files
    (into <rcc dir>/<rcc name>/<path inside it>); return the written paths, relative to dest."""
    written = []
    rcc_dir = dest / GCOMPRIS_RCC_DIR
    for rcc_name, (folder, _) in GCOMPRIS_PHOTOS.items():
        rcc = rcc_dir / f"{rcc_name}.rcc"
        if not rcc.exists():
            _log(f"skip {rcc_name}.rcc: not in this version of the package")
            continue
        for member, blob in rcc_files(rcc.read_bytes()).items():
            if not member.startswith(folder + "/"):
                continue
            if not (member.endswith(".webp") or Path(member).name == "README"):
                continue
            target = rcc_dir / rcc_name / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
            written.append(target.relative_to(dest).as_posix())
    return sorted(written)


def _wheel_members(pkg: str, names: list[str]) -> list[str]:
    if pkg == "scikit-image":
        keep = {f"skimage/data/{n}" for n in SKIMAGE_CANDIDATES}
        keep |= {"skimage/data/README.txt", "skimage/data/_fetchers.py"}
    else:
        keep = {f"sklearn/datasets/images/{n}" for n in SKLEARN_IMAGES}
        keep |= {"sklearn/datasets/images/README.txt"}
    licence = re.compile(r"^[^/]+\.dist-info/(licenses/)?(LICEN[CS]E|COPYING)[^/]*$")
    return [n for n in names if n in keep or licence.match(n)]


def _fetch_wheel(pkg: str, version: str, out: Path, cache: Path) -> dict:
    dest = out / pkg
    marker = dest / SOURCE_FILE
    stem = pkg.replace("-", "_")
    wheels = sorted(cache.glob(f"{stem}-{version}-*.whl"))
    if marker.exists() and wheels:
        info = json.loads(marker.read_text())
        if (cache / info["file"]).exists() and info.get("version") == version:
            return {**info, "downloaded": False}
    downloaded = False
    if not wheels:
        _log(f"pip download --no-deps {pkg}=={version}")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(cache),
                f"{pkg}=={version}",
            ]
        )
        wheels = sorted(cache.glob(f"{stem}-{version}-*.whl"))
        if not wheels:
            raise DataError(f"pip download {pkg}=={version} produced no wheel in {cache}")
        downloaded = True
    wheel = wheels[-1]
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        members = _wheel_members(pkg, zf.namelist())
        for name in members:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    info = {
        "package": pkg,
        "version": version,
        "kind": "wheel",
        "file": wheel.name,
        "sha256": sha256_file(wheel),
        "members": sorted(members),
    }
    marker.write_text(json.dumps(info, indent=1) + "\n")
    return {**info, "downloaded": downloaded}


def fetch_sources(out: str | os.PathLike = DEFAULT_SOURCES) -> dict[str, dict]:
    """Download and unpack every source package into ``out``; return {package: info}.

    Idempotent: a package whose download and unpacked tree are present is left alone
    (``info['downloaded']`` is False for it).
    """
    out = Path(out)
    cache = out / DOWNLOADS
    cache.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(cache, 0o755)
    except OSError:  # pragma: no cover
        pass
    state: dict[str, Any] = {}
    result = {}
    for pkg in DEB_PACKAGES + HELD_OUT_PACKAGES:
        result[pkg] = _fetch_deb(pkg, out, cache, state)
    for pkg, version in PYPI_PACKAGES.items():
        result[pkg] = _fetch_wheel(pkg, version, out, cache)
    return result


# --------------------------------------------------------------------------- licences


def parse_dep5(text: str) -> list[dict[str, str]]:
    """Parse a machine-readable debian/copyright file into paragraphs (lower-case keys)."""
    paragraphs: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                paragraphs.append(cur)
            cur, key = {}, None
            continue
        if line[0] in " \t" and key is not None:
            cur[key] += "\n" + line.strip()
            continue
        m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$", line)
        if m:
            key = m.group(1).lower()
            cur[key] = m.group(2).strip()
    if cur:
        paragraphs.append(cur)
    return paragraphs


def dep5_licence(paragraphs: list[dict[str, str]], path: str) -> tuple[str, str]:
    """(licence, copyright) of an installed file under DEP-5 rules (last match wins).

    The patterns in debian/copyright are relative to the upstream source while ``path`` is
    where the file is installed, so every trailing part of ``path`` is tried.
    """
    parts = path.strip("/").split("/")
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    found = ("unknown", "")
    for para in paragraphs:
        if "files" not in para or "license" not in para:
            continue
        patterns = para["files"].split()
        if any(fnmatch.fnmatchcase(s, p) for p in patterns for s in suffixes):
            found = (para["license"].splitlines()[0].strip(), para.get("copyright", ""))
    return found


def classify_licence_text(text: str) -> tuple[str, bool]:
    """Short licence name and whether it is free to redistribute, from a licence note."""
    t = " ".join(text.lower().split())
    if "cc0" in t:
        return "CC0-1.0", True
    if "public domain" in t:
        return "public-domain", True
    if "creativecommons.org/licenses/by/2.0" in t:
        return "CC-BY-2.0", True
    if "no known copyright restrictions" in t:
        # Not a licence grant: redistribution rights are unclear, so not used.
        return "no-known-copyright-restrictions", False
    return "unknown", False


def skimage_licences(fetchers_source: str) -> dict[str, tuple[str, bool, str]]:
    """Map each data file loaded in skimage/data/_fetchers.py to (licence, free, note).

    scikit-image documents each sample image's origin and licence in the docstring of the
    function that loads it (its data README no longer lists them).
    """
    tree = ast.parse(fetchers_source)
    result: dict[str, tuple[str, bool, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        doc = ast.get_docstring(node) or ""
        files = [
            c.value.split("/")[-1]
            for c in ast.walk(node)
            if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.startswith("data/")
        ]
        licence, free = classify_licence_text(doc)
        note = ""
        for para in re.split(r"\n\s*\n", doc):
            if classify_licence_text(para)[0] == licence and licence != "unknown":
                para = re.sub(r"^\s*\w+\s*\n\s*-{3,}\s*\n", "", para)  # numpydoc header
                note = " ".join(para.split())
                break
        for f in files:
            result.setdefault(f, (licence, free, f"{node.name}(): {note}".strip()))
    return result


def sklearn_licences(readme: str) -> dict[str, tuple[str, bool, str]]:
    """Map sklearn/datasets/images/*.jpg to (licence, free, note) from its README."""
    result = {}
    for block in re.split(r"\n(?=Image:)", readme):
        m = re.match(r"Image:\s*(\S+)", block.strip())
        if not m:
            continue
        licence, free = classify_licence_text(block)
        result[m.group(1)] = (licence, free, " ".join(block.split()))
    return result


def normalise_licence(name: str) -> str:
    """'CC-BY-SA 4.0' -> 'CC-BY-SA-4.0', 'Public Domain' -> 'public-domain', 'GPLv3' -> 'GPL-3'."""
    t = " ".join(name.split())
    if t.lower() == "public domain":
        return "public-domain"
    m = re.fullmatch(r"(CC[- ]BY(?:[- ]SA)?|CC0)[- ]?(\d\.\d)", t, re.IGNORECASE)
    if m:
        return f"{m.group(1).upper().replace(' ', '-')}-{m.group(2)}"
    m = re.fullmatch(r"GPLv?(\d)(\+?)", t)
    if m:
        return f"GPL-{m.group(1)}{m.group(2)}"
    return t


def readme_licences(text: str) -> dict[str, dict[str, str]]:
    """{file: stanza} from a GCompris resource README: stanzas of 'Key: value' lines separated by
    blank lines, whose 'Files:' names one file per line (on its own line or after the key)."""
    out: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        stanza: dict[str, str] = {}
        files: list[str] = []
        key = None
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$", line)
            if m and not m.group(2).startswith("//"):
                key = m.group(1).lower()
                value = m.group(2).strip()
                if key == "files":
                    files += value.split()
                else:
                    stanza[key] = value
            elif key == "files" and line.strip():
                files += line.split()
        for f in files:
            out[f] = stanza
    return out


def scribus_licences(text: str) -> dict[str, tuple[str, str]]:
    """{template folder: (licence, copyright)} from scribus-template's copyright file, which is not
    machine-readable: sections separated by dashed lines, each 'Copyright (c) YEAR Name:' followed by
    '- Title (folder)' lines, and the section's licence text."""
    out: dict[str, tuple[str, str]] = {}
    for section in re.split(r"\n-{10,}\n", text):
        licence, free = classify_licence_text(section)
        if not free and re.search(r"GNU General Public License.*?version 2 of the License, or\s+\(at your option\)",
                                  " ".join(section.split())):
            licence = "GPL-2+"
        holder = ""
        for line in section.splitlines():
            m = re.match(r"^\s*Copyright \(c\)\s*(.*?):?\s*$", line)
            if m:
                holder = m.group(1)
                continue
            m = re.match(r"^\s*(?:[-*]\s+)?(.+?):\s*$", line)
            if m and "@" in m.group(1):  # 'Name <mail>:' opens a list under a shared year
                holder = m.group(1)
                continue
            m = re.match(r"^\s*-\s+.*\((\S+)\)\s*$", line)
            if m:
                out[m.group(1)] = (licence, holder)
    return out


# --------------------------------------------------------------------------- stamps


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
    return _role_from_stats(stamp_stats(rgba), palette, has_svg)


def _role_from_stats(s: dict[str, float], palette: bool, has_svg: bool) -> str:
    photo = (
        not has_svg
        and s["interior"] >= 200
        and s["clean"] < 0.30
        and s["top16"] < 0.35
        and (palette or s["flat"] < 0.30)
    )
    return "object" if photo else "clipart"


# --------------------------------------------------------------------------- indexing


_GROUP_SUFFIX = re.compile(r"([_-]?(mirror|left|right))?([-_ ]?\d+)?$")


def group_key(package: str, relpath: str) -> str:
    """Split key of a file: one per source photo (mirror / numbered variants share it)."""
    p = Path(relpath)
    if package == "plasma-workspace-wallpapers":
        parts = p.parts
        if "wallpapers" in parts:  # usr/share/wallpapers/<Name>/contents/images/WxH.jpg
            return f"{package}:{parts[parts.index('wallpapers') + 1]}"
    stem = _GROUP_SUFFIX.sub("", p.stem) or p.stem
    return f"{package}:{(p.parent / stem).as_posix()}"


def _unit_hash(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def assign_splits(entries: list[dict], val_fraction: float = VAL_FRACTION,
                  splits: tuple[str, str] = SPLITS) -> None:
    """Set entry['split'] in place: by group hash, stratified per (package, role).

    A group whose hash is below ``val_fraction`` goes to ``splits[1]`` ('val'), the others to
    ``splits[0]`` ('train'); the held-out packages use ('test', 'calib')."""
    strata: dict[tuple[str, str], set[str]] = {}
    for e in entries:
        strata.setdefault((e["package"], e["role"]), set()).add(e["group"])
    hashes = {g: _unit_hash(g) for gs in strata.values() for g in gs}
    split_of = {g: (splits[1] if h < val_fraction else splits[0]) for g, h in hashes.items()}
    moved: set[str] = set()
    for key in sorted(strata):
        groups = sorted(strata[key])
        if len(groups) < 2:
            continue
        for missing in splits:
            if any(split_of[g] == missing for g in groups):
                continue
            # move the group whose hash is nearest the threshold (one not moved before)
            free = [g for g in groups if g not in moved] or groups
            g = min(free, key=lambda g: (abs(hashes[g] - val_fraction), g))
            split_of[g] = missing
            moved.add(g)
    for e in entries:
        e["split"] = split_of[e["group"]]


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
            _log(f"skip {f.relative_to(root)}: no transparency, not a cut-out")
            continue
        stats = stamp_stats(rgba)
        role = _role_from_stats(stats, palette, f.with_suffix(".svg").exists())
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
            _log(f"skip {folder / stem}: not in this version of the package")
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
                _log(f"exclude {f.relative_to(root)}: not in its README")
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
            _log(f"exclude {f.relative_to(root)}: licence {licence}")
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
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(clean, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


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


# --------------------------------------------------------------------------- CLI


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def pack(index: str | os.PathLike, out: str | os.PathLike, background_side: int = 256,
         stamp_side: int = 128) -> list[dict]:
    """A compact copy of the data for another machine (a lent GPU takes tens of MB, not 950).

    Every image is stored as the scene generator would load it with these smaller limits
    (`scenes.PhotoBank`: backgrounds letterbox-trimmed and at most `background_side` on their
    shorter side, stamps cropped to their alpha and at most `stamp_side`), as PNG. For a 64 px
    model nothing is lost: a background crop spans at least 30% of the shorter side (77 px at
    256) and a stamp covers at most the canvas. The new index keeps every entry's source,
    licence, split and source size; `packed_size` and the checksum are the packed file's.
    """
    from .scenes import PhotoBank

    out = Path(out)
    bank = PhotoBank(load_index(index), max_background_side=background_side, max_stamp_side=stamp_side)
    entries = []
    for e in bank.entries:
        rel = Path("images") / Path(e["path"]).with_suffix(".png")
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        im = bank.image(e)
        im.save(dest, optimize=True)
        packed = {k: v for k, v in e.items() if k != "abs_path"}
        # width / height stay the source's: the scene generator's stamp-size rule reads them
        packed.update(path=str(rel), sha256=sha256_file(dest), packed_from=e["path"],
                      packed_size=[im.width, im.height])
        entries.append(packed)
    write_index(entries, out / "index.json")
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alit_train.data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download and unpack the source packages")
    f.add_argument("--out", default=str(DEFAULT_SOURCES))
    i = sub.add_parser("index", help="write the index of the unpacked sources")
    i.add_argument("--root", default=str(DEFAULT_SOURCES))
    i.add_argument("--out", default=str(DEFAULT_INDEX))
    a = sub.add_parser("all", help="fetch, then index")
    a.add_argument("--out", default=str(DEFAULT_SOURCES), help="sources folder")
    a.add_argument("--index", default=str(DEFAULT_INDEX))
    v = sub.add_parser("verify", help="check every indexed file against its sha256")
    v.add_argument("--index", default=str(DEFAULT_INDEX))
    k = sub.add_parser("pack", help="a compact copy for another machine (pre-scaled PNGs + index)")
    k.add_argument("out")
    k.add_argument("--index", default=str(DEFAULT_INDEX))
    k.add_argument("--background-side", type=int, default=256)
    k.add_argument("--stamp-side", type=int, default=128)
    args = ap.parse_args(argv)

    try:
        if args.cmd in ("fetch", "all"):
            t0 = time.time()
            info = fetch_sources(args.out)
            for pkg, d in info.items():
                state = "downloaded" if d["downloaded"] else "present"
                print(f"{pkg} {d['version']}: {state} ({d['file']})")
            print(f"fetch: {time.time() - t0:.1f} s, {_dir_size(Path(args.out)) / 2**20:.0f} MiB in {args.out}")
        if args.cmd in ("index", "all"):
            root = args.root if args.cmd == "index" else args.out
            out = Path(args.out if args.cmd == "index" else args.index)
            t0 = time.time()
            entries = build_index(root, base=out.resolve().parent)
            write_index(entries, out)
            print(json.dumps(summarize(entries), indent=1))
            print(f"index: {len(entries)} images -> {out} ({time.time() - t0:.1f} s)")
        if args.cmd == "pack":
            t0 = time.time()
            entries = pack(args.index, args.out, args.background_side, args.stamp_side)
            print(f"pack: {len(entries)} images -> {args.out} ({_dir_size(Path(args.out)) / 2**20:.1f} MiB, "
                  f"{time.time() - t0:.1f} s)")
        if args.cmd == "verify":
            bad = verify_index(load_index(args.index))
            print(f"{len(bad)} bad files" + "".join(f"\n  {b}" for b in bad))
            return 1 if bad else 0
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
