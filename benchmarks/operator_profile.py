"""Where the transformer's time goes: the profiler's view of one rollout, by kind of operator.

The benchmark's "% of peak" compares the whole transformer with one large matrix product whose
operands stay in cache. This breaks the same rollout (from cached VQGAN tokens, no pixels) into
its linear layers (one row per weight shape; an MLP's first layer includes its GELU), fused
attention, and everything else (norms, residual adds, casts, concatenations, halting), each with
its time, GFLOP/s and fraction of the peak. Next to every linear layer: the same layer run alone,
over and over on one input, so that its weights stay in cache. The gap between the two is what
the layer's place in the rollout costs it: at batch 1 each weight serves one sequence per
iteration and is read from memory rather than cache.

    from alit_core.operator_profile import operator_profile
    operator_profile(tok, tok.image_tokens(x), peak_gflops=2000.0)["rows"]
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from alit_core.model.transformer import MLP
from alit_core.running.inference import inference_model

from .timing import timed

# The operators that do a linear layer's product (aten::linear itself only dispatches to them).
LINEAR_OPS = ("mkldnn::_linear_pointwise", "aten::addmm", "aten::mm")
# The attention kernels (aten::scaled_dot_product_attention only dispatches to one of them).
ATTENTION_KERNEL = "aten::_scaled_dot_product"
SMALL_SHARE = 0.01  # matrix products below this share of the FLOPs are reported together


def _linear_shape(name: str, shapes: list) -> tuple[int, int, int] | None:
    """(rows, in features, out features) of a linear-layer event, from its input shapes."""
    if name == "mkldnn::_linear_pointwise":  # x (..., K), weight (N, K)
        x, w = shapes[0], shapes[1]
        return math.prod(x[:-1]), w[1], w[0]
    if name == "aten::addmm":  # bias, x (M, K), weight^T (K, N)
        x, w = shapes[1], shapes[2]
        return x[0], x[1], w[1]
    if name == "aten::mm":
        x, w = shapes[0], shapes[1]
        return x[0], x[1], w[1]
    return None


def _attention_flops(shapes: list) -> int:
    q, k = shapes[0], shapes[1]  # (B, heads, L, d), (B, heads, S, d)
    return 4 * math.prod(q[:-1]) * k[-2] * q[-1]


def operator_profile(tok, tokens, peak_gflops: float | None = None, repeats: int = 5) -> dict:
    """Profile one transformer rollout of `tok` on `tokens` (ImageTokens) after a warm-up run."""
    def rollout():
        for _ in tok.rollout(tokens, decode=False):
            pass

    rollout()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if tok.device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        rollout()
    device_time = tok.device.type == "cuda"

    time_us: dict[str, float] = defaultdict(float)
    flops: dict[str, float] = defaultdict(float)
    largest: dict[str, tuple[int, int, int]] = {}
    for e in prof.key_averages(group_by_input_shape=True):
        if device_time and e.device_type != DeviceType.CPU:
            continue  # a kernel: its time is already its launching operator's self device time
        t = e.self_device_time_total if device_time else e.self_cpu_time_total
        shape = _linear_shape(e.key, e.input_shapes) if e.key in LINEAR_OPS else None
        if shape is not None:
            rows, k, n = shape
            kind = f"matrix product {k} -> {n}"
            flops[kind] += 2 * rows * k * n * e.count
            if rows > largest.get(kind, (0,))[0]:
                largest[kind] = shape
        elif "scaled_dot_product" in e.key:
            kind = "attention (fused)"
            if e.key.startswith(ATTENTION_KERNEL):
                flops[kind] += _attention_flops(e.input_shapes) * e.count
        else:
            kind = "other (norms, adds, casts, copies, halting)"
        time_us[kind] += t

    total_s = sum(time_us.values()) / 1e6
    # Which products are "small" is decided by their FLOPs, not their measured time: the grouping
    # (and the rows a reader compares across runs) must not change with the machine's load.
    total_flops = sum(flops.values())
    small = [kind for kind in largest if flops[kind] < SMALL_SHARE * total_flops]
    if small:  # the bottleneck projections, quantiser distances and such: one row
        kind = "small matrix products"
        time_us[kind] = sum(time_us.pop(name) for name in small)
        flops[kind] = sum(flops.pop(name) for name in small)
        for name in small:
            largest.pop(name)
    rows = []
    for kind, t in sorted(time_us.items(), key=lambda kv: -kv[1]):
        s = t / 1e6
        row = {"kind": kind, "time_s": s, "share": s / total_s}
        if kind in flops:
            row["gflop"] = flops[kind] / 1e9
        if kind in flops and s > 0:  # a kernel too short for the profiler's clock has no rate
            row["gflops_per_s"] = flops[kind] / s / 1e9
            if peak_gflops:
                row["fraction_of_peak"] = row["gflops_per_s"] / peak_gflops
        if kind in largest:
            m, k, n = largest[kind]
            row["alone_rows"] = m
            row["alone_gflops_per_s"] = _linear_alone(tok, m, k, n, repeats)
            if peak_gflops:
                row["alone_fraction_of_peak"] = row["alone_gflops_per_s"] / peak_gflops
        rows.append(row)
    return {"profiled_s": total_s, "rows": rows, "timing": "device" if device_time else "cpu"}


def _linear_alone(tok, rows: int, k: int, n: int, repeats: int) -> float:
    """GFLOP/s of a (k -> n) linear layer on `rows` rows, run repeatedly (weights in cache), through
    the same code path as the model's layers (`inference.FastLinear`, the tokenizer's precision and options)."""
    g = torch.Generator().manual_seed(0)
    layer = inference_model(nn.Linear(k, n).to(tok.device), tok.options)
    x = torch.randn(1, rows, k, generator=g).to(tok.device)
    # an MLP's first layer runs with its GELU (fused into the product on a CPU in bfloat16)
    gelu = any(isinstance(m, MLP) and tuple(m.c_fc.weight.shape) == (n, k) for m in tok.model.modules())

    def run():
        return layer.linear(x, layer.weight, layer.bias, gelu=gelu)

    with tok._context():
        run()
        t = timed(run, max(repeats, 5) * 4, tok.device)
    return 2 * rows * k * n / t.median_s / 1e9
