"""Device and precision choice: explicit when given, else the best available (cuda, mps, cpu).

Weights stay in float32; lower precision runs under autocast, which keeps the numerically
sensitive parts (softmax, LayerNorm, the codebook searches) in float32.
"""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}


def available_devices() -> list[str]:
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    out.append("cpu")
    return out


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device is None or device == "auto":
        return torch.device(available_devices()[0])
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or leave it automatic")
    if dev.type == "mps" and "mps" not in available_devices():
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use 'cpu' or leave it automatic")
    return dev


def supported_dtypes(device: torch.device) -> list[str]:
    dev = torch.device(device)
    if dev.type == "cuda":
        return ["float32", "bfloat16", "float16"] if torch.cuda.is_bf16_supported() else ["float32", "float16"]
    return ["float32", "bfloat16", "float16"]


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        name = {v: k for k, v in DTYPES.items()}.get(dtype)
    else:
        name = _ALIASES.get(str(dtype), str(dtype))
    if name not in DTYPES:
        raise ValueError(f"unknown precision {dtype!r}; choose one of {list(DTYPES)}")
    if name not in supported_dtypes(device):
        raise ValueError(f"precision {name} is not supported on {device}; choose one of {supported_dtypes(device)}")
    return DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast for lower precision; a no-op context for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
