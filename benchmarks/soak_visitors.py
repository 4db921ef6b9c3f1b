"""The simulated visitors of the soak (`benchmarks.app_soak`): each uses the explorer through gradio_client,
in its own sessions, as a page would, and tallies latencies, errors, bad-file answers and queue waits."""

from __future__ import annotations

import io
import random
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .app_latency import ROOT, explore_inputs

SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))
L1, PSNR, BUDGET = "L1 threshold", "PSNR target (dB)", "token budget"  # app.choices.CRITERIA


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
        # the criterion as the page holds it: the JSON records what made the selection
        out = self.call("export", L1, 0.0574, 25.0, 128, api_name="/export")
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
