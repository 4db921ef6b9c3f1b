"""`Encoding` (the result of encode) and `EncodingBuilder`, which makes one from steps as they come.

The builder is fed one `Step` at a time and says when no later iteration can change the answer,
so its caller can stop the rollout there (early exit); `undecided()` tells a rollout which images
may leave the batch before that. It keeps only the steps the answer may still need, not the
whole rollout.
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
    reconstructions. l1_history / psnr_history (T_run, B) cover every iteration that ran (NaN
    where an image had already been decided and left the batch); `iterations_run` < the
    model's iterations means the rollout exited early.
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
        # per image: (score, step, row of the image in that step)
        self.best: list[tuple[float, Step, int] | None] = [None] * batch
        self.kept: list[Step] = []  # per_batch needs the batch's best step; others only the latest
        self.l1s: list[torch.Tensor] = []
        self.psnrs: list[torch.Tensor] = []

    def undecided(self) -> torch.Tensor:
        """Which images (B,) still wait for their iteration (the rollout's `keep`)."""
        return torch.tensor([c is None for c in self.chosen])

    def _history_row(self, values: torch.Tensor, rows: list[int]) -> torch.Tensor:
        full = torch.full((self.batch,), float("nan"))
        full[rows] = values.cpu().float()
        return full

    def add(self, step: Step) -> bool:
        """Take the next iteration; True when every image is decided (stop the rollout)."""
        if step.l1 is None:
            raise ValueError("selection by error needs pixel reconstructions; do not switch decoding off")
        rows = step.rows(self.batch)
        self.l1s.append(self._history_row(step.l1, rows))
        self.psnrs.append(self._history_row(step.psnr, rows))
        if self.per_batch:
            self.kept.append(step)
            return bool(self.criterion.met(step.num_tokens, step.l1.double().mean()[None], None)[0])
        met = self.criterion.met(step.num_tokens, step.l1, step.psnr, step.num_tokens // (step.iteration + 1))
        score = self.criterion.score(step.l1, step.psnr)
        for r, i in enumerate(rows):
            if self.chosen[i] is None:
                if self.best[i] is None or score[r] < self.best[i][0]:
                    self.best[i] = (float(score[r]), step, r)
                if met[r]:
                    self.chosen[i] = step.iteration
                    self.best[i] = (float(score[r]), step, r)
        if all(c is not None for c in self.chosen):
            return True
        self.kept = [step]  # only the latest step may still be needed for a budget fallback
        return False

    def run(self, steps: Iterable[Step]) -> Encoding:
        """Feed `steps` until every image is decided (leaving the generator stops it); the result."""
        for step in steps:
            if self.add(step):
                break
        return self.result()

    def result(self) -> Encoding:
        if not self.l1s:
            raise ValueError("no iteration was run")
        l1_hist, psnr_hist = torch.stack(self.l1s), torch.stack(self.psnrs)
        b = self.batch
        if self.per_batch:
            step = self.kept[select_batch_iteration(l1_hist, self.criterion.value)]
            picks = [(step, i) for i in range(b)]
        else:
            picks = []
            for i in range(b):
                if self.chosen[i] is None and self.criterion.kind == "tokens":
                    last = self.kept[-1]
                    picks.append((last, last.rows(b).index(i)))
                else:
                    picks.append(self.best[i][1:])
        return Encoding(
            num_tokens=[s.num_tokens for s, _ in picks],
            iterations=[s.iteration for s, _ in picks],
            latents=[s.latents[r] for s, r in picks],
            codes=[None if s.codes is None else s.codes[r] for s, r in picks],
            recon=torch.stack([s.recon[r] for s, r in picks]),
            l1=[float(s.l1[r]) for s, r in picks],
            psnr=[float(s.psnr[r]) for s, r in picks],
            l1_history=l1_hist,
            psnr_history=psnr_hist,
            iterations_run=len(self.l1s),
            criterion=self.criterion,
        )


def encoding_builder(batch: int, criterion: Criterion, per_batch: bool) -> EncodingBuilder:
    """The builder for encode's arguments (checked).

    Shared by `Tokenizer.encode` (a live rollout: stopping stops the computation) and
    `CachedRollout.encode` (cached steps first, then new ones only if needed).
    """
    if per_batch and criterion.kind != "l1":
        raise ValueError("per_batch selection is the official L1 rule; it takes only a threshold")
    return EncodingBuilder(criterion, batch, per_batch)
