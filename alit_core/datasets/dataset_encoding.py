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

import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..analysis.complexity import MEASURES
from ..errors import DatasetEncodeError
from ..files.atomic import written_whole
from ..running.devices import faster_precision, resolve_device
from ..running.selection import Criterion, select_iterations
from ..running.tokenizer import Tokenizer
from .distributed import Distributed
from .image_files import IMAGE_EXTENSIONS, DecodedImage, class_of, decode_in_workers, list_images, shard_batches
from .progress import Progress
from .shard_files import merge_shards, pyarrow_modules, read_metadata, shard_path, write_shard

__all__ = ["COLUMNS", "DatasetEncodeConfig", "DatasetEncodeError", "DatasetEncodeResult", "class_of",
           "encode_dataset", "list_images", "read_metadata"]

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
    from ..files.checkpoints import bundled_file

    if checkpoint and str(checkpoint).startswith(("preset:", "official:")):
        return {"name": str(checkpoint)}
    path = bundled_file(checkpoint) or Path(checkpoint)
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
        with written_whole(manifest) as tmp:
            tmp.write_text(json.dumps({"settings": settings, "files": files,
                                       "files_sha256": hashlib.sha256("\n".join(files).encode()).hexdigest()}))
    for leftover in cfg.parts.glob(".*.tmp"):  # a shard that was being written when a run was killed
        leftover.unlink()
    n_shards = math.ceil(len(files) / cfg.shard_size)
    pending = [s for s in range(n_shards) if not shard_path(cfg.parts, s).exists()]
    return Plan(files, n_shards, pending, settings)


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
        if cfg.dtype == "auto" and tokenizer is None:
            # measured on rank 0 only: every rank must encode in the same precision (rows never depend on the rank)
            choice = faster_precision(resolve_device(dist.device(cfg.device))) if dist.rank == 0 else None
            cfg = replace(cfg, dtype=dist.broadcast(choice))
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
            rows, errors = merge_shards(cfg.parts, plan.n_shards, cfg.out, cfg.errors_path, cfg.complexity, meta)
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
    return decode_in_workers(cfg.root, plan.files, tok.resolution, cfg.complexity, batches, cfg.workers)


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
