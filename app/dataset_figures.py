"""The Dataset tab's plots of an encode-dataset results file: token counts per class, token count
against a complexity measure, and the rank correlation with every measure.

Pure functions of an alit_core.DatasetResults; no gradio. Every scatter point carries its row number
as customdata[0], which the tab's hover preview and click read (app/dataset_tab.py).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from alit_core import DatasetResults

from .figures import LEGEND_ABOVE, LEGEND_RIGHT, TOP_FOR_LEGEND, figure

MAX_CLASSES = 10  # classes drawn apart; the rest are one "other classes" group
MAX_POINTS = 5000  # scatter points drawn (a random sample beyond this; the correlation uses every row)


def class_groups(results: DatasetResults, cls: str | None) -> list[tuple[str, np.ndarray]]:
    """(name, rows) to draw: one class alone, or the largest classes and the rest together."""
    if cls is not None:
        return [(cls, results.rows(cls))]
    names = results.class_names()
    if len(names) == 1:
        return [("all images", results.rows())]
    groups = [(n, results.rows(n)) for n in names[:MAX_CLASSES]]
    rest = names[MAX_CLASSES:]
    if rest:
        groups.append((f"other classes ({len(rest)})", np.flatnonzero(np.isin(results.classes, rest))))
    return groups


def token_histogram(results: DatasetResults, cls: str | None = None) -> go.Figure:
    """Images per token count, stacked by class; one class shown against the whole dataset (as shares)."""
    fig = figure()
    overall = results.token_histogram()
    counts = sorted(overall)
    if cls is None:
        for name, rows in class_groups(results, None):
            hist = results.token_histogram(rows=rows)
            fig.add_trace(go.Bar(x=counts, y=[hist.get(c, 0) for c in counts], name=name,
                                 hovertemplate=f"{name}<br>%{{x}} tokens: %{{y}} images<extra></extra>"))
        # whole images: plotly would tick a small count at 0.5, 1.5, ...
        fig.update_layout(barmode="stack", yaxis=dict(title="images", tickformat="d", dtick=1)
                          if max(overall.values(), default=0) <= 10 else dict(title="images"))
    else:
        for name, hist in (("all images", overall), (cls, results.token_histogram(cls))):
            total = max(1, sum(hist.values()))
            fig.add_trace(go.Bar(x=counts, y=[100 * hist.get(c, 0) / total for c in counts], name=name,
                                 customdata=[hist.get(c, 0) for c in counts],
                                 hovertemplate=f"{name}<br>%{{x}} tokens: %{{customdata}} images "
                                               f"(%{{y:.1f}}%)<extra></extra>"))
        fig.update_layout(barmode="group", yaxis_title="share of images (%)")
    step = int(np.gcd.reduce(counts)) if counts else 32
    fig.update_layout(margin=dict(l=50, r=20, t=30, b=40), height=320, legend=LEGEND_RIGHT,
                      xaxis=dict(title="selected tokens", tickvals=counts if len(counts) <= 16 else None,
                                 dtick=None if len(counts) <= 16 else step))
    return fig


def sample_rows(rows: np.ndarray, limit: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """At most `limit` of these rows, a fixed random choice (the same plot every time), in order."""
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))


def complexity_scatter(results: DatasetResults, measure: str, cls: str | None = None,
                       correlation: dict | None = None) -> go.Figure:
    """Token count against one complexity measure, a colour per class; the counts are jittered up or down
    by up to a quarter step so that equal counts do not hide each other (the hover gives the exact one)."""
    fig = figure()
    groups = class_groups(results, cls)
    shown = sample_rows(np.concatenate([rows for _, rows in groups]))
    rng = np.random.default_rng(0)
    step = int(np.gcd.reduce(np.unique(results.num_tokens))) or 32
    x_all = results.columns[measure]
    for name, rows in groups:
        rows = rows[np.isin(rows, shown) & np.isfinite(x_all[rows])]
        tokens = results.num_tokens[rows]
        fig.add_trace(go.Scatter(
            x=x_all[rows], y=tokens + rng.uniform(-step / 4, step / 4, len(rows)), mode="markers", name=name,
            customdata=np.stack([rows, tokens], axis=1), text=results.path[rows],
            marker=dict(size=7, opacity=0.7),
            hovertemplate="%{text}<br>" + measure.replace("_", " ") + " %{x:.3f}<br>%{customdata[1]} tokens"
                          "<extra></extra>"))
    title = None
    if correlation is not None:
        sampled = f", {len(shown):,} of them drawn" if len(shown) < sum(len(r) for _, r in groups) else ""
        title = f"{rho_text(correlation)}, {correlation['n']:,} images{sampled}"
    fig.update_layout(margin=dict(l=50, r=20, t=50 if title else 30, b=40), height=400, legend=LEGEND_RIGHT,
                      title=dict(text=title, font=dict(size=13)) if title else None, hovermode="closest",
                      xaxis_title=measure.replace("_", " "), yaxis=dict(title="selected tokens", dtick=step * 2))
    return fig


def rho_text(correlation: dict) -> str:
    """Spearman's rho with its interval, or why either is missing (alit_core.bootstrap_ci gives NaN where the
    resamples cannot bound the estimate)."""
    rho, (lo, hi) = correlation["rho"], correlation["ci95"]
    if not np.isfinite(rho):
        return "Spearman rho undefined (every image has the same count or the same value)"
    if not np.isfinite(lo):
        return f"Spearman rho {rho:.2f} (no 95% CI: the counts are nearly all tied)"
    return f"Spearman rho {rho:.2f} (95% CI {lo:.2f} to {hi:.2f})"


def correlation_bars(rows: list[dict]) -> go.Figure:
    """Spearman's rho of tokens against each measure, with its bootstrap 95% interval as error bars.
    rows: {"measure", "rho", "ci95", "n"}."""
    rho = [r["rho"] for r in rows]
    lo = [r["rho"] - r["ci95"][0] for r in rows]
    hi = [r["ci95"][1] - r["rho"] for r in rows]
    fig = figure()
    fig.add_trace(go.Bar(
        x=[r["measure"].replace("_", " ") for r in rows], y=rho, name="Spearman rho",
        error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
        text=[rho_text(r) for r in rows], textposition="none", customdata=[r["n"] for r in rows],
        hovertemplate="%{x}<br>%{text}<br>%{customdata} images<extra></extra>"))
    fig.update_layout(margin=dict(l=50, r=20, t=TOP_FOR_LEGEND, b=40), height=320, legend=LEGEND_ABOVE,
                      yaxis=dict(title="Spearman rho with tokens", range=[-1, 1], zeroline=True))
    return fig
