"""Start ALIT Explorer: `python app.py` serves the bundled model at http://127.0.0.1:7860."""

from __future__ import annotations

import argparse
import ctypes
import sys

import gradio

import alit_core
from app.explorer import ModelCache, is_karl, warm_up
from app.files import start_sweeper
from app.layout import CSS, KEEP_S, build


def cap_malloc_arenas(arenas: int = 2) -> None:
    """Ask glibc for at most `arenas` malloc arenas, as MALLOC_ARENA_MAX=2 would.

    By default glibc gives each of gradio's worker threads an arena of its own and rarely returns
    their memory: under 8 soak visitors the server grew 160 MB past its warm-up and kept rising,
    with 2 arenas it stayed within 48 MB (README, *Load and soak*). Called before any thread starts;
    a no-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # -8 is M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    cap_malloc_arenas()
    p = argparse.ArgumentParser(description="ALIT Explorer: see how an adaptive-length image tokenizer thinks")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--checkpoint", help="default model: a checkpoint path, bundled:<name> or official:<name> "
                                        "(default: the bundled model)")
    p.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.add_argument("--max-upload-mb", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=2, help="rollouts computed at once")
    p.add_argument("--max-models", type=int, default=2,
                   help="models kept in memory besides the default one (least recently used are dropped)")
    p.add_argument("--keep-minutes", type=float, default=KEEP_S / 60,
                   help="a visitor's run, and the files served for it, are dropped this long after they were made "
                        f"(default {KEEP_S / 60:g})")
    p.add_argument("--max-sessions", type=int, default=64,
                   help="visitors' sessions kept in memory, each with its last run and page values (about 10 MB; "
                        "a comparison adds two runs); "
                        "the least recently active go first (default 64)")
    p.add_argument("--local-checkpoints", action=argparse.BooleanOptionalAction, default=None,
                   help="let visitors load checkpoint files by path, and the Dataset tab open results files and "
                        "image folders by path (default: only when serving this machine alone, i.e. a loopback "
                        "--host and no --share)")
    args = p.parse_args(argv)
    local = args.local_checkpoints
    if local is None:
        local = args.host in ("127.0.0.1", "localhost", "::1") and not args.share

    devices = alit_core.available_devices()
    device = args.device or devices[0]
    cache = ModelCache(args.checkpoint, device, capacity=args.max_models, local_paths=local)
    try:
        tok = cache.get()  # load once at start-up, so the first visitor does not wait and errors show here
    except alit_core.ALITError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if is_karl(tok):  # the page opens on the default model's ALIT settings (criteria, iterations, halting)
        print("error: --checkpoint takes an ALIT model; KARL models are chosen under Model in the page",
              file=sys.stderr)
        return 2
    warm_up(tok)
    keep_s = max(1.0, args.keep_minutes * 60)
    demo = build(cache, devices, device, keep_s=keep_s)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=64)
    # gradio deletes old files from its cache but not their folders (one per file): swept here
    start_sweeper(gradio.utils.get_upload_folder(), every_s=max(1.0, keep_s / 4), older_than_s=keep_s)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                max_file_size=int(args.max_upload_mb * 1024 * 1024), show_error=True, css=CSS,
                state_session_capacity=max(1, args.max_sessions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
