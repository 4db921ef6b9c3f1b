"""A compact copy of the data for another machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..scenes import PhotoBank
from .index import load_index, write_index
from .sources import sha256_file


def dir_size(path: Path) -> int:
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
