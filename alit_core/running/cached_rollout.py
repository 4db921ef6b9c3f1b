"""`CachedRollout`: one batch's rollout, each iteration computed at most once, on demand.

For exploring selection rules on the same images: every `encode(...)` call (another threshold,
a PSNR target, a budget) reads the iterations already computed and runs further ones only if
its answer needs them, so the VQGAN encoding and the transformer work are never repeated.

    run = tok.cached_rollout(images)
    a = run.encode(threshold=0.07)       # runs iterations until every image is decided
    b = run.encode(threshold=0.05)       # reuses them, continues only if it must
    l1, psnr = run.history()             # (T_computed, B)

It holds every computed Step (logits, reconstructions, ...), about 2 MB per image and iteration
at 256 px; drop the object to free them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .encoding import Encoding, encoding_builder
from .rollout import Step
from .selection import Criterion


class CachedRollout:
    def __init__(self, steps: Iterator[Step], batch: int, iterations: int, default_threshold: float = 0.07):
        self._source = steps
        self.default_threshold = default_threshold  # the model's, for encode() without a criterion
        self._exhausted = False
        self.steps: list[Step] = []
        self.batch = batch
        self.iterations = iterations  # the most this rollout can compute

    def _next(self) -> Step | None:
        if self._exhausted:
            return None
        step = next(self._source, None)
        if step is None:
            self._exhausted = True
            return None
        self.steps.append(step)
        return step

    def __iter__(self) -> Iterator[Step]:
        """Every iteration in order: the cached ones, then newly computed ones."""
        t = 0
        while True:
            if t < len(self.steps):
                yield self.steps[t]
            elif self._next() is None:
                return
            else:
                yield self.steps[t]
            t += 1

    def __len__(self) -> int:
        """Iterations computed so far."""
        return len(self.steps)

    def step(self, iteration: int) -> Step:
        """One iteration's Step, computing up to it if needed."""
        if not 0 <= iteration < self.iterations:
            raise IndexError(f"iteration {iteration} is outside 0..{self.iterations - 1}")
        while len(self.steps) <= iteration:
            if self._next() is None:
                raise IndexError(f"the rollout ended after {len(self.steps)} iterations")
        return self.steps[iteration]

    def complete(self) -> list[Step]:
        """Compute every remaining iteration; all steps."""
        for _ in self:
            pass
        return self.steps

    def history(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image L1 and PSNR (T_computed, B) of the iterations computed so far."""
        if not self.steps or self.steps[0].l1 is None:
            raise ValueError("no reconstructions computed (yet)")
        return torch.stack([s.l1.cpu() for s in self.steps]), torch.stack([s.psnr.cpu() for s in self.steps])

    def encode(
        self,
        threshold: float | None = None,
        *,
        psnr: float | None = None,
        tokens: int | None = None,
        criterion: Criterion | None = None,
        per_batch: bool = False,
    ) -> Encoding:
        """`Tokenizer.encode` on this rollout: the same answer, computing only missing iterations."""
        crit = Criterion.of(criterion, threshold, psnr, tokens, default=self.default_threshold)
        return encoding_builder(self.batch, crit, per_batch).run(self)
