"""Tokenize a whole folder tree of images into one Parquet file: `python -m alit_core encode-dataset`.

    python -m alit_core encode-dataset ROOT --out results.parquet [--psnr 24] [--batch 32] [--dtype bfloat16]
    torchrun --nnodes N --nproc_per_node G -m alit_core encode-dataset ROOT --out results.parquet

How the work is laid out, and why:

- The file list is made once (every image file under ROOT, sorted by relative path; the first
  folder level, if any, is the class) and cut into fixed shards of `shard_size` files. Both are
  stored in a work folder beside the output (`results.parquet.parts/`), so a resumed run sees
  the same shards even if files were added meanwhile.
- Each shard is encoded in batches (images that have met the criterion leave the batch, see
  `Tokenizer.encode`) and written to its own Parquet file by an atomic rename. A shard file that
  exists is finished: a resumed run skips it, and a killed run loses only the shard it was in.
- Files are decoded, cropped, resized and measured (complexity) in DataLoader worker processes,
  ahead of the encoder.
- A file that cannot be used is recorded with the reason and skipped; it never stops the run.
- Under torchrun, rank 0 plans (lists, checks the work folder), sends the plan to every rank,
  each rank takes every world-size-th unfinished shard, and rank 0 merges the shards once all
  are written. Rows depend only on the shard, never on the rank that made it, so any number of
  processes gives the rows of one process. ROOT and the output folder must be visible to every
  rank at the same path (a shared file system on several nodes).
- The merged file has one row per image in file-list order (see `COLUMNS`); bad files go to
  `results.errors.csv` (path, reason). The work folder is removed after the merge.

pyarrow is needed only here and is imported when a run starts.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..analysis.complexity import MEASURES, complexity
from ..errors import ALITError
from ..files.image_io import image_to_tensor, open_image, square_crop_resize
from ..running.selection import Criterion, select_iterations
from ..running.tokenizer import Tokenizer

IMAGE_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".gif", ".tif", ".tiff",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".avif",
})

COLUMNS = {
    "path": "file path relative to ROOT, with '/' separators",
    "class": "the first folder under ROOT (null for files directly in ROOT)",
    "width": "the file's width in pixels (after EXIF orientation)",
    "height": "the file's height in pixels",
    "num_tokens": "the selected token count for the criterion",
    "iteration": "the selected iteration (0-based)",
    "met": "whether the selected iteration meets the criterion (false: the lowest-error fallback)",
    "l1": "mean |reconstruction - image| of every iteration run for this image",
    "psnr": "PSNR (dB) of every iteration run for this image",
    **{m: "complexity measure of the model-sized image (alit_core.analysis.complexity)" for m in MEASURES},
}

FORMAT_VERSION = 1
_MERGE_ROWS = 65536  # rows per Parquet row group in the merged file


class DatasetEncodeError(ALITError):
    """A dataset run cannot start or finish (nothing to encode, a conflicting earlier run, ...)."""


def default_workers() -> int:
    # half the cores: the encoder's own threads need the rest
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class DatasetEncodeConfig:
    """One encode-dataset run. Fields that change the rows are recorded in the work folder and the
    output's metadata (`result_settings`); the others (workers, progress, ...) change only speed.

    early_exit=False runs every iteration and selects afterwards, the official way (for the
    throughput benchmark); the selection is the same, the l1/psnr lists then cover all iterations.
    """

    root: Path
    out: Path
    checkpoint: str | None = None
    threshold: float | None = None
    psnr: float | None = None
    tokens: int | None = None
    halting: str = "deterministic"
    max_iterations: int | None = None
    device: str | None = None
    dtype: str = "float32"
    heads: int | None = None
    batch: int = 32
    shard_size: int = 1024
    workers: int = field(default_factory=default_workers)
    complexity: bool = True
    early_exit: bool = True
    overwrite: bool = False
    restart: bool = False
    progress: bool = True

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "out", Path(self.out))
        if self.batch < 1 or self.shard_size < 1 or self.workers < 0:
            raise DatasetEncodeError("batch and shard size must be at least 1, workers at least 0")
        if self.halting not in ("deterministic", "off"):
            # a stochastic draw is made for a whole batch, so rows would depend on the batching
            raise DatasetEncodeError("encode-dataset takes halting 'deterministic' or 'off'")
        try:
            Criterion.make(self.threshold, self.psnr, self.tokens)  # checked before any work
        except ValueError as err:
            raise DatasetEncodeError(str(err)) from err

    @property
    def parts(self) -> Path:
        return self.out.with_name(self.out.name + ".parts")

    @property
    def errors_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".errors.csv")


@dataclass
class DatasetEncodeResult:
    out: Path
    errors_path: Path
    images: int  # rows written
    failed: int  # bad files skipped
    shards: int
    shards_skipped: int  # finished in an earlier, interrupted run (this rank's plan)
    seconds: float
    rank: int = 0
    world_size: int = 1


# ------------------------------------------------------------------------------------- file list


def list_images(root: Path) -> list[str]:
    """Every image file under root (by extension; hidden files and folders skipped), as sorted
    relative posix paths. A file that is named like an image but is not one is kept: it is
    reported as bad when decoded, not silently dropped here."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetEncodeError(f"{root} is not a folder")
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                out.append((rel / name).as_posix())
    return sorted(out)


def class_of(rel_path: str) -> str | None:
    parts = rel_path.split("/")
    return parts[0] if len(parts) > 1 else None


# --------------------------------------------------------------------------- decoding in workers


@dataclass
class DecodedImage:
    index: int  # into the file list
    image: torch.Tensor | None  # (3, R, R) in [0, 1]; None when the file could not be used
    width: int = 0
    height: int = 0
    measures: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class ImageFiles(torch.utils.data.Dataset):
    """The file list as a map-style dataset: item i is file i decoded (or its error)."""

    def __init__(self, root: Path, files: list[str], size: int, measure: bool):
        self.root, self.files, self.size, self.measure = Path(root), files, size, measure

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> DecodedImage:
        path = self.root / self.files[i]
        try:
            img = open_image(path)
            width, height = img.size
            x = image_to_tensor(square_crop_resize(img, self.size))
            measures = complexity(x) if self.measure else {}
        except ALITError as err:
            return DecodedImage(i, None, error=str(err))
        except Exception as err:  # a decoder bug on one odd file must not end a day-long run
            return DecodedImage(i, None, error=f"cannot use image '{path}': {type(err).__name__}: {err}")
        return DecodedImage(i, x, width, height, measures)


def _as_list(items: list[DecodedImage]) -> list[DecodedImage]:
    return items


def _worker_init(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # the complexity measures; one process per core already


def worker_context():
    """How worker processes start: from a clean process (forkserver; spawn where there is none).
    A plain fork copies the encoder's thread pools (OpenMP, OpenCV) with their locks as they were,
    possibly held, and a worker can then wait on one forever (seen here: a hang under pytest)."""
    import multiprocessing as mp

    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def shard_batches(shards: list[int], n_files: int, shard_size: int, batch: int) -> list[list[int]]:
    """File indices of the given shards in batches that never cross a shard boundary."""
    out = []
    for s in shards:
        lo, hi = s * shard_size, min((s + 1) * shard_size, n_files)
        out.extend(list(range(i, min(i + batch, hi))) for i in range(lo, hi, batch))
    return out


# ----------------------------------------------------------------------------------------- encoding


@dataclass
class ImageResult:
    num_tokens: int
    iteration: int
    met: bool
    l1: list[float]
    psnr: list[float]


def encode_images(tok: Tokenizer, images: torch.Tensor, cfg: DatasetEncodeConfig) -> list[ImageResult]:
    """Selection and per-iteration errors of a batch, for the run's criterion."""
    crit = Criterion.make(cfg.threshold, cfg.psnr, cfg.tokens, default=tok.default_threshold)
    if cfg.early_exit:
        enc = tok.encode(images, criterion=crit, halting=cfg.halting, max_iterations=cfg.max_iterations)
        l1h, psh, picks = enc.l1_history, enc.psnr_history, enc.iterations
    else:  # the official way: every iteration with its pixels, then select
        steps = list(tok.rollout(images, cfg.halting, max_iterations=cfg.max_iterations))
        l1h = torch.stack([s.l1.float().cpu() for s in steps])
        psh = torch.stack([s.psnr.float().cpu() for s in steps])
        picks = select_iterations(l1h, psh, crit, tok.config.latents_per_iteration)
    out = []
    for i, t in enumerate(picks):
        ran = ~torch.isnan(l1h[:, i])
        n = tok.config.tokens_at(t)
        out.append(ImageResult(n, t, crit.reached(n, float(l1h[t, i]), float(psh[t, i])),
                               l1h[ran, i].tolist(), psh[ran, i].tolist()))
    return out


# --------------------------------------------------------------------------------------- Parquet


def pyarrow_modules():
    """(pyarrow, pyarrow.parquet), imported on first use: the rest of alit_core runs without them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise DatasetEncodeError(
            "results files are Parquet, written and read with pyarrow, which is not installed: pip install pyarrow"
        ) from err
    return pa, pq


def schema(measure: bool):
    pa, _ = pyarrow_modules()
    fields = [
        pa.field("path", pa.string(), nullable=False),
        pa.field("class", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("num_tokens", pa.int32()),
        pa.field("iteration", pa.int32()),
        pa.field("met", pa.bool_()),
        pa.field("l1", pa.list_(pa.float32())),
        pa.field("psnr", pa.list_(pa.float32())),
    ]
    if measure:
        fields += [pa.field(m, pa.float64()) for m in MEASURES]
    return pa.schema(fields)


def shard_path(parts: Path, shard: int) -> Path:
    return parts / f"shard-{shard:06d}.parquet"


def write_shard(parts: Path, shard: int, rows: list[dict], errors: list[dict], measure: bool) -> Path:
    """One finished shard, atomically: the file appears complete or not at all. Its bad files
    ride in the file's metadata, so that one file says everything about the shard."""
    pa, pq = pyarrow_modules()
    sch = schema(measure).with_metadata({"alit_errors": json.dumps(errors)})
    table = pa.Table.from_pylist(rows, schema=sch)
    final = shard_path(parts, shard)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def merge_shards(cfg: DatasetEncodeConfig, n_shards: int, metadata: dict) -> tuple[int, list[dict]]:
    """Shards in order into cfg.out (atomically), bad files into the errors CSV; (rows, errors)."""
    pa, pq = pyarrow_modules()
    sch = schema(cfg.complexity).with_metadata({"alit": json.dumps(metadata, sort_keys=True)})
    tmp = cfg.out.with_name(f".{cfg.out.name}.{os.getpid()}.tmp")
    rows, errors, pending = 0, [], []
    with pq.ParquetWriter(tmp, sch) as writer:
        def flush():
            if pending:
                writer.write_table(pa.concat_tables(pending).replace_schema_metadata(sch.metadata))
                pending.clear()

        for s in range(n_shards):
            path = shard_path(cfg.parts, s)
            if not path.exists():
                raise DatasetEncodeError(f"shard {s} is missing ({path}); run the same command again to finish it")
            table = pq.read_table(path)
            errors += json.loads(table.schema.metadata[b"alit_errors"])
            pending.append(table.replace_schema_metadata(None))
            rows += table.num_rows
            if sum(t.num_rows for t in pending) >= _MERGE_ROWS:
                flush()
        flush()
    os.replace(tmp, cfg.out)
    etmp = cfg.errors_path.with_name(f".{cfg.errors_path.name}.{os.getpid()}.tmp")
    with open(etmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "reason"])
        w.writeheader()
        w.writerows(errors)
    os.replace(etmp, cfg.errors_path)
    return rows, errors


def read_metadata(path) -> dict:
    """The run settings recorded in a results file (checkpoint, criterion, counts, ...)."""
    _, pq = pyarrow_modules()
    return json.loads(pq.read_schema(path).metadata[b"alit"])


# ----------------------------------------------------------------------------------- the plan


def result_settings(cfg: DatasetEncodeConfig, tok: Tokenizer) -> dict:
    """What the rows depend on; a resumed run must match it exactly."""
    crit = Criterion.make(cfg.threshold, cfg.psnr, cfg.tokens, default=tok.default_threshold)
    return {
        "format": FORMAT_VERSION,
        "root": str(cfg.root.resolve()),
        "checkpoint": _checkpoint_id(cfg.checkpoint),
        "criterion": {"kind": crit.kind, "value": crit.value},
        "halting": cfg.halting,
        "max_iterations": cfg.max_iterations,
        "device": tok.device.type,
        "dtype": str(tok.dtype).replace("torch.", ""),
        "options": asdict(tok.options),
        "batch": cfg.batch,
        "shard_size": cfg.shard_size,
        "complexity": cfg.complexity,
        "early_exit": cfg.early_exit,
        "resolution": tok.resolution,
    }


def _checkpoint_id(checkpoint: str | None) -> dict:
    from ..files.checkpoints import BUNDLED_CHECKPOINT

    if checkpoint and str(checkpoint).startswith(("preset:", "official:")):
        return {"name": str(checkpoint)}
    path = Path(checkpoint) if checkpoint else BUNDLED_CHECKPOINT
    st = path.stat()
    # size and mtime: cheap, and enough to notice another file behind the same name on resuming
    return {"name": str(checkpoint or "bundled"), "path": str(path.resolve()), "size": st.st_size,
            "mtime": int(st.st_mtime)}


@dataclass
class Plan:
    files: list[str]
    n_shards: int
    pending: list[int]  # unfinished shards, in order
    settings: dict
    error: str | None = None  # set on rank 0 when the run cannot go ahead (sent to every rank)


def make_plan(cfg: DatasetEncodeConfig, tok: Tokenizer) -> Plan:
    """List or reload the files, check the work folder against this run's settings, find what is left."""
    settings = result_settings(cfg, tok)
    if cfg.out.exists() and not cfg.overwrite:
        raise DatasetEncodeError(f"{cfg.out} exists; pass --overwrite to encode again")
    manifest = cfg.parts / "manifest.json"
    if cfg.restart and cfg.parts.exists():
        shutil.rmtree(cfg.parts)
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved["settings"] != settings:
            diff = ", ".join(f"{k}: {saved['settings'].get(k)!r} -> {v!r}" for k, v in settings.items()
                             if saved["settings"].get(k) != v)
            raise DatasetEncodeError(
                f"{cfg.parts} holds an unfinished run with other settings ({diff}); run it again with "
                "its settings to finish it, or pass --restart to discard it")
        files = saved["files"]
        if hashlib.sha256("\n".join(files).encode()).hexdigest() != saved["files_sha256"]:
            raise DatasetEncodeError(f"{manifest} is damaged; pass --restart to start over")
    else:
        files = list_images(cfg.root)
        if not files:
            raise DatasetEncodeError(f"no image files under {cfg.root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        cfg.parts.mkdir(parents=True, exist_ok=True)
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": settings, "files": files,
                                   "files_sha256": hashlib.sha256("\n".join(files).encode()).hexdigest()}))
        os.replace(tmp, manifest)
    for leftover in cfg.parts.glob(".*.tmp"):  # a shard that was being written when a run was killed
        leftover.unlink()
    n_shards = math.ceil(len(files) / cfg.shard_size)
    pending = [s for s in range(n_shards) if not shard_path(cfg.parts, s).exists()]
    return Plan(files, n_shards, pending, settings)


# ----------------------------------------------------------------------------------- distributed


@dataclass
class Distributed:
    """torchrun's process group, or a single process (rank 0 of 1) without one."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False

    @classmethod
    def from_env(cls, device: str | None) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
        # ranks wait for each other at the merge, which may be long after the first finishes
        timeout = datetime.timedelta(hours=24)
        if cuda:
            torch.cuda.set_device(local)
            dist.init_process_group("nccl", timeout=timeout, device_id=torch.device("cuda", local))
        else:
            dist.init_process_group("gloo", timeout=timeout)
        return cls(dist.get_rank(), dist.get_world_size(), local, True)

    def device(self, device: str | None) -> str | None:
        if self.active and torch.cuda.is_available() and (device is None or device == "cuda"):
            return f"cuda:{self.local_rank}"
        return device

    def broadcast(self, obj):
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.destroy_process_group()


# ------------------------------------------------------------------------------------- progress


class Progress:
    """images done / total, rate and ETA on stderr: redrawn in place on a terminal, a line every
    `log_every` seconds otherwise (logs of long runs stay short)."""

    def __init__(self, total: int, label: str, enabled: bool = True, log_every: float = 30.0):
        self.total, self.label, self.enabled = total, label, enabled
        self.done = self.bad = 0
        self.start = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.interval = 0.5 if self.tty else log_every

    def update(self, done: int, bad: int) -> None:
        self.done += done
        self.bad += bad
        now = time.monotonic()
        if self.enabled and (now - self.last >= self.interval or self.done >= self.total):
            self.last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100 * self.done / self.total if self.total else 100.0
        bad = f", {self.bad} bad" if self.bad else ""
        return (f"{self.label}{self.done}/{self.total} images ({pct:.1f}%), {rate:.1f} images/s, "
                f"elapsed {_clock(elapsed)}, ETA {_clock(eta)}{bad}")

    def _draw(self, now: float) -> None:
        sys.stderr.write(("\r" + self.line(now) + "\x1b[K") if self.tty else self.line(now) + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


# ------------------------------------------------------------------------------------------ run


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def encode_dataset(cfg: DatasetEncodeConfig, tokenizer: Tokenizer | None = None,
                   on_shard: Callable[[int], None] | None = None) -> DatasetEncodeResult:
    """Run (or resume) cfg; every rank of a torchrun job calls this. `tokenizer`: a loaded model to
    use instead of cfg.checkpoint/device/dtype (the benchmark shares one across runs); `on_shard`
    is called with each shard number after it is written."""
    pyarrow_modules()  # fail before any work when it is missing
    t0 = time.perf_counter()
    dist = Distributed.from_env(cfg.device)
    try:
        tok = tokenizer or _load(cfg, dist)
        plan, failure = None, None
        if dist.rank == 0:
            try:
                plan = make_plan(cfg, tok)
            except Exception as err:  # the other ranks wait for the plan: tell them, then fail
                failure = err
                plan = Plan([], 0, [], {}, error=str(err))
        plan = dist.broadcast(plan)
        if failure is not None:
            raise failure
        if plan.error:
            raise DatasetEncodeError(f"rank 0 could not start the run: {plan.error}")
        mine = plan.pending[dist.rank :: dist.world_size]
        if dist.rank == 0 and cfg.progress:
            done = plan.n_shards - len(plan.pending)
            _log(f"encode-dataset: {len(plan.files)} files in {plan.n_shards} shards of {cfg.shard_size}"
                 + (f"; {done} finished earlier" if done else "")
                 + (f"; {dist.world_size} processes" if dist.world_size > 1 else ""))
        _encode_shards(cfg, tok, plan, mine, dist, on_shard)
        dist.barrier()
        rows, errors = 0, []
        if dist.rank == 0:
            meta = dict(plan.settings, files=len(plan.files), columns=COLUMNS)
            meta.pop("root")  # where the data sat on this machine is no property of the results
            meta["root_name"] = cfg.root.resolve().name
            rows, errors = merge_shards(cfg, plan.n_shards, meta)
            shutil.rmtree(cfg.parts)
            if cfg.progress:
                _log(f"encode-dataset: wrote {rows} rows to {cfg.out}"
                     + (f"; {len(errors)} bad files skipped, listed in {cfg.errors_path}" if errors else ""))
                for e in errors[:5]:
                    _log(f"  skipped {e['path']}: {e['reason']}")
                if len(errors) > 5:
                    _log(f"  ... and {len(errors) - 5} more")
        return DatasetEncodeResult(cfg.out, cfg.errors_path, rows, len(errors), plan.n_shards,
                                   plan.n_shards - len(plan.pending), time.perf_counter() - t0,
                                   dist.rank, dist.world_size)
    finally:
        dist.close()


def _load(cfg: DatasetEncodeConfig, dist: Distributed) -> Tokenizer:
    from ..files.loading import load_tokenizer

    return load_tokenizer(cfg.checkpoint, device=dist.device(cfg.device), dtype=cfg.dtype, heads=cfg.heads)


def _batches(cfg: DatasetEncodeConfig, tok: Tokenizer, plan: Plan, shards: list[int]) -> Iterator[list[DecodedImage]]:
    batches = shard_batches(shards, len(plan.files), cfg.shard_size, cfg.batch)
    if not batches:
        return iter(())
    data = ImageFiles(cfg.root, plan.files, tok.resolution, cfg.complexity)
    workers = min(cfg.workers, len(batches))
    loader = torch.utils.data.DataLoader(
        data, batch_sampler=batches, num_workers=workers, collate_fn=_as_list,
        worker_init_fn=_worker_init if workers else None,
        multiprocessing_context=worker_context() if workers else None,
        prefetch_factor=4 if workers else None, persistent_workers=False,
    )
    return iter(loader)


def _encode_shards(cfg: DatasetEncodeConfig, tok: Tokenizer, plan: Plan, shards: list[int],
                   dist: Distributed, on_shard) -> None:
    n = len(plan.files)
    total = sum(min((s + 1) * cfg.shard_size, n) - s * cfg.shard_size for s in shards)
    label = f"rank 0 of {dist.world_size}: " if dist.world_size > 1 else ""
    progress = Progress(total, label, enabled=cfg.progress and dist.rank == 0)
    batches = _batches(cfg, tok, plan, shards)
    try:
        for s in shards:
            rows, errors = [], []
            size = min((s + 1) * cfg.shard_size, n) - s * cfg.shard_size
            got = 0
            while got < size:
                items = next(batches)
                got += len(items)
                good = [d for d in items if d.error is None]
                errors += [{"path": plan.files[d.index], "reason": d.error} for d in items if d.error is not None]
                if good:
                    x = torch.stack([d.image for d in good]).to(tok.device, non_blocking=True)
                    for d, r in zip(good, encode_images(tok, x, cfg)):
                        path = plan.files[d.index]
                        rows.append({"path": path, "class": class_of(path), "width": d.width, "height": d.height,
                                     "num_tokens": r.num_tokens, "iteration": r.iteration, "met": r.met,
                                     "l1": r.l1, "psnr": r.psnr, **d.measures})
                progress.update(len(items), len(items) - len(good))
            write_shard(cfg.parts, s, rows, errors, cfg.complexity)
            if on_shard is not None:
                on_shard(s)
    finally:
        progress.close()
