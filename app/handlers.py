"""Gradio event handlers: thin functions that turn UI values into explorer calls and back.

Every handler turns alit_core's user errors into gr.Error (a message in the UI, never a
traceback), so one bad upload never disturbs anybody else's session.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np

import alit_core
from alit_core import ALITError, Criterion

from . import explorer, figures
from .explorer import BUNDLED, ModelCache, Record

MEASURE_LABELS = {"png_bpp": "PNG bits per pixel", "jpeg_bpp": "JPEG bits per pixel", "entropy": "entropy (bits)",
                  "edge_density": "edge density", "high_freq_energy": "high-frequency energy"}


def load_reference() -> list[dict]:
    path = explorer.ASSETS / "reference_set.json"
    return json.loads(path.read_text())["images"] if path.exists() else []


class Handlers:
    def __init__(self, cache: ModelCache):
        self.cache = cache
        self.reference = load_reference()

    # --- helpers ---------------------------------------------------------------------------------
    def tokenizer(self, model: str, device: str | None, dtype: str, progress=None):
        try:
            return self.cache.get(None if model == BUNDLED else model, device, dtype, progress=progress)
        except ALITError as err:
            raise gr.Error(str(err), duration=None) from err
        except ValueError as err:
            raise gr.Error(str(err)) from err

    @staticmethod
    def criterion(kind: str, value: float) -> Criterion:
        try:
            if kind == "PSNR target (dB)":
                return Criterion.make(psnr=value)
            if kind == "token budget":
                return Criterion.make(tokens=int(value))
            return Criterion.make(threshold=value)
        except ValueError as err:
            raise gr.Error(str(err)) from err

    @staticmethod
    def gallery(rec: Record, selected: int | None):
        items = []
        for t, r in enumerate(rec.recons):
            mark = "★ selected · " if t == selected else ""
            items.append((figures.enlarge(r), f"{mark}{rec.tokens[t]} tokens · L1 {rec.l1[t]:.3f} · {rec.psnr[t]:.1f} dB"))
        return items

    @staticmethod
    def metrics_md(rec: Record, selected: int | None, crit: Criterion) -> str:
        t = len(rec.tokens) - 1
        lines = [f"**Iteration {t + 1}**: {rec.tokens[t]} tokens, L1 {rec.l1[t]:.4f}, PSNR {rec.psnr[t]:.2f} dB"]
        if selected is not None:
            what = {"l1": f"L1 < {crit.value:g}", "psnr": f"PSNR ≥ {crit.value:g} dB",
                    "tokens": f"budget {crit.value:g}"}[crit.kind]
            met = (crit.kind == "tokens" or (rec.l1[selected] < crit.value if crit.kind == "l1"
                                             else rec.psnr[selected] >= crit.value))
            note = "" if met else " (no iteration met it: the official fallback, the lowest error, is shown)"
            lines.append(f"**Selected**: {rec.tokens[selected]} tokens for {what}{note}")
        return "\n\n".join(lines)

    def views(self, rec: Record, crit: Criterion, selected: int, measure: str):
        """Everything that depends on the selection (re-computed from the stored rollout)."""
        curve = figures.error_curve(rec.tokens, rec.l1, rec.psnr, crit.value if crit.kind != "tokens" else None,
                                    selected, crit.kind)
        row = explorer.complexity_row(rec, selected)
        scatter = figures.complexity_scatter(self.reference, measure, row)
        comp = explorer.compression(rec, selected)
        slider = (figures.enlarge(rec.image, smooth=True), figures.enlarge(rec.recons[selected]))
        return (self.gallery(rec, selected), slider, curve, scatter, figures.compression_bars(comp),
                self.metrics_md(rec, selected, crit))

    # --- events ----------------------------------------------------------------------------------
    def run(self, image_path, model, device, dtype, kind, value, max_iterations, halting, seed, layer, measure,
            progress=gr.Progress()):
        """Stream every iteration as it is computed, then the selection-dependent views."""
        if not image_path:
            raise gr.Error("Upload an image first, or pick one of the examples.")
        tok = self.tokenizer(model, device, dtype)
        crit = self.criterion(kind, value)
        image = read_upload(image_path, tok.resolution)
        for note in explorer.input_notes(image_path, tok.resolution):
            gr.Warning(note)
        name = Path(str(image_path)).name
        total = min(int(max_iterations), tok.config.iterations)
        rec = None
        for rec in explorer.rollout(tok, image, name, halting=halting, seed=int(seed), max_iterations=total,
                                    layer=int(layer)):
            t = len(rec.tokens) - 1
            progress((t + 1, total), desc=f"iteration {t + 1} of {total}")
            err = figures.grid_map(figures.position_error(rec.recons[t], image, rec.grid), vmax=0.3)
            yield (rec, self.gallery(rec, None), figures.enlarge(rec.recons[t]),
                   figures.halting_map(image, rec.halt[t]), err, self.metrics_md(rec, None, crit),
                   gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                   gr.update(value=t), gr.update(maximum=rec.tokens[t] - 1), gr.skip())
        selected = rec.select(crit)
        gallery, slider, curve, scatter, comp, md = self.views(rec, crit, selected, measure)
        heads = rec.maps[0].shape[0] if rec.maps else 1
        yield (rec, gallery, gr.skip(), gr.skip(), gr.skip(), md, slider, curve, scatter, comp, selected,
               gr.update(value=selected), gr.update(maximum=rec.tokens[selected] - 1),
               gr.update(choices=["mean", *map(str, range(heads))], value="mean"))

    def reselect(self, rec: Record | None, kind, value, measure):
        """A new threshold or criterion re-selects from the stored rollout: nothing is recomputed."""
        if rec is None:
            return (gr.skip(),) * 7
        crit = self.criterion(kind, value)
        selected = rec.select(crit)
        return (*self.views(rec, crit, selected, measure), selected)

    def complexity_plot(self, rec: Record | None, selected, measure):
        row = explorer.complexity_row(rec, int(selected)) if rec is not None and selected is not None else None
        return figures.complexity_scatter(self.reference, measure, row)

    def play(self, rec: Record | None, seconds_per_step: float = 0.8):
        """Replay the iterations one by one, for a class."""
        if rec is None:
            raise gr.Error("Run an image first.")
        for t in range(len(rec.recons)):
            yield (figures.enlarge(rec.recons[t]), figures.halting_map(rec.image, rec.halt[t]),
                   f"**Iteration {t + 1}**: {rec.tokens[t]} tokens, L1 {rec.l1[t]:.4f}, PSNR {rec.psnr[t]:.2f} dB")
            time.sleep(seconds_per_step)

    def attention(self, rec: Record | None, iteration, token, head, opacity):
        """One latent token's attention map over the image, and the object-discovery view."""
        if rec is None or not rec.maps:
            return None, None, "Run an image first."
        t = int(min(iteration, len(rec.maps) - 1))
        maps = rec.attention(t, head)
        k = int(min(token, maps.shape[0] - 1))
        overlay = figures.heat_overlay(rec.image, maps[k], opacity)
        seg, legend = figures.segment_overlay(rec.image, rec.segments(t, head))
        swatches = " ".join(f"<span style='background:{c};padding:0 6px;border-radius:3px'>token {tok}</span>"
                            for tok, c in legend.items())
        md = (f"Iteration {t + 1} ({rec.tokens[t]} tokens), layer {rec.layer}, head {head}: token {k} "
              f"(added at iteration {k // rec.tokens[0] + 1}).\n\n**Regions by strongest token** "
              f"({len(legend)} tokens own a region): {swatches}")
        return overlay, seg, md

    def who_attends(self, rec: Record | None, iteration, head, evt: gr.SelectData):
        """Which tokens attend to the clicked position (strongest first)."""
        if rec is None or not rec.maps:
            return "Run an image first."
        t = int(min(iteration, len(rec.maps) - 1))
        x, y = evt.index[0], evt.index[1]
        g = rec.grid
        gx, gy = min(g - 1, int(x * g / figures.DISPLAY)), min(g - 1, int(y * g / figures.DISPLAY))
        w = rec.attention(t, head)[:, gy, gx]
        top = np.argsort(-w)[:5]
        rows = "\n".join(f"| {k} | {k // rec.tokens[0] + 1} | {w[k]:.3f} |" for k in top)
        return f"Position (row {gy}, column {gx}) attends most to:\n\n| token | added at iteration | weight |\n|---|---|---|\n{rows}"

    def export(self, rec: Record | None, selected):
        if rec is None:
            raise gr.Error("Run an image first.")
        sel = int(selected) if selected is not None else len(rec.tokens) - 1
        out = Path(tempfile.mkdtemp(prefix="alit_export_"))
        stem = Path(rec.name).stem
        return [explorer.export_json(rec, sel, out / f"{stem}_tokens.json"),
                explorer.export_npz(rec, sel, out / f"{stem}_rollout.npz"),
                explorer.export_pngs(rec, out / f"{stem}_reconstructions.zip"),
                explorer.export_gif(rec, sel, out / f"{stem}_rollout.gif")]

    def tokenize(self, image_path, threshold: float | None = None, halting: str = "deterministic",
                 max_iterations: int = 8, model: str = BUNDLED):
        """API: an image -> per-iteration tokens, L1 and PSNR, and the selected token count."""
        if not image_path:
            raise gr.Error("no image was sent")
        tok = self.tokenizer(model, None, "float32")
        image = read_upload(image_path, tok.resolution)
        rec = explorer.complete(tok, image, Path(str(image_path)).name, halting=halting,
                                max_iterations=int(max_iterations))
        crit = self.criterion("L1 threshold", tok.default_threshold if threshold is None else float(threshold))
        return {**rec.summary(rec.select(crit)), "notes": explorer.input_notes(image_path, tok.resolution)}

    def batch(self, files, model, kind, value, measure, progress=gr.Progress()):
        """Several images (or zips of images) -> a table, the complexity scatter and a CSV."""
        if not files:
            raise gr.Error("Add some images (or a zip of images) first.")
        tok = self.tokenizer(model, None, "float32")
        crit = self.criterion(kind, value)
        paths, errors = expand_uploads([f if isinstance(f, str) else f.name for f in files])
        names, images = [], []
        for i, (name, path) in enumerate(paths):
            progress((i, len(paths)), desc=f"reading {name}")
            try:
                images.append(explorer.prepare(path, tok.resolution))
                names.append(name)
            except ALITError as err:
                errors.append(upload_message(err, path, name))
        picks = explorer.select_many(tok, images, crit,
                                     progress=lambda done: progress((done, len(images)), desc="tokenizing"))
        rows = [{"name": name, **pick, **alit_core.complexity(image)}
                for name, image, pick in zip(names, images, picks)]
        if not rows:
            raise gr.Error("None of the files could be used: " + "; ".join(errors[:5]))
        if errors:
            gr.Warning(f"{len(errors)} file(s) skipped: " + "; ".join(errors[:3]))
        cols = ["name", "tokens", "l1", "psnr", *alit_core.COMPLEXITY_MEASURES]
        table = [[r[c] if not isinstance(r[c], float) else round(r[c], 4) for c in cols] for r in rows]
        out = Path(tempfile.mkdtemp(prefix="alit_batch_")) / "alit_batch.csv"
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows(table)
        scatter = figures.complexity_scatter(self.reference, measure, rows)
        return gr.update(value=table, headers=cols), scatter, str(out)


def read_upload(path: str, size: int) -> np.ndarray:
    """An uploaded file through alit_core's loader; whatever is wrong with it becomes a message in the UI."""
    try:
        return explorer.prepare(path, size)
    except ALITError as err:
        raise gr.Error(upload_message(err, path)) from err


def upload_message(err: Exception, path: str, name: str | None = None) -> str:
    # alit_core names the file it read, which is gradio's temporary copy on the server; the user
    # knows it by its own name (gradio keeps that as the copy's file name).
    return str(err).replace(repr(str(path)), repr(name or Path(path).name))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def expand_uploads(paths: list[str], limit: int = 200, max_entry_bytes: int = 50 * 2**20,
                   max_total_bytes: int = 500 * 2**20) -> tuple[list[tuple[str, str]], list[str]]:
    """Uploaded files, with zips opened: (name, path) pairs, at most `limit`, and what was skipped.

    A zip is unpacked entry by entry against the sizes its directory declares (zipfile never reads
    past them), so a zip bomb stops at the caps instead of filling the disk.
    """
    out, skipped, total, unused = [], [], 0, 0
    for p in paths:
        if not zipfile.is_zipfile(p):
            if len(out) < limit:
                out.append((Path(p).name, p))
            else:
                unused += 1
            continue
        dest = Path(tempfile.mkdtemp(prefix="alit_zip_"))
        try:
            with zipfile.ZipFile(p) as z:
                for info in z.infolist():
                    if info.is_dir() or Path(info.filename).suffix.lower() not in IMAGE_SUFFIXES:
                        continue
                    if len(out) >= limit:
                        unused += 1
                        continue
                    name = Path(info.filename).name
                    if info.file_size > max_entry_bytes:
                        skipped.append(f"{name}: too large unpacked ({info.file_size / 2**20:.0f} MB, "
                                       f"the limit is {max_entry_bytes / 2**20:.0f} MB)")
                        continue
                    if total + info.file_size > max_total_bytes:
                        skipped.append(f"{name}: the zips unpack to more than {max_total_bytes / 2**20:.0f} MB "
                                       "in all")
                        continue
                    target = dest / f"{len(out):04d}_{name}"
                    target.write_bytes(z.read(info))
                    total += info.file_size
                    out.append((name, str(target)))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as err:
            # damaged, encrypted (RuntimeError) or an unsupported compression (NotImplementedError)
            skipped.append(f"{Path(p).name}: cannot unpack this zip ({err})")
    if unused:
        skipped.append(f"{unused} image(s) beyond the first {limit} were not used")
    return out, skipped
