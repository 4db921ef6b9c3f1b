"""What a training run is: `TrainConfig` (every flag of `python -m alit_train.train`), the model
presets it trains, and the training image mix."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from alit_core.model.config import ALITConfig, get_preset

from .objectives import ITERATION_WEIGHTS

IMAGE_KINDS = ("scene", "photo", "whole_photo", "simple")  # what `streams.SceneStream` makes (see alit_train.scenes)
DEFAULT_MIX = {"scene": 0.5, "photo": 0.3, "simple": 0.2}


@dataclass
class TrainConfig:
    stage: str = "alit"  # vqgan | vae | alit | e2e
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
    # autocast dtype ("bfloat16", "float16"; "float32" turns it off); "auto": bfloat16 where it multiplies faster
    # than float32 (measured at the start: AMX CPUs and GPUs), else float32 (AVX2-only CPUs)
    precision: str = "auto"
    seed: int = 0
    kl_weight: float = 1e-3  # vae stage: weight of the KL term (objectives.VAEObjective)
    crop: int = 64  # vqgan and vae stages: random crops of this size (the VQGAN is fully convolutional)
    index: str = "data/index.json"
    vae: str | None = None  # alit stage, VAE models: a vae stage checkpoint, or an ALIT state whose VAE to take
    vqgan: str | None = None  # alit stage: a VQGAN stage checkpoint, or an ALIT state whose VQGAN to take (fresh ALIT weights)
    # e2e: an ALIT stage checkpoint; alit: one, or an alit_core checkpoint, to continue from; vqgan: either, to
    # continue training its VQGAN
    init: str | None = None
    init_weights: str = "ema"  # which weights of a training checkpoint --init starts from ("ema" or "model")
    # e2e stage: train only the VQGAN decoder, on the frozen ALIT's soft codes; vqgan (vae) stage with --init: only
    # the decoder, on the VQGAN's own codes (the VAE's own latents): encoder (and codebook) frozen, so an ALIT on
    # those codes (latents) stays valid
    decoder_only: bool = False
    # vqgan stage with --init: grow the VQGAN's codebook to this many codes first (alit_train.codebook_growth;
    # 0: keep its size)
    codebook_size: int = 0
    pixel_weight: float = 1.0  # pixel L1 of one cycled iteration; 0 in the alit stage = the official stage 1
    ce_weight: float = 1.0  # official stage 1: 1.0 x cross-entropy + 1.0 x soft-code MSE
    mse_weight: float = 1.0
    # alit stage: each iteration's weight in the prediction loss (objectives.ALITStage1; later iterations weigh 1)
    iteration_weights: tuple[float, ...] = ITERATION_WEIGHTS
    sample_depth: bool = False  # unroll a random number of iterations per step (objectives.ALITStage1)
    depth_ramp: int = 0  # with sample_depth: steps per extra iteration allowed (0: all from the start)
    halting: str = "stochastic"  # halting during training, as in the official stage 1
    spatial_init: float = 2.0  # alit stage: norm of the 2D sine-cosine starting embeddings (alit_train.init); 0 = random
    # alit stage: shrink the latents' spatial layout by this fraction every step (alit_train.init.decay_layout; 0: keep)
    layout_decay: float = 0.0
    # alit stage: the share of latents the decoder does not read, drawn per image and iteration (alit_train.latent_dropout)
    latent_dropout: float = 0.0
    log_every: int = 10
    ckpt_every: int = 200
    restart_every: int = 25  # steps between restarts of unused codebook entries (until 80% of training)
    threads: int = 0  # torch threads (0: leave torch's default)
    workers: int = 0  # processes that make the training images ahead of the step (0: the training process)
    time_limit: float = 0.0  # seconds: save and stop after this long (0: run every step)
    stop_at: int = 0  # save and stop after this many steps, the schedule still spanning `steps` (0: run them all)
    codes: str | None = None  # alit stage: a code pack (alit_train.code_pack) to train on instead of fresh images
    # alit stage: a compact training state (`compact`) to continue from when <out>/last.pt does not exist yet;
    # the optimiser starts afresh, with --warmup steps of warm-up from the step it was saved at
    resume: str | None = None
    # alit stage, quantized latents: steps over which the decoder's input goes from the normalised latent to its
    # code (alit_train.quantize_latents.AnnealedQuantizer; 0: the plain quantiser from the start)
    quantize_ramp: int = 0
    # alit stage, continuous latents: noise on the decoder's input, as a multiple of each latent's RMS
    # (alit_train.latent_noise: at most d/2 log2(1 + 1/sigma^2) bits per token), reached linearly over
    # latent_noise_ramp steps
    latent_noise: float = 0.0
    latent_noise_ramp: int = 0
    latent_noise_start: int = 0  # the step the ramp starts from (0 for none)
    # alit stage, VAE models on a code pack: weigh the latent regression's principal components (over the pack) by
    # variance^-latent_whitening (alit_train.latent_weighting; 0: the plain MSE, 1: every component alike). The
    # log's mse_t stay the plain MSE, comparable across runs; its "mse" is then the weighted sum trained on
    latent_whitening: float = 0.0
    # alit stage, a fresh ALIT: latents quantized to their signs, a frozen codebook of the 2^12 corners of the
    # latent space (alit_train.sign_latents: 12 bits per token, as the official codebook, and no entry can die)
    sign_latents: bool = False
    sign_balance: float = 1.0  # with sign latents: weight of their balance term (sign_latents.SignQuantizer; 0: none)
    probe_every: int = 0  # steps between object-discovery probes (FG-ARI per iteration and layer) in metrics.jsonl
    probe_scenes: int = 16
    mix: dict = field(default_factory=lambda: dict(DEFAULT_MIX))


def model_config(name: str) -> ALITConfig:
    """A preset name, or a JSON file holding ALITConfig.to_dict()."""
    if name.endswith(".json"):
        return ALITConfig.from_dict(json.loads(Path(name).read_text()))
    return get_preset(name)


def parse_mix(text: str) -> dict[str, float]:
    """'scene=0.5,photo=0.3,simple=0.2' -> {'scene': 0.5, ...} (shares need not sum to 1)."""
    mix = {}
    for part in text.split(","):
        kind, _, share = part.partition("=")
        kind = kind.strip()
        if kind not in IMAGE_KINDS:
            raise argparse.ArgumentTypeError(f"unknown image kind {kind!r}; choose from {', '.join(IMAGE_KINDS)}")
        try:
            mix[kind] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected KIND=SHARE, e.g. simple=0.2") from None
    if not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: shares must be non-negative and not all zero")
    return mix


def parse_weights(text: str) -> tuple[float, ...]:
    """'1,1,2' -> (1.0, 1.0, 2.0): non-negative, not all zero."""
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 1,1,1,1") from None
    if min(weights) < 0 or sum(weights) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: weights must be non-negative and not all zero")
    return weights
