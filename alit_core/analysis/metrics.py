"""Per-image reconstruction errors."""

from __future__ import annotations

import torch


def l1_error(recon: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Mean |recon - image| per image (B,), on the unclamped reconstruction: the official criterion."""
    return (recon.float() - images.float()).abs().mean(dim=(1, 2, 3))


def psnr(recon: torch.Tensor, images: torch.Tensor, max_value: float = 1.0) -> torch.Tensor:
    """PSNR in dB per image (B,), on the reconstruction clamped to the valid range; capped at 100 dB."""
    mse = (recon.float().clamp(0, max_value) - images.float()).pow(2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(max_value**2 / mse.clamp_min(1e-10))).clamp_max(100.0)
