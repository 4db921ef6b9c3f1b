"""Object discovery from decoder attention: which latent token each 2D position belongs to.

Every grid position is assigned to the latent token with the largest attention weight from that
position's query (rows 1..P, latent columns; see attention_maps.py). Positions that the same
latent dominates form one segment. Scores: FG-ARI (adjusted Rand index over ground-truth
foreground pixels, the object-discovery standard) and Hungarian-matched mean IoU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .attention_maps import latent_attention_maps


def attention_segments(attention: torch.Tensor, grid_size: int, size: int | None = None) -> torch.Tensor:
    """Decoder attention (B, L, L) (head-averaged) -> latent index per position (B, g, g).

    With `size`, the label map is upsampled (nearest) to size x size pixels.
    """
    maps = latent_attention_maps(attention, grid_size)  # (B, N, g, g)
    labels = maps.argmax(dim=1)
    if size is not None and size != grid_size:
        labels = F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    return labels


def grid_segments(num_segments: int, size: int) -> np.ndarray:
    """A content-blind baseline: the image cut into about `num_segments` equal rectangles."""
    rows = max(1, int(round(np.sqrt(num_segments))))
    cols = max(1, int(np.ceil(num_segments / rows)))
    y = np.minimum(np.arange(size) * rows // size, rows - 1)
    x = np.minimum(np.arange(size) * cols // size, cols - 1)
    return (y[:, None] * cols + x[None, :]).astype(np.int64)


def adjusted_rand_index(true: np.ndarray, pred: np.ndarray) -> float:
    """ARI of two labelings of the same items (1.0 identical, about 0 for chance)."""
    true = np.asarray(true).ravel()
    pred = np.asarray(pred).ravel()
    n = true.size
    if n < 2:
        return 1.0
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), dtype=np.int64)
    np.add.at(table, (t, p), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    index = pairs(table)
    a, b = pairs(table.sum(1)), pairs(table.sum(0))
    expected = a * b / (n * (n - 1) / 2)
    maximum = (a + b) / 2
    if maximum == expected:  # both labelings put everything in one cluster (or all singletons)
        return 1.0
    return float((index - expected) / (maximum - expected))


def fg_ari(true_masks: np.ndarray, pred: np.ndarray) -> float:
    """ARI over the pixels that belong to a ground-truth object (label > 0)."""
    fg = np.asarray(true_masks) > 0
    if fg.sum() < 2:
        return float("nan")
    return adjusted_rand_index(np.asarray(true_masks)[fg], np.asarray(pred)[fg])


def matched_miou(true_masks: np.ndarray, pred: np.ndarray) -> float:
    """Mean IoU of the ground-truth objects, each matched to one predicted segment (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    true_masks, pred = np.asarray(true_masks), np.asarray(pred)
    objects = [o for o in np.unique(true_masks) if o > 0]
    if not objects:
        return float("nan")
    segments = np.unique(pred)
    iou = np.zeros((len(objects), len(segments)))
    for i, o in enumerate(objects):
        t = true_masks == o
        for j, s in enumerate(segments):
            p = pred == s
            iou[i, j] = (t & p).sum() / max(1, (t | p).sum())
    rows, cols = linear_sum_assignment(-iou)
    return float(iou[rows, cols].sum() / len(objects))
