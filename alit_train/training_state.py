"""What a training run keeps: the EMA of the weights, the full state of a run (`last.pt`: weights,
EMA, optimiser), the compact state committed between sessions (float16 weights and EMA, no
optimiser), and the model's one metrics log, whose phases restart their step count."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from alit_core.files.atomic import written_whole
from alit_core.model.alit import ALIT
from alit_core.model.config import ALITConfig

from .train_config import TrainConfig


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


def save_training_state(path: Path, result, opt, ema: EMA, step: int, cfg: TrainConfig, model_cfg: ALITConfig,
                        warm_from: int = 0):
    with written_whole(path) as tmp:
        torch.save({"model": result.state_dict(), "ema": ema.shadow, "optimizer": opt.state_dict(), "step": step,
                    "train_config": json.dumps(asdict(cfg)), "model_config": model_cfg.to_dict(),
                    "warm_from": warm_from}, tmp)


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
    with written_whole(dest) as tmp:
        torch.save({"compact": True, "model": half, "ema": ema, "step": ck["step"],
                    "train_config": ck["train_config"], "model_config": ck["model_config"]}, tmp)
    return dest


def load_compact(path: str, result: nn.Module, ema: EMA) -> int:
    """Load a `compact` state into the weights and the EMA; returns the step it was saved at."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    result.load_state_dict(state_weights(ck, "model"))
    ema.shadow = {k: ck["ema"][k].float() if k in ck["ema"] else v.detach().clone().float()
                  for k, v in result.state_dict().items()}
    return int(ck["step"])


def merge_log(log: str | Path, run_metrics: str | Path, phase: str) -> Path:
    """Put a run's metrics into a model's one log as the rows of `phase`, replacing that phase's earlier rows.

    A phase is a run with its own step count (e.g. one that changed the architecture and restarted its
    schedule); rows without a "phase" belong to the first. Earlier phases keep their rows and order, so the
    log tells the whole history and `on_one_axis` can lay the phases end to end.
    """
    log = Path(log)
    kept = [r for r in read_log(log) if r.get("phase") != phase] if log.exists() else []
    rows = kept + [{**r, "phase": phase} for r in read_log(run_metrics) if r.get("phase", phase) == phase]
    with written_whole(log) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return log


def extend_log(log: str | Path, run_metrics: str | Path) -> Path:
    """Add to a line's one log a run's rows past the log's last step, in the run's order after the log's own.
    A run continued on the machine that has its folder repeats the log's rows; one continued elsewhere from the
    committed state starts a new metrics.jsonl at that state's step. A step logged twice in the run (resumed
    from an earlier checkpoint after a kill) keeps its last row: the branch that went on. A row is known by
    its step and kind (a probe's row shares its step with a loss row)."""
    log = Path(log)
    rows = read_log(log) if log.exists() else []
    last = max((r["step"] for r in rows), default=-1)
    new = {}
    for r in read_log(run_metrics):
        if r["step"] > last:
            key = (r["step"], r.get("probe"))
            new.pop(key, None)  # a later row of the same step replaces it, at its own place
            new[key] = r
    rows += list(new.values())
    with written_whole(log) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return log


def read_log(path: str | Path) -> list[dict]:
    """The rows of a metrics.jsonl."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def on_one_axis(rows: list[dict]) -> list[dict]:
    """The rows of a log whose later phases restarted their step count (`training_state.merge_log`), each
    phase starting where the one before it ended; the run's own step is kept as "phase_step"."""
    out, offset, end, current = [], 0, 0, None
    for r in rows:
        if r.get("phase") != current:
            offset, current = end, r.get("phase")
        out.append({**r, "phase_step": r["step"], "step": offset + r["step"]})
        end = max(end, offset + r["step"])
    return out


def phase_starts(rows: list[dict]) -> list[tuple[int, str]]:
    """(first step, name) of every named phase of `on_one_axis` rows."""
    starts = {}
    for r in rows:
        if r.get("phase"):
            starts.setdefault(r["phase"], r["step"] - r["phase_step"])
    return [(step, name) for name, step in starts.items()]


def state_weights(ck: dict, weights: str = "ema") -> dict[str, torch.Tensor]:
    """A loaded training checkpoint's `weights` ("ema" or "model") as a whole state dict in float32: a compact
    state stores only the EMA weights that differ from the model's (not the frozen VQGAN or VAE)."""
    state = {**ck["model"], **ck[weights]} if ck.get("compact") else ck[weights]
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def decoder_weights(path: str, base: str, weights: str = "ema") -> tuple[dict[str, torch.Tensor], dict]:
    """The decoder of the base tokenizer ("vqgan" or "vae") in a training checkpoint, under an ALIT's key
    names (`{base}.decoder.*`), and where it came from: an ALIT run holds it under the base's name, a
    decoder-only vqgan or vae run at its root."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    state = state_weights(ck, weights)
    prefix = f"{base}.decoder." if any(k.startswith(f"{base}.") for k in state) else "decoder."
    decoder = {f"{base}.decoder.{k[len(prefix):]}": v for k, v in state.items() if k.startswith(prefix)}
    if not decoder:
        raise SystemExit(f"{path} holds no {base.upper()} decoder")
    return decoder, {"from": str(path), "trained_steps": int(ck["step"]), "train_config": ck["train_config"]}


def set_base_decoder(state: str, decoder_run: str, dest: str, weights: str = "ema") -> Path:
    """A compact ALIT state whose frozen base tokenizer's decoder is another run's (a decoder-only vqgan or vae
    run on the same encoder, so the ALIT's targets and its code pack stay as they were): the line then trains
    on through the new decoder, which its pixel term reads."""
    ck = torch.load(state, map_location="cpu", weights_only=True)
    if not ck.get("compact"):
        raise SystemExit(f"{state} is not a compact state (python -m alit_train.train compact makes one)")
    base = ALITConfig.from_dict(ck["model_config"]).base_name
    decoder, _ = decoder_weights(decoder_run, base, weights)
    if decoder.keys() != {k for k in ck["model"] if k.startswith(f"{base}.decoder.")}:
        raise SystemExit(f"the decoder of {decoder_run} does not fit the {base.upper()} of {state}")
    ck["model"].update({k: v.half() for k, v in decoder.items()})
    ck["ema"] = {k: v for k, v in ck["ema"].items() if k not in decoder}  # frozen: its average is itself
    dest = Path(dest)
    with written_whole(dest) as tmp:
        torch.save(ck, tmp)
    return dest


def initial_model(path: str, weights: str = "ema") -> ALIT:
    """An ALIT in float32 from a training checkpoint (its `weights`) or an alit_core checkpoint."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if "model_config" in ck:
        model = ALIT(ALITConfig.from_dict(ck["model_config"]))
        model.load_state_dict(state_weights(ck, weights))
        return model
    from alit_core import load_tokenizer

    return load_tokenizer(path, device="cpu").model.float()
