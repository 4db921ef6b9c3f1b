"""Load and soak: `python -m app.soak [--visitors 8] [--minutes 3] [--concurrency 2] [--url URL]`.

N simulated visitors use the explorer at once through gradio_client, each in its own session, as a
page would: an Explore run of a sample (streamed), re-selection with each criterion, attention
views, Export (and the exported files fetched, as a browser does), now and then a Batch (images,
a zip and a broken file) and a bad file on Explore or the /tokenize API; every few visits the
visitor leaves and a new one (a new session) arrives. It reports:

- p50/p95 latency per action (from the request, uploads included, to the last update);
- errors: on good files (must be 0), and whether every bad file got the app's clear message
  (the status line, or /tokenize's error, naming the file) rather than a crash;
- what a visitor beyond --concurrency sees: jobs that waited in the queue, the queue positions
  (gradio's `rank`, 0 = next) and waits they were told, and whether any of them failed;
- the server's resident memory (VmRSS from /proc/<pid>/status) after the warm-up and at the end,
  and the size of its temporary files (gradio's cache and the app's own folders) over time.

The bound it checks (exit status 1 when broken): end RSS <= warm-up RSS + --max-rss-growth-mb, and
temporary files at the end <= --max-temp-mb; plus 0 errors on good files, every bad file refused
with its message, and no queued job failed.

Without --url it starts `python app.py` on a free port with its own TMPDIR and GRADIO_TEMP_DIR
(so the temporary files counted are this server's alone), a short --keep-minutes (default 1) and
--max-sessions twice the visitors, so that runs, sessions and files are dropped within the soak and
the memory after the warm-up is the steady state's; with --url it finds the server's
process by its listening port (same machine only) for the memory figures, and measures the
folders given with --temp-dir.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .benchmark import ROOT, explore_inputs, free_port, start_app

SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))
L1, PSNR, BUDGET = "L1 threshold", "PSNR target (dB)", "token budget"  # app.choices.CRITERIA
ACTIONS = ("explore", "explore_first_iteration", "reselect", "attention", "export", "fetch_files", "batch",
           "tokenize", "bad_explore", "bad_tokenize")
REPORT_KEYS = ("command", "settings", "machine", "latency_s", "errors", "bad_files", "queue", "memory", "temp_files",
               "samples", "bound", "passed")


# --- the server ------------------------------------------------------------------------------------
def start_server(port: int, workdir: Path, concurrency: int, keep_minutes: float, max_sessions: int,
                 timeout: float = 240.0) -> tuple[subprocess.Popen, list[Path]]:
    """`python app.py` with temporary folders of its own; (process, the folders to measure)."""
    tmp, cache = workdir / "tmp", workdir / "gradio"
    tmp.mkdir(parents=True)
    cache.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_TEMP_DIR": str(cache), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = start_app(port, workdir / "app.log", timeout, env=env,
                     args=("--concurrency", concurrency, "--keep-minutes", keep_minutes, "--max-sessions", max_sessions))
    return proc, [tmp, cache]


def pid_listening_on(port: int) -> int | None:
    """The process (of this user) listening on TCP `port` on this machine, from /proc; None if not found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # 0A: LISTEN
                inodes.add(cols[9])
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of `pid` in MB (VmRSS), or None."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def folder_size(paths: list[Path]) -> dict:
    """Bytes (as MB), files and folders under `paths` (what `du --apparent-size` would add up, plus counts)."""
    size, files, dirs = 0, 0, 0
    for root in paths:
        for dirpath, dirnames, filenames in os.walk(root):
            dirs += len(dirnames)
            for name in filenames:
                try:
                    size += os.lstat(os.path.join(dirpath, name)).st_size
                    files += 1
                except OSError:
                    continue
    return {"mb": size / 2**20, "files": files, "folders": dirs}


# --- the visitors -------------------------------------------------------------------------------------
def bad_files(folder: Path) -> list[Path]:
    """Files the app must refuse with a message: a broken PNG, text named .jpg, a truncated JPEG."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    text = folder / "notes.jpg"
    text.write_text("just some text, not a picture\n" * 4)
    buf = io.BytesIO()
    Image.open(SAMPLES[0]).convert("RGB").save(buf, format="JPEG")
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    return [broken, text, truncated]


def sample_zip(folder: Path) -> Path:
    path = folder / "two_samples.zip"
    with zipfile.ZipFile(path, "w") as z:
        for p in SAMPLES[:2]:
            z.write(p, f"zipped/{p.name}")
    return path


@dataclass
class Tally:
    """Everything the visitors measured; appended to from their threads under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict = field(default_factory=lambda: defaultdict(list))
    good_errors: list = field(default_factory=list)  # (action, message)
    bad: list = field(default_factory=list)  # (action, file, refused with its message?, what came back)
    jobs: list = field(default_factory=list)  # per submitted job: queue details
    sessions: int = 0

    def time(self, action: str, seconds: float) -> None:
        with self.lock:
            self.latency[action].append(seconds)

    def error(self, action: str, message: str) -> None:
        with self.lock:
            self.good_errors.append((action, message[:300]))


def queue_details(job, submitted: float, action: str, failed: bool) -> dict:
    """From a finished job's status updates: the queue positions it was told and how long it waited."""
    from gradio_client.utils import Status

    ranks, started = [], None
    updates = job.communicator.updates if job.communicator else None
    while updates is not None and not updates.empty():
        u = updates.get_nowait()
        code = getattr(u, "code", None)
        if code == Status.IN_QUEUE and u.rank is not None:
            ranks.append((u.rank, u.queue_size))
        if code in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS) and started is None and u.time:
            started = u.time.timestamp()
    return {"action": action, "ranks": [r for r, _ in ranks], "queue_sizes": [q for _, q in ranks],
            "wait_s": None if started is None else max(0.0, started - submitted), "failed": failed}


class Visitor:
    """One simulated visitor: sessions of explore -> re-select -> attention -> export, with batches and bad files."""

    def __init__(self, index: int, url: str, deadline: float, tally: Tally, bad: list[Path], zipped: Path,
                 visits_per_session: int, seed: int):
        self.index, self.url, self.deadline, self.tally = index, url, deadline, tally
        self.bad, self.zipped, self.visits_per_session = bad, zipped, visits_per_session
        self.rng = random.Random(seed)
        self.client = None
        # the Token slider's maximum as this session's page has it: each attention view sets it to the
        # last token of its iteration; after a run, at least the 32 tokens of iteration 0 exist
        self.token_max = 31

    def new_session(self) -> None:
        from gradio_client import Client

        self.client = Client(self.url, verbose=False, download_files=False)
        with self.tally.lock:
            self.tally.sessions += 1

    def call(self, action: str, *args, api_name: str, stream_first: str | None = None, refusal: bool = False):
        """Submit, wait, time it and record its queue details; the outputs of the last update.
        `refusal`: the app is expected to raise (a bad file on /tokenize); that is not a failure."""
        t0 = time.time()
        job = self.client.submit(*args, api_name=api_name)
        out, failed = None, True
        try:
            if stream_first:  # a streamed run: the first update is the first iteration
                for i, out in enumerate(job):
                    if i == 0:
                        self.tally.time(stream_first, time.time() - t0)
            out = job.result()
            failed = False
            return out
        finally:
            self.tally.time(action, time.time() - t0)
            with self.tally.lock:
                self.tally.jobs.append(queue_details(job, t0, action, failed and not refusal))

    def run(self) -> None:
        visit = 0
        try:
            while time.time() < self.deadline:
                if visit % self.visits_per_session == 0:
                    self.new_session()
                self.visit(visit)
                visit += 1
        except Exception as err:  # a visitor's own crash is an error too, not a silent stop
            self.tally.error("visitor", f"visitor {self.index} stopped: {type(err).__name__}: {err}")

    def guarded(self, action: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as err:
            self.tally.error(action, f"{type(err).__name__}: {err}")

    def visit(self, n: int) -> None:
        image = self.rng.choice(SAMPLES)
        ok = True
        try:
            self.explore(image)
            self.token_max = 31
        except Exception as err:
            self.tally.error("explore", f"{image.name}: {type(err).__name__}: {err}")
            ok = False
        if ok:
            for kind in self.rng.sample([L1, PSNR, BUDGET], 2):
                self.guarded("reselect", self.reselect, kind)
            for _ in range(3):
                self.guarded("attention", self.attention)
            self.guarded("export", self.export)
        k = n + self.index  # visitors take their turns at the rarer actions at different times
        if k % 3 == 1:
            bad = self.rng.choice(self.bad)
            self.guarded("bad_explore" if k % 2 else "bad_tokenize",
                         self.bad_explore if k % 2 else self.bad_tokenize, bad)
        if k % 4 == 2:
            self.guarded("batch", self.batch)
        if k % 4 == 0:
            self.guarded("tokenize", self.tokenize, image)

    # --- actions --------------------------------------------------------------------------------
    def explore(self, image: Path) -> None:
        out = self.call("explore", *explore_inputs(image, 8, 0.0574), api_name="/explore",
                        stream_first="explore_first_iteration")
        status, metrics = out[0], out[1]
        if "alit-status-error" in (status or ""):
            raise RuntimeError(f"refused: {status}")
        if "**Selected**" not in (metrics or ""):
            raise RuntimeError(f"no selection at the end: {metrics!r}")
        self.fetch(out)

    def fetch(self, outputs) -> None:
        """Fetch the served files of a result, as the page does (each must arrive whole)."""
        import httpx

        urls = []

        def walk(x):
            if isinstance(x, dict):
                if isinstance(x.get("url"), str) and x["url"].startswith("http"):
                    urls.append(x["url"])
                for v in x.values():
                    walk(v)
            elif isinstance(x, (list, tuple)):
                for v in x:
                    walk(v)

        walk(outputs)
        t0 = time.time()
        with httpx.Client(timeout=60) as http:
            for url in urls:
                r = http.get(url)
                # a file cut short (served while still being written) arrives shorter than announced
                if r.status_code != 200 or not r.content or (
                        "content-length" in r.headers
                        and int(r.headers["content-length"]) != r.num_bytes_downloaded):
                    raise RuntimeError(f"served file {url.rsplit('/', 1)[-1]}: HTTP {r.status_code}, "
                                       f"{len(r.content)} bytes")
        if urls:
            self.tally.time("fetch_files", time.time() - t0)

    def reselect(self, kind: str) -> None:
        l1 = self.rng.choice([0.03, 0.0574, 0.09])
        psnr = self.rng.choice([20.0, 25.0, 30.0])
        budget = self.rng.choice([32, 96, 130, 256])
        out = self.call("reselect", kind, l1, psnr, budget, "png_bpp", api_name="/reselect")
        text = " ".join(o for o in out if isinstance(o, str))
        if "alit-status-error" in text or "**Selected**" not in text:
            raise RuntimeError(f"{kind}: {text[:200]!r}")

    def attention(self) -> None:
        """Move the Iteration slider, or the Token slider within its range, as a page can."""
        it = self.rng.randrange(8)
        token = self.rng.randrange(min(self.token_max, 32 * (it + 1) - 1) + 1)
        head = self.rng.choice(["mean", "0", "1", "2"])
        out = self.call("attention", it, token, head, self.rng.choice([0.1, 0.5, 0.9]), api_name="/attention")
        text = " ".join(o for o in out if isinstance(o, str))
        if "alit-status-error" in text or f"Iteration {it} " not in text:
            raise RuntimeError(f"attention at iteration {it}: {text[:200]!r}")
        self.token_max = 32 * (it + 1) - 1

    def export(self) -> None:
        out = self.call("export", api_name="/export")
        files, status = out[0], out[1]
        if "alit-status-error" in (status or "") or not files or len(files) != 4:
            raise RuntimeError(f"export: {out!r}"[:300])
        self.fetch(files)

    def batch(self) -> None:
        from gradio_client import handle_file

        bad = self.bad[0]
        files = [handle_file(str(p)) for p in (*SAMPLES[2:5], self.zipped, bad)]
        out = self.call("batch", files, "bundled model", L1, 0.0574, 25, 128, "png_bpp", 0.05, api_name="/batch")
        status, table = out[0], out[1]
        if isinstance(table, dict) and table.get("__type__") == "update":  # gr.update(value=..., headers=...)
            table = table.get("value")
        rows = table.get("data") if isinstance(table, dict) else None
        if "alit-status-error" in (status or "") or not rows or len(rows) != 5:
            raise RuntimeError(f"batch: {status!r}, {rows!r}"[:300])
        # the broken file is skipped and named; that is the clear refusal of a bad file in a batch
        with self.tally.lock:
            self.tally.bad.append(("batch", bad.name, bad.name in status and "skipped" in status, status[:200]))

    def tokenize(self, image: Path) -> None:
        from gradio_client import handle_file

        out = self.call("tokenize", handle_file(str(image)), 0.0574, "deterministic", 8, api_name="/tokenize")
        if len(out.get("iterations", [])) != 8:
            raise RuntimeError(f"tokenize: {out!r}"[:300])

    def bad_explore(self, bad: Path) -> None:
        out = self.call("bad_explore", *explore_inputs(bad, 8, 0.0574), api_name="/explore")
        status = out[0] or ""
        clear = "alit-status-error" in status and bad.name in status
        with self.tally.lock:
            self.tally.bad.append(("bad_explore", bad.name, clear, status[:200]))

    def bad_tokenize(self, bad: Path) -> None:
        from gradio_client import handle_file

        try:
            out = self.call("bad_tokenize", handle_file(str(bad)), 0.0574, "deterministic", 8, api_name="/tokenize",
                            refusal=True)
            clear, said = False, f"accepted: {out!r}"[:200]
        except Exception as err:  # gradio_client raises the app's gr.Error as AppError with its message
            said = str(err)
            clear = type(err).__name__ == "AppError" and bad.name in said
        with self.tally.lock:
            self.tally.bad.append(("bad_tokenize", bad.name, clear, said[:200]))


# --- the report -----------------------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    values = sorted(values)
    p95 = values[min(len(values) - 1, max(0, round(0.95 * len(values)) - 1))]
    return {"n": len(values), "p50": statistics.median(values), "p95": p95, "max": values[-1]}


def check_bound(report: dict, max_rss_growth_mb: float, max_temp_mb: float) -> dict:
    """The soak's verdict: each check with its value and limit, and whether all held."""
    mem, temp = report["memory"], report["temp_files"]
    checks = {
        "good_file_errors": {"value": report["errors"]["good_files"], "limit": 0},
        "bad_files_without_clear_message": {"value": report["bad_files"]["unclear"], "limit": 0},
        "queued_jobs_failed": {"value": report["queue"]["queued_failed"], "limit": 0},
    }
    if mem.get("warm_up_rss_mb") is not None and mem.get("end_rss_mb") is not None:
        checks["rss_growth_mb"] = {"value": round(mem["end_rss_mb"] - mem["warm_up_rss_mb"], 1),
                                   "limit": max_rss_growth_mb}
    if temp.get("end") is not None:
        checks["temp_files_end_mb"] = {"value": round(temp["end"]["mb"], 1), "limit": max_temp_mb}
    for c in checks.values():
        c["held"] = c["value"] <= c["limit"]
    return {"checks": checks, "held": all(c["held"] for c in checks.values())}


def markdown(report: dict) -> str:
    s, mem, temp, q, m = report["settings"], report["memory"], report["temp_files"], report["queue"], report["machine"]
    lines = [f"# Load and soak: {s['visitors']} visitors, {s['minutes']:g} min, --concurrency {s['concurrency']}",
             "", f"`{report['command']}`", "",
             f"Machine: {m['cpus']} CPUs, load average (1 min) {m['load_before'][0]:.2f} before, "
             f"{m['load_after'][0]:.2f} after; {m['platform']}.", "",
             f"{report['sessions']} sessions, {sum(v['n'] for v in report['latency_s'].values())} timed actions.", "",
             "| action | n | p50 (s) | p95 (s) | max (s) |", "|---|---:|---:|---:|---:|"]
    for name, v in report["latency_s"].items():
        if v["n"]:
            lines.append(f"| {name} | {v['n']} | {v['p50']:.3f} | {v['p95']:.3f} | {v['max']:.3f} |")
    e, b = report["errors"], report["bad_files"]
    lines += ["", f"Errors on good files: **{e['good_files']}**"
              + (f" (first: {e['examples'][0]})" if e["examples"] else "") + ".",
              f"Bad files: {b['sent']} sent, {b['refused_with_message']} refused with the app's message naming the "
              f"file, {b['unclear']} without it" + (f" (e.g. {b['example']})" if b.get("example") else "") + ".", "",
              f"Queue (visitors beyond --concurrency {s['concurrency']}): {q['queued_jobs']} of {q['jobs']} jobs "
              f"waited, told queue positions up to {q['max_rank']} (0 = next), wait p50 {q['wait_p50_s']} s, p95 "
              f"{q['wait_p95_s']} s; {q['queued_failed']} of them failed.", ""]
    fmt = (lambda v: "n/a" if v is None else f"{v:.0f} MB")
    lines += [f"Server memory (VmRSS): {fmt(mem.get('start_rss_mb'))} at the start, {fmt(mem.get('warm_up_rss_mb'))} "
              f"after the {s['warmup_s']:g} s warm-up, {fmt(mem.get('peak_rss_mb'))} at most, "
              f"{fmt(mem.get('end_rss_mb'))} at the end."]
    if temp.get("end") is not None:
        lines.append(f"Temporary files ({', '.join(temp['folders'])}): {temp['start']['mb']:.1f} MB at the start, "
                     f"{temp['peak_mb']:.1f} MB at most, {temp['end']['mb']:.1f} MB in {temp['end']['files']} files "
                     f"and {temp['end']['folders']} folders at the end.")
    lines += ["", "| check | value | limit | held |", "|---|---:|---:|---|"]
    for name, c in report["bound"]["checks"].items():
        lines.append(f"| {name} | {c['value']} | {c['limit']} | {'yes' if c['held'] else '**NO**'} |")
    lines += ["", f"**Bound {'held' if report['passed'] else 'BROKEN'}.**", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="load and soak the explorer with simulated visitors (gradio_client)")
    p.add_argument("--url", help="a running app on this machine (default: start `python app.py` on a free port)")
    p.add_argument("--visitors", type=int, default=8)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=2, help="the server's --concurrency (passed to app.py)")
    p.add_argument("--keep-minutes", type=float, default=1.0,
                   help="the server's --keep-minutes: short, so runs and files are dropped within the soak")
    p.add_argument("--max-sessions", type=int, default=None,
                   help="the server's --max-sessions: twice the visitors by default, reached within the soak")
    p.add_argument("--visits-per-session", type=int, default=3, help="a visitor starts a new session this often")
    p.add_argument("--warmup", type=float, default=60.0,
                   help="seconds after which the warm-up memory is read (at most a third of the soak)")
    p.add_argument("--max-rss-growth-mb", type=float, default=150.0,
                   help="bound: end RSS <= warm-up RSS + this (default 150)")
    p.add_argument("--max-temp-mb", type=float, default=400.0, help="bound: temporary files at the end <= this")
    p.add_argument("--temp-dir", type=Path, action="append", default=[],
                   help="with --url: a folder of the server's temporary files to measure (repeatable)")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory/temp samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "app_soak.json",
                   help="JSON report; the markdown one is written beside it (.md)")
    args = p.parse_args(argv)
    if args.max_sessions is None:
        args.max_sessions = 2 * args.visitors
    command = "python -m app.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    duration = max(1.0, args.minutes * 60)
    warmup = min(args.warmup, duration / 3)

    workdir = Path(tempfile.mkdtemp(prefix="alit_soak_"))
    proc, pid, temp_dirs = None, None, list(args.temp_dir)
    try:
        if args.url is None:
            port = free_port()
            print(f"starting the app on port {port} (its files and log under {workdir}) ...", flush=True)
            proc, temp_dirs = start_server(port, workdir / "server", args.concurrency, args.keep_minutes,
                                           args.max_sessions)
            args.url, pid = f"http://127.0.0.1:{port}/", proc.pid
        else:
            port = urlparse(args.url).port or 80
            pid = pid_listening_on(port)
        bad, zipped = bad_files(workdir / "inputs"), sample_zip(workdir)
        samples, stop = [], threading.Event()
        t_start = time.time()

        def sample(label: str | None = None) -> dict:
            row = {"t_s": round(time.time() - t_start, 1), "rss_mb": rss_mb(pid)}
            if temp_dirs:
                row["temp"] = folder_size(temp_dirs)
            if label:
                row["label"] = label
            samples.append(row)
            return row

        def sampler():
            while not stop.wait(args.sample_every):
                sample()

        start_row = sample("start")
        load_before = os.getloadavg()
        tally = Tally()
        deadline = t_start + duration
        visitors = [Visitor(i, args.url, deadline, tally, bad, zipped, max(1, args.visits_per_session),
                            args.seed * 1000 + i) for i in range(args.visitors)]
        threads = [threading.Thread(target=v.run, name=f"visitor-{v.index}") for v in visitors]
        sampler_thread = threading.Thread(target=sampler, daemon=True)
        sampler_thread.start()
        print(f"{args.visitors} visitors for {args.minutes:g} min against {args.url} ...", flush=True)
        for i, t in enumerate(threads):
            t.start()
            time.sleep(min(0.5, duration / 50))  # they arrive one after another, not in one instant
        time.sleep(max(0.0, t_start + warmup - time.time()))
        warm_row = sample("warm-up")
        for t in threads:
            t.join()
        stop.set()
        time.sleep(1.0)  # the last responses' files are written
        end_row = sample("end")
        load_after = os.getloadavg()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    jobs = tally.jobs
    # gradio tells every job its position (0 = next, also when it starts at once): a job waited when
    # it was told it had others before it, or was kept waiting half a second before it started
    queued = [j for j in jobs if max(j["ranks"], default=0) >= 1 or (j["wait_s"] or 0) >= 0.5]
    waits = [j["wait_s"] for j in queued if j["wait_s"] is not None]
    rss_values = [s["rss_mb"] for s in samples if s.get("rss_mb") is not None]
    bad_rows = tally.bad
    unclear = [b for b in bad_rows if not b[2]]
    report = {
        "command": command,
        "settings": {"url": args.url, "visitors": args.visitors, "minutes": args.minutes,
                     "concurrency": args.concurrency, "keep_minutes": args.keep_minutes,
                     "max_sessions": args.max_sessions, "visits_per_session": args.visits_per_session,
                     "warmup_s": warmup, "server_started_here": proc is not None, "server_pid": pid},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": load_before,
                    "load_after": load_after},
        "sessions": tally.sessions,
        "latency_s": {a: percentiles(tally.latency.get(a, [])) for a in ACTIONS},
        "errors": {"good_files": len(tally.good_errors),
                   "by_action": {a: sum(1 for e in tally.good_errors if e[0] == a)
                                 for a in {e[0] for e in tally.good_errors}},
                   "examples": [f"{a}: {m}" for a, m in tally.good_errors[:5]]},
        "bad_files": {"sent": len(bad_rows), "refused_with_message": len(bad_rows) - len(unclear),
                      "unclear": len(unclear), "by_action": {a: sum(1 for b in bad_rows if b[0] == a)
                                                             for a in {b[0] for b in bad_rows}},
                      "example": f"{unclear[0][0]} {unclear[0][1]}: {unclear[0][3]}" if unclear else
                      (f"{bad_rows[0][0]} {bad_rows[0][1]}: {bad_rows[0][3]}" if bad_rows else None)},
        "queue": {"jobs": len(jobs), "queued_jobs": len(queued),
                  "max_rank": max((r for j in jobs for r in j["ranks"]), default=None),
                  "max_queue_size": max((q for j in jobs for q in j["queue_sizes"] if q is not None), default=None),
                  "wait_p50_s": None if not waits else round(statistics.median(waits), 3),
                  "wait_p95_s": percentiles(waits)["p95"] and round(percentiles(waits)["p95"], 3),
                  "queued_failed": sum(1 for j in queued if j["failed"]),
                  "ranks_seen": sorted({r for j in jobs for r in j["ranks"]})},
        "memory": {"start_rss_mb": start_row["rss_mb"], "warm_up_rss_mb": warm_row["rss_mb"],
                   "end_rss_mb": end_row["rss_mb"], "peak_rss_mb": max(rss_values) if rss_values else None},
        "temp_files": {"folders": [str(d) for d in temp_dirs],
                       "start": start_row.get("temp"), "warm_up": warm_row.get("temp"), "end": end_row.get("temp"),
                       "peak_mb": max((s["temp"]["mb"] for s in samples if "temp" in s), default=None)},
        "samples": samples,
    }
    report["bound"] = check_bound(report, args.max_rss_growth_mb, args.max_temp_mb)
    report["passed"] = report["bound"]["held"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    md = markdown(report)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    print(f"written: {args.out} and {args.out.with_suffix('.md')}")
    if report["passed"] or proc is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"the server's log and files are kept in {workdir}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
