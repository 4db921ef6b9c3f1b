"""The base 2D tokenizer: a VQGAN in the MaskGIT/MAGE layout.

Parameter names follow the official checkpoints (`encoder.down.{i}.block.{j}.conv1`, ...), so
official weights load without renaming. Layout facts (docs/method.md §1, reference config notes):
no attention layers, average-pool downsampling, nearest-neighbour upsampling + 3x3 conv,
GroupNorm(32, eps 1e-6), swish, bias-free residual convolutions, and a residual block whose
skip path, when the channel count changes, is a 1x1 conv of the *branch output*, not of the
block input. The decoder has `num_res_blocks` blocks per level (not +1, unlike taming).

The decoder reads its input as given, or in `decoder_layout` when set (a tokenizer's inference copy
of the model sets channels-last, `alit_core.running.inference`); decode still returns an ordinary
contiguous tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .config import VQGANConfig

SMALL_MAP = 16 * 16  # largest map (pixels) that GroupNorm takes through NCHW


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm (same parameters) that normalises small channels-last maps in NCHW.

    PyTorch's CPU group norm on channels-last input is far slower than on contiguous input at
    small maps: measured at 64 channels, 16x16, bfloat16, 122 us against 8 us (float32: 26 against
    7). Two layout copies cost less than that there; at 32x32 and above they cost more than
    they save, so larger maps stay as they are.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and x.dim() == 4 and x.shape[-2] * x.shape[-1] <= SMALL_MAP
                and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)):
            y = F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
            return y.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def group_norm(channels: int) -> GroupNorm:
    return GroupNorm(32, channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.norm2 = group_norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.nin_shortcut = nn.Conv2d(out_ch, out_ch, 1, bias=False) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.nin_shortcut is not None:
            # MaskGIT quirk kept for checkpoint compatibility: the input x is dropped here.
            return self.nin_shortcut(h) + h
        return x + h


class Level(nn.Module):
    """One resolution of the encoder or decoder: residual blocks, then an optional resample."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, upsample: bool = False):
        super().__init__()
        self.block = nn.ModuleList(ResBlock(in_ch if j == 0 else out_ch, out_ch) for j in range(num_blocks))
        if upsample:
            self.upsample = Upsample(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.block:
            x = blk(x)
        if hasattr(self, "upsample"):
            x = self.upsample(x)
        return x


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.block_1 = ResBlock(ch, ch)
        self.block_2 = ResBlock(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.block_1(x))


class Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList(
            Level(cfg.ch if i == 0 else chans[i - 1], chans[i], cfg.num_res_blocks) for i in range(len(chans))
        )
        self.mid = Mid(chans[-1])
        self.norm_out = group_norm(chans[-1])
        self.conv_out = nn.Conv2d(chans[-1], cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            h = level(h)
            if i < len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(cfg.z_channels, chans[-1], 3, padding=1)
        self.mid = Mid(chans[-1])
        # Stored coarse-to-fine by index i = resolution level, run from the last level down.
        self.up = nn.ModuleList(
            Level(chans[min(i + 1, len(chans) - 1)], chans[i], cfg.num_res_blocks, upsample=i > 0)
            for i in range(len(chans))
        )
        self.norm_out = group_norm(chans[0])
        self.conv_out = nn.Conv2d(chans[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Codebook(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(size, dim)


class VQGAN(nn.Module):
    """Pixels in [0, 1] -> 16x-downsampled features -> codebook indices -> pixels (not clamped)."""

    # the decoder's input layout (None: as given; codes_to_features gives channels-last strides, as the
    # official code does); a tokenizer's inference copy sets torch.channels_last
    decoder_layout: torch.memory_format | None = None

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = Codebook(cfg.codebook_size, cfg.z_channels)

    @property
    def codebook(self) -> torch.Tensor:
        return self.quantize.embedding.weight

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Continuous pre-quantisation features (B, C, h, w).

        Always in the default layout: channels-last sums in another order, and that flips a few
        nearest-code targets (`indices`) that sit on a tie; this runs once per image anyway.
        """
        return self.encoder(images)

    def indices(self, features: torch.Tensor) -> torch.Tensor:
        """Nearest codebook entry (plain squared L2, un-normalised) per position, row-major (B, h*w)."""
        flat = rearrange(features, "b c h w -> b (h w) c").float()
        book = self.codebook.float()
        dist = flat.pow(2).sum(-1, keepdim=True) + book.pow(2).sum(-1) - 2 * flat @ book.t()
        return dist.argmin(-1)

    def codes_to_features(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, h*w, C), hard or soft, to a feature map (B, C, h, w)."""
        return rearrange(codes, "b (h w) c -> b c h w", h=self.cfg.grid_size)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, H, W) from a feature map (B, C, h, w), hard or soft codes alike."""
        if self.decoder_layout is not None:
            features = features.contiguous(memory_format=self.decoder_layout)
        return self.decoder(features).contiguous()

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(self.codes_to_features(self.codebook[indices]))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction through the codebook, and the indices used."""
        idx = self.indices(self.encode(images))
        return self.decode_indices(idx), idx
