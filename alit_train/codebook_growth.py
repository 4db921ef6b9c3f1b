"""A trained VQGAN with a larger codebook, to continue training from (`train vqgan --init X --codebook-size N`).

Why: the explorer_128 VQGAN (1,024 codes of 64 numbers, 8-pixel cells) stopped near 22 dB on unseen
photos, short of the 25 dB target, and a continuation of the whole VQGAN gained only 0.2 dB in 4,700 steps
(assets/MODEL_CARD.md, session 5): 256 codes of 10 bits are 320 bytes per 128-pixel image. More codes
give each cell more to say, at the cost of a wider output head in ALIT (its logits are over the codes).
Starting from the trained encoder and decoder keeps what they learned; the new entries are copies of
trained ones with a little noise, so they split the old cells between them as training moves them, and
any left unused are moved onto encoder outputs by the run's dead-code restarts (`restart_dead_codes`).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from alit_core.model.alit import ALIT


def grow_codebook(model: ALIT, size: int, seed: int = 0) -> ALIT:
    """A copy of `model` whose VQGAN has `size` codes: the trained ones first, at their indices, then
    copies of randomly chosen trained ones plus noise of 1% of the codebook's spread (an encoder output
    near a copied entry may take the copy at once; that is where the split starts). The ALIT part is fresh: its output head has another size."""
    old = model.vqgan.codebook.detach().float()
    if size < len(old):
        raise ValueError(f"the codebook can only grow: it has {len(old)} codes, not fewer ({size})")
    cfg = replace(model.cfg, vqgan=replace(model.cfg.vqgan, codebook_size=size))
    grown = ALIT(cfg)
    state = {k: v for k, v in model.vqgan.state_dict().items() if k != "quantize.embedding.weight"}
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(old), (size - len(old),), generator=gen)
    noise = 0.01 * old.std() * torch.randn(size - len(old), old.shape[1], generator=gen)
    state["quantize.embedding.weight"] = torch.cat([old, old[pick] + noise])
    grown.vqgan.load_state_dict(state)
    return grown
