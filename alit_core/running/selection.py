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
KINDS = ("l1", "psnr", "tokens")


@dataclass(frozen=True)
class Criterion:
    """How many tokens an image gets, carried whole from the caller (page, CLI, dataset run) to `encode`."""

    kind: str  # "l1" | "psnr" | "tokens"
    value: float

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown criterion {self.kind!r}; choose one of {KINDS}")

    @classmethod
    def of(cls, criterion: Criterion | None = None, threshold: float | None = None, psnr: float | None = None,
           tokens: int | None = None, default: float = DEFAULT_THRESHOLD) -> Criterion:
        """The criterion given whole, or made from one keyword (`make`); not both."""
        if criterion is None:
            return cls.make(threshold, psnr, tokens, default=default)
        if not isinstance(criterion, Criterion):
            raise TypeError(f"criterion must be a Criterion (Criterion.make(...)), not {type(criterion).__name__}")
        if any(v is not None for v in (threshold, psnr, tokens)):
            raise ValueError("give a criterion or one of threshold, psnr and tokens, not both")
        return criterion

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
        return self._error_met(l1.cpu(), psnr.cpu() if psnr is not None else None)

    def reached(self, num_tokens: int, l1: float, psnr: float) -> bool:
        """Whether a selection (its count and errors) reaches the target: L1 below the threshold, PSNR at least
        the target, or a count within the budget. False for an error criterion means the fallback was kept."""
        if self.kind == "tokens":
            return num_tokens <= self.value
        return bool(self._error_met(torch.tensor(float(l1)), torch.tensor(float(psnr))))

    def _error_met(self, l1: torch.Tensor, psnr: torch.Tensor | None) -> torch.Tensor:
        # the one comparison of the rule: strictly below the L1 threshold (the official `<`), PSNR at or above
        return l1 < self.value if self.kind == "l1" else psnr >= self.value

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
    hits = torch.nonzero(Criterion("l1", float(threshold)).met(0, mean, None)).flatten()
    return int(hits[0]) if len(hits) else int(torch.argmin(mean))
