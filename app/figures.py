"""Pictures and plots for the explorer: attention overlays, error and halting maps, plotly charts.

Pure functions of numpy arrays and plain numbers; no model, no gradio.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from .texts import base_decodes

DISPLAY = 256  # pixels: small models are shown enlarged


def enlarge(img: np.ndarray, size: int = DISPLAY, smooth: bool = False) -> np.ndarray:
    """Resize for display; nearest keeps the pixels of a 64 px model honest."""
    if img.shape[0] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC if smooth else cv2.INTER_NEAREST)


def heat_overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.5, size: int = DISPLAY,
                 colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A (g, g) map, normalised to its own range, coloured and laid over an RGB uint8 image."""
    base = enlarge(image, size, smooth=True)
    h = np.asarray(heat, dtype=np.float32)
    h = (h - h.min()) / (h.max() - h.min() + 1e-12)
    h = cv2.resize(h, (size, size), interpolation=cv2.INTER_NEAREST)
    colour = cv2.cvtColor(cv2.applyColorMap((h * 255).astype(np.uint8), colormap), cv2.COLOR_BGR2RGB)
    return (base * (1 - opacity) + colour * opacity + 0.5).astype(np.uint8)


def palette(n: int) -> np.ndarray:
    """n distinct colours (uint8 RGB), golden-ratio hues."""
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95)]
                     for i in range(max(n, 1))], dtype=np.uint8)


def segment_overlay(image: np.ndarray, labels: np.ndarray, opacity: float = 0.55, size: int = DISPLAY):
    """Colour each region by its strongest token; returns the picture and {token: colour hex}."""
    base = enlarge(image, size, smooth=True)
    lab = cv2.resize(labels.astype(np.int32), (size, size), interpolation=cv2.INTER_NEAREST)
    tokens = sorted(int(t) for t in np.unique(lab))
    colours = palette(len(tokens))
    paint = np.zeros_like(base)
    for t, c in zip(tokens, colours):
        paint[lab == t] = c
    out = (base * (1 - opacity) + paint * opacity + 0.5).astype(np.uint8)
    edges = cv2.morphologyEx((lab.astype(np.float32)), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges] = 255
    legend = {t: "#%02x%02x%02x" % tuple(int(v) for v in c) for t, c in zip(tokens, colours)}
    return out, legend


def grid_map(values: np.ndarray, size: int = DISPLAY, colormap: int = cv2.COLORMAP_INFERNO,
             vmax: float | None = None) -> np.ndarray:
    """A (g, g) map of non-negative values as a coloured picture (fixed scale when vmax is given)."""
    v = np.asarray(values, dtype=np.float32)
    top = vmax if vmax is not None else max(float(v.max()), 1e-12)
    u = np.clip(v / top, 0, 1)
    u = cv2.resize(u, (size, size), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.applyColorMap((u * 255).astype(np.uint8), colormap), cv2.COLOR_BGR2RGB)


def halting_map(image: np.ndarray, mask: np.ndarray | None, size: int = DISPLAY) -> np.ndarray:
    """Masked (halted) image tokens greyed out and hatched over the image."""
    base = enlarge(image, size, smooth=True).copy()
    if mask is None:
        return base
    m = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)
    grey = base.mean(axis=2, keepdims=True).repeat(3, axis=2)
    base[m] = (0.35 * grey[m] + 0.65 * np.array([40, 160, 255])).astype(np.uint8)
    return base


def latent_halting(halted: np.ndarray, top: int, size: int = DISPLAY, per_row: int = 16) -> np.ndarray:
    """A KARL pass's latents in sequence order, `per_row` to a row up to `top` (the sweep's largest budget):
    kept ones green, halted ones blue, those beyond this pass's budget light grey."""
    rows = -(-top // per_row)
    cells = np.full(rows * per_row, 2, dtype=np.uint8)  # beyond the budget
    cells[: len(halted)] = np.asarray(halted, dtype=np.uint8)  # 0 kept, 1 halted
    colours = np.array([[60, 170, 90], [40, 110, 255], [225, 225, 225]], dtype=np.uint8)
    cell = max(1, size // per_row)
    pic = colours[cells.reshape(rows, per_row)].repeat(cell, axis=0).repeat(cell, axis=1)
    pic[::cell] = pic[:, ::cell] = 255  # the cells' edges
    return pic


def position_error(recon: np.ndarray, image: np.ndarray, grid: int) -> np.ndarray:
    """Mean |recon - image| per grid cell (g, g), for the per-position error map."""
    err = np.abs(recon.astype(np.float32) - image.astype(np.float32)).mean(axis=2) / 255.0
    return cv2.resize(err, (grid, grid), interpolation=cv2.INTER_AREA)


def difference_map(a: np.ndarray, b: np.ndarray, size: int = DISPLAY, vmax: float = 0.3) -> tuple[np.ndarray, float]:
    """|a - b| of two RGB uint8 pictures, per pixel at the display size (either may be another size:
    both are shown enlarged), coloured on a fixed scale (0 to vmax of the full range); and its mean."""
    x, y = (enlarge(p, size).astype(np.float32) / 255.0 for p in (a, b))
    diff = np.abs(x - y).mean(axis=2)
    return grid_map(diff, size, vmax=vmax), float(diff.mean())


def error_pair(runs: list[tuple[np.ndarray, np.ndarray]], size: int = DISPLAY, vmax: float = 0.3,
               gap: int = 8) -> tuple[np.ndarray, list[float]]:
    """Each (reconstruction, its own image) pair's |reconstruction - image|, side by side on one fixed scale
    (difference_map) with a white gap between them; and each one's mean."""
    maps, means = zip(*(difference_map(recon, image, size, vmax) for recon, image in runs))
    white = np.full((maps[0].shape[0], gap, 3), 255, dtype=np.uint8)
    pieces = [m for pair in zip(maps, [white] * len(maps)) for m in pair][:-1]
    return np.concatenate(pieces, axis=1), list(means)


def caption(img: np.ndarray, text: str, size: int = DISPLAY) -> np.ndarray:
    """The picture with a caption band underneath (for GIF frames)."""
    pic = Image.fromarray(enlarge(img, size, smooth=False))
    band = 22
    out = Image.new("RGB", (size, size + band), (255, 255, 255))
    out.paste(pic, (0, 0))
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    ImageDraw.Draw(out).text((6, size + 4), text, fill=(0, 0, 0), font=font)
    return np.asarray(out)


# --- plotly ---------------------------------------------------------------------------------------
# Legends sit outside the data area, anchored on their edge nearest the plot so that a legend that
# wraps grows away from the data: never over a point (the 256-token row is where a complex image's
# star lands).
LEGEND_ABOVE = dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom")
# gradio draws a plot's label over the figure's top left corner: a figure with its legend above the plot
# leaves this much room on top, so that the legend sits below the label, not under it, even where a plot half
# of an 800 px window wraps its legend onto two rows (the error curve's four entries, 48 px)
TOP_FOR_LEGEND = 86
LEGEND_RIGHT = dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top")
# plotly's buttons (shown while the pointer is over a plot): a column down the right edge, and only
# download, zoom, pan and reset; a row of eleven across the top covered gradio's label of a plot half the
# page wide (the Compression plot's, measured in the browser suite)
MODEBAR = dict(orientation="v", remove=["lasso2d", "select2d", "zoomIn2d", "zoomOut2d", "autoScale2d"])


def figure() -> go.Figure:
    """An empty figure with the page's plotly buttons (MODEBAR)."""
    return go.Figure(layout=dict(modebar=MODEBAR))

# Colours of the two runs of the Compare tab (plotly's first two), the same in every plot.
RUN_COLOURS = ("#636efa", "#ef553b")
TARGET_COLOUR = {False: "red", True: "#404040"}  # the criterion's target line: one run, several runs


def error_curve(tokens: list[int], l1: list[float], psnr: list[float], threshold: float | None,
                selected: int | None, criterion: str = "l1", floor: tuple[str, float] | None = None) -> go.Figure:
    """Error against token count for one image, with the threshold line and the chosen point; `floor`:
    (base tokenizer's name, its own L1 on the image), drawn as a line across the counts."""
    return error_curves([dict(name="", tokens=tokens, l1=l1, psnr=psnr, selected=selected, criterion=criterion,
                              target=threshold, floor=floor)])


def error_curves(runs: list[dict]) -> go.Figure:
    """Error against token count for one run or several overlaid, each with its target line and its
    chosen point (a star). A run: {"name", "tokens", "l1", "psnr", "selected", "criterion" ("l1",
    "psnr" or "tokens"), "target" (None for a budget), optionally "floor" (base tokenizer's name, its
    own L1: a grey line, see `error_curve`)}; several runs are named and coloured
    (RUN_COLOURS), one keeps plotly's colours and the plain names "L1", "PSNR (dB)", "selected"."""
    fig = figure()
    several = len(runs) > 1
    targets = set()
    for i, r in enumerate(runs):
        tokens, l1, psnr, selected = r["tokens"], r["l1"], r["psnr"], r["selected"]
        name = f"{r['name']}: " if several else ""
        colour = dict(color=RUN_COLOURS[i % len(RUN_COLOURS)]) if several else {}
        fig.add_trace(go.Scatter(x=tokens, y=l1, mode="lines+markers", name=f"{name}L1", yaxis="y1",
                                 line=colour, marker=colour,
                                 hovertemplate=f"{name}%{{x}} tokens<br>L1 %{{y:.4f}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=tokens, y=psnr, mode="lines+markers", name=f"{name}PSNR (dB)", yaxis="y2",
                                 line=dict(dash="dot", **colour), marker=colour,
                                 hovertemplate=f"{name}%{{x}} tokens<br>PSNR %{{y:.2f}} dB<extra></extra>"))
        if r.get("floor") is not None:
            base, floor = r["floor"]
            # across the counts shown (a one-iteration run: a short stroke around its one count)
            ends = [tokens[0], tokens[-1]] if len(tokens) > 1 else [tokens[0] - 4, tokens[0] + 4]
            fig.add_trace(go.Scatter(x=ends, y=[floor, floor], mode="lines", name=f"{name}{base} alone", yaxis="y1",
                                     # grey for one run; several keep their own colours, so each line is told apart
                                     line=dict(dash="dashdot", color=colour.get("color", "grey"), width=1.5),
                                     opacity=0.6 if several else 1.0,
                                     hovertemplate=f"{name}the {base} alone, from the image's own "
                                                   f"{base_decodes(base)}: L1 %{{y:.4f}}<extra></extra>"))
        target, criterion = r.get("target"), r.get("criterion", "l1")
        if target is not None and criterion in ("l1", "psnr") and (criterion, target) not in targets:
            targets.add((criterion, target))  # two runs with the same target share its line
            # dark grey beside two runs: red was told apart from run B's red-orange curves only by its dashes
            fig.add_hline(y=target, line_dash="dash", line_color=TARGET_COLOUR[several],
                          yref="y" if criterion == "l1" else "y2",
                          annotation_text=f"{'L1' if criterion == 'l1' else 'PSNR'} target {target:g}")
        if selected is not None and selected < len(tokens):
            fig.add_trace(go.Scatter(x=[tokens[selected]], y=[l1[selected]], mode="markers", name=f"{name}selected",
                                     marker=dict(size=16, symbol="star", color=colour.get("color", "red"),
                                                 line=dict(width=1, color="black") if several else None)))
    fig.update_layout(
        margin=dict(l=50, r=50, t=TOP_FOR_LEGEND, b=40), height=340 if several else 330,
        # a tick at each count the runs have (plotly would tick a one-iteration run at 31, 31.5, 32, ...)
        xaxis=dict(title="tokens", tickvals=sorted({n for r in runs for n in r["tokens"]})),
        yaxis=dict(title="L1 (lower is better)"),
        yaxis2=dict(title="PSNR (dB)", overlaying="y", side="right"), legend=LEGEND_ABOVE,
    )
    return fig


def budget_counts(budgets: list[int], tokens: list[int]) -> go.Figure:
    """KARL's estimated token count at each budget of its sweep, against the budget itself."""
    fig = figure()
    fig.add_trace(go.Scatter(x=budgets, y=budgets, mode="lines", name="budget (nothing halts)",
                             line=dict(dash="dot", color="grey")))
    fig.add_trace(go.Scatter(x=budgets, y=tokens, mode="lines+markers", name="estimated count",
                             hovertemplate="budget %{x}<br>%{y} tokens<extra></extra>"))
    fig.update_layout(margin=dict(l=50, r=20, t=TOP_FOR_LEGEND, b=40), height=320, xaxis_title="budget (latents)",
                      yaxis=dict(title="tokens kept", rangemode="tozero"), legend=LEGEND_ABOVE)
    return fig


def complexity_scatter(reference: list[dict], measure: str, current: dict | list[dict] | None = None,
                       reference_threshold: float | None = None, token_step: int | None = 32) -> go.Figure:
    """Token count against a complexity measure for a reference set, with the visitor's images as stars.
    reference_threshold: the L1 threshold the reference was counted at, named above its legend (the visitor's
    images are at the page's criterion, which may be another).
    token_step: the model's tokens per iteration, the y axis's tick step (None: plotly's own ticks).

    One image (a dict) is named in the legend; several (a list, the Batch tab) are one trace, named
    on hover: labels next to the points would cover each other and the reference set.
    """
    fig = figure()
    groups = sorted({r.get("group", "reference") for r in reference})
    rng = np.random.default_rng(0)
    for g in groups:
        rows = [r for r in reference if r.get("group", "reference") == g]
        fig.add_trace(go.Scatter(
            x=[r[measure] for r in rows], y=[r["tokens"] + rng.uniform(-3, 3) for r in rows], mode="markers",
            name=g, text=[r["name"] for r in rows], marker=dict(size=8, opacity=0.7),
            hovertemplate="%{text}<br>" + measure + " %{x:.3f}<br>%{y:.0f} tokens<extra></extra>"))
    items = [current] if isinstance(current, dict) else list(current or [])
    if items:
        name = f"this image ({items[0]['name']})" if isinstance(current, dict) else f"your images ({len(items)})"
        fig.add_trace(go.Scatter(
            x=[r[measure] for r in items], y=[r["tokens"] for r in items], mode="markers", name=name,
            text=[r["name"] for r in items],
            hovertemplate="%{text}<br>" + measure + " %{x:.3f}<br>%{y:.0f} tokens<extra></extra>",
            marker=dict(size=18, symbol="star", color="red", line=dict(width=1, color="black"))))
    if not reference:  # (app.handlers.Handlers.reference: only a bundled model's own counts are shown)
        fig.add_annotation(text="no reference set for this model: the reference images are counted by the bundled "
                                "models only", xref="paper", yref="paper", x=0, y=1.02, xanchor="left",
                           yanchor="bottom", showarrow=False, font=dict(size=11, color="grey"))
    title = dict(text=f"reference at L1 < {reference_threshold:g}") if reference and reference_threshold else None
    fig.update_layout(margin=dict(l=50, r=20, t=30, b=40), height=360, xaxis_title=measure.replace("_", " "),
                      yaxis=dict(title="selected tokens", dtick=token_step), legend={**LEGEND_RIGHT, "title": title})
    return fig


def compression_bars(rows: list[dict]) -> go.Figure:
    """Bytes and PSNR of ALIT tokens against JPEG and WebP files of about the same size."""
    fig = figure()
    names = [r["codec"] for r in rows]
    fig.add_trace(go.Bar(x=names, y=[r["bytes"] for r in rows], name="bytes", yaxis="y1",
                         # at the bar's foot, clear of the PSNR line drawn across the bars' tops
                         text=[f"{r['bytes']:.0f} B" for r in rows], textposition="inside",
                         insidetextanchor="start"))
    fig.add_trace(go.Scatter(x=names, y=[r["psnr"] for r in rows], name="PSNR (dB)", yaxis="y2",
                             mode="markers+lines", marker=dict(size=12)))
    # the PSNR axis starts well below the lowest PSNR, so that its marker stays above the byte labels
    psnr = [r["psnr"] for r in rows]
    span = max(max(psnr) - min(psnr), 1.0)
    fig.update_layout(margin=dict(l=50, r=50, t=TOP_FOR_LEGEND, b=40), height=320, yaxis=dict(title="bytes"),
                      yaxis2=dict(title="PSNR (dB)", overlaying="y", side="right",
                                  range=[min(psnr) - 0.4 * span, max(psnr) + 0.1 * span]),
                      legend=LEGEND_ABOVE)
    return fig
