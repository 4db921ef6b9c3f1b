"""Where the data comes from: the registry packages, fetched and unpacked.


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

"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
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
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
PHOTO_EXTS = IMAGE_EXTS + (".webp",)  # the held-out packages' photos


class DataError(RuntimeError):
    """Fetching or indexing the registry data failed."""


def log(msg: str) -> None:
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
            log("apt-cache shows no candidate: running apt-get update")
            _run(["apt-get", "update"])
            state["apt_updated"] = True
        log(f"apt-get download {pkg}")
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
    log(f"dpkg-deb -x {deb.name}")
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
            log(f"skip {rcc_name}.rcc: not in this version of the package")
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
        log(f"pip download --no-deps {pkg}=={version}")
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
