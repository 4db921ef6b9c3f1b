"""Train / val / calib / test: the split by source photo, never by crop.


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

import hashlib
import re
from pathlib import Path

VAL_FRACTION = 0.2
SPLITS = ("train", "val")  # what assign_splits deals out
TEST_SPLIT = "test"  # the held-out packages' photos: evaluation only
CALIB_SPLIT = "calib"  # held-out photos for calibrating the selection threshold
HELD_OUT_SPLITS = (CALIB_SPLIT, TEST_SPLIT)  # no training run reads these
CALIB_FRACTION = 0.5  # of CALIB_TEST_PACKAGES' groups, by hash

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
