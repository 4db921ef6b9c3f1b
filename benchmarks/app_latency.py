"""How long the Explore tab makes a user wait: `python -m benchmarks.app_latency [--url URL] [--repeats 5]`.

Through gradio_client, as a page would, it submits the Explore tab's streamed run (/explore) for
each image, several times, one request at a time, and measures from the request (the upload
included) to the first streamed iteration, to the last iteration, and to the end of the run (the
selection-dependent plots). It prints medians and spread and writes JSON. Without --url it starts
`python app.py` (the bundled model) on a free port and stops it afterwards.

Targets (issue 4): first iteration under 1 s, every iteration under 3 s. Results are only as good
as the machine is idle: the load average is recorded alongside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"first_iteration_s": 1.0, "last_iteration_s": 3.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, log_path: Path, timeout: float = 180.0, args: tuple = (),
              env: dict | None = None) -> subprocess.Popen:
    """`python app.py --port PORT *args`, returned once it answers; SystemExit with its log if it does not."""
    from gradio_client import Client

    # A log file, not a pipe: nobody reads the app's output while it is measured.
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *map(str, args)], cwd=ROOT, env=env,
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited:\n{log_path.read_text()[-2000:]}")
        try:
            Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
            return proc
        except Exception:
            time.sleep(1)
    proc.kill()
    raise SystemExit(f"the app did not start within {timeout:.0f} s; its log: {log_path}")


def explore_inputs(image: Path, iterations: int, l1: float = 0.07) -> tuple:
    """The Explore tab's inputs for /explore (app.handlers.EXPLORE_SETTINGS after the image), by position as
    gradio_client sends them: the bundled model on the CPU in float32, L1 criterion, deterministic halting."""
    from gradio_client import handle_file

    return (handle_file(str(image)), "bundled model", "cpu", "float32", "L1 threshold", l1, 25, 128, iterations,
            "deterministic", 0, -1, "png_bpp", 0.05)


def measure(client, image: Path, iterations: int) -> dict:
    """One streamed Explore run: seconds from the request to the first iteration, the last one, and the end."""
    last_marker = f"**Iteration {iterations - 1}**"  # numbered from 0
    t0 = time.perf_counter()
    job = client.submit(*explore_inputs(image, iterations), api_name="/explore")
    times, first, last = [], None, None
    for out in job:  # one output per yield of the handler: each iteration, then the final views
        now = time.perf_counter() - t0
        times.append(now)
        first = first if first is not None else now
        status, metrics = out[0], out[1]  # the page's status line and metrics (app.layout.EXPLORE_OUTPUTS)
        if isinstance(status, str) and "⚠️" in status:
            raise RuntimeError(f"the app refused {image.name}: {status}")
        if last is None and isinstance(metrics, str) and metrics.startswith(last_marker):
            last = now
    job.result()
    done = time.perf_counter() - t0
    return {"image": image.name, "first_iteration_s": first, "last_iteration_s": last, "done_s": done,
            "updates": len(times)}


def spread(values: list[float]) -> dict:
    values = sorted(values)
    q = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
    return {"median": statistics.median(values), "p10": q[0], "p90": q[-1], "min": values[0], "max": values[-1],
            "n": len(values)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="latency of the Explore tab, through gradio_client")
    p.add_argument("--url", help="a running app (default: start `python app.py` on a free port)")
    p.add_argument("--images", nargs="+", type=Path,
                   default=sorted((ROOT / "assets" / "samples").glob("*.png")), help="default: the sample images")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per image")
    p.add_argument("--iterations", type=int, default=8, choices=range(1, 9), metavar="1..8",
                   help="iterations per run (default: 8, the most the page allows)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "app_latency.json")
    args = p.parse_args(argv)

    from gradio_client import Client

    proc = None
    if args.url is None:
        port = free_port()
        log = Path(tempfile.mkdtemp(prefix="alit_bench_")) / "app.log"
        print(f"starting the app on port {port} (log: {log}) ...", flush=True)
        proc = start_app(port, log)
        args.url = f"http://127.0.0.1:{port}/"
    try:
        # Results as URLs: the page fetches its small images itself, after the message arrives.
        client = Client(args.url, verbose=False, download_files=False)
        load_before = os.getloadavg()
        cold = measure(client, args.images[0], args.iterations)  # first request: warms caches, reported apart
        runs = [measure(client, image, args.iterations) for _ in range(args.repeats) for image in args.images]
        load_after = os.getloadavg()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)

    summary = {k: spread([r[k] for r in runs]) for k in ("first_iteration_s", "last_iteration_s", "done_s")}
    per_image = {img.name: {k: statistics.median(r[k] for r in runs if r["image"] == img.name)
                            for k in ("first_iteration_s", "last_iteration_s", "done_s")} for img in args.images}
    report = {
        "url": args.url, "iterations": args.iterations, "repeats": args.repeats,
        "images": [str(i) for i in args.images], "targets_s": TARGETS,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1_5_15_before": load_before, "load_average_1_5_15_after": load_after},
        "cold_first_request": cold, "summary": summary, "per_image_median": per_image, "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))

    print(f"{len(runs)} streamed Explore runs of {args.iterations} iterations ({args.repeats} x "
          f"{len(args.images)} images), one at a time, {args.url}")
    print(f"load average before/after (1 min): {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"cold first request: first iteration {cold['first_iteration_s']:.3f} s, "
          f"last {cold['last_iteration_s']:.3f} s")
    print(f"{'':22}{'median':>8}{'p10':>8}{'p90':>8}{'min':>8}{'max':>8}   target")
    for key, label in (("first_iteration_s", "first iteration (s)"), ("last_iteration_s", "last iteration (s)"),
                       ("done_s", "all views (s)")):
        s = summary[key]
        target = TARGETS.get(key)
        verdict = "" if target is None else f"< {target:g} s: {'met' if s['median'] < target else 'MISSED'}"
        print(f"{label:22}{s['median']:8.3f}{s['p10']:8.3f}{s['p90']:8.3f}{s['min']:8.3f}{s['max']:8.3f}   {verdict}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
