"""A pre-LayerNorm ViT block with the official parameter names (`ln_1`, `attn.in_proj_weight`, ...).

Attention uses the fused kernel (scaled_dot_product_attention) unless the caller asks for the
attention weights, in which case it computes them explicitly, as the official visualisation
path does. Both paths agree to float32 rounding. The layers are plain PyTorch; a tokenizer runs
them through speed-up subclasses (`alit_core.running.inference`), which override `project_in` and
`MLP.forward` with cached low-precision weights and, on a CPU in bfloat16, fused products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        # False: always the explicit product, which on a CPU trains faster than the fused kernel
        # (its backward is the slow part); see `use_fused_attention`.
        self.fused = True
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, need_weights: bool = False, rows: slice | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, L, W) -> output (B, L, W) and, if asked, weights (B, heads, L, L).

        rows: compute the output for these query rows only (keys and values still cover all of x).
        mask: (B, L, L) bool, True where query i may not attend to key j (nn.MultiheadAttention's
        convention), the same for every head; None attends everywhere.
        """
        qkv = self.project_in(x)
        q, k, v = rearrange(qkv, "b l (three h d) -> three b h l d", three=3, h=self.heads)
        if rows is not None:
            q = q[:, :, rows]
        allowed = None
        if mask is not None:
            allowed = ~rearrange(mask if rows is None else mask[:, rows], "b i j -> b 1 i j")
        if need_weights or not self.fused:
            scale = q.shape[-1] ** -0.5
            scores = (q * scale) @ k.transpose(-2, -1)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            out = weights @ v
            weights = weights if need_weights else None
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out_proj(rearrange(out, "b h l d -> b l (h d)")), weights

    def project_in(self, x: torch.Tensor) -> torch.Tensor:
        """Queries, keys and values of x in one product (B, L, 3W)."""
        return F.linear(x, self.in_proj_weight, self.in_proj_bias)


def use_fused_attention(module: nn.Module, fused: bool) -> nn.Module:
    """Switch every attention layer inside `module` between the fused kernel and the explicit product.

    Both give the same results to float32 rounding. For training on a CPU the explicit product is
    about twice as fast: forward plus backward of 16 x 3 heads at 513 tokens, 64 dims, bfloat16,
    one thread, took 79 ms against the fused kernel's 154 ms (289 tokens: 34 against 59 ms).
    """
    for m in module.modules():
        if isinstance(m, Attention):
            m.fused = fused
    return module


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, eps: float = 1e-5):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=eps)
        self.mlp = MLP(width, int(width * mlp_ratio))

    def forward(self, x: torch.Tensor, need_weights: bool = False, rows: slice | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """rows: return only these rows of the output (every row is still attended to); mask: see Attention."""
        a, weights = self.attn(self.ln_1(x), need_weights, rows, mask)
        x = (x if rows is None else x[:, rows]) + a
        return x + self.mlp(self.ln_2(x)), weights


class Transformer(nn.Module):
    def __init__(self, width: int, depth: int, heads: int, mlp_ratio: float = 4.0, eps: float = 1e-5):
        super().__init__()
        self.transformer = nn.ModuleList(Block(width, heads, mlp_ratio, eps) for _ in range(depth))

    def forward(self, x: torch.Tensor, attention_layers: frozenset[int] = frozenset(), rows: slice | None = None,
                mask: torch.Tensor | None = None):
        """Run every block; return the output and {layer: weights} for the requested layers.

        rows: return only these rows of the output. The last block then computes only them
        (unless its attention weights are requested, which need every row): its other rows
        feed nothing, so skipping them changes no result. mask: (B, L, L) bool, True = blocked,
        for every block and head (see Attention).
        """
        maps = {}
        last = len(self.transformer) - 1
        for i, blk in enumerate(self.transformer):
            trim = rows if i == last and i not in attention_layers else None
            x, w = blk(x, need_weights=i in attention_layers, rows=trim, mask=mask)
            if w is not None:
                maps[i] = w
        if rows is not None and last in attention_layers:
            x = x[:, rows]
        return x, maps
