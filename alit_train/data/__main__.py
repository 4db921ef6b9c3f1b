"""python -m alit_train.data {fetch,index,all,verify,pack}: see alit_train/data/__init__.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .index import build_index, load_index, summarize, verify_index, write_index
from .packing import dir_size, pack
from .sources import DEFAULT_INDEX, DEFAULT_SOURCES, DataError, fetch_sources


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alit_train.data", description=PACKAGE_DOC.split("\n")[0])
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
            print(f"fetch: {time.time() - t0:.1f} s, {dir_size(Path(args.out)) / 2**20:.0f} MiB in {args.out}")
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
            print(f"pack: {len(entries)} images -> {args.out} ({dir_size(Path(args.out)) / 2**20:.1f} MiB, "
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
