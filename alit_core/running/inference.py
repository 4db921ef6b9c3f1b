"""How a Tokenizer runs its model at inference: settings that change speed, not results.

`InferenceOptions` says which speed-ups are on. They are resolved once, when a tokenizer is made:
`inference_model(model, options)` builds the model as it runs under them, a second tree of
modules over the *same* parameters and buffers (nothing is copied), in which

- linear layers, convolutions, attention in-projections and MLPs are the speed-up subclasses
  below (`FastLinear`, `FastConv2d`, `FastAttention`, `FastMLP`), each holding the options;
- the base tokenizer's decoder takes channels-last input, and ALIT's latent decoder computes only
  the rows its head reads (both are plain attributes of the model classes, set on the copy).

The model itself stays plain PyTorch (training, state dicts, hooks). Two tokenizers over one model
with different options each have their own tree, so their rollouts never see each other's
settings, in any thread. `inference(device, dtype)` is the context each step runs in: inference
mode and autocast; nothing else is ambient.

The speed-ups:
- weight cache: autocast casts every float32 weight to bfloat16 / float16 on *every* call; for
  alit_small that is 12.6 M numbers per transformer layer per iteration, about as long as the
  layer's matrix products on a CPU. Here the cast is made once and kept beside the module (keyed
  on the weight's storage and version, so loading or training the weights invalidates it). The
  copy is the very tensor autocast would have made, so results are bit-identical. Only used when
  gradients are off.
- channels-last (NHWC) activations for the base decoder's convolutions, the layout oneDNN (CPU)
  and tensor cores (GPU) compute natively; in bfloat16 on a CPU the decoder is about 3 times
  faster. Same arithmetic, other summation order: float32 rounding differences. (Not for the
  VQGAN encoder: there the order flips nearest-code targets that sit on a tie.)
- fused linear: on a CPU in bfloat16, oneDNN's matrix product on weights kept pre-packed in its
  blocked layout, with the bias and the GELU applied inside the product (`onednn_linear`). The
  profiler showed the transformer spending about 15% of its bfloat16 time outside the matrix
  products on exactly these: re-packing each weight on every call, copying the bias into the
  output before the product, and a separate pass for the GELU. The GELU is then computed from
  the float32 accumulator before rounding to bfloat16, so results move by bfloat16 rounding.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model.alit import ALIT
from ..model.transformer import MLP, Attention
from ..model.vae import KLVAE
from ..model.vqgan import VQGAN
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


@contextlib.contextmanager
def inference(device: torch.device, dtype: torch.dtype):
    """Inference mode + autocast (for lower precision), for one step of work."""
    with torch.inference_mode(), autocast(device, dtype):
        yield


# --- oneDNN's fused linear: a private PyTorch API, so checked once and used only behind this guard ---
@functools.cache
def onednn_linear_available() -> bool:
    """True when this CPU build runs oneDNN's bfloat16 packed linear (checked on a tiny product)."""
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return False
        w = torch.ones(3, 4, dtype=torch.bfloat16)
        y = onednn_linear(torch.ones(2, 4), onednn_pack(w), torch.zeros(3, dtype=torch.bfloat16), gelu=False)
        return bool(torch.equal(y.float(), torch.full((2, 3), 4.0)))
    except (AttributeError, RuntimeError):  # the op is missing or refuses this CPU: the plain path
        return False


def onednn_pack(w: torch.Tensor) -> torch.Tensor:
    """A bfloat16 (out, in) weight in oneDNN's blocked layout. 512 rows is the packing's batch-size
    hint: the sequence length of a full rollout."""
    return torch.ops.mkldnn._reorder_linear_weight(w.detach().to(torch.bfloat16), 512)


def onednn_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, gelu: bool) -> torch.Tensor:
    """x @ W.T + bias (then the exact GELU if asked) in bfloat16 on a packed weight."""
    attr, algorithm = ("gelu", "none") if gelu else ("none", "")
    return torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), packed, bias, attr, [], algorithm)


# --- the speed-up modules ----------------------------------------------------------------------
class Accelerated:
    """What the speed-up modules share: their options, and the copies of their weights made once."""

    options: InferenceOptions

    def _copy_key(self, w: torch.Tensor | None) -> tuple | None:
        """The autocast dtype and layout a kept copy of w is for; None when w is used as it is."""
        if w is None or torch.compiler.is_compiling():
            return None  # a compiled graph does its own casting
        if not self.options.weight_cache or torch.is_grad_enabled():
            return None
        device = w.device.type
        if not torch.is_autocast_enabled(device):
            return None
        dtype = torch.get_autocast_dtype(device)
        if w.dtype == dtype or not w.is_floating_point():
            return None
        fmt = torch.channels_last if (self.options.channels_last and w.dim() == 4) else torch.contiguous_format
        # storage and version: loading or training the weights invalidates the copy
        return (dtype, fmt, w.device, w.data_ptr(), w._version)

    def _kept(self, w: torch.Tensor, kind: str, key: tuple, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        kept = self.__dict__.setdefault("_kept_weights", {})
        slot = (id(w), kind)
        hit = kept.get(slot)
        if hit is None or hit[0] != key:
            hit = (key, make())
            kept[slot] = hit
        return hit[1]

    def cast(self, w: torch.Tensor | None) -> torch.Tensor | None:
        """w (a weight or bias) in the autocast precision, cast once when the cache is on."""
        key = self._copy_key(w)
        if key is None:
            return w
        return self._kept(w, "cast", key, lambda: w.detach().to(dtype=key[0], memory_format=key[1]))

    def linear(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, gelu: bool = False) -> torch.Tensor:
        """F.linear(x, w, b), then the exact GELU if asked: fused on oneDNN where the options allow."""
        key = self._copy_key(w)
        bias = self.cast(b)
        if (key is not None and key[0] == torch.bfloat16 and w.device.type == "cpu" and self.options.fused_linear
                and onednn_linear_available()):
            return onednn_linear(x, self._kept(w, "packed", key, lambda: onednn_pack(w)), bias, gelu)
        y = F.linear(x, w if key is None else self.cast(w), bias)
        return F.gelu(y) if gelu else y


class FastLinear(Accelerated, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x, self.weight, self.bias)


class FastConv2d(Accelerated, nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.cast(self.weight), self.cast(self.bias))


class FastAttention(Accelerated, Attention):
    def project_in(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x, self.in_proj_weight, self.in_proj_bias)


class FastMLP(Accelerated, MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.linear(x, self.c_fc.weight, self.c_fc.bias, gelu=True))


FAST_MODULES: dict[type, type] = {nn.Linear: FastLinear, nn.Conv2d: FastConv2d, Attention: FastAttention, MLP: FastMLP}


def inference_model(model: nn.Module, options: InferenceOptions) -> nn.Module:
    """`model` as it runs under `options`: the same parameters and buffers, in speed-up modules.

    Every module is a shallow copy (its parameter and buffer dictionaries are shared, so moving,
    loading or training the model shows here too); modules of the types in FAST_MODULES become
    their speed-up subclass. The model is not changed.
    """
    copy = object.__new__(FAST_MODULES.get(type(model), type(model)))
    copy.__dict__.update(model.__dict__)
    copy.__dict__.pop("_kept_weights", None)
    copy.__dict__["_modules"] = {name: None if child is None else inference_model(child, options)
                                 for name, child in model._modules.items()}
    if isinstance(copy, Accelerated):
        copy.options = options
    if isinstance(copy, (VQGAN, KLVAE)) and options.channels_last:
        copy.decoder_layout = torch.channels_last
    if isinstance(copy, ALIT):
        copy.decoder_rows = options.decoder_rows
    return copy
