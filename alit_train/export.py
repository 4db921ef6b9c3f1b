"""A training checkpoint to a shipped alit_core checkpoint: EMA weights, a calibrated default threshold,
and (with whole-photo calibration) the attention iteration and layer that find objects best."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from alit_core.files.checkpoints import save_checkpoint
from alit_core.model.alit import ALIT
from alit_core.model.config import ALITConfig

from .calibration import MAX_FALLBACK
from .streams import SceneStream
from .train_config import DEFAULT_MIX
from .training_state import decoder_weights, state_weights


def calibrate_threshold(model: ALIT, index: str, n: int = 64, seed: int = 99) -> float:
    """The median L1 of training images at the middle iteration (128 of 256 tokens for 8 x 32).

    Used as the model's default selection threshold: half of the images it was trained on need at
    most half of the tokens. (The official 0.07 suits the official models, not ours.)
    """
    from alit_core import Tokenizer

    cfg = model.cfg
    images = SceneStream(index, cfg.resolution, DEFAULT_MIX, seed, 0, split="train").batch(0, n)
    middle = cfg.iterations // 2 - 1
    steps = list(Tokenizer(model, "cpu").rollout(images, max_iterations=middle + 1))
    return round(float(steps[middle].l1.median()), 4)


def export(checkpoint: str, dest: str, dtype: str = "float16", metadata: dict | None = None,
           calibrate: str | None = None, weights: str = "ema", base_decoder: str | None = None,
           calibrate_photos: str | None = None, max_fallback: float = MAX_FALLBACK) -> Path:
    """Write the EMA weights of an ALIT training checkpoint (a full one or a compact state) in the alit_core
    format.

    calibrate: a data index; sets the model's default threshold with `calibrate_threshold`, or, with
    calibrate_photos (a split of that index, e.g. 'calib'), from that split's whole photos
    (`alit_train.calibration`, at most `max_fallback` of them falling back); the latter also records in the metadata the attention iteration and
    layer that segment validation scenes best, with their FG-ARI on other scenes (the app's default).
    weights: "ema" (the average) or "model" (the last step's weights; better after a short final
    phase that the average has not caught up with).
    base_decoder: another training checkpoint (a decoder-only e2e or vqgan run, or for a VAE model a
    decoder-only vae run) whose base tokenizer's decoder replaces this one's (its `weights` too). The
    threshold is calibrated on the result.
    """
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = ALIT(ALITConfig.from_dict(ck["model_config"]))
    model.load_state_dict(state_weights(ck, weights))  # a compact state too (the committed ones)
    meta = {"trained_steps": int(ck["step"]), "train_config": ck["train_config"], "weights": weights}
    if base_decoder:
        decoder, meta[f"{model.cfg.base_name}_decoder"] = decoder_weights(base_decoder, model.cfg.base_name, weights)
        if model.load_state_dict(decoder, strict=False).unexpected_keys:
            raise SystemExit(f"the decoder of {base_decoder} does not fit the {model.cfg.base_name.upper()} of {checkpoint}")
    if calibrate:
        # calibrate the weights that ship: rounded to the checkpoint's dtype
        model = model.to(getattr(torch, dtype)).float()
        if calibrate_photos:
            command = (f"python -m alit_train.train export {checkpoint} {dest} --calibrate {calibrate} "
                       f"--calibrate-photos {calibrate_photos} --max-fallback {max_fallback}")
            meta.update(calibrate_on_photos(model, calibrate, calibrate_photos, command, max_fallback))
        else:
            model.cfg = replace(model.cfg, selection_threshold=calibrate_threshold(model, calibrate))
    meta.update(metadata or {})
    return save_checkpoint(model, dest, metadata=meta, dtype=getattr(torch, dtype))


def calibrate_on_photos(model: ALIT, index: str, split: str, command: str,
                        max_fallback: float = MAX_FALLBACK) -> dict:
    """Set model's default threshold from the whole photos of a split (`alit_train.calibration`); the
    metadata that records it and the attention iteration and layer that segment validation scenes best,
    with their FG-ARI on other scenes (the app's default view)."""
    from alit_core import Tokenizer

    from .calibration import calibrate as calibrate_on
    from .calibration import l1_curves, whole_photos
    from .evaluate import discovery_by_layer

    photos = whole_photos(index, split, model.cfg.resolution)
    found = calibrate_on(l1_curves(Tokenizer(model, "cpu"), photos), model.cfg.latents_per_iteration, max_fallback)
    model.cfg = replace(model.cfg, selection_threshold=found["threshold"])
    disc = discovery_by_layer(model, index, n=32, seed=1234)
    return {"calibration": {**found, "split": split},
            "object_discovery": {"fg_ari": round(disc["fg_ari"], 4), "grid_fg_ari": round(disc["grid_fg_ari"], 4),
                                 **disc["chosen_on_validation"], "command": command}}


def recalibrate(checkpoint: str, dest: str, index: str, split: str, max_fallback: float = MAX_FALLBACK) -> Path:
    """A shipped ALIT checkpoint with its default threshold calibrated on a split's whole photos (and the
    attention default recorded), its weights and dtype unchanged, its other metadata kept."""
    from alit_core.files.checkpoints import model_from_checkpoint, read_metadata

    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = model_from_checkpoint(saved)  # in float32; a training state is refused, saying why
    shipped = saved.get("state_dict") or {}  # our format; an official file is written in float32
    dtype = next((v.dtype for v in shipped.values() if v.is_floating_point()), torch.float32)
    meta = read_metadata(saved)
    command = (f"python -m alit_train.train recalibrate {checkpoint} {dest} --calibrate {index} "
               f"--calibrate-photos {split} --max-fallback {max_fallback}")
    meta.update(calibrate_on_photos(model, index, split, command, max_fallback))
    return save_checkpoint(model, dest, metadata=meta, dtype=dtype)
