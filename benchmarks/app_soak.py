"""Load and soak: `python -m benchmarks.app_soak [--visitors 8] [--minutes 3] [--concurrency 2] [--url URL]`.

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
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from .app_latency import ROOT, free_port, start_app
from .soak_visitors import Tally, Visitor, bad_files, sample_zip

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


def parse_args(argv: list[str] | None):
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
    return args


class Sampler:
    """The server's memory (and its temporary files' size) now, and every `every` seconds in a thread."""

    def __init__(self, pid: int | None, temp_dirs: list[Path], every: float):
        self.pid, self.temp_dirs, self.every = pid, temp_dirs, every
        self.rows: list[dict] = []
        self.t_start = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self, label: str | None = None) -> dict:
        row = {"t_s": round(time.time() - self.t_start, 1), "rss_mb": rss_mb(self.pid)}
        if self.temp_dirs:
            row["temp"] = folder_size(self.temp_dirs)
        if label:
            row["label"] = label
        self.rows.append(row)
        return row

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def visit(args, workdir: Path, sampler: Sampler, warmup: float) -> tuple[Tally, dict]:
    """Every visitor's run against args.url until the soak's end; (what they measured, labelled samples)."""
    bad, zipped = bad_files(workdir / "inputs"), sample_zip(workdir)
    duration = max(1.0, args.minutes * 60)
    marks = {"start": sampler.sample("start"), "load_before": os.getloadavg()}
    tally = Tally()
    deadline = sampler.t_start + duration
    visitors = [Visitor(i, args.url, deadline, tally, bad, zipped, max(1, args.visits_per_session),
                        args.seed * 1000 + i) for i in range(args.visitors)]
    threads = [threading.Thread(target=v.run, name=f"visitor-{v.index}") for v in visitors]
    sampler.start()
    print(f"{args.visitors} visitors for {args.minutes:g} min against {args.url} ...", flush=True)
    for t in threads:
        t.start()
        time.sleep(min(0.5, duration / 50))  # they arrive one after another, not in one instant
    time.sleep(max(0.0, sampler.t_start + warmup - time.time()))
    marks["warm_up"] = sampler.sample("warm-up")
    for t in threads:
        t.join()
    sampler.stop()
    time.sleep(1.0)  # the last responses' files are written
    marks["end"] = sampler.sample("end")
    marks["load_after"] = os.getloadavg()
    return tally, marks


def queue_summary(jobs: list[dict]) -> dict:
    # gradio tells every job its position (0 = next, also when it starts at once): a job waited when
    # it was told it had others before it, or was kept waiting half a second before it started
    queued = [j for j in jobs if max(j["ranks"], default=0) >= 1 or (j["wait_s"] or 0) >= 0.5]
    waits = [j["wait_s"] for j in queued if j["wait_s"] is not None]
    return {"jobs": len(jobs), "queued_jobs": len(queued),
            "max_rank": max((r for j in jobs for r in j["ranks"]), default=None),
            "max_queue_size": max((q for j in jobs for q in j["queue_sizes"] if q is not None), default=None),
            "wait_p50_s": None if not waits else round(statistics.median(waits), 3),
            "wait_p95_s": percentiles(waits)["p95"] and round(percentiles(waits)["p95"], 3),
            "queued_failed": sum(1 for j in queued if j["failed"]),
            "ranks_seen": sorted({r for j in jobs for r in j["ranks"]})}


def bad_file_summary(rows: list) -> dict:
    unclear = [b for b in rows if not b[2]]
    # the example: an unclear one if any, else the app's own refusal of a file (a batch skips and names it)
    shown = unclear[0] if unclear else next((b for b in rows if b[0] != "batch"), rows[0] if rows else None)
    return {"sent": len(rows), "refused_with_message": len(rows) - len(unclear), "unclear": len(unclear),
            "by_action": {a: sum(1 for b in rows if b[0] == a) for a in {b[0] for b in rows}},
            "example": None if shown is None else f"{shown[0]} {shown[1]}: {shown[3]}"}


def make_report(args, command: str, warmup: float, tally: Tally, marks: dict, samples: list[dict],
                temp_dirs: list[Path], started_here: bool, pid: int | None) -> dict:
    rss_values = [s["rss_mb"] for s in samples if s.get("rss_mb") is not None]
    errors = tally.good_errors
    start, warm, end = marks["start"], marks["warm_up"], marks["end"]
    report = {
        "command": command,
        "settings": {"url": args.url, "visitors": args.visitors, "minutes": args.minutes,
                     "concurrency": args.concurrency, "keep_minutes": args.keep_minutes,
                     "max_sessions": args.max_sessions, "visits_per_session": args.visits_per_session,
                     "warmup_s": warmup, "server_started_here": started_here, "server_pid": pid},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": marks["load_before"],
                    "load_after": marks["load_after"]},
        "sessions": tally.sessions,
        "latency_s": {a: percentiles(tally.latency.get(a, [])) for a in ACTIONS},
        "errors": {"good_files": len(errors),
                   "by_action": {a: sum(1 for e in errors if e[0] == a) for a in {e[0] for e in errors}},
                   "examples": [f"{a}: {m}" for a, m in errors[:5]]},
        "bad_files": bad_file_summary(tally.bad),
        "queue": queue_summary(tally.jobs),
        "memory": {"start_rss_mb": start["rss_mb"], "warm_up_rss_mb": warm["rss_mb"],
                   "end_rss_mb": end["rss_mb"], "peak_rss_mb": max(rss_values) if rss_values else None},
        "temp_files": {"folders": [str(d) for d in temp_dirs],
                       "start": start.get("temp"), "warm_up": warm.get("temp"), "end": end.get("temp"),
                       "peak_mb": max((s["temp"]["mb"] for s in samples if "temp" in s), default=None)},
        "samples": samples,
    }
    report["bound"] = check_bound(report, args.max_rss_growth_mb, args.max_temp_mb)
    report["passed"] = report["bound"]["held"]
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m benchmarks.app_soak " + " ".join(argv if argv is not None else sys.argv[1:])
    warmup = min(args.warmup, max(1.0, args.minutes * 60) / 3)
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
            pid = pid_listening_on(urlparse(args.url).port or 80)
        sampler = Sampler(pid, temp_dirs, args.sample_every)
        tally, marks = visit(args, workdir, sampler, warmup)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    report = make_report(args, command, warmup, tally, marks, sampler.rows, temp_dirs, proc is not None, pid)
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
