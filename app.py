"""Start ALIT Explorer: `python app.py` serves the bundled model at http://127.0.0.1:7860."""

from __future__ import annotations

import argparse
import sys

import alit_core
from app.explorer import ModelCache, warm_up
from app.layout import CSS, build


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="ALIT Explorer: see how an adaptive-length image tokenizer thinks")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--checkpoint", help="default model: a checkpoint path or official:<name> (default: bundled)")
    p.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.add_argument("--max-upload-mb", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=2, help="rollouts computed at once")
    p.add_argument("--max-models", type=int, default=2,
                   help="models kept in memory besides the default one (least recently used are dropped)")
    p.add_argument("--local-checkpoints", action=argparse.BooleanOptionalAction, default=None,
                   help="let visitors load checkpoint files by path (default: only when serving this machine "
                        "alone, i.e. a loopback --host and no --share)")
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
    warm_up(tok)
    demo = build(cache, devices, device)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=64)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                max_file_size=int(args.max_upload_mb * 1024 * 1024), show_error=True, css=CSS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
