"""Measuring speed: repeated timings with warm-up, peak memory, the matmul peak, the machine.

Timings wait for the device (CUDA runs asynchronously, so without a synchronize a timer sees
only the launch). Peak memory is the allocator's peak on CUDA and the process's peak resident
set on a CPU (Linux: reset before each measurement through /proc/self/clear_refs).
"""

from __future__ import annotations

import os
import platform
import re
import resource
import statistics
import time
from dataclasses import asdict, dataclass

import torch


def synchronize(device: torch.device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# --- memory ----------------------------------------------------------------------------------------
def _rss_peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _rss_now_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


def reset_peak_memory(device: torch.device) -> float:
    """Start a new peak; returns the memory in use now (MB)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux)
    except OSError:
        pass
    return _rss_now_mb()


def peak_memory(device: torch.device) -> float:
    """Peak memory (MB) since the last reset: CUDA allocator peak, or peak resident set on a CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _rss_peak_mb()


# --- timing ------------------------------------------------------------------------------------------
@dataclass
class Timing:
    median_s: float
    min_s: float
    max_s: float
    runs: int
    peak_memory_mb: float
    added_memory_mb: float  # peak minus what was in use before the measurement

    @property
    def spread(self) -> float:
        """(max - min) / median."""
        return (self.max_s - self.min_s) / self.median_s if self.median_s else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "spread": self.spread}


def timed(fn, repeats: int, device="cpu", warmup: int = 1) -> Timing:
    """Run fn `warmup` times, then `repeats` times, each timed to completion on the device."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    before = reset_peak_memory(device)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    peak = peak_memory(device)
    return Timing(statistics.median(times), min(times), max(times), len(times), peak, peak - before)


def matmul_peak(dtype: torch.dtype, device="cpu", size: int | None = None, repeats: int = 5) -> float:
    """Measured GFLOP/s of a square matrix product (2048 on a CPU, 8192 on a GPU): the practical peak."""
    device = torch.device(device)
    n = size or (2048 if device.type == "cpu" else 8192)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    t = timed(lambda: torch.matmul(a, b), repeats, device)
    return 2 * n**3 / t.median_s / 1e9


def machine() -> dict:
    """What the numbers were measured on."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def drain(steps) -> list:
    """Every item of a generator (a rollout's steps, a sweep's passes): what a timed call runs."""
    return list(steps)
