"""`KARLTokenizer`: a KARL model bound to a device and a precision, with the user-facing calls (loading it
from files: files/karl_checkpoints.py).

    tok = load_tokenizer("official:karl-in100-small-vqgan-quantized")   # or from_official(...)
    run = tok.tokenize(images, budget=256, quality=0.05)   # one pass: counts, halting, codes, pixels
    for run in tok.budget_sweep(images): ...               # T = 32, 64, ..., 256 at one quality
    for run in tok.quality_sweep(images): ...              # every quality bin at T = 256
    enc = tok.encode(images, quality=0.05)                 # KARL's own count per image: an Encoding

Every pass is independent of the others (nothing carries over); the sweeps encode the images
with the base tokenizer once. Every image of a batch gets its own decoder mask, so a batch gives
what the official code gives one image at a time (its batched masks are wrong, see `karl.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch

from ..analysis.attention_maps import latent_attention_maps
from ..analysis.metrics import l1_error, psnr
from ..model.karl import KARLConfig
from .encoding import Encoding
from .rollout import attention_layer_set
from .selection import Criterion
from .tokenizer import BoundModel, check_images

__all__ = ["KARLImageTokens", "KARLPass", "KARLTokenizer"]

SWEEP_PASSES = 8  # a default budget sweep: the official demo's 32, 64, ..., 256


@dataclass
class KARLImageTokens:
    """The base encoding of a batch, reusable across passes: images (B, 3, H, W), base features
    (B, C, g, g), 2D tokens (B, P, W) and the VAE posterior noise used (None: VQGAN or the mean)."""

    images: torch.Tensor
    features: torch.Tensor
    tokens: torch.Tensor
    noise: torch.Tensor | None = None


@dataclass
class KARLPass:
    """One KARL pass over B images at budget T and desired quality eps; row i is image i.

    num_tokens[i]: KARL's estimated token count, T minus the halted latents (its "approximate
    Kolmogorov complexity"). halt_logits / halt_prob / halt_mask (B, T): the halting head; a
    latent halts where halt_prob > 0.75. latents (B, T, W): encoder outputs before any LayerNorm;
    factorized / quantized (B, T, d): the bottleneck before and after the quantiser (equal for
    continuous models); codes (B, T): latent codebook indices (None for continuous models). Halted
    latents are computed and quantised too, but the decoder does not see them. outputs (B, P, K):
    the decoder head, logits over the VQGAN codebook (or the regressed VAE latents). recon
    (B, 3, H, W), not clamped, with l1 (B,) = mean |images - recon| (the official printout) and
    psnr (B,) on the clamped pixels; None when not decoded. attention: {layer: (B, L, L) head mean, or
    (B, heads, L, L)} decoder self-attention of the requested layers, L = P + T (no class token: grid
    position p is row p, latent k column P + k; a halted latent's column is 0); see `latent_maps`.
    """

    budget: int
    quality: torch.Tensor  # (B,) eps asked for
    quality_bin: torch.Tensor  # (B,) bin index used
    quality_binned: torch.Tensor  # (B,) that bin's value
    num_tokens: list[int]
    halt_logits: torch.Tensor
    halt_prob: torch.Tensor
    halt_mask: torch.Tensor
    latents: torch.Tensor
    factorized: torch.Tensor
    quantized: torch.Tensor
    codes: torch.Tensor | None
    outputs: torch.Tensor
    recon: torch.Tensor | None
    l1: torch.Tensor | None
    psnr: torch.Tensor | None
    attention: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def logits(self) -> torch.Tensor:
        """The decoder head's outputs (B, P, K): VQGAN code logits (VAE models: the regressed latents)."""
        return self.outputs

    def latent_maps(self, layer: int) -> torch.Tensor:
        """Where each latent is looked at from: (B, [heads,] T, g, g) from decoder layer `layer`'s attention."""
        att = self.attention[layer]
        return latent_attention_maps(att, round((att.shape[-1] - self.budget) ** 0.5), class_token=False)

    def kept(self, i: int) -> torch.Tensor:
        """Indices (N_i,) of image i's latents that did not halt: its tokens, in sequence order."""
        return torch.nonzero(~self.halt_mask[i].cpu()).flatten()


class KARLTokenizer(BoundModel):
    """A KARL model on a device, in a precision (`to`, `config`, `resolution`, `is_vae` as `Tokenizer`)."""

    family = "karl"

    @property
    def config(self) -> KARLConfig:
        return self.model.cfg

    @property
    def default_budget(self) -> int:
        """T of `encode` (the official 256, or the model's largest budget if smaller)."""
        return self.config.encode_budget

    @property
    def sweep_budgets(self) -> list[int]:
        """The default budget sweep: SWEEP_PASSES budgets evenly spaced up to `default_budget` (32, 64, ..., 256
        for the releases, as the official demo's list; smaller models get their own)."""
        top = self.default_budget
        return sorted({max(1, round(top * (i + 1) / SWEEP_PASSES)) for i in range(SWEEP_PASSES)})

    # --- arguments ----------------------------------------------------------------------------
    def _budget(self, budget) -> int:
        budget = self.default_budget if budget is None else budget
        if isinstance(budget, bool) or int(budget) != budget or not 1 <= budget <= self.config.max_tokens:
            raise ValueError(f"a token budget must be a whole number from 1 to {self.config.max_tokens}, not {budget!r}")
        return int(budget)

    def _quality(self, quality, batch: int) -> torch.Tensor:
        """eps per image (B,) float64: one number for all, or one per image."""
        quality = self.config.default_quality if quality is None else quality
        q = torch.as_tensor(quality, dtype=torch.float64).flatten().cpu()
        if q.numel() == 1:
            q = q.expand(batch).clone()
        if q.numel() != batch or not torch.isfinite(q).all() or (q < 0).any():
            raise ValueError(f"quality must be one non-negative L1 error or one per image ({batch}), not {quality!r}")
        return q

    def _batch(self, images) -> int:
        if isinstance(images, KARLImageTokens):
            return images.tokens.shape[0]
        return check_images(images, self.resolution, torch.device("meta")).shape[0]

    def image_tokens(self, images, posterior=None) -> KARLImageTokens:
        """The base encoding of a batch (B, 3, H, W) in [0, 1], to reuse across passes.

        posterior (VAE models): "mean" (default), "sample" (the official behaviour: one draw from
        torch's default generator) or a noise tensor (B, 16, g, g) to replay a draw.
        """
        if isinstance(images, KARLImageTokens):
            if posterior is not None:
                raise ValueError("these KARLImageTokens are encoded already; pass posterior= to image_tokens()")
            if images.tokens.shape[-1] != self.config.width or images.tokens.device != self.device:
                raise ValueError("these KARLImageTokens come from another model or device")
            return images
        if not self.is_vae and not (posterior is None or (isinstance(posterior, str) and posterior == "mean")):
            raise ValueError("posterior= applies to VAE-based models; a VQGAN encodes deterministically")
        images = check_images(images, self.resolution, self.device)
        with self._context():
            m = self.inference_model
            features, noise = m.base_features(images, "mean" if posterior is None else posterior)
            return KARLImageTokens(images, features, m.image_tokens(images, features), noise)

    # --- passes -------------------------------------------------------------------------------
    def tokenize(self, images, budget: int | None = None, quality=None, *, posterior=None, decode: bool = True,
                 attention_layers=None, attention_heads: str = "mean") -> KARLPass:
        """One KARL pass: T = `budget` latents (default 256) conditioned on the desired reconstruction
        L1 `quality` (default 0.05; one number, or one per image). images: (B, 3, H, W) in [0, 1] or
        their `KARLImageTokens`. decode=False skips the pixels (recon, l1, psnr are None).
        attention_layers: decoder layers whose attention to keep (int, list, "all"; -1 the last);
        attention_heads: "mean" or "all"."""
        return next(self._sweep(images, [(budget, quality)], posterior, decode, attention_layers, attention_heads))

    def _pass(self, base: KARLImageTokens, budget: int, quality: torch.Tensor, decode: bool,
              layers: frozenset[int] = frozenset(), heads: str = "mean") -> KARLPass:
        m = self.inference_model
        bins = m.quality_bins_of(quality)
        latents = m.encode(base.tokens, budget, bins)  # (B, T, W)
        halt_logits = m.halting_logits(latents)  # (B, T)
        halt_prob = torch.sigmoid(halt_logits)
        halt_mask = halt_prob > self.config.halting_threshold
        factorized, quantized, codes = m.bottleneck(latents)
        outputs, maps = m.decode(quantized, halt_mask, layers)  # (B, P, K)
        outputs = outputs.float()
        recon = l1 = ps = None
        if decode:
            recon = m.reconstruct(outputs).float()
            l1, ps = l1_error(recon, base.images), psnr(recon, base.images)
        return KARLPass(
            budget=budget, quality=quality, quality_bin=bins.cpu(), quality_binned=m.quality_bins[bins.cpu()],
            num_tokens=[budget - int(n) for n in halt_mask.sum(-1).tolist()],
            halt_logits=halt_logits, halt_prob=halt_prob, halt_mask=halt_mask, latents=latents.float(),
            factorized=factorized, quantized=quantized, codes=codes, outputs=outputs, recon=recon, l1=l1, psnr=ps,
            attention={i: (w.mean(1) if heads == "mean" else w).float() for i, w in maps.items()},
        )

    def _sweep(self, images, settings: Iterable[tuple[int | None, object]], posterior, decode,
               attention_layers, attention_heads) -> Iterator[KARLPass]:
        # every argument is checked before any work; the generator then computes one pass per step
        b = self._batch(images)
        checked = [(self._budget(t), self._quality(q, b)) for t, q in settings]
        layers = attention_layer_set(attention_layers, self.config.dec_depth)
        if attention_heads not in ("mean", "all"):
            raise ValueError(f"attention_heads must be 'mean' or 'all', not {attention_heads!r}")
        base = self.image_tokens(images, posterior)

        def passes():
            for budget, quality in checked:
                # the context is entered per pass, so nothing leaks into the caller's code between passes
                with self._context():
                    run = self._pass(base, budget, quality, decode, layers, attention_heads)
                yield run

        return passes()

    def budget_sweep(self, images, budgets: Iterable[int] | None = None, quality=None, *, posterior=None,
                     decode: bool = True, attention_layers=None, attention_heads: str = "mean") -> Iterator[KARLPass]:
        """One pass per budget (default `sweep_budgets`: 32, 64, ..., 256 for the releases) at one quality,
        yielded as computed.

        Arguments as `tokenize`'s; they are checked (and the images encoded) at the call."""
        budgets = self.sweep_budgets if budgets is None else budgets
        return self._sweep(images, [(t, quality) for t in budgets], posterior, decode, attention_layers,
                           attention_heads)

    def quality_sweep(self, images, qualities: Iterable[float] | None = None, budget: int | None = None, *,
                      posterior=None, decode: bool = True, attention_layers=None,
                      attention_heads: str = "mean") -> Iterator[KARLPass]:
        """One pass per desired quality (default: every bin, 0.005 ... 0.38) at one budget, as computed.

        Arguments as `tokenize`'s; they are checked (and the images encoded) at the call."""
        qualities = self.config.quality_bins if qualities is None else qualities
        return self._sweep(images, [(budget, q) for q in qualities], posterior, decode, attention_layers,
                           attention_heads)

    def encode(self, images, quality=None, *, budget: int | None = None, criterion: Criterion | None = None,
               posterior=None) -> Encoding:
        """KARL's own token count per image at T = 256 (`default_budget`) and the desired L1 `quality`.

        The result is ALIT's `Encoding`: num_tokens[i] = T - halted; latents[i] (N_i, W) and
        codes[i] (N_i,) are the latents that did not halt (the official encode() returns none);
        recon is the reconstruction from them. One pass: iterations are all 0, iterations_run 1,
        and the criterion is the L1 quality that conditioned the pass.
        criterion: an L1 `Criterion` in place of `quality` (its value is the desired L1); KARL has no PSNR
        target, and its budget is `budget`.
        """
        if criterion is not None:
            if quality is not None:
                raise ValueError("give a criterion or a quality, not both")
            if not isinstance(criterion, Criterion):
                raise TypeError(f"criterion must be a Criterion, not {type(criterion).__name__}")
            if criterion.kind != "l1":
                raise ValueError("a KARL model's count is set by the desired L1 (its quality), not by a "
                                 f"{'PSNR target' if criterion.kind == 'psnr' else 'token budget'}")
            quality = criterion.value
        if quality is not None and not isinstance(quality, (int, float)):
            raise ValueError(f"encode takes one quality for the whole batch (tokenize takes one per image), "
                             f"not {quality!r}")
        run = self.tokenize(images, budget, quality, posterior=posterior)
        b = len(run.num_tokens)
        keep = ~run.halt_mask  # (B, T)
        return Encoding(
            num_tokens=list(run.num_tokens),
            iterations=[0] * b,
            latents=[run.latents[i][keep[i]] for i in range(b)],
            codes=[None if run.codes is None else run.codes[i][keep[i]] for i in range(b)],
            recon=run.recon,
            l1=[float(v) for v in run.l1],
            psnr=[float(v) for v in run.psnr],
            l1_history=run.l1.cpu().float()[None],
            psnr_history=run.psnr.cpu().float()[None],
            iterations_run=1,
            criterion=Criterion("l1", float(run.quality[0])),
        )


# --- loading ------------------------------------------------------------------------------------
