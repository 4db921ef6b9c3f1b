"""The Batch tab's handler: many images, or zips of them, tokenized with early exit into a table, the
complexity scatter and a CSV. Mixed into `handlers.Handlers` (it uses the model cache, the criterion and
the output folder there)."""

from __future__ import annotations

import csv
import tempfile

import gradio as gr

import alit_core
from alit_core import ALITError

from . import explorer
from .choices import KARL_QUALITY, L1, download_progress
from .explorer import BUNDLED, is_karl
from .status import Refused, status_md
from .uploads import expand_uploads, upload_message

BATCH_COLUMNS = ["name", "tokens", "met", "l1", "psnr", *alit_core.COMPLEXITY_MEASURES]
# the CSV names what made its rows (the page says it in the status line)
CSV_COLUMNS = [*BATCH_COLUMNS, "model", "criterion"]


class BatchHandlers:
    # --- Batch -----------------------------------------------------------------------------------
    def batch(self, files, model, kind, l1, psnr, budget, measure, quality=None, progress=gr.Progress()):
        """Several images (or zips of images) -> a table, the complexity scatter and a CSV. A KARL model
        (Explore's model) gives its own count at Explore's desired L1 `quality` (its criteria are hidden)."""
        ui = self.ui
        try:
            if not files:
                raise Refused("Add some images (or a zip of images) first.")
            crit = self.criterion(kind, l1, psnr, budget)
            tok = self.tokenizer(model, None, "float32", download_progress(progress, model))
            if is_karl(tok):
                crit = self.criterion(L1, KARL_QUALITY if quality is None else quality, None, None)
        except Refused as err:
            return {ui.batch_status: status_md(error=str(err))}
        names, images = [], []
        # zips are unpacked into a folder of this call's own, removed once their images are read
        with tempfile.TemporaryDirectory(prefix="alit_zip_") as unpacked:
            paths, errors = expand_uploads([f if isinstance(f, str) else f.name for f in files], dest=unpacked)
            for i, (name, path) in enumerate(paths):
                progress((i, len(paths)), desc=f"reading {name}")
                try:
                    images.append(explorer.prepare(path, tok.resolution).image)
                    names.append(name)
                except ALITError as err:
                    errors.append(upload_message(err, path, name))
        if not images:
            return {ui.batch_status: status_md(error="None of the files could be used: " + "; ".join(errors[:5]))}
        picks = explorer.select_many(tok, images, crit,
                                     progress=lambda done: progress((done, len(images)), desc="tokenizing"))
        rows = [{"name": name, **pick, **alit_core.complexity(image)}
                for name, image, pick in zip(names, images, picks)]
        # (+ 0.0: a flat image's entropy is -0.0, shown as such)
        table = [[r[c] if not isinstance(r[c], float) else round(r[c], 4) + 0.0 for c in BATCH_COLUMNS] for r in rows]
        model_name = model or BUNDLED
        what = self.criterion_text(crit)
        out = self.outputs.folder() / "alit_batch.csv"
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            w.writerows(row + [model_name, what] for row in table)
        missed = sum(not r["met"] for r in rows)
        notes = [f"{len(rows)} image(s) with {self.model_label(model, tok).replace('`', '')}, for {what} (Explore's model and "
                 f"criterion)" + (f"; {missed} met it at no iteration (met = false: the lowest-error iteration "
                                  "is kept)" if missed else "")]
        skipped = [f"{len(errors)} file(s) skipped: " + "; ".join(errors[:5])] if errors else []
        return {ui.batch_table: gr.update(value=table, headers=BATCH_COLUMNS),
                ui.batch_plot: self.complexity_figure(model, measure, rows),
                ui.batch_csv: str(out), ui.batch_status: status_md(notes=notes, left_out=skipped)}
