"""The KL-16 VAE base tokenizer (MAR's `AutoencoderKL`, latent-diffusion layout).

Parameter names follow the official checkpoints (`base_tokenizer.vae.` there, `vae.` here), so the
released weights load without renaming. Layout facts (reference config notes of vae_tiny): every
convolution has a bias; the residual block's 1x1 shortcut reads the block *input* (unlike the
MaskGIT VQGAN of `vqgan.py`); downsampling pads right and bottom by one, then a stride-2 3x3
conv; single-head spatial self-attention follows every block of the levels listed in
`encoder_attn_resolutions` / `decoder_attn_resolutions` (released: the encoder's 16x16 level, no
decoder level) and sits in both middles; the decoder has `num_res_blocks + 1` blocks per level.

The posterior is a diagonal Gaussian over (B, embed_dim, g, g). The official ALIT-VAE draws one
sample from it on every call, even at evaluation; `latents` offers that draw, the mean, or a
given noise tensor to replay a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .config import VAEConfig
from .vqgan import Upsample, group_norm

POSTERIORS = ("sample", "mean")  # or a noise tensor


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = group_norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class SpatialAttention(nn.Module):
    """One head over all positions of a feature map, residual; q, k, v and output are 1x1 convs."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = group_norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = (rearrange(f(h), "b c x y -> b 1 (x y) c") for f in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # scale c^-0.5, as the official block
        out = rearrange(out, "b 1 (x y) c -> b c x y", x=x.shape[-2])
        return x + self.proj_out(out)  # out is stored channels-last already: (b, xy, c) memory order


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric: the official layout's padding


class Level(nn.Module):
    """One resolution: residual blocks, each optionally followed by attention, then a resample."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, attention: bool, resample: str | None):
        super().__init__()
        self.block = nn.ModuleList(ResBlock(in_ch if j == 0 else out_ch, out_ch) for j in range(num_blocks))
        self.attn = nn.ModuleList(SpatialAttention(out_ch) for _ in range(num_blocks if attention else 0))
        if resample == "down":
            self.downsample = Downsample(out_ch)
        elif resample == "up":
            self.upsample = Upsample(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for j, blk in enumerate(self.block):
            x = blk(x)
            if self.attn:
                x = self.attn[j](x)
        if hasattr(self, "downsample"):
            x = self.downsample(x)
        if hasattr(self, "upsample"):
            x = self.upsample(x)
        return x


class Mid(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.block_1 = ResBlock(ch, ch)
        self.attn_1 = SpatialAttention(ch)
        self.block_2 = ResBlock(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    """Pixels (B, 3, H, W) -> (B, 2 z_channels, g, g): mean and log-variance before quant_conv."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        last = len(chans) - 1
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        self.down = nn.ModuleList(
            Level(cfg.ch if i == 0 else chans[i - 1], chans[i], cfg.num_res_blocks,
                  attention=cfg.resolution // 2**i in cfg.encoder_attn_resolutions,
                  resample="down" if i < last else None)
            for i in range(len(chans))
        )
        self.mid = Mid(chans[-1])
        self.norm_out = group_norm(chans[-1])
        self.conv_out = nn.Conv2d(chans[-1], 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    """Latents (B, z_channels, g, g) -> pixels (B, 3, H, W), not clamped."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        last = len(chans) - 1
        self.conv_in = nn.Conv2d(cfg.z_channels, chans[-1], 3, padding=1)
        self.mid = Mid(chans[-1])
        # Stored by resolution level i (0 = full size) and run from the coarsest level down.
        self.up = nn.ModuleList(
            Level(chans[min(i + 1, last)], chans[i], cfg.num_res_blocks + 1,
                  attention=cfg.resolution // 2**i in cfg.decoder_attn_resolutions,
                  resample="up" if i > 0 else None)
            for i in range(len(chans))
        )
        self.norm_out = group_norm(chans[0])
        self.conv_out = nn.Conv2d(chans[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@dataclass
class Posterior:
    """The diagonal Gaussian over the unscaled latents; every tensor (B, embed_dim, g, g)."""

    mean: torch.Tensor
    logvar: torch.Tensor  # clamped to [-30, 20], as the official distribution does

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)


class KLVAE(nn.Module):
    """Pixels in [0, 1] -> posterior over 16-channel latents (16x downsampling) -> pixels."""

    decoder_layout: torch.memory_format | None = None  # None: as given; channels-last in an inference copy (as VQGAN)

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.z_channels, 2 * cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)

    def encode(self, images: torch.Tensor) -> Posterior:
        moments = self.quant_conv(self.encoder(images))  # (B, 2 embed_dim, g, g)
        mean, logvar = moments.chunk(2, dim=1)
        return Posterior(mean, logvar.clamp(-30.0, 20.0))

    def latents(self, images: torch.Tensor, posterior="mean") -> tuple[torch.Tensor, torch.Tensor | None]:
        """The scaled latents ALIT reads (B, embed_dim, g, g), and the noise used (None for the mean).

        posterior: "mean"; "sample", drawn like the official code (torch's default CPU generator,
        then moved to the device), so `torch.manual_seed(s)` before the call reproduces an official
        run seeded with s; or a noise tensor (B, embed_dim, g, g) to replay a draw.
        """
        post = self.encode(images)
        noise = resolve_noise(posterior, post.mean)
        z = post.mean if noise is None else post.mean + post.std * noise
        return z * self.cfg.latent_scale, noise

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, H, W) from latents (B, embed_dim, g, g).

        ALIT passes its regressed, *scaled* latents here without dividing the scale out: the
        official reconstruction does so, and the released decoders were fine-tuned that way.
        """
        if self.decoder_layout is not None:
            z = z.contiguous(memory_format=self.decoder_layout)
        return self.decoder(self.post_quant_conv(z)).contiguous()


def resolve_noise(posterior, mean: torch.Tensor) -> torch.Tensor | None:
    """The standard-normal noise (shaped like `mean`) that `posterior` asks for; None for the mean."""
    if isinstance(posterior, torch.Tensor):
        if tuple(posterior.shape) != tuple(mean.shape):
            raise ValueError(f"posterior noise must have shape {tuple(mean.shape)} (B, channels, grid, grid); "
                             f"got {tuple(posterior.shape)}")
        return posterior.to(mean.device, mean.dtype)
    if posterior == "mean":
        return None
    if posterior == "sample":
        return torch.randn(mean.shape).to(mean.device, mean.dtype)
    raise ValueError(f"posterior must be {' or '.join(map(repr, POSTERIORS))} or a noise tensor, not {posterior!r}")
