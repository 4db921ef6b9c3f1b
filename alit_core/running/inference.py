"""How a Tokenizer runs its model at inference: settings that change speed, not results.

`InferenceOptions` says which speed-ups are on; `inference(device, dtype, options)` is the one
context every inference step runs in (inference mode, autocast, and these options). The modules
ask this context two things:

- `weight(module, name)`: the parameter as the current autocast precision wants it. Autocast
  casts every float32 weight to bfloat16 / float16 on *every* call; for alit_small that is
  12.6 M numbers per transformer layer per iteration, about as long as the layer's matrix
  products on a CPU. Here the cast is made once and kept beside the module (keyed on the
  weight's storage and version, so loading or training the weights invalidates it). The copy
  is the very tensor autocast would have made, so results are bit-identical. Only used when
  gradients are off: training keeps autocast's own casts, which gradients flow through.
- `conv_layout(x)`: channels-last (NHWC) activations for the VQGAN decoder's convolutions, the
  layout oneDNN (CPU) and tensor cores (GPU) compute natively; in bfloat16 on a CPU the decoder
  is about 3 times faster. Same arithmetic, other summation order: float32 rounding differences.
  (Not for the VQGAN encoder: there the order flips nearest-code targets that sit on a tie.)
- `linear(module, x, ...)`: a linear layer, optionally followed by the exact GELU. On a CPU in
  bfloat16 it runs oneDNN's matrix product on weights kept pre-packed in oneDNN's blocked layout,
  with the bias and the GELU applied inside the product (`fused_linear`). The profiler showed
  the transformer spending about 15% of its bfloat16 time outside the matrix products on exactly
  these: re-packing each weight on every call, copying the bias into the output before the
  product, and a separate pass for the GELU. The GELU is then computed from the float32
  accumulator before rounding to bfloat16, so results move by bfloat16 rounding.

Settings live in a ContextVar, so concurrent rollouts in other threads see their own.
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import nn

from .devices import autocast

# Pixels per VQGAN decoder call. On a CPU a 256 px decode is memory-bound (its activations are
# hundreds of MB), so batching large images makes each slower; small images gain from batching.
# GPUs want large batches.
DEFAULT_DECODE_PIXELS = {"cpu": 64 * 64 * 16, "cuda": 256 * 256 * 16, "mps": 256 * 256 * 4}


@dataclass(frozen=True)
class InferenceOptions:
    """Speed settings; none changes results beyond floating-point rounding.

    channels_last: run the VQGAN decoder's convolutions in NHWC.
    weight_cache: keep low-precision copies of the weights for bfloat16 / float16 inference
        (costs memory: 2 bytes per cached parameter, about 0.4 GB for alit_small).
    decode_pixels: pixels per VQGAN decoder call when several reconstructions are decoded
        together (None: a per-device default, DEFAULT_DECODE_PIXELS; 0: no limit, one call).
    float32_pixels: decode pixels in float32 even when the tokenizer runs in bfloat16 / float16.
        A lower-precision VQGAN decoder moves each iteration's L1 by about 1e-4, which is enough
        to change the selected token count where the error curve is flat; in float32 the
        selection matches float32 exactly unless the transformer's own rounding changes it. Costs
        the decoder's float32 time (about 4x its bfloat16 time on a CPU).
    fused_linear: CPU bfloat16 with the weight cache: linear layers on pre-packed oneDNN weights
        with the bias and GELU fused into the matrix product (about 0.4 GB for alit_small, in
        place of the cached bfloat16 copies of those weights). Other devices and precisions
        ignore it.
    decoder_rows: the latent decoder's last block computes only the 2D-position rows that the
        logits head reads (the official code computes every row, then drops the class and latent
        rows). Same numbers; saves up to a third of that block.
    compile: torch.compile the transformer blocks and the VQGAN decoder (first calls are slow
        while it compiles; needs a working compiler toolchain).
    """

    channels_last: bool = True
    weight_cache: bool = True
    fused_linear: bool = True
    decode_pixels: int | None = None
    float32_pixels: bool = False
    decoder_rows: bool = True
    compile: bool = False

    @classmethod
    def plain(cls) -> InferenceOptions:
        """Every speed-up off: how the official implementation runs (for baselines)."""
        return cls(channels_last=False, weight_cache=False, fused_linear=False, decode_pixels=0, decoder_rows=False)

    def decode_batch(self, device: torch.device, resolution: int) -> int | None:
        """Images per VQGAN decoder call at this resolution (None: all in one call)."""
        if self.decode_pixels == 0:
            return None
        pixels = self.decode_pixels or DEFAULT_DECODE_PIXELS.get(torch.device(device).type, 256 * 256)
        return max(1, pixels // (resolution * resolution))


_ACTIVE: ContextVar[InferenceOptions | None] = ContextVar("alit_inference_options", default=None)


@contextlib.contextmanager
def inference(device: torch.device, dtype: torch.dtype, options: InferenceOptions):
    """Inference mode + autocast (for lower precision) + these options, for one step of work."""
    with torch.inference_mode(), autocast(device, dtype):
        token = _ACTIVE.set(options)
        try:
            yield
        finally:
            _ACTIVE.reset(token)


def active_options() -> InferenceOptions | None:
    return _ACTIVE.get()


def _cache_key(w: torch.Tensor, opts: InferenceOptions | None) -> tuple | None:
    """The autocast dtype and layout a cached copy of w is for, or None when w is used as it is."""
    if w is None or torch.compiler.is_compiling():
        return None  # a compiled graph does its own casting
    if opts is None or not opts.weight_cache or torch.is_grad_enabled():
        return None
    device = w.device.type
    if not torch.is_autocast_enabled(device):
        return None
    dtype = torch.get_autocast_dtype(device)
    if w.dtype == dtype or not w.is_floating_point():
        return None
    fmt = torch.channels_last if (opts.channels_last and w.dim() == 4) else torch.contiguous_format
    # storage and version: loading or training the weights invalidates the copy
    return (dtype, fmt, w.device, w.data_ptr(), w._version)


def _cached(module: nn.Module, slot: str, key: tuple, make) -> torch.Tensor:
    cache = module.__dict__.setdefault("_inference_weights", {})
    hit = cache.get(slot)
    if hit is None or hit[0] != key:
        hit = (key, make())
        cache[slot] = hit
    return hit[1]


def _cast(module: nn.Module, name: str, w: torch.Tensor | None, key: tuple | None) -> torch.Tensor | None:
    if key is None:
        return w
    return _cached(module, name, key, lambda: w.detach().to(dtype=key[0], memory_format=key[1]))


def weight(module: nn.Module, name: str) -> torch.Tensor | None:
    """module.<name> (a weight or bias), cast once to the autocast precision when the cache is on."""
    w = getattr(module, name)
    return _cast(module, name, w, _cache_key(w, _ACTIVE.get()))


@functools.cache
def _onednn_bf16() -> bool:
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def linear(module: nn.Module, x: torch.Tensor, weight_name: str = "weight", bias_name: str = "bias",
           gelu: bool = False) -> torch.Tensor:
    """F.linear(x, module.<weight_name>, module.<bias_name>), then the exact GELU if asked."""
    w = getattr(module, weight_name)
    opts = _ACTIVE.get()
    key = _cache_key(w, opts)
    bias = weight(module, bias_name)
    fused = (key is not None and opts.fused_linear and key[0] == torch.bfloat16 and w.device.type == "cpu"
             and _onednn_bf16())
    if fused:
        # 512 rows: the packing's batch-size hint, the sequence length of a full rollout
        packed = _cached(module, f"{weight_name}:packed", key,
                         lambda: torch.ops.mkldnn._reorder_linear_weight(w.detach().to(torch.bfloat16), 512))
        attr, algorithm = ("gelu", "none") if gelu else ("none", "")
        return torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), packed, bias, attr, [], algorithm)
    y = nn.functional.linear(x, _cast(module, weight_name, w, key), bias)
    return nn.functional.gelu(y) if gelu else y


def conv_layout(x: torch.Tensor) -> torch.Tensor:
    """x in channels-last when the active options ask for it (else unchanged)."""
    opts = _ACTIVE.get()
    if opts is not None and opts.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class Linear(nn.Linear):
    """nn.Linear (same parameters and names) that runs through `linear()`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(self, x)


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
            y = nn.functional.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
            return y.contiguous(memory_format=torch.channels_last)
        return super().forward(x)



class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters and names) that reads its weight through `weight()`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, weight(self, "weight"), weight(self, "bias"))
