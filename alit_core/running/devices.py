"""Device and precision choice: explicit when given, else the best available (cuda, mps, cpu).

Weights stay in float32; lower precision runs under autocast, which keeps the numerically
sensitive parts (softmax, LayerNorm, the codebook searches) in float32.
"""

from __future__ import annotations

import contextlib
import functools
import time

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
    if isinstance(dtype, str) and dtype == "auto":  # measured here, once: the precision resolved at load time
        return DTYPES[faster_precision(device)]
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


def matmul_rate(dtype: torch.dtype, device="cpu", size: int = 256, seconds: float = 0.1) -> float:
    """GFLOP/s of square matrix products of this size and precision, run for about `seconds` (a quick probe,
    not a benchmark: `benchmarks.timing.matmul_peak` measures the peak). Its random matrices come from a
    generator of its own, so measuring leaves the global random stream (and a seeded run's weights) as it was."""
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device, dtype)
    b = torch.randn(size, size, generator=g).to(device, dtype)
    torch.matmul(a, b)  # warm-up: first-call dispatch and allocation
    n, start = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


# bfloat16 must beat float32 by this much: where the two are close (AVX-512 BF16 under load) a noisy probe
# would otherwise flip between them from one run to the next
BFLOAT16_MARGIN = 1.2


@functools.lru_cache(maxsize=None)
def faster_precision(device="cpu") -> str:
    """"bfloat16" where this device multiplies bfloat16 matrices clearly faster than float32 ones, else
    "float32"; measured once per device and process (three interleaved probes each, the best of each kept).

    CPUs differ by two orders of magnitude here: with AMX bfloat16 runs about 7x float32, with AVX-512 BF16
    about 1.7x, and an AVX2-only AMD EPYC multiplied bfloat16 at 0.6 GFLOP/s against float32's 37. CUDA
    GPUs get bfloat16 where they support it, without measuring; MPS gets float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type != "cpu":
        return "float32"
    best = {torch.bfloat16: 0.0, torch.float32: 0.0}
    for _ in range(3):
        for dtype in best:
            best[dtype] = max(best[dtype], matmul_rate(dtype, device, seconds=0.05))
    return "bfloat16" if best[torch.bfloat16] > BFLOAT16_MARGIN * best[torch.float32] else "float32"
