"""Token selection: how many tokens each image gets (docs/method.md §4).

Three criteria: the official L1 threshold (first iteration whose mean |recon - image| is below
it), a PSNR target (first iteration at or above it) and a token budget (the largest count that
fits in it; the first iteration's when even that does not). When no iteration
meets an error criterion, the official fallback applies: the iteration with the lowest L1 (the
highest PSNR for a PSNR target). These functions work on per-iteration histories, so a caller
holding a finished rollout can re-select for another threshold without recomputing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_THRESHOLD = 0.07


@dataclass(frozen=True)
class Criterion:
    kind: str  # "l1" | "psnr" | "tokens"
    value: float

    @classmethod
    def make(cls, threshold: float | None = None, psnr: float | None = None, tokens: int | None = None,
             default: float = DEFAULT_THRESHOLD) -> Criterion:
        """One of an L1 threshold, a PSNR target or a token budget; none given: L1 < `default`."""
        given = [(k, v) for k, v in (("l1", threshold), ("psnr", psnr), ("tokens", tokens)) if v is not None]
        if len(given) > 1:
            raise ValueError("give at most one of threshold, psnr and tokens")
        kind, value = given[0] if given else ("l1", default)
        if kind == "tokens" and (int(value) != value or value < 1):
            raise ValueError(f"a token budget must be a positive whole number, not {value!r}")
        if kind == "l1" and value < 0:
            raise ValueError(f"an L1 threshold must not be negative, not {value!r}")
        return cls(kind, float(value))

    def met(self, num_tokens: int, l1: torch.Tensor | None, psnr: torch.Tensor | None,
            tokens_per_iteration: int | None = None) -> torch.Tensor:
        """Which images (B,) meet the criterion at an iteration with `num_tokens` tokens.

        A budget is met by the largest count that fits in it, i.e. when the next iteration's
        count would exceed it (or this one already does: no iteration has fewer than the first).
        """
        if self.kind == "tokens":
            if tokens_per_iteration is None:
                raise ValueError("a token budget needs tokens_per_iteration to know the next count")
            ref = l1 if l1 is not None else psnr
            return torch.full(ref.shape, num_tokens + tokens_per_iteration > self.value, dtype=torch.bool)
        if l1 is None:
            raise ValueError("selection by error needs pixel reconstructions; do not switch decoding off")
        if self.kind == "l1":
            return l1.cpu() < self.value
        return psnr.cpu() >= self.value

    def score(self, l1: torch.Tensor, psnr: torch.Tensor) -> torch.Tensor:
        """Fallback ranking, lower is better: L1, or -PSNR for a PSNR target."""
        return -psnr.cpu() if self.kind == "psnr" else l1.cpu()


def select_iterations(
    l1: torch.Tensor,
    psnr: torch.Tensor | None = None,
    criterion: Criterion | None = None,
    tokens_per_iteration: int = 32,
) -> list[int]:
    """Per image, the iteration to keep, from histories l1 / psnr of shape (T, B).

    The first iteration meeting the criterion, else the fallback (lowest L1 / highest PSNR;
    for a budget beyond the history, its last iteration).
    """
    criterion = criterion or Criterion.make()
    l1 = torch.as_tensor(l1, dtype=torch.float64).cpu()
    psnr = torch.zeros_like(l1) if psnr is None else torch.as_tensor(psnr, dtype=torch.float64).cpu()
    t_run, b = l1.shape
    met = torch.stack([criterion.met(tokens_per_iteration * (t + 1), l1[t], psnr[t], tokens_per_iteration)
                       for t in range(t_run)])
    out = []
    for i in range(b):
        hits = torch.nonzero(met[:, i]).flatten()
        if len(hits):
            out.append(int(hits[0]))
        elif criterion.kind == "tokens":
            out.append(t_run - 1)
        else:
            out.append(int(torch.argmin(criterion.score(l1[:, i], psnr[:, i]))))
    return out


def select_batch_iteration(l1: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> int:
    """The official encode(): one iteration for the whole batch, by the batch-mean L1.

    l1 (T, B) per-image errors of equal-sized images, so their mean is the mean over all pixels.
    """
    mean = torch.as_tensor(l1, dtype=torch.float64).mean(dim=1)
    hits = torch.nonzero(mean < threshold).flatten()
    return int(hits[0]) if len(hits) else int(torch.argmin(mean))
