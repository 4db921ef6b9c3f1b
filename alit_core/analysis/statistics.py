"""Rank correlation of token counts against complexity, with a bootstrap confidence interval.

The paper's allocation claim is a rank claim (more complex images get more tokens), so Spearman's rho
is the measure (docs/method.md §8). Token counts are few distinct values (multiples of 32), so ties
are the rule: ranks are averaged over ties (scipy's rankdata), and rho is Pearson's r of those ranks.
"""

from __future__ import annotations

import numpy as np


def spearman(x, y) -> float:
    """Spearman's rho of two equal-length sequences; NaN when either is constant or shorter than 2."""
    from scipy.stats import rankdata  # (scipy is imported on first use: alit_core loads faster without it)

    rho = _rank_pearson(rankdata(np.asarray(x, dtype=np.float64))[None],
                        rankdata(np.asarray(y, dtype=np.float64))[None])
    return float(rho[0])


def bootstrap_ci(x, y, n: int = 1000, seed: int = 0, max_points: int | None = 5000,
                 level: float = 0.95) -> tuple[float, float]:
    """The bias-corrected percentile bootstrap interval of Spearman's rho: `n` resamples of the pairs,
    with replacement.

    Bias-corrected (Efron's BC): the percentiles are moved by how far off centre the estimate sits among
    the resamples' rhos, which matters where their distribution is skewed. Where the counts are nearly all
    tied (all but one image at 32 tokens), resampling changes the ties themselves: a resample without the
    odd image has no rho, one with it twice a larger one, so the estimate can lie outside every resample's
    rho, and the plain percentile interval excluded its own estimate in 26 of 200 such sets
    (`tests/test_dataset_results.py`). The bootstrap says nothing there: NaN, NaN.
    max_points: above this many pairs, each resample draws this many (a fixed-size subsample keeps a
    10^6-row dataset's interval to a second; it is then a little wider than the full data's).
    NaN, NaN too when no resample has a defined rho (constant inputs)."""
    from scipy.stats import norm, rankdata

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} and {len(y)})")
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    size = len(x) if max_points is None else min(len(x), max_points)
    rhos = []
    for start in range(0, n, 100):  # 100 resamples at a time: (100, size) arrays
        idx = rng.integers(0, len(x), (min(100, n - start), size))
        rhos.append(_rank_pearson(rankdata(x[idx], axis=1), rankdata(y[idx], axis=1)))
    rhos = np.concatenate(rhos)
    rhos = rhos[np.isfinite(rhos)]
    if not len(rhos):
        return float("nan"), float("nan")
    estimate = spearman(x, y)
    if not np.isfinite(estimate):  # constant in the data, though not in every resample of a subsample
        return float("nan"), float("nan")
    below = (np.sum(rhos < estimate) + 0.5 * np.sum(rhos == estimate)) / len(rhos)
    z0 = norm.ppf(np.clip(below, 0.5 / len(rhos), 1 - 0.5 / len(rhos)))
    z = norm.ppf((1 - level) / 2)
    lo, hi = np.percentile(rhos, [100 * norm.cdf(2 * z0 + z), 100 * norm.cdf(2 * z0 - z)])
    if not lo <= estimate <= hi:
        return float("nan"), float("nan")
    return float(lo), float(hi)


def _rank_pearson(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis of (R, N) rank arrays; NaN where a row is constant."""
    if rx.shape[-1] < 2:
        return np.full(rx.shape[0], np.nan)
    dx, dy = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    den = np.sqrt((dx * dx).sum(-1) * (dy * dy).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(-1) / den
    return np.where(den > 0, np.clip(r, -1.0, 1.0), np.nan)
