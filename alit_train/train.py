"""Training: the VQGAN stage, ALIT stage 1 and an optional end-to-end stage, resumable, on CPU or GPU.

    python -m alit_train.train vqgan --out runs/vqgan --steps 3000
    python -m alit_train.train vae   --out runs/vae --model explorer_128_vae --steps 3000
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
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from alit_core.model.alit import ALIT
from alit_core.model.config import ALITConfig
from alit_core.model.halting import Halting
from alit_core.model.transformer import use_fused_attention
from alit_core.model.vae import KLVAE
from alit_core.model.vqgan import VQGAN
from alit_core.running.devices import faster_precision

from .calibration import MAX_FALLBACK
from .code_pack import PackStream, base_state
from .codebook_growth import grow_codebook
from .export import export, recalibrate
from .init import decay_layout, spatial_init
from .latent_dropout import LatentDropout
from .latent_noise import LatentNoise, sigma_at
from .latent_weighting import LatentWeighting
from .objectives import ALITStage1, VAEObjective, VQGANObjective
from .quantize_latents import anneal_quantizer, residual_at
from .sign_latents import as_sign_latent, has_corner_codebook, sign_latent_model
from .streams import SceneStream, batches, random_crops
from .train_config import TrainConfig, model_config, parse_mix, parse_weights
from .training_state import (
    EMA,
    compact,
    extend_log,
    initial_model,
    load_compact,
    merge_log,
    save_training_state,
    set_base_decoder,
)

BASE_STAGES = ("vqgan", "vae")  # train a base tokenizer alone, on random crops


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


def stage1(model: ALIT, cfg: TrainConfig) -> ALITStage1:
    return ALITStage1(model, halting=cfg.halting, pixel_weight=cfg.pixel_weight, ce_weight=cfg.ce_weight,
                      mse_weight=cfg.mse_weight, sample_depth=cfg.sample_depth,
                      iteration_weights=cfg.iteration_weights)


def build(cfg: TrainConfig) -> tuple[nn.Module, nn.Module, ALITConfig]:
    """The objective module and the module whose weights are the result."""
    model_cfg = model_config(cfg.model)
    if cfg.sign_latents and (cfg.stage != "alit" or cfg.init or not (cfg.vqgan or cfg.vae or cfg.resume)):
        raise SystemExit("--sign-latents trains a fresh ALIT (the alit stage with --vqgan or --vae), or continues "
                         "one (--resume its compact state)")
    if cfg.stage == "alit" and cfg.resume and (cfg.vqgan or cfg.vae):
        # the compact state would overwrite the base tokenizer just loaded: refused rather than ignored
        raise SystemExit("--resume continues an ALIT with every weight from its state, its base tokenizer's "
                         "included: drop --vqgan/--vae (swapping the base tokenizer under a trained ALIT is not "
                         "supported)")
    if cfg.latent_dropout and not (cfg.stage == "alit" and 0 < cfg.latent_dropout < 1):
        raise SystemExit(f"--latent-dropout is a share of the latents (0 to below 1) for the alit stage, not "
                         f"{cfg.latent_dropout} in the {cfg.stage} stage")
    if cfg.stage in ("alit", "e2e"):
        try:  # the policy the objective will make each step, refused here rather than at the first step
            Halting.for_model(model_cfg, cfg.halting)
        except ValueError as err:
            raise SystemExit(f"{err} (train with --halting off or --halting deterministic)") from None
    if cfg.stage == "vae":
        if model_cfg.vae is None:
            raise SystemExit(f"the vae stage trains a model's KL VAE; {cfg.model} has a VQGAN "
                             "(e.g. --model explorer_128_vae)")
        if cfg.decoder_only != bool(cfg.init):
            raise SystemExit("the vae stage starts from scratch, or resumes <out>/last.pt or --resume <compact state>; "
                             "--init <ALIT state> goes with --decoder-only (that ALIT's VAE decoder, its encoder frozen)")
        if not cfg.init:
            vae = KLVAE(model_cfg.vae)
            return VAEObjective(vae, cfg.kl_weight), vae, model_cfg
        model = initial_model(cfg.init, cfg.init_weights)
        if not model.is_vae:
            raise SystemExit(f"--init {cfg.init} is an ALIT on a VQGAN: its decoder trains in the vqgan stage")
        vae = model.vae
        # As the VQGAN's decoder-only run: the same encoder, so the same latents for every image (an ALIT
        # trained on them, and its latent pack, stay valid); the decoder learns to draw them better.
        vae.requires_grad_(False)
        vae.decoder.requires_grad_(True)
        return VAEObjective(vae, cfg.kl_weight), vae, model.cfg
    if cfg.stage == "vqgan":
        if not cfg.init:
            vq = VQGAN(model_cfg.vqgan)
            return VQGANObjective(vq), vq, model_cfg
        model = initial_model(cfg.init, cfg.init_weights)
        if cfg.codebook_size and cfg.codebook_size != model.cfg.vqgan.codebook_size:
            if cfg.decoder_only:
                raise SystemExit("--codebook-size changes the codes: it cannot train the decoder only")
            model = grow_codebook(model, cfg.codebook_size, cfg.seed)
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
        model.base_tokenizer.requires_grad_(False)
        return stage1(model, cfg), model, model.cfg
    if cfg.stage == "alit" and cfg.resume:
        # every weight, the VQGAN's included, comes from the compact state, and so does the architecture
        # (a state may have changed it, e.g. alit_train.quantize_latents), whatever --model says
        saved = torch.load(cfg.resume, map_location="cpu", weights_only=True)["model_config"]
        model = ALIT(ALITConfig.from_dict(saved))
        model.base_tokenizer.requires_grad_(False)
        if cfg.sign_latents:
            as_sign_latent(model, cfg.sign_balance)
        return stage1(model, cfg), model, model.cfg
    if cfg.sign_latents:
        model = sign_latent_model(model_cfg)
        as_sign_latent(model, cfg.sign_balance)
    else:
        model = ALIT(model_cfg)
    model_cfg = model.cfg
    if cfg.stage == "alit":
        base = model_cfg.base_name
        if not getattr(cfg, base):
            raise SystemExit(f"the alit stage needs --{base} <{base.upper()} stage checkpoint or ALIT state> "
                             "(or --init <ALIT checkpoint>, or --resume <compact state>)")
        # a fresh ALIT on a trained base tokenizer, which may be another ALIT's (e.g. to retrain on its code pack)
        with fitting(getattr(cfg, base)):
            model.base_tokenizer.load_state_dict(base_state(getattr(cfg, base), base))
        model.base_tokenizer.requires_grad_(False)
        if cfg.spatial_init > 0:
            spatial_init(model, scale=cfg.spatial_init)
        return stage1(model, cfg), model, model_cfg
    if cfg.stage == "e2e":
        if not cfg.init:
            raise SystemExit("the e2e stage needs --init <ALIT stage checkpoint>")
        init = initial_model(cfg.init, cfg.init_weights)
        if model.is_vae or init.is_vae:
            raise SystemExit("the e2e stage fine-tunes a VQGAN's decoder on ALIT's soft codes; "
                             f"{cfg.model if model.is_vae else cfg.init} has a VAE")
        with fitting(cfg.init):
            model.load_state_dict(init.state_dict())
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
    if cfg.precision == "auto":
        cfg = replace(cfg, precision=agreed_precision(device, world))
        if rank == 0:
            print(f"precision: {cfg.precision} (the faster matrix product here)", file=sys.stderr)
    objective, result, model_cfg = build(cfg)
    objective.to(device)
    if device.type == "cpu":  # the explicit attention product trains about twice as fast there
        use_fused_attention(objective, False)
    params = [p for p in objective.parameters() if p.requires_grad]
    peak = cfg.base_lr * cfg.batch_size * world / 256
    opt = torch.optim.AdamW(param_groups(objective, cfg.weight_decay), lr=peak, betas=(0.9, 0.95))
    ema = EMA(result, cfg.ema_decay)
    last = out / "last.pt"
    start, warm_from = restore(cfg, last, result, opt, ema, rank == 0)
    if cfg.stage == "alit" and has_corner_codebook(result) != cfg.sign_latents:
        # a corner codebook trained as a learned one would be moved by the restarts, and the reverse frozen
        raise SystemExit("--sign-latents: the weights loaded have a learned latent codebook, not the corners"
                         if cfg.sign_latents else
                         "this model's latent codebook is the corners of its latent space: continue it with --sign-latents")
    if cfg.codes and cfg.stage not in BASE_STAGES:
        stream = PackStream(cfg.codes, cfg.seed, rank)
        stream.check_base(result.base_tokenizer, cfg.codes)
    else:
        stream = SceneStream(cfg.index, model_cfg.resolution, cfg.mix, cfg.seed, rank)
    if cfg.latent_whitening:
        # the model built (a --resume state brings its own) and the pack decide, not the --model preset
        if not (cfg.stage == "alit" and result.is_vae and isinstance(stream, PackStream)):
            raise SystemExit("--latent-whitening weighs the regression of a VAE model's latents: the alit stage "
                             "of a VAE model (e.g. --model explorer_128_vae) on its latent pack (--codes)")
        # from the whole pack, so every rank and every resumption weighs alike
        weighting = LatentWeighting.from_latents(stream.pack.targets, cfg.latent_whitening)
        objective.latent_weighting = weighting.to(device)
    runner = objective
    if world > 1:
        # Halting may leave the encoder mask token unused in a step; the VQGAN uses everything.
        runner = nn.parallel.DistributedDataParallel(objective, find_unused_parameters=cfg.stage not in BASE_STAGES)
    crop_gen = torch.Generator().manual_seed(cfg.seed * 7919 + rank)
    autocast = Autocast(device, cfg.precision)
    restarts = CodebookRestarts(cfg, model_cfg, result, crop_gen, world)
    annealed = anneal_quantizer(result) if cfg.quantize_ramp and cfg.stage == "alit" else None
    noise = LatentNoise(result) if cfg.latent_noise and cfg.stage == "alit" else None
    if cfg.latent_dropout and cfg.stage == "alit":
        LatentDropout(result, cfg.latent_dropout)
    log = RunLog(out, cfg, model_cfg, start) if rank == 0 else None
    t_start = time.time()
    objective.train()
    feed = batches(stream, start, cfg.steps, cfg.batch_size, cfg.workers, pin=device.type == "cuda")
    end = min(cfg.steps, cfg.stop_at) if cfg.stop_at else cfg.steps
    for step, inputs in zip(range(start, end), feed):
        inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
        if cfg.stage in BASE_STAGES:
            inputs = (random_crops(inputs[0], cfg.crop, crop_gen),)
        inputs = [x.to(device, non_blocking=True) for x in inputs]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg, peak, warm_from)
        if annealed is not None:
            annealed.residual = residual_at(step, cfg.quantize_ramp)
        if noise is not None:
            noise.sigma = sigma_at(step, cfg.latent_noise, cfg.latent_noise_ramp, cfg.latent_noise_start)
        if cfg.depth_ramp and hasattr(objective, "depth_limit"):
            objective.depth_limit = 1 + step // cfg.depth_ramp
        with autocast():
            loss, metrics = runner(*inputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        if cfg.layout_decay and cfg.stage == "alit":
            decay_layout(result, cfg.layout_decay)
        ema.update(result, step)
        restarts.observe(step, metrics)
        if annealed is not None:
            metrics["quantize_residual"] = annealed.residual
        if noise is not None:
            metrics["latent_noise"] = noise.sigma
        if log is not None:
            log.step(step, inputs[0].shape[0] * world, loss, opt, grad_norm, metrics, restarts)
            log.probe(step, result, device, autocast)
        out_of_time = time_is_up(cfg, t_start, world, device)
        if rank == 0 and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == end or out_of_time):
            save_training_state(last, result, opt, ema, step + 1, cfg, model_cfg, warm_from)
        if out_of_time:
            if rank == 0:
                print(f"time limit reached: stopped after step {step + 1} of {cfg.steps}", file=sys.stderr)
            break
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return last


def restore(cfg: TrainConfig, last: Path, result: nn.Module, opt, ema: EMA, talk: bool) -> tuple[int, int]:
    """Resume `last` (weights, optimiser, EMA) if it exists, else a compact state (--resume) with a fresh
    optimiser; returns (first step, step the optimiser's warm-up counts from)."""
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=True)
        with fitting(last):
            result.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        ema.shadow = {k: v.float() for k, v in ck["ema"].items()}
        if talk:
            print(f"resuming {last} at step {int(ck['step'])}", file=sys.stderr)
        return int(ck["step"]), int(ck.get("warm_from", 0))
    if cfg.resume:
        with fitting(cfg.resume):
            start = load_compact(cfg.resume, result, ema)
        if talk:
            print(f"continuing {cfg.resume} from step {start} with a fresh optimiser", file=sys.stderr)
        return start, start
    return 0, 0


@contextlib.contextmanager
def fitting(path):
    """Turn a state whose tensors do not fit this run's model into a message that says which flags make them fit."""
    try:
        yield
    except RuntimeError as err:
        if "size mismatch" not in str(err) and "Missing key" not in str(err) and "Unexpected key" not in str(err):
            raise
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
        raise SystemExit(f"{path} does not fit the model this run builds ({first}); pass the flags and --model it was "
                         "trained with (e.g. --codebook-size for a grown VQGAN codebook)") from None


def agreed_precision(device: torch.device, world: int) -> str:
    """The autocast precision for --precision auto, measured once (alit_core's `faster_precision`: bfloat16
    runs 60x slower than float32 on an AVX2-only CPU); rank 0's choice, so that every process agrees."""
    if world == 1:
        return faster_precision(device)
    # only rank 0 measures (probes in every process would compete for the same cores)
    flag = torch.tensor([dist.get_rank() == 0 and faster_precision(device) == "bfloat16"], dtype=torch.int32,
                        device=device)
    dist.broadcast(flag, 0)
    return "bfloat16" if flag.item() else "float32"


class Autocast:
    """The run's mixed precision: `with autocast():` around forward passes (a no-op in float32)."""

    def __init__(self, device: torch.device, precision: str):
        self.device_type = device.type
        self.enabled = precision != "float32"
        self.dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(precision, torch.bfloat16)

    def __call__(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


class CodebookRestarts:
    """Restarts of the unused entries of the codebook being trained (`restart_dead_codes`), every
    cfg.restart_every steps until 80% of the run; a frozen codebook (sign latents) only has its use counted."""

    def __init__(self, cfg: TrainConfig, model_cfg: ALITConfig, result: nn.Module, generator: torch.Generator,
                 world: int):
        on = (cfg.stage == "vqgan" and not cfg.decoder_only) or (cfg.stage == "alit" and model_cfg.quantize_latents)
        self.codebook = result.quantize.embedding.weight if on else None
        self.restarting = on and self.codebook.requires_grad
        self.usage = torch.zeros(len(self.codebook) if on else 0, dtype=torch.long)
        self.every, self.until = cfg.restart_every, 0.8 * cfg.steps
        self.generator, self.world = generator, world

    def observe(self, step: int, metrics: dict) -> None:
        """Count the step's codes (taken out of metrics, with the encoder samples); restart when due."""
        codes, samples = metrics.pop("codes", None), metrics.pop("samples", None)
        if self.codebook is None or codes is None:
            return
        self.usage += torch.bincount(codes.flatten().cpu(), minlength=len(self.usage))
        if (step + 1) % self.every == 0 and step + 1 < self.until:
            if self.restarting:
                moved = restart_dead_codes(self.codebook, self.usage, samples.cpu(), self.generator)
                metrics["codes_restarted"] = torch.tensor(moved)
                if self.world > 1:
                    dist.broadcast(self.codebook.data, 0)
            self.usage.zero_()  # codes_used counts the entries used since the last check

    def used(self) -> int | None:
        return None if self.codebook is None else int((self.usage > 0).sum())


class RunLog:
    """Rank 0's record of a run: a metrics row every cfg.log_every steps in <out>/metrics.jsonl, the
    object-discovery probe every cfg.probe_every steps, and the progress bar."""

    def __init__(self, out: Path, cfg: TrainConfig, model_cfg: ALITConfig, start: int):
        self.cfg = cfg
        self.file = open(out / "metrics.jsonl", "a")
        self.bar = progress_bar(cfg.steps, start)
        self.t_last, self.seen = time.time(), 0
        self.probing = bool(cfg.probe_every) and cfg.stage not in BASE_STAGES
        if self.probing:
            from .attention_probe import probe_scenes

            self.scenes = probe_scenes(cfg.index, model_cfg.resolution, cfg.probe_scenes, seed=cfg.seed)

    def _due(self, step: int, every: int) -> bool:
        return (step + 1) % every == 0 or step + 1 == self.cfg.steps

    def _write(self, row: dict) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def step(self, step: int, images: int, loss, opt, grad_norm, metrics: dict, restarts: CodebookRestarts) -> None:
        self.seen += images
        if not self._due(step, self.cfg.log_every):
            return
        now = time.time()
        row = {"step": step + 1, "loss": loss.item(), "lr": opt.param_groups[0]["lr"],
               "grad_norm": float(grad_norm), "images_per_s": self.seen / (now - self.t_last)}
        row.update({k: float(v) for k, v in metrics.items()})
        if restarts.used() is not None:
            row["codes_used"] = restarts.used()
        self._write(row)
        self.t_last, self.seen = now, 0
        self.bar(step + 1, row)

    def probe(self, step: int, result: nn.Module, device: torch.device, autocast: Autocast) -> None:
        if not (self.probing and self._due(step, self.cfg.probe_every)):
            return
        from .attention_probe import object_discovery

        images, masks = self.scenes
        with autocast():
            found = object_discovery(result, images.to(device), masks)
        self._write({"step": step + 1, "probe": "object_discovery", **found})
        self.t_last = time.time()  # the probe's time is not the step's


def time_is_up(cfg: TrainConfig, t_start: float, world: int, device: torch.device) -> bool:
    """cfg.time_limit has passed (as rank 0 sees it: every rank stops at the same step)."""
    out_of_time = bool(cfg.time_limit) and time.time() - t_start > cfg.time_limit
    if world > 1 and cfg.time_limit:
        flag = torch.tensor(float(out_of_time), device=device)
        dist.broadcast(flag, 0)
        out_of_time = bool(flag.item())
    return out_of_time


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alit_train.train", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="stage", required=True)
    defaults = TrainConfig()
    for stage in (*BASE_STAGES, "alit", "e2e"):
        s = sub.add_parser(stage)
        for name, value in asdict(defaults).items():
            if name == "stage":
                continue
            flag = f"--{name.replace('_', '-')}"
            if name == "mix":
                s.add_argument(flag, type=parse_mix, default=value, metavar="KIND=SHARE,...",
                               help="training image mix, e.g. scene=0.5,photo=0.3,simple=0.2")
                continue
            if name == "iteration_weights":
                s.add_argument(flag, type=parse_weights, default=value, metavar="W0,W1,...",
                               help="each iteration's weight in the prediction loss; later iterations weigh 1")
                continue
            if isinstance(value, bool):
                s.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
                continue
            kind = type(value) if value is not None else str
            s.add_argument(flag, type=kind, default=value)
    c = sub.add_parser("compact", help="a committable training state: float16 weights and EMA, no optimiser")
    c.add_argument("checkpoint")
    c.add_argument("dest")
    m = sub.add_parser("merge-log", help="put a run's metrics.jsonl into a model's one log as one phase's rows")
    m.add_argument("log")
    m.add_argument("run_metrics")
    m.add_argument("--phase", required=True)
    x = sub.add_parser("extend-log", help="add to a line's one log the rows of a run's metrics.jsonl it lacks")
    x.add_argument("log")
    x.add_argument("run_metrics")
    d = sub.add_parser("set-decoder", help="a compact ALIT state with the base tokenizer's decoder of another run "
                                           "(a decoder-only vqgan or vae run on its encoder)")
    d.add_argument("state")
    d.add_argument("decoder_run")
    d.add_argument("dest")
    d.add_argument("--weights", choices=["ema", "model"], default="ema", help="which of the decoder run's weights")
    fallback_help = (f"with calibration on whole photos: at most this fraction of them may fall back "
                     f"(default {MAX_FALLBACK}, half the 10%% allowed on unseen photos; alit_train/calibration.py)")
    r = sub.add_parser("recalibrate", help="a shipped checkpoint's default threshold calibrated on a split's whole photos")
    r.add_argument("checkpoint")
    r.add_argument("dest")
    r.add_argument("--calibrate", metavar="INDEX", default="data/index.json", help="the data index")
    r.add_argument("--calibrate-photos", metavar="SPLIT", default="calib", help="the split whose whole photos to use")
    r.add_argument("--max-fallback", type=float, default=MAX_FALLBACK, help=fallback_help)
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("dest")
    e.add_argument("--dtype", default="float16")
    e.add_argument("--weights", choices=["ema", "model"], default="ema")
    e.add_argument("--calibrate", metavar="INDEX", help="set the default threshold from this data index's training images")
    e.add_argument("--calibrate-photos", metavar="SPLIT",
                   help="with --calibrate: calibrate on this split's whole photos instead (e.g. calib), and record "
                        "the attention iteration and layer that find objects best")
    e.add_argument("--max-fallback", type=float, default=MAX_FALLBACK, help=fallback_help)
    e.add_argument("--base-decoder", "--vqgan-decoder", dest="base_decoder", metavar="CHECKPOINT",
                   help="take the base tokenizer's decoder from this training checkpoint (a decoder-only e2e, vqgan "
                        "or vae run)")
    args = p.parse_args(argv)
    if args.stage == "compact":
        print(compact(args.checkpoint, args.dest))
        return 0
    if args.stage == "merge-log":
        print(merge_log(args.log, args.run_metrics, args.phase))
        return 0
    if args.stage == "extend-log":
        print(extend_log(args.log, args.run_metrics))
        return 0
    if args.stage == "recalibrate":
        print(recalibrate(args.checkpoint, args.dest, args.calibrate, args.calibrate_photos, args.max_fallback))
        return 0
    if args.stage == "set-decoder":
        print(set_base_decoder(args.state, args.decoder_run, args.dest, args.weights))
        return 0
    if args.stage == "export":
        print(export(args.checkpoint, args.dest, args.dtype, calibrate=args.calibrate, weights=args.weights,
                     base_decoder=args.base_decoder, calibrate_photos=args.calibrate_photos,
                     max_fallback=args.max_fallback))
        return 0
    cfg = TrainConfig(**{k: v for k, v in vars(args).items()})
    train(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
