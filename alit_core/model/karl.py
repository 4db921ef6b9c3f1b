"""KARL: single-pass adaptive image tokenization (Duggal et al., arXiv 2507.07995), on a VQGAN or KL-16 VAE.

ALIT's successor by the same authors. Where ALIT grows the token count over recurrent
iterations, KARL runs one encoder pass over [quality token; 2D image tokens; T latent tokens]
and a halting head says which of the T latents are not needed for the desired reconstruction
quality eps. Its estimate of the image's complexity is T minus the halted latents. The decoder
then reconstructs from the latents that did not halt. With halting masks, the official decoder
is equivalent to dropping the halted latents.

One pass with budget T and quality eps (shapes for batch B, grid P = g*g = 256 positions, width W):
  1. quality bin k = the smallest of the 19 `QUALITY_BINS` >= eps (the last bin above 0.38);
     the condition token is `rec_loss_embeddings[k]` (W,).
  2. image tokens (B, P, W) = concat(patch_embed(images) (W - C ch), base features (C ch)),
     per grid position, row-major, NOT L2-normalised (both the opposite of ALIT). The base
     features are the VQGAN's pre-quantisation features (C = 256), or the VAE's scaled latents
     (C = 16).
  3. the (W, 64, 64) positional tables are resampled to (W, g, g) by nearest interpolation.
  4. encoder: LN_pre([cond; image tokens + positions; latent_tokens[:T]]) (length 1 + P + T, the
     latents without any position), a plain transformer; the latents are outputs 1 + P ...
  5. halting: sigmoid(halting_mlp(LN_post_halt(latents))) > 0.75 (hard-coded in the official code).
  6. bottleneck: pre_quantizer_mlp(LN_post(latents)) -> 12-d, vector-quantised for quantized
     models. Every latent is quantised, halted or not.
  7. decoder: LN_pre([mask token + positions (P); decoder_embed(z) + latent positions[:T]]) with
     a mask that cuts the halted latents off (they see only themselves, nothing sees them), then
     LN_post on the P grid rows and the head: logits over the VQGAN codebook, or the 16 VAE
     latent channels regressed.
  8. pixels: VQGAN decoder of softmax(logits) @ codebook (no re-quantisation), or the VAE decoder
     of the regressed latents.

Departure from the official code: its decoder masks mix images and heads when B > 1 (the
(B, L, L) mask is repeated head-major for `nn.MultiheadAttention`, which reads it batch-major),
so its batched results are wrong; here each image gets its own mask, and a batch gives what
the official code gives one image at a time.

Parameter names are the official ones (top level of `KARLTokenizer`), except that
`base_tokenizer.vqgan.` / `base_tokenizer.vae.` are `vqgan.` / `vae.`, as for ALIT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from .alit import LatentQuantizer, LatentTokenizer, _embedding
from .config import VAEConfig, VQGANConfig, _LatentTokenizerFields
from .transformer import Transformer

# The official desired-reconstruction-quality bins (L1 errors); their embeddings are learned.
QUALITY_BINS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.09, 0.1, 0.12, 0.14,
                                   0.16, 0.18, 0.2, 0.24, 0.28, 0.32, 0.38)


@dataclass(frozen=True)
class KARLConfig(_LatentTokenizerFields):
    """The KARL tokenizer; the released models are `karl_small` (W 1024, 8 layers, 8 heads each side).

    Heads and `quality_bins` are not recorded in the tensors; the rest can be inferred.
    """

    # width, depth, heads, decoder_width / _depth / _heads, mlp_ratio, patch_size: see _LatentTokenizerFields
    latent_dim: int = 12  # the factorisation bottleneck
    quantize_latents: bool = True
    latent_codebook_size: int = 4096
    max_tokens: int = 512  # rows of latent_tokens and of the decoder's latent positions: the largest budget
    max_grid: int = 64  # the positional tables are (W, max_grid, max_grid), resampled to the grid
    halting_hidden: int = 512
    halting_threshold: float = 0.75  # hard-coded in the official code (its dynamic_halting_threshold is unused)
    quality_bins: tuple[float, ...] = QUALITY_BINS
    default_budget: int = 256  # the official encode()'s T (its README: keep T = 256 and vary eps)
    default_quality: float = 0.05  # the official encode()'s eps
    layernorm_eps: float = 1e-5
    vqgan: VQGANConfig | None = field(default_factory=VQGANConfig)
    vae: VAEConfig | None = None

    def __post_init__(self):
        self._check("a KARL model")
        if list(self.quality_bins) != sorted(self.quality_bins):
            raise ValueError("quality_bins must be increasing")

    @property
    def encode_budget(self) -> int:
        """T of `encode`: default_budget (the official 256), or the model's largest budget if smaller."""
        return min(self.default_budget, self.max_tokens)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["quality_bins"] = list(self.quality_bins)
        for part in ("vqgan", "vae"):
            if d[part] is not None:
                d[part] = {k: list(v) if isinstance(v, tuple) else v for k, v in d[part].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> KARLConfig:
        d = dict(d)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown KARL config fields: {sorted(unknown)}")
        vae, vqgan = d.pop("vae", None), d.pop("vqgan", None)
        base = {"vae": VAEConfig(**_tuples(vae))} if vae is not None else {"vqgan": VQGANConfig(**_tuples(vqgan or {}))}
        return cls(**_tuples(d), **base)


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


# The released configuration (karl_small: the official builder's "semi_large" width), by base tokenizer.
KARL_PRESETS: dict[str, KARLConfig] = {
    f"karl_small_{base}_{kind}": KARLConfig(quantize_latents=kind == "quantized",
                                            vae=VAEConfig() if base == "vae" else None)
    for base in ("vqgan", "vae") for kind in ("quantized", "continuous")
}


def quality_bin(quality: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Index of the smallest bin >= quality (equality counts), the last bin above them all.

    quality (B,) float64 or float32 -> (B,) long. Compared in float32, as the official code does.
    """
    q = quality.to(torch.float32)[:, None]
    fits = bins.to(torch.float32)[None] >= q  # (B, K)
    first = fits.float().argmax(-1)  # the bins increase, so the first fitting one is the smallest
    return torch.where(fits.any(-1), first, torch.full_like(first, len(bins) - 1))


def decoder_mask(halted: torch.Tensor, positions: int) -> torch.Tensor:
    """The decoder's attention mask (B, P+T, P+T), True = blocked, from halted latents (B, T).

    Layout [P grid positions, T latents]: a halted latent attends only to itself and no token
    attends to it; grid positions and active latents attend to each other freely.
    """
    grid = torch.zeros(halted.shape[0], positions, dtype=torch.bool, device=halted.device)
    cut = torch.cat([grid, halted.bool()], dim=1)  # (B, L)
    mask = cut[:, :, None] | cut[:, None, :]  # (B, L, L)
    return mask & ~torch.eye(mask.shape[-1], dtype=torch.bool, device=mask.device)


class KARLDecoder(Transformer):
    """The latent decoder: transformer over [grid queries; latents], LN_post and the output head."""

    def __init__(self, cfg: KARLConfig):
        w = cfg.dec_width
        super().__init__(w, cfg.dec_depth, cfg.dec_heads, cfg.mlp_ratio, cfg.layernorm_eps)
        self.ln_pre = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.ln_post = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.ffn = nn.Sequential(nn.Linear(w, 2 * w), nn.Tanh(), nn.Linear(2 * w, cfg.head_dim))


class KARL(LatentTokenizer):
    """Base tokenizer, patch embedding and `bottleneck` (12-d factorisation, quantiser) as ALIT's."""

    family = "karl"

    def __init__(self, cfg: KARLConfig):
        super().__init__()
        self.cfg = cfg
        w, dw, m, grid = cfg.width, cfg.dec_width, cfg.max_tokens, cfg.max_grid
        self.add_base_tokenizer(cfg)

        self.rec_loss_embeddings = _embedding(len(cfg.quality_bins), w, width=w)
        self.encoder_positional_embedding = _embedding(w, grid, grid, width=w)
        self.latent_tokens = _embedding(m, w, width=w)
        self.encoder_ln_pre = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.encoder = Transformer(w, cfg.depth, cfg.heads, cfg.mlp_ratio, cfg.layernorm_eps)
        self.encoder_ln_post_halt = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.halting_mlp = nn.Sequential(nn.Linear(w, cfg.halting_hidden), nn.Tanh(), nn.Linear(cfg.halting_hidden, 1))
        self.encoder_ln_post = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.pre_quantizer_mlp = nn.Linear(w, cfg.latent_dim)
        if cfg.quantize_latents:
            self.quantize = LatentQuantizer(cfg.latent_codebook_size, cfg.latent_dim)

        self.decoder_positional_embedding = _embedding(dw, grid, grid, width=dw)
        self.decoder_mask_token = _embedding(1, 1, dw, width=dw)
        self.decoder_embed = nn.Linear(cfg.latent_dim, dw)
        self.decoder_latent_tokens_timestep_embed = _embedding(m, dw, width=dw)
        self.decoder = KARLDecoder(cfg)

    # --- image side -------------------------------------------------------------------------
    def base_features(self, images: torch.Tensor, posterior="mean") -> tuple[torch.Tensor, torch.Tensor | None]:
        """The base tokenizer's 2D features (B, C, g, g) and the VAE posterior noise (None: VQGAN or mean).

        posterior (VAE models): see `KLVAE.latents` (the official code samples it on every call).
        Always float32, even under autocast.
        """
        with torch.autocast(images.device.type, enabled=False):
            images = images.float()
            if self.is_vae:
                return self.vae.latents(images, posterior)
            return self.vqgan.encode(images), None

    def image_tokens(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) and base features (B, C, g, g) -> 2D tokens (B, P, W), not normalised."""
        tokens = torch.cat([self.patch_embed(images.to(features.dtype)), features], dim=1)  # (B, W, g, g)
        return rearrange(tokens, "b w h x -> b (h x) w")

    def positions(self, table: torch.Tensor) -> torch.Tensor:
        """A (W, 64, 64) positional table resampled (nearest) to the grid: (P, W), row-major."""
        g = self.cfg.grid_size
        return rearrange(F.interpolate(table[None], size=(g, g)), "1 w h x -> (h x) w")

    # --- encoder side -----------------------------------------------------------------------
    @property
    def quality_bins(self) -> torch.Tensor:
        """The bin values (K,) float32, on the CPU."""
        return torch.tensor(self.cfg.quality_bins, dtype=torch.float32)

    def quality_bins_of(self, quality: torch.Tensor) -> torch.Tensor:
        """Bin index (B,) on the model's device for the desired reconstruction L1 of each image (B,).

        Decided on the CPU (float64 input, which MPS lacks)."""
        return quality_bin(quality.cpu(), self.quality_bins).to(self.rec_loss_embeddings.device)

    def encoder_input(self, tokens: torch.Tensor, budget: int, bins: torch.Tensor) -> torch.Tensor:
        """[quality token; image tokens + positions; latent_tokens[:T]] after LN_pre: (B, 1+P+T, W)."""
        b = tokens.shape[0]
        cond = rearrange(self.rec_loss_embeddings[bins], "b w -> b 1 w")
        image = tokens + self.positions(self.encoder_positional_embedding)
        latents = repeat(self.latent_tokens[:budget], "t w -> b t w", b=b)
        return self.encoder_ln_pre(torch.cat([cond.to(image.dtype), image, latents.to(image.dtype)], dim=1))

    def encode(self, tokens: torch.Tensor, budget: int, bins: torch.Tensor, *, everything: bool = False):
        """Encoder outputs at the T latent positions (B, T, W), before any LayerNorm.

        everything: return the whole output sequence (B, 1+P+T, W) instead (the quality token's
        output at index 0 feeds nothing; the last block skips the other rows otherwise).
        """
        x = self.encoder_input(tokens, budget, bins)
        start = 1 + tokens.shape[1]
        out, _ = self.encoder(x, rows=None if everything else slice(start, None))
        return out

    def halting_logits(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, T, W) -> halting logits (B, T); a latent halts where sigmoid > halting_threshold."""
        with torch.autocast(latents.device.type, enabled=False):
            return self.halting_mlp(self.encoder_ln_post_halt(latents.float()))[..., 0]

    # --- decoder side -----------------------------------------------------------------------
    def decode(self, zq: torch.Tensor, halted: torch.Tensor, attention_layers: frozenset[int] = frozenset()):
        """Latent codes (B, T, d) and halted latents (B, T) -> head outputs (B, P, head_dim), and
        {layer: attention (B, heads, P+T, P+T)} for the requested decoder layers."""
        b, t, _ = zq.shape
        p = self.cfg.num_positions
        dec = self.decoder
        grid = self.decoder_mask_token + self.positions(self.decoder_positional_embedding)  # (1, P, W)
        lat = self.decoder_embed(zq.to(grid.dtype)) + self.decoder_latent_tokens_timestep_embed[:t]
        x = dec.ln_pre(torch.cat([repeat(grid, "1 p w -> b p w", b=b), lat], dim=1))  # (B, P+T, W)
        x, maps = dec(x, attention_layers, rows=slice(0, p), mask=decoder_mask(halted, p))
        return dec.ffn(dec.ln_post(x)), maps

    def reconstruct(self, outputs: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, H, W), not clamped, from head outputs (B, P, head_dim).

        VQGAN: the decoder of the expected code under softmax(logits); VAE: of the regressed latents.
        """
        g = self.cfg.grid_size
        if self.is_vae:
            return self.vae.decode(rearrange(outputs, "b (h x) c -> b c h x", h=g))
        with torch.autocast(outputs.device.type, enabled=False):
            code = torch.softmax(outputs.float(), dim=-1) @ self.vqgan.codebook.float()  # (B, P, C)
        return self.vqgan.decode(rearrange(code, "b (h x) c -> b c h x", h=g))
