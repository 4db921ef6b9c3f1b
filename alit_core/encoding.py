"""`Encoding` (the result of encode) and `EncodingBuilder`, which makes one from steps as they come.

The builder is fed one `Step` at a time and says when no later iteration can change the answer,
so its caller can stop the rollout there (early exit). It keeps only the steps the answer may
still need, not the whole rollout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .rollout import Step
from .selection import Criterion, select_batch_iteration


@dataclass
class Encoding:
    """The result of `Tokenizer.encode` for a batch of B images.

    num_tokens / iterations: the selection per image. latents[i] (N_i, W) are the encoder
    latents before encoder_ln_post (what the official encode() returns); codes[i] (N_i,) the
    latent codebook indices (None for continuous models); recon (B, 3, H, W) the selected
    reconstructions. l1_history / psnr_history (T_run, B) cover every iteration that ran;
    `iterations_run` < the model's iterations means the rollout exited early.
    """

    num_tokens: list[int]
    iterations: list[int]
    latents: list[torch.Tensor]
    codes: list[torch.Tensor | None]
    recon: torch.Tensor
    l1: list[float]
    psnr: list[float]
    l1_history: torch.Tensor
    psnr_history: torch.Tensor
    iterations_run: int
    criterion: Criterion


class EncodingBuilder:
    """Per-image selection (or the official per-batch rule) over steps fed in order."""

    def __init__(self, criterion: Criterion, batch: int, per_batch: bool = False):
        self.criterion = criterion
        self.batch = batch
        self.per_batch = per_batch
        self.chosen: list[int | None] = [None] * batch
        self.best: list[tuple[float, Step] | None] = [None] * batch
        self.kept: list[Step] = []  # per_batch needs the batch's best step; others only the latest
        self.l1s: list[torch.Tensor] = []
        self.psnrs: list[torch.Tensor] = []

    def add(self, step: Step) -> bool:
        """Take the next iteration; True when every image is decided (stop the rollout)."""
        if step.l1 is None:
            raise ValueError("selection by error needs pixel reconstructions; do not switch decoding off")
        self.l1s.append(step.l1.cpu())
        self.psnrs.append(step.psnr.cpu())
        if self.per_batch:
            self.kept.append(step)
            return float(step.l1.double().mean()) < self.criterion.value
        met = self.criterion.met(step.num_tokens, step.l1, step.psnr)
        score = self.criterion.score(step.l1, step.psnr)
        for i in range(self.batch):
            if self.chosen[i] is None:
                if self.best[i] is None or score[i] < self.best[i][0]:
                    self.best[i] = (float(score[i]), step)
                if met[i]:
                    self.chosen[i] = step.iteration
                    self.best[i] = (float(score[i]), step)
        if all(c is not None for c in self.chosen):
            return True
        self.kept = [step]  # only the latest step may still be needed for a budget fallback
        return False

    def result(self) -> Encoding:
        if not self.l1s:
            raise ValueError("no iteration was run")
        l1_hist, psnr_hist = torch.stack(self.l1s), torch.stack(self.psnrs)
        b = self.batch
        if self.per_batch:
            picks = [self.kept[select_batch_iteration(l1_hist, self.criterion.value)]] * b
        else:
            picks = []
            for i in range(b):
                if self.chosen[i] is None and self.criterion.kind == "tokens":
                    picks.append(self.kept[-1])
                else:
                    picks.append(self.best[i][1])
        return Encoding(
            num_tokens=[s.num_tokens for s in picks],
            iterations=[s.iteration for s in picks],
            latents=[s.latents[i] for i, s in enumerate(picks)],
            codes=[None if s.codes is None else s.codes[i] for i, s in enumerate(picks)],
            recon=torch.stack([s.recon[i] for i, s in enumerate(picks)]),
            l1=[float(s.l1[i]) for i, s in enumerate(picks)],
            psnr=[float(s.psnr[i]) for i, s in enumerate(picks)],
            l1_history=l1_hist,
            psnr_history=psnr_hist,
            iterations_run=len(self.l1s),
            criterion=self.criterion,
        )


def encode_steps(steps: Iterable[Step], batch: int, threshold: float | None, psnr: float | None,
                 tokens: int | None, per_batch: bool, default_threshold: float) -> Encoding:
    """Select from `steps` as they come, stopping as soon as every image of the batch is decided.

    Shared by `Tokenizer.encode` (a live rollout: stopping stops the computation) and
    `CachedRollout.encode` (cached steps first, then new ones only if needed).
    """
    if per_batch and (psnr is not None or tokens is not None):
        raise ValueError("per_batch selection is the official L1 rule; it takes only a threshold")
    builder = EncodingBuilder(Criterion.make(threshold, psnr, tokens, default=default_threshold), batch, per_batch)
    for step in steps:
        if builder.add(step):
            break
    return builder.result()
