"""Dynamic halting: which image tokens to mask in the encoder after each iteration (docs/method.md §3, step 5).

A position is a candidate only where the decoder already predicts its VQGAN code with
probability p_gt >= 0.55. The official code then keeps a random subset (Bernoulli(p_gt)),
even at evaluation time; we default to the deterministic rule so that the same image always
gets the same answer.

VAE-based models score a position by its code error, mean |regressed latent - VAE latent|, and
the intended rule masks where it is below 0.025. The official VAE code never applies that mask
(it writes into a copy), so "off" is what the official code computes, and "deterministic" is the
rule as intended, a departure from it. It has no stochastic form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODES = ("deterministic", "stochastic", "off")
SCORES = ("p_gt", "code_error")  # what `mask` receives: halt at >= level, or below it


@dataclass
class Halting:
    """A halting policy for one rollout. Build it with `Halting.make`."""

    mode: str
    level: float = 0.55  # the score a position halts at (config.halting_threshold / code_error_threshold);
    # not the L1 threshold of token selection (selection.Criterion)
    generator: torch.Generator | None = None
    masks: torch.Tensor | None = None  # replayed masks (T, B, P), mode == "replay"
    score: str = "p_gt"

    @classmethod
    def make(cls, halting, level: float = 0.55, seed: int | None = None, score: str = "p_gt") -> Halting:
        """From a mode name, a bool, or a (T, B, P) bool tensor of masks to replay.

        score: "p_gt" (VQGAN models) or "code_error" (VAE models), what `mask` will be given.
        """
        if score not in SCORES:
            raise ValueError(f"unknown halting score {score!r}; choose one of {SCORES}")
        if isinstance(halting, Halting):
            return halting
        if isinstance(halting, torch.Tensor):
            if halting.dtype != torch.bool or halting.dim() != 3:
                raise ValueError(
                    f"halting masks to replay must be a bool tensor (T, B, positions); got {halting.dtype} "
                    f"of shape {tuple(halting.shape)}"
                )
            return cls("replay", level, masks=halting, score=score)
        if halting is True:
            halting = "deterministic"
        elif halting is False or halting is None:
            halting = "off"
        if halting not in MODES:
            raise ValueError(f"unknown halting mode {halting!r}; choose one of {MODES} or pass masks to replay")
        generator = None
        if halting == "stochastic" and score == "code_error":
            raise ValueError(
                "VAE-based models have no stochastic halting: the intended rule is deterministic (code error "
                "below the threshold); use 'deterministic', or 'off' for what the official code computes"
            )
        if halting == "stochastic":
            # The official draw uses the default CPU generator; a private one keeps runs independent.
            generator = torch.Generator(device="cpu")
            generator.manual_seed(0 if seed is None else int(seed))
        return cls(halting, level, generator, score=score)

    @classmethod
    def for_model(cls, cfg, halting, seed: int | None = None) -> Halting:
        """`make` with the level and score of a model configuration (ALITConfig): p_gt against
        halting_threshold for VQGAN models, the code error against code_error_threshold for VAE ones."""
        if cfg.vae is not None:
            return cls.make(halting, cfg.code_error_threshold, seed, score="code_error")
        return cls.make(halting, cfg.halting_threshold, seed)

    def mask(self, iteration: int, p_gt: torch.Tensor) -> torch.Tensor | None:
        """The (B, P) bool mask to apply after `iteration`, or None when nothing is masked.

        p_gt: the (B, P) halting score, p_gt or (score "code_error") the code error.
        """
        if self.mode == "off":
            return None
        if self.mode == "replay":
            if iteration >= self.masks.shape[0]:
                return None
            m = self.masks[iteration]
            if m.shape != p_gt.shape:
                raise ValueError(f"replayed mask {iteration} has shape {tuple(m.shape)}, expected {tuple(p_gt.shape)}")
            return m.to(p_gt.device)
        if self.score == "code_error":
            return p_gt < self.level  # deterministic: stochastic is refused in `make`
        candidate = p_gt >= self.level
        if self.mode == "deterministic":
            return candidate
        draw = torch.bernoulli(p_gt.detach().float().cpu(), generator=self.generator).bool()
        return draw.to(p_gt.device) & candidate
