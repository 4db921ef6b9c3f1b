"""Training: the VQGAN stage, ALIT stage 1 and an optional end-to-end stage, resumable, on CPU or GPU.

    python -m alit_train.train vqgan --out runs/vqgan --steps 3000
    python -m alit_train.train alit  --out runs/alit --vqgan runs/vqgan/last.pt --steps 4000
    python -m alit_train.train e2e   --out runs/e2e --init runs/alit/last.pt --steps 1000
    python -m alit_train.train export runs/e2e/last.pt assets/alit_default.pt
    torchrun --nproc_per_node 2 -m alit_train.train alit ...      # DistributedDataParallel

Recipe (docs/method.md §6): AdamW betas (0.9, 0.95), weight decay 0.05 except biases and 1-d tensors,
lr = base_lr * global batch / 256, linear warm-up then half-cycle cosine, gradient clipping,
EMA of the weights, bfloat16 autocast on CPU (float32 master weights). Running the same command
again with the same --out resumes from `last.pt`. Metrics go to `<out>/metrics.jsonl`.
Data: scenes generated on the fly from the offline photo index (alit_train.scenes), seeded by
(seed, rank, step), so a resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from alit_core.files.checkpoints import save_checkpoint
from alit_core.model.alit import ALIT
from alit_core.model.config import ALITConfig, get_preset
from alit_core.model.transformer import use_fused_attention
from alit_core.model.vqgan import VQGAN

from .init import spatial_init
from .objectives import ALITStage1, VQGANObjective


@dataclass
class TrainConfig:
    stage: str = "alit"  # vqgan | alit | e2e
    model: str = "explorer_64"
    out: str = "runs/alit"
    steps: int = 2000
    batch_size: int = 16  # per process
    base_lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 3.0
    ema_decay: float = 0.999
    precision: str = "bfloat16"  # autocast dtype; "float32" to turn it off
    seed: int = 0
    crop: int = 64  # vqgan stage: random crops of this size (the VQGAN is fully convolutional)
    index: str = "data/index.json"
    vqgan: str | None = None  # alit stage: a VQGAN stage checkpoint
    # e2e: an ALIT stage checkpoint; alit: one, or an alit_core checkpoint, to continue from; vqgan: either, to
    # continue training its VQGAN
    init: str | None = None
    init_weights: str = "ema"  # which weights of a training checkpoint --init starts from ("ema" or "model")
    # e2e stage: train only the VQGAN decoder, on the frozen ALIT's soft codes; vqgan stage with --init: only
    # the decoder, on the VQGAN's own codes (encoder and codebook frozen, so an ALIT on those codes stays valid)
    decoder_only: bool = False
    pixel_weight: float = 1.0  # pixel L1 of one cycled iteration; 0 in the alit stage = the official stage 1
    ce_weight: float = 1.0  # official stage 1: 1.0 x cross-entropy + 1.0 x soft-code MSE
    mse_weight: float = 1.0
    sample_depth: bool = False  # unroll a random number of iterations per step (objectives.ALITStage1)
    depth_ramp: int = 0  # with sample_depth: steps per extra iteration allowed (0: all from the start)
    halting: str = "stochastic"  # halting during training, as in the official stage 1
    spatial_init: float = 2.0  # alit stage: norm of the 2D sine-cosine starting embeddings (alit_train.init); 0 = random
    log_every: int = 10
    ckpt_every: int = 200
    restart_every: int = 25  # steps between restarts of unused codebook entries (until 80% of training)
    threads: int = 0  # torch threads (0: leave torch's default)
    workers: int = 0  # processes that make the training images ahead of the step (0: the training process)
    time_limit: float = 0.0  # seconds: save and stop after this long (0: run every step)
    codes: str | None = None  # alit stage: a code pack (alit_train.code_pack) to train on instead of fresh images
    # alit stage: a compact training state (`compact`) to continue from when <out>/last.pt does not exist yet;
    # the optimiser starts afresh, with --warmup steps of warm-up from the step it was saved at
    resume: str | None = None
    probe_every: int = 0  # steps between object-discovery probes (FG-ARI per iteration and layer) in metrics.jsonl
    probe_scenes: int = 16
    mix: dict = field(default_factory=lambda: {"scene": 0.5, "photo": 0.3, "simple": 0.2})


# --- distributed --------------------------------------------------------------------------------
def setup_distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


# --- data ---------------------------------------------------------------------------------------
class SceneStream:
    """Batches of training images (B, 3, S, S) in [0, 1], deterministic in (seed, rank, step)."""

    KINDS = ("scene", "photo", "simple")

    def __init__(self, index: str, size: int, mix: dict, seed: int, rank: int, split: str = "train"):
        from . import scenes

        self.scenes = scenes
        self.bank = scenes.PhotoBank.from_index(index)
        self.size, self.seed, self.rank, self.split = size, seed, rank, split
        self.kinds = list(mix)
        p = np.array([mix[k] for k in self.kinds], dtype=float)
        self.p = p / p.sum()

    def image(self, rng: np.random.Generator) -> np.ndarray:
        kind = self.kinds[rng.choice(len(self.kinds), p=self.p)]
        s = self.scenes
        if kind == "scene":
            return s.make_scene(self.bank, rng, size=self.size, k_objects=(1, 4), split=self.split).image
        if kind == "photo":
            return s.photo_crop(self.bank, rng, size=self.size, split=self.split)
        return s.simple_image(rng, self.size, kind=rng.choice(["flat", "gradient", "shapes"]))

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, self.rank, step])
        arr = np.stack([self.image(rng) for _ in range(batch_size)])
        if rng.random() < 0.5:  # horizontal flip, as in the official augmentation
            arr = arr[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0


class PackStream:
    """Batches (images, VQGAN features, codes) drawn from a code pack, deterministic in (seed, rank, step)."""

    def __init__(self, path: str, seed: int, rank: int):
        from .code_pack import CodePack

        self.pack, self.seed, self.rank = CodePack.load(path), seed, rank

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, ...]:
        return self.pack.batch(step, batch_size, self.seed, self.rank)


class _Steps(torch.utils.data.Dataset):
    """Step number -> that step's batch, so that worker processes make exactly the in-process batches."""

    def __init__(self, stream: SceneStream, start: int, steps: int, batch_size: int):
        self.stream, self.start, self.steps, self.batch_size = stream, start, steps, batch_size

    def __len__(self) -> int:
        return self.steps - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.stream.batch(self.start + i, self.batch_size)


def batches(stream: SceneStream, start: int, steps: int, batch_size: int, workers: int, pin: bool = False):
    """The batches of steps start..steps-1 in order; made `workers` processes ahead when workers > 0.

    The batch of a step depends only on (seed, rank, step), so workers change the speed, not the data.
    """
    if workers <= 0:
        return (stream.batch(step, batch_size) for step in range(start, steps))
    return iter(torch.utils.data.DataLoader(_Steps(stream, start, steps, batch_size), batch_size=None,
                                            num_workers=workers, prefetch_factor=4, pin_memory=pin,
                                            persistent_workers=False))


def random_crops(images: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    if crop >= images.shape[-1]:
        return images
    out = []
    for img in images:
        y, x = torch.randint(0, images.shape[-1] - crop + 1, (2,), generator=generator).tolist()
        out.append(img[:, y : y + crop, x : x + crop])
    return torch.stack(out)


# --- optimisation -------------------------------------------------------------------------------
def param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, cfg: TrainConfig, peak: float, since: int = 0) -> float:
    """Warm-up over the first cfg.warmup steps from `since` (0, or the step a fresh optimiser took over)."""
    if step - since < cfg.warmup:
        return peak * (step - since + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = peak * cfg.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class EMA:
    """Exponential moving average of the trainable weights (frozen ones are copied as they are)."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module, step: int):
        # Warm-up of the decay so that early weights do not dominate short runs.
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in module.state_dict().items():
            self.shadow[k].lerp_(v.float(), 1 - d)


def model_config(name: str) -> ALITConfig:
    """A preset name, or a JSON file holding ALITConfig.to_dict()."""
    if name.endswith(".json"):
        return ALITConfig.from_dict(json.loads(Path(name).read_text()))
    return get_preset(name)


def stage1(model: ALIT, cfg: TrainConfig) -> ALITStage1:
    return ALITStage1(model, halting=cfg.halting, pixel_weight=cfg.pixel_weight, ce_weight=cfg.ce_weight,
                      mse_weight=cfg.mse_weight, sample_depth=cfg.sample_depth)


def initial_model(path: str, weights: str = "ema") -> ALIT:
    """An ALIT in float32 from a training checkpoint (its `weights`) or an alit_core checkpoint."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if "model_config" in ck:
        model = ALIT(ALITConfig.from_dict(ck["model_config"]))
        model.load_state_dict(ck[weights])
        return model
    from alit_core import load_tokenizer

    return load_tokenizer(path, device="cpu").model.float()


def build(cfg: TrainConfig) -> tuple[nn.Module, nn.Module, ALITConfig]:
    """The objective module and the module whose weights are the result."""
    model_cfg = model_config(cfg.model)
    if cfg.stage == "vqgan":
        if not cfg.init:
            vq = VQGAN(model_cfg.vqgan)
            return VQGANObjective(vq), vq, model_cfg
        model = initial_model(cfg.init, cfg.init_weights)
        vq = model.vqgan
        if cfg.decoder_only:
            # Same encoder and codebook, so the same codes for every image: the decoder learns to draw
            # them better (e.g. images the VQGAN renders poorly), and an ALIT trained on these codes
            # can take the new decoder as it is.
            vq.requires_grad_(False)
            vq.decoder.requires_grad_(True)
        return VQGANObjective(vq), vq, model.cfg
    if cfg.stage == "alit" and cfg.init:
        # continue training a model (its VQGAN included), e.g. the bundled one on a GPU
        model = initial_model(cfg.init, cfg.init_weights)
        model.vqgan.requires_grad_(False)
        return stage1(model, cfg), model, model.cfg
    model = ALIT(model_cfg)
    if cfg.stage == "alit":
        if cfg.resume and not cfg.vqgan:  # every weight, the VQGAN's included, comes from the compact state
            model.vqgan.requires_grad_(False)
            return stage1(model, cfg), model, model_cfg
        if not cfg.vqgan:
            raise SystemExit("the alit stage needs --vqgan <VQGAN stage checkpoint> (or --init <ALIT checkpoint>, "
                             "or --resume <compact state>)")
        vq_ck = torch.load(cfg.vqgan, map_location="cpu", weights_only=True)
        model.vqgan.load_state_dict(vq_ck["ema"])
        model.vqgan.requires_grad_(False)
        if cfg.spatial_init > 0:
            spatial_init(model, scale=cfg.spatial_init)
        return stage1(model, cfg), model, model_cfg
    if cfg.stage == "e2e":
        if not cfg.init:
            raise SystemExit("the e2e stage needs --init <ALIT stage checkpoint>")
        model.load_state_dict(initial_model(cfg.init, cfg.init_weights).state_dict())
        # The targets must stay fixed: freeze the VQGAN encoder and codebook, train its decoder.
        model.vqgan.encoder.requires_grad_(False)
        model.vqgan.quantize.requires_grad_(False)
        if cfg.decoder_only:
            # The VQGAN decoder was trained on hard codes; ALIT hands it expectations over codes
            # (soft codes), which it has never seen. Adapting the decoder alone closes part of the
            # gap without touching the tokens.
            model.requires_grad_(False)
            model.vqgan.decoder.requires_grad_(True)
        return stage1(model, cfg), model, model_cfg
    raise SystemExit(f"unknown stage {cfg.stage!r}")


def restart_dead_codes(codebook: torch.Tensor, usage: torch.Tensor, samples: torch.Tensor,
                       generator: torch.Generator) -> int:
    """Move codebook rows unused since the last check onto random recent encoder outputs.

    The standard cure for codebook collapse: without it ALIT's 4096-entry latent codebook
    collapsed to one code within 150 steps (every latent the same, so the decoder ignored them).
    """
    dead = torch.nonzero(usage == 0).flatten()
    if len(dead) == 0 or len(samples) == 0:
        return 0
    pick = torch.randint(0, len(samples), (len(dead),), generator=generator)
    noise = 0.01 * samples.std() * torch.randn(len(dead), samples.shape[1], generator=generator)
    with torch.no_grad():
        codebook[dead] = (samples[pick].float() + noise).to(codebook.dtype)
    return len(dead)


# --- the loop -----------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> Path:
    rank, world, device = setup_distributed()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + 1000 * rank)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    objective, result, model_cfg = build(cfg)
    objective.to(device)
    if device.type == "cpu":  # the explicit attention product trains about twice as fast there
        use_fused_attention(objective, False)
    params = [p for p in objective.parameters() if p.requires_grad]
    peak = cfg.base_lr * cfg.batch_size * world / 256
    opt = torch.optim.AdamW(param_groups(objective, cfg.weight_decay), lr=peak, betas=(0.9, 0.95))
    ema = EMA(result, cfg.ema_decay)
    start = warm_from = 0
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=True)
        result.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        ema.shadow = {k: v.float() for k, v in ck["ema"].items()}
        start = int(ck["step"])
        warm_from = int(ck.get("warm_from", 0))
        if rank == 0:
            print(f"resuming {last} at step {start}", file=sys.stderr)
    elif cfg.resume:
        start = warm_from = load_compact(cfg.resume, result, ema)
        if rank == 0:
            print(f"continuing {cfg.resume} from step {start} with a fresh optimiser", file=sys.stderr)
    runner = objective
    if world > 1:
        # Halting may leave the encoder mask token unused in a step; the VQGAN uses everything.
        runner = nn.parallel.DistributedDataParallel(objective, find_unused_parameters=cfg.stage != "vqgan")
    size = cfg.crop if cfg.stage == "vqgan" else model_cfg.resolution
    if cfg.codes and cfg.stage != "vqgan":
        stream = PackStream(cfg.codes, cfg.seed, rank)
    else:
        stream = SceneStream(cfg.index, model_cfg.resolution, cfg.mix, cfg.seed, rank)
    probing = bool(cfg.probe_every) and cfg.stage != "vqgan" and rank == 0
    if probing:
        from .attention_probe import object_discovery, probe_scenes

        probe_images, probe_masks = probe_scenes(cfg.index, model_cfg.resolution, cfg.probe_scenes, seed=cfg.seed)
    crop_gen = torch.Generator().manual_seed(cfg.seed * 7919 + rank)
    amp = cfg.precision != "float32"
    amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(cfg.precision, torch.bfloat16)
    # dead-code restarts move codebook entries: never while the codebook is frozen
    restarts = ((cfg.stage == "vqgan" and not cfg.decoder_only)
                or (cfg.stage == "alit" and model_cfg.quantize_latents))
    codebook = result.quantize.embedding.weight if restarts else None
    usage = torch.zeros(len(codebook) if codebook is not None else 0, dtype=torch.long)
    log = open(out / "metrics.jsonl", "a") if rank == 0 else None
    bar = progress_bar(cfg.steps, start) if rank == 0 else None
    t_start = t_last = time.time()
    seen = 0
    objective.train()
    feed = batches(stream, start, cfg.steps, cfg.batch_size, cfg.workers, pin=device.type == "cuda")
    for step, inputs in zip(range(start, cfg.steps), feed):
        inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
        if cfg.stage == "vqgan":
            inputs = (random_crops(inputs[0], size, crop_gen),)
        inputs = [x.to(device, non_blocking=True) for x in inputs]
        images = inputs[0]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg, peak, warm_from)
        if cfg.depth_ramp and hasattr(objective, "depth_limit"):
            objective.depth_limit = 1 + step // cfg.depth_ramp
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            loss, metrics = runner(*inputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        ema.update(result, step)
        seen += images.shape[0] * world
        codes, samples = metrics.pop("codes", None), metrics.pop("samples", None)
        if codebook is not None and codes is not None:
            usage += torch.bincount(codes.flatten().cpu(), minlength=len(usage))
            if (step + 1) % cfg.restart_every == 0 and step + 1 < 0.8 * cfg.steps:
                metrics["codes_restarted"] = torch.tensor(restart_dead_codes(codebook, usage, samples.cpu(), crop_gen))
                if world > 1:
                    dist.broadcast(codebook.data, 0)
                usage.zero_()
        if rank == 0 and ((step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps):
            now = time.time()
            row = {"step": step + 1, "loss": loss.item(), "lr": opt.param_groups[0]["lr"],
                   "grad_norm": float(grad_norm), "images_per_s": seen / (now - t_last)}
            row.update({k: float(v) for k, v in metrics.items()})
            if codebook is not None:
                row["codes_used"] = int((usage > 0).sum())
            log.write(json.dumps(row) + "\n")
            log.flush()
            t_last, seen = now, 0
            bar(step + 1, row)
        if probing and ((step + 1) % cfg.probe_every == 0 or step + 1 == cfg.steps):
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                found = object_discovery(result, probe_images.to(device), probe_masks)
            log.write(json.dumps({"step": step + 1, "probe": "object_discovery", **found}) + "\n")
            log.flush()
            t_last = time.time()  # the probe's time is not the step's
        out_of_time = bool(cfg.time_limit) and time.time() - t_start > cfg.time_limit
        if world > 1 and cfg.time_limit:  # every rank stops at the same step
            flag = torch.tensor(float(out_of_time), device=device)
            dist.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        if rank == 0 and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps or out_of_time):
            save_training_state(last, result, opt, ema, step + 1, cfg, model_cfg, warm_from)
        if out_of_time:
            if rank == 0:
                print(f"time limit reached: stopped after step {step + 1} of {cfg.steps}", file=sys.stderr)
            break
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return last


def save_training_state(path: Path, result, opt, ema: EMA, step: int, cfg: TrainConfig, model_cfg: ALITConfig,
                        warm_from: int = 0):
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"model": result.state_dict(), "ema": ema.shadow, "optimizer": opt.state_dict(), "step": step,
                "train_config": json.dumps(asdict(cfg)), "model_config": model_cfg.to_dict(),
                "warm_from": warm_from}, tmp)
    tmp.replace(path)


def compact(checkpoint: str, dest: str) -> Path:
    """A training state small enough to commit: weights and EMA in float16, no optimiser state.

    The EMA of frozen weights (the VQGAN in the alit stage) equals the weights, so it is left out
    and restored from them by `load_compact`. Written to a temporary file and renamed, so the
    previous state is replaced whole.
    """
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in ck["model"].items()}
    ema = {k: v.half() for k, v in ck["ema"].items() if not torch.equal(v.float(), ck["model"][k].float())}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    torch.save({"compact": True, "model": half, "ema": ema, "step": ck["step"], "train_config": ck["train_config"],
                "model_config": ck["model_config"]}, tmp)
    tmp.replace(dest)
    return dest


def load_compact(path: str, result: nn.Module, ema: EMA) -> int:
    """Load a `compact` state into the weights and the EMA; returns the step it was saved at."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    model = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    result.load_state_dict(model)
    ema.shadow = {k: ck["ema"][k].float() if k in ck["ema"] else v.detach().clone().float()
                  for k, v in result.state_dict().items()}
    return int(ck["step"])


def progress_bar(total: int, start: int):
    try:
        from tqdm import tqdm
    except ImportError:  # plain lines on stderr
        def plain(step, row):
            print(f"step {step}/{total} loss {row['loss']:.4f} {row['images_per_s']:.1f} img/s", file=sys.stderr)

        return plain
    bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(step, row):
        bar.n = step
        shown = {k: f"{row[k]:.3g}" for k in ("loss", "psnr", "ce", "acc_7", "images_per_s") if k in row}
        bar.set_postfix(shown, refresh=True)

    return update


def calibrate_threshold(model: ALIT, index: str, n: int = 64, seed: int = 99) -> float:
    """The median L1 of training images at the middle iteration (128 of 256 tokens for 8 x 32).

    Used as the model's default selection threshold: half of the images it was trained on need at
    most half of the tokens. (The official 0.07 suits the official models, not ours.)
    """
    from alit_core import Tokenizer

    cfg = model.cfg
    images = SceneStream(index, cfg.resolution, TrainConfig().mix, seed, 0, split="train").batch(0, n)
    middle = cfg.iterations // 2 - 1
    steps = list(Tokenizer(model, "cpu").rollout(images, max_iterations=middle + 1))
    return round(float(steps[middle].l1.median()), 4)


def export(checkpoint: str, dest: str, dtype: str = "float16", metadata: dict | None = None,
           calibrate: str | None = None, weights: str = "ema", vqgan_decoder: str | None = None,
           calibrate_photos: str | None = None) -> Path:
    """Write the EMA weights of an ALIT training checkpoint in the alit_core format.

    calibrate: a data index; sets the model's default threshold with `calibrate_threshold`, or, with
    calibrate_photos (a split of that index, e.g. 'calib'), from that split's whole photos
    (`alit_train.calibration`); the latter also records in the metadata the attention iteration and
    layer that segment validation scenes best, with their FG-ARI on other scenes (the app's default).
    weights: "ema" (the average) or "model" (the last step's weights; better after a short final
    phase that the average has not caught up with).
    vqgan_decoder: another training checkpoint (a decoder-only e2e run, or a decoder-only vqgan run)
    whose VQGAN decoder replaces this one's (its `weights` too). The threshold is calibrated on the
    result.
    """
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = ALIT(ALITConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck[weights])
    meta = {"trained_steps": int(ck["step"]), "train_config": ck["train_config"], "weights": weights}
    if vqgan_decoder:
        dec = torch.load(vqgan_decoder, map_location="cpu", weights_only=True)
        state = dec[weights]
        prefix = "vqgan.decoder." if any(k.startswith("vqgan.") for k in state) else "decoder."  # ALIT or VQGAN run
        model.vqgan.decoder.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        meta["vqgan_decoder"] = {"from": str(vqgan_decoder), "trained_steps": int(dec["step"]),
                                 "train_config": dec["train_config"]}
    if calibrate:
        # calibrate the weights that ship: rounded to the checkpoint's dtype
        model = model.to(getattr(torch, dtype)).float()
        if calibrate_photos:
            from alit_core import Tokenizer

            from .calibration import calibrate as calibrate_on
            from .calibration import l1_curves, whole_photos
            from .evaluate import discovery_by_layer

            photos = whole_photos(calibrate, calibrate_photos, model.cfg.resolution)
            found = calibrate_on(l1_curves(Tokenizer(model, "cpu"), photos), model.cfg.latents_per_iteration)
            meta["calibration"] = {**found, "split": calibrate_photos}
            model.cfg = replace(model.cfg, selection_threshold=found["threshold"])
            disc = discovery_by_layer(model, calibrate, n=32, seed=1234)
            meta["object_discovery"] = {
                "fg_ari": round(disc["fg_ari"], 4), "grid_fg_ari": round(disc["grid_fg_ari"], 4),
                **disc["chosen_on_validation"],
                "command": f"python -m alit_train.train export {checkpoint} {dest} --calibrate {calibrate} "
                           f"--calibrate-photos {calibrate_photos}"}
        else:
            model.cfg = replace(model.cfg, selection_threshold=calibrate_threshold(model, calibrate))
    meta.update(metadata or {})
    return save_checkpoint(model, dest, metadata=meta, dtype=getattr(torch, dtype))


def parse_mix(text: str) -> dict[str, float]:
    """'scene=0.5,photo=0.3,simple=0.2' -> {'scene': 0.5, ...} (shares need not sum to 1)."""
    mix = {}
    for part in text.split(","):
        kind, _, share = part.partition("=")
        kind = kind.strip()
        if kind not in SceneStream.KINDS:
            raise argparse.ArgumentTypeError(f"unknown image kind {kind!r}; choose from {', '.join(SceneStream.KINDS)}")
        try:
            mix[kind] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected KIND=SHARE, e.g. simple=0.2") from None
    if not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: shares must be non-negative and not all zero")
    return mix


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alit_train.train", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="stage", required=True)
    defaults = TrainConfig()
    for stage in ("vqgan", "alit", "e2e"):
        s = sub.add_parser(stage)
        for name, value in asdict(defaults).items():
            if name == "stage":
                continue
            flag = f"--{name.replace('_', '-')}"
            if name == "mix":
                s.add_argument(flag, type=parse_mix, default=value, metavar="KIND=SHARE,...",
                               help="training image mix, e.g. scene=0.5,photo=0.3,simple=0.2")
                continue
            if isinstance(value, bool):
                s.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
                continue
            kind = type(value) if value is not None else str
            s.add_argument(flag, type=kind, default=value)
    c = sub.add_parser("compact", help="a committable training state: float16 weights and EMA, no optimiser")
    c.add_argument("checkpoint")
    c.add_argument("dest")
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("dest")
    e.add_argument("--dtype", default="float16")
    e.add_argument("--weights", choices=["ema", "model"], default="ema")
    e.add_argument("--calibrate", metavar="INDEX", help="set the default threshold from this data index's training images")
    e.add_argument("--calibrate-photos", metavar="SPLIT",
                   help="with --calibrate: calibrate on this split's whole photos instead (e.g. calib), and record "
                        "the attention iteration and layer that find objects best")
    e.add_argument("--vqgan-decoder", metavar="CHECKPOINT",
                   help="take the VQGAN decoder from this training checkpoint (a decoder-only e2e run)")
    args = p.parse_args(argv)
    if args.stage == "compact":
        print(compact(args.checkpoint, args.dest))
        return 0
    if args.stage == "export":
        print(export(args.checkpoint, args.dest, args.dtype, calibrate=args.calibrate, weights=args.weights,
                     vqgan_decoder=args.vqgan_decoder, calibrate_photos=args.calibrate_photos))
        return 0
    cfg = TrainConfig(**{k: v for k, v in vars(args).items()})
    train(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
