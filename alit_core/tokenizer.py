"""`Tokenizer`: an ALIT model bound to a device and a precision, with the user-facing calls.

    tok = load_tokenizer()                       # or from_official(...), load_tokenizer(path)
    for step in tok.rollout(images):             # one Step per iteration, as computed
        ...
    enc = tok.encode(images, threshold=0.07)     # per-image token counts, early exit
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .alit import ALIT
from .config import ALITConfig
from .devices import autocast, resolve_device, resolve_dtype
from .halting import Halting
from .rollout import Step, rollout
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


class Tokenizer:
    def __init__(self, model: ALIT, device=None, dtype=None):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(self.device).float().eval()

    @property
    def config(self) -> ALITConfig:
        return self.model.cfg

    @property
    def resolution(self) -> int:
        return self.config.resolution

    def to(self, device=None, dtype=None) -> "Tokenizer":
        """Move to another device and/or precision (in place); returns self."""
        if device is not None:
            self.device = resolve_device(device)
            self.model.to(self.device)
        if dtype is not None:
            self.dtype = resolve_dtype(dtype, self.device)
        return self

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a float tensor (B, 3, H, W) in [0, 1], not {type(images).__name__}")
        if images.dim() == 3:
            images = images[None]
        r = self.resolution
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2:] != (r, r):
            raise ValueError(
                f"images must have shape (B, 3, {r}, {r}) for this model; got {tuple(images.shape)} "
                "(use alit_core.load_image to open, crop and resize a picture)"
            )
        if images.shape[0] == 0:
            raise ValueError("images is an empty batch")
        return images.to(self.device, torch.float32)

    def rollout(
        self,
        images: torch.Tensor,
        halting="deterministic",
        *,
        seed: int | None = None,
        max_iterations: int | None = None,
        decode: bool = True,
        attention_layers=None,
        attention_heads: str = "mean",
    ) -> Iterator[Step]:
        """Yield one `Step` per iteration for images (B, 3, H, W) in [0, 1].

        halting: "deterministic" (default: mask where p_gt >= 0.55), "stochastic" (the official
        Bernoulli draw, from a generator seeded with `seed`), "off", or a bool tensor
        (T, B, positions) of masks to replay. attention_layers: decoder layers whose attention
        to keep (int, list, "all"; -1 is the last); attention_heads: "mean" or "all".
        """
        images = self._prepare(images)
        policy = Halting.make(halting, self.config.halting_threshold, seed)
        steps = rollout(
            self.model,
            images,
            halting=policy,
            max_iterations=max_iterations,
            decode=decode,
            attention_layers=attention_layers,
            attention_heads=attention_heads,
        )
        # Re-enter the no-grad / autocast contexts around each resumption of the generator, so
        # that nothing leaks into the caller's code between steps.
        while True:
            with torch.inference_mode(), autocast(self.device, self.dtype):
                step = next(steps, None)
            if step is None:
                return
            yield step

    def encode(
        self,
        images: torch.Tensor,
        threshold: float | None = None,
        *,
        psnr: float | None = None,
        tokens: int | None = None,
        per_batch: bool = False,
        halting="deterministic",
        seed: int | None = None,
        max_iterations: int | None = None,
    ) -> Encoding:
        """Choose a token count per image and stop as soon as every image has met its criterion.

        Criterion: `threshold` on L1 (default 0.07), or a `psnr` target in dB, or a fixed
        `tokens` budget. `per_batch=True` reproduces the official encode(): one count for the
        whole batch from the batch-mean L1.
        """
        if per_batch:
            if psnr is not None or tokens is not None:
                raise ValueError("per_batch selection is the official L1 rule; it takes only a threshold")
        criterion = Criterion.make(threshold, psnr, tokens)
        b = self._prepare(images).shape[0]
        chosen: list[int | None] = [None] * b
        best: list[tuple[float, Step] | None] = [None] * b
        kept: list[Step] = []  # per_batch needs the batch's best step; others keep per-image picks
        l1s, psnrs = [], []
        for step in self.rollout(images, halting, seed=seed, max_iterations=max_iterations):
            l1s.append(step.l1.cpu())
            psnrs.append(step.psnr.cpu())
            if per_batch:
                kept.append(step)
                if float(step.l1.double().mean()) < criterion.value:
                    break
                continue
            met = criterion.met(step.num_tokens, step.l1, step.psnr)
            score = criterion.score(step.l1, step.psnr)
            for i in range(b):
                if chosen[i] is None:
                    if best[i] is None or score[i] < best[i][0]:
                        best[i] = (float(score[i]), step)
                    if met[i]:
                        chosen[i] = step.iteration
                        best[i] = (float(score[i]), step)
            if all(c is not None for c in chosen):
                break
            kept = [step]  # only the latest step may still be needed for a budget fallback
        l1_hist, psnr_hist = torch.stack(l1s), torch.stack(psnrs)
        if per_batch:
            t = select_batch_iteration(l1_hist, criterion.value)
            picks = [kept[t]] * b
        else:
            picks = []
            for i in range(b):
                if chosen[i] is None and criterion.kind == "tokens":
                    picks.append(kept[-1])
                else:
                    picks.append(best[i][1])
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
            iterations_run=len(l1s),
            criterion=criterion,
        )
