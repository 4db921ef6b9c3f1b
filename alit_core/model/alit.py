"""The ALIT model: recurrent latent-token allocation on top of a VQGAN or KL-16 VAE (docs/method.md §2-3).

This module holds the parameters and the pieces of one iteration; `rollout.py` strings the
iterations together. Parameter names are the official ones (top level of the official model),
except that the official `base_tokenizer.vqgan.` / `base_tokenizer.vae.` prefixes are `vqgan.` /
`vae.` here.

The base tokenizer decides what the decoder predicts for each 2D position: logits over the VQGAN
codebook, or (VAE) the scaled VAE latent itself, regressed; `decode_logits` returns either.

Sequence layout, encoder and decoder alike: index 0 the class token, 1..P the P = 256 image
(encoder) or mask (decoder) tokens in row-major grid order, then the latents (latent k at P+1+k).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from .config import ALITConfig
from .transformer import Transformer
from .vae import KLVAE
from .vqgan import VQGAN


def _embedding(*shape: int, width: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * width**-0.5)


class LatentQuantizer(nn.Module):
    """Cosine vector quantiser: L2-normalised nearest neighbour in a (4096, 12) codebook."""

    def __init__(self, size: int, dim: int, commitment: float = 0.25):
        super().__init__()
        self.commitment = commitment
        self.embedding = nn.Embedding(size, dim)

    def book(self) -> torch.Tensor:
        return F.normalize(self.embedding.weight.float(), dim=-1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, N, d) -> straight-through codes (B, N, d) and indices (B, N)."""
        z = F.normalize(z.float(), dim=-1)
        book = self.book()
        dist = z.pow(2).sum(-1, keepdim=True) + book.pow(2).sum(-1) - 2 * z @ book.t()
        idx = dist.argmin(-1)
        code = book[idx]
        return z + (code - z).detach(), idx

    def loss(self, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Codebook + commitment loss (training) for pre-normalisation z and its indices."""
        z = F.normalize(z.float(), dim=-1)
        code = self.book()[idx]
        return F.mse_loss(code, z.detach()) + self.commitment * F.mse_loss(z, code.detach())


class LatentDecoder(Transformer):
    """Predicts, for every 2D position, VQGAN code logits or (VAE) the VAE latent, from the latents."""

    def __init__(self, cfg: ALITConfig):
        w = cfg.dec_width
        super().__init__(w, cfg.dec_depth, cfg.dec_heads, cfg.mlp_ratio, cfg.layernorm_eps)
        self.latent_token_positional_embedding = _embedding(cfg.max_tokens, w, width=w)
        self.decoder_embed = nn.Linear(cfg.latent_dim, w)
        self.ln_pre = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.ln_post = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.ffn = nn.Sequential(nn.Linear(w, 2 * w), nn.Tanh(), nn.Linear(2 * w, cfg.head_dim))


class LatentTokenizer(nn.Module):
    """What ALIT and KARL (karl.py) share: the base tokenizer (`vqgan` or `vae`), the patch
    embedding of the pixels, and the bottleneck from encoder latents to the decoder's input."""

    def add_base_tokenizer(self, cfg) -> None:
        if cfg.vae is not None:
            self.vae = KLVAE(cfg.vae)
        else:
            self.vqgan = VQGAN(cfg.vqgan)
        self.patch_embed = nn.Conv2d(3, cfg.width - cfg.feature_dim, cfg.patch_size, stride=cfg.patch_size)

    @property
    def is_vae(self) -> bool:
        return self.cfg.vae is not None

    @property
    def base_tokenizer(self) -> nn.Module:
        """The VQGAN, or (VAE models) the KL VAE, whose 2D tokens the model reads and predicts."""
        return self.vae if self.is_vae else self.vqgan

    def bottleneck(self, latents: torch.Tensor):
        """Encoder latents (B, N, W) -> 12-d factorised z, decoder input, codes (None if continuous).

        Always float32: a W -> 12 projection costs nothing, and bfloat16 rounding of z would flip
        nearest-code decisions (the closest ones are 1e-5 apart).
        """
        with torch.autocast(latents.device.type, enabled=False):
            z = self.pre_quantizer_mlp(self.encoder_ln_post(latents.float()))
        if not self.cfg.quantize_latents:
            return z, z, None
        zq, codes = self.quantize(z)
        return z, zq, codes


class ALIT(LatentTokenizer):
    # The latent decoder's last block computes only the rows its head reads (same numbers); a
    # tokenizer's inference copy sets it from InferenceOptions.decoder_rows (False: every row,
    # as the official code computes them).
    decoder_rows = True

    def __init__(self, cfg: ALITConfig):
        super().__init__()
        self.cfg = cfg
        w, dw, p, n = cfg.width, cfg.dec_width, cfg.num_positions, cfg.latents_per_iteration
        self.add_base_tokenizer(cfg)

        self.encoder_positional_embedding = _embedding(p + 1, w, width=w)
        self.encoder_class_embedding = _embedding(1, w, width=w)
        self.encoder_mask_token = _embedding(1, 1, w, width=w)
        self.latent_tokens = _embedding(n, w, width=w)
        self.latent_token_positional_embedding = _embedding(n, w, width=w)
        self.timestep_embedding = _embedding(cfg.iterations, n, w, width=w)
        self.encoder_ln_pre = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.encoder_ln_post = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.encoder_ln_recursive = nn.LayerNorm(w, eps=cfg.layernorm_eps)
        self.encoder = Transformer(w, cfg.depth, cfg.heads, cfg.mlp_ratio, cfg.layernorm_eps)
        self.pre_quantizer_mlp = nn.Linear(w, cfg.latent_dim)
        if cfg.quantize_latents:
            self.quantize = LatentQuantizer(cfg.latent_codebook_size, cfg.latent_dim)

        self.decoder_positional_embedding = _embedding(p + 1, dw, width=dw)
        self.decoder_class_embedding = _embedding(1, dw, width=dw)
        self.decoder_mask_token = _embedding(1, 1, dw, width=dw)
        self.decoder = LatentDecoder(cfg)

    # --- image side -------------------------------------------------------------------------
    def image_tokens(self, images: torch.Tensor, posterior="mean") -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B,3,H,W) in [0,1] -> L2-normalised 2D tokens (B, P, W) and the decoder's targets:
        VQGAN code indices (B, P), or (VAE) the scaled VAE latents (B, P, C).

        posterior (VAE models only): see `KLVAE.latents`; `image_tokens_and_noise` also returns the
        noise drawn. Always float32, even under autocast: lower precision flips about 3% of the
        nearest-code targets, and this runs once per image, so it costs little.
        """
        tokens, targets, _ = self.image_tokens_and_noise(images, posterior)
        return tokens, targets

    def image_tokens_and_noise(self, images: torch.Tensor, posterior="mean"):
        """`image_tokens` and the posterior noise it used (B, C, g, g); None for the mean or a VQGAN."""
        posterior = "mean" if posterior is None else posterior
        if not self.is_vae and not (isinstance(posterior, str) and posterior == "mean"):
            raise ValueError("posterior= applies to VAE-based models; a VQGAN encodes deterministically")
        with torch.autocast(images.device.type, enabled=False):
            images = images.float()
            if self.is_vae:
                latents, noise = self.vae.latents(images, posterior)
                targets = rearrange(latents, "b c h w -> b (h w) c")
                return self.tokens_from_features(latents, images), targets, noise
            features = self.vqgan.encode(images)
            return self.tokens_from_features(features, images), self.vqgan.indices(features), None

    def tokens_from_features(self, features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Base features (B, C, g, g) + images (B, 3, H, W) -> L2-normalised 2D tokens (B, P, W).

        Separate from the VQGAN encoding so that training can store the (frozen) features once and
        still train the patch embedding.
        """
        tokens = torch.cat([features.to(images.dtype), self.patch_embed(images)], dim=1)
        return F.normalize(rearrange(tokens, "b c h w -> b (h w) c"), dim=-1)

    # --- encoder side -----------------------------------------------------------------------
    def new_latents(self, iteration: int, batch: int) -> torch.Tensor:
        lat = self.latent_tokens + self.latent_token_positional_embedding + self.timestep_embedding[iteration]
        return repeat(lat, "n w -> b n w", b=batch)

    def initial_sequence(self, tokens: torch.Tensor) -> torch.Tensor:
        """[class ; image tokens] + positions, then the first latents; LN_pre over everything."""
        b = tokens.shape[0]
        cls = repeat(self.encoder_class_embedding, "1 w -> b 1 w", b=b)
        x = torch.cat([cls, tokens], dim=1) + self.encoder_positional_embedding
        return self.encoder_ln_pre(torch.cat([x, self.new_latents(0, b)], dim=1))

    def extend_sequence(self, x: torch.Tensor, iteration: int) -> torch.Tensor:
        """Append the latents of `iteration` and renormalise the whole running sequence."""
        return self.encoder_ln_recursive(torch.cat([x, self.new_latents(iteration, x.shape[0])], dim=1))

    def mask_image_tokens(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Replace halted image tokens (mask (B, P) True) by the mask token + their position."""
        p = self.cfg.num_positions
        filler = self.encoder_mask_token + self.encoder_positional_embedding[1 : p + 1]
        image = torch.where(mask[..., None], filler.to(x.dtype), x[:, 1 : p + 1])
        return torch.cat([x[:, :1], image, x[:, p + 1 :]], dim=1)

    # --- decoder side -----------------------------------------------------------------------
    def decode_logits(self, zq: torch.Tensor, attention_layers: frozenset[int] = frozenset()):
        """Latent codes (B, N, d) -> head outputs (B, P, head_dim) and {layer: attention}.

        The head outputs are VQGAN code logits, or (VAE) the regressed scaled VAE latents.
        """
        b, n, _ = zq.shape
        dec = self.decoder
        cls = repeat(self.decoder_class_embedding, "1 w -> b 1 w", b=b)
        masks = repeat(self.decoder_mask_token, "1 1 w -> b p w", b=b, p=self.cfg.num_positions)
        grid = torch.cat([cls, masks], dim=1) + self.decoder_positional_embedding
        lat = dec.decoder_embed(zq.to(grid.dtype)) + dec.latent_token_positional_embedding[:n]
        x = dec.ln_pre(torch.cat([grid, lat], dim=1))
        positions = slice(1, self.cfg.num_positions + 1)
        if self.decoder_rows:
            x, maps = dec(x, attention_layers, rows=positions)
        else:  # every row, as the official code computes them
            x, maps = dec(x, attention_layers)
            x = x[:, positions]
        x = dec.ln_post(x)
        return dec.ffn(x), maps

    def soft_codes(self, logits: torch.Tensor) -> torch.Tensor:
        """Expected VQGAN code vector per position under the predicted distribution (B, P, C)."""
        return torch.softmax(logits.float(), dim=-1) @ self.vqgan.codebook.float()

    def reconstruct(self, logits: torch.Tensor) -> torch.Tensor:
        """Pixels from logits: the VQGAN decoder of the soft codes, no re-quantisation."""
        return self.vqgan.decode(self.vqgan.codes_to_features(self.soft_codes(logits)))

    def reconstruct_probs(self, probs: torch.Tensor) -> torch.Tensor:
        """`reconstruct` from softmax(logits) (B, P, K), for callers that already hold it."""
        return self.vqgan.decode(self.vqgan.codes_to_features(probs @ self.vqgan.codebook.float()))

    def reconstruct_latents(self, code: torch.Tensor) -> torch.Tensor:
        """VAE models: pixels (B, 3, H, W) from regressed scaled latents (B, P, C)."""
        return self.vae.decode(rearrange(code, "b (h w) c -> b c h w", h=self.cfg.grid_size))

    def pixels(self, prediction: torch.Tensor) -> torch.Tensor:
        """Pixels from what a rollout keeps per iteration: code probabilities, or VAE latents."""
        return self.reconstruct_latents(prediction) if self.is_vae else self.reconstruct_probs(prediction)
