"""The Dataset tab: a results file of `python -m alit_core encode-dataset` as plots and a table.

Token counts per class (histogram), token count against each complexity measure with Spearman's rho
and its bootstrap interval, the image under the pointer, a table sortable over every row, and a click
(on a point or a row) that opens the image in Explore and runs it there.

The images are read from the dataset's folder only: the folder beside the results file, or one the
visitor types, and only on a server that opens local paths (app.py --local-checkpoints); a results
file may come from anyone, so a row never opens a file outside its folder (alit_core.read_results).
The bundled examples' own results (the button) are always viewable.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

import alit_core
from alit_core import ALITError, DatasetResults, read_results

from . import dataset_figures
from .explorer import ASSETS
from .files import OutputDir
from .status import status_md

ALL = "all classes"
TABLE_ROWS = 500  # rows the table shows: the first ones in the chosen order
THUMB = 160  # pixels: the hover preview's longer side
SORTS = {"most tokens first": ("num_tokens", True), "fewest tokens first": ("num_tokens", False),
         "highest L1 (last iteration run) first": ("final_l1", True), "file order": (None, False)}
# The hover preview: the scatter's points carry their row (customdata[0]) and the figure the results'
# key (layout.meta.results); hovering asks the server for that row's thumbnail (DatasetTab.thumbnail), a
# click sends {key, row} to DatasetTab.open_clicked. The plot is redrawn on every change, so the
# listeners are attached again whenever plotly replaces its data.
PREVIEW_HTML = ("<div class='ds-preview'><img alt='' style='max-width:100%;display:none'>"
                "<div class='ds-caption'>Hover over a point to see its image; click it to open it in Explore."
                "</div></div>")
PREVIEW_JS = """
const img = element.querySelector('img'), caption = element.querySelector('.ds-caption');
let asked = 0;
function attach() {
  const plot = document.querySelector('#ds-scatter .js-plotly-plot');
  if (!plot || !plot.on || plot.__alitData === plot.data) return;
  plot.__alitData = plot.data;
  // plotly keeps the div across redraws: one listener each, or a click would open the image twice
  plot.removeAllListeners('plotly_hover');
  plot.removeAllListeners('plotly_click');
  const key = () => ((plot.layout || {}).meta || {}).results;
  plot.on('plotly_hover', async (ev) => {
    const row = ev.points[0].customdata[0], mine = ++asked;
    const got = await server.thumbnail(key(), row);
    if (mine !== asked) return;  // the pointer moved on
    caption.textContent = got.caption;
    if (got.src) { img.src = got.src; img.style.display = ''; } else { img.style.display = 'none'; }
  });
  plot.on('plotly_click', (ev) => {
    props.value = JSON.stringify({key: key(), row: ev.points[0].customdata[0]});
    trigger('click');
  });
}
setInterval(attach, 400);
"""


@dataclass
class Opened:
    """A results file open in the tab, and the folder its images are read from (None: no previews)."""

    results: DatasetResults
    folder: Path | None
    label: str  # how the page names the file


class OpenedResults:
    """Results files open on this server, by an unguessable key (a page holds its key; the hover preview
    asks by key, so it reaches only the folders of files opened here). The `capacity` most recently used
    stay: a file a visitor is working with (hovering, sorting) stays open while others open theirs."""

    def __init__(self, capacity: int = 8):
        self.capacity = max(1, capacity)
        self._items: OrderedDict[str, Opened] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, opened: Opened) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._items[key] = opened
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return key

    def get(self, key) -> Opened | None:
        with self._lock:
            item = self._items.get(str(key)) if key else None
            if item is not None:
                self._items.move_to_end(str(key))
            return item


class DatasetTab:
    """The tab's components (on `ui`, named ds_*) and its handlers."""

    def __init__(self, ui, cache, outputs: OutputDir, local_paths: bool):
        self.ui, self.cache, self.outputs, self.local_paths = ui, cache, outputs, local_paths
        self.opened = OpenedResults()
        self._examples: Path | None = None  # the bundled examples' results, made once
        self._examples_lock = threading.Lock()

    # --- layout ------------------------------------------------------------------------------------
    def layout(self):
        ui = self.ui
        gr.Markdown("Open a results file of `python -m alit_core encode-dataset FOLDER --out results.parquet` "
                    "(one row per image: its token count, errors per iteration and complexity measures), or "
                    "encode the bundled examples here.")
        with gr.Row():
            with gr.Column(scale=2):
                ui.ds_file = gr.File(label="Results file (.parquet)", file_types=[".parquet"], type="filepath",
                                     elem_id="ds-file")
            with gr.Column(scale=2):
                ui.ds_path = gr.Textbox(label="or its path on this machine", visible=self.local_paths,
                                        placeholder="results.parquet", elem_id="ds-path")
                ui.ds_folder = gr.Textbox(label="Image folder (default: the one beside the results file)",
                                          visible=self.local_paths, elem_id="ds-folder")
            with gr.Column(scale=1):
                ui.ds_examples = gr.Button("Encode the bundled examples")
                ui.ds_open = gr.Button("Open", variant="primary", visible=self.local_paths)
        ui.ds_status = gr.Markdown(elem_id="dataset-status")
        ui.ds_summary = gr.Markdown("No results file open yet.", elem_id="ds-summary")
        with gr.Row():
            ui.ds_class = gr.Dropdown([ALL], value=ALL, label="Class", elem_id="ds-class")
            ui.ds_measure = gr.Dropdown(list(alit_core.COMPLEXITY_MEASURES), value="png_bpp",
                                        label="Complexity measure", elem_id="ds-measure")
        ui.ds_hist = gr.Plot(label="Token counts", elem_id="ds-hist")
        with gr.Row():
            with gr.Column(scale=3):
                ui.ds_scatter = gr.Plot(label="Tokens against complexity (hover: the image; click: open it in "
                                              "Explore)", elem_id="ds-scatter")
            with gr.Column(scale=1, min_width=200):
                def thumbnail(args):  # (gradio marks the function itself: a bound method cannot be marked)
                    return self.thumbnail(args)

                ui.ds_preview = gr.HTML("", html_template=PREVIEW_HTML, js_on_load=PREVIEW_JS,
                                        server_functions=[thumbnail], elem_id="ds-preview")
        ui.ds_corr = gr.Plot(label="Rank correlation of tokens with each measure (95% bootstrap CI)",
                             elem_id="ds-corr")
        ui.ds_sort = gr.Dropdown(list(SORTS), value=next(iter(SORTS)), label="Table order (over every row)",
                                 elem_id="ds-sort")
        ui.ds_table = gr.Dataframe(label=f"Images (the first {TABLE_ROWS} in this order; click a row to open it "
                                         "in Explore)", interactive=False, elem_id="ds-table", wrap=True)
        ui.ds_key = gr.State(None)
        ui.ds_opened = gr.State(None)  # the image a click just opened in Explore (None: nothing to run)

    def view_outputs(self) -> list:
        ui = self.ui
        return [ui.ds_status, ui.ds_summary, ui.ds_key, ui.ds_class, ui.ds_measure, ui.ds_hist, ui.ds_scatter,
                ui.ds_corr, ui.ds_table]

    def wire(self, run, run_inputs: list, run_outputs: list, after_run, after_inputs, after_outputs):
        """Events; a click opens the image in Explore and then runs it there (run, then after_run)."""
        ui = self.ui
        view = [ui.ds_key, ui.ds_class, ui.ds_measure, ui.ds_sort]
        ui.ds_file.upload(self.open_upload, [ui.ds_file, ui.ds_folder, ui.ds_sort], [ui.ds_file, *self.view_outputs()],
                          api_visibility="private")
        gr.on([ui.ds_open.click, ui.ds_path.submit], self.open_path, [ui.ds_path, ui.ds_folder, ui.ds_sort],
              self.view_outputs(), api_visibility="private")
        ui.ds_examples.click(self.open_examples, ui.ds_sort, self.view_outputs(), concurrency_id="rollout",
                             api_name="dataset_examples", api_visibility="undocumented")
        ui.ds_folder.submit(self.set_folder, [ui.ds_key, ui.ds_folder, ui.ds_class, ui.ds_measure],
                            [ui.ds_status, ui.ds_key, ui.ds_scatter], api_visibility="private")
        gr.on([ui.ds_class.input, ui.ds_measure.input], self.replot, view,
              [ui.ds_status, ui.ds_hist, ui.ds_scatter, ui.ds_corr], api_visibility="private")
        ui.ds_sort.input(self.table, [ui.ds_key, ui.ds_sort], [ui.ds_status, ui.ds_table], api_visibility="private")
        opened = [ui.ds_opened, ui.image, ui.tabs, ui.tab_state, ui.ds_status]
        for event, fn, inputs in ((ui.ds_table.select, self.open_row, [ui.ds_key, ui.tab_state]),
                                  (ui.ds_preview.click, self.open_clicked, [ui.ds_preview, ui.tab_state])):
            event(fn, inputs, opened, api_visibility="private").then(
                self.run_opened(run), [ui.ds_opened, *run_inputs], run_outputs, concurrency_id="rollout",
                api_visibility="private").then(after_run, after_inputs, after_outputs, api_visibility="private")

    # --- opening a results file --------------------------------------------------------------------
    def open_upload(self, path, folder, sort):
        """An uploaded results file, shown; the box empties again for the next one (the summary names it)."""
        if not path:
            return {self.ui.ds_status: status_md()}
        return {**self.show(path, Path(path).name, folder if self.local_paths else None, sort), self.ui.ds_file: None}

    def open_path(self, path, folder, sort):
        if not self.local_paths:  # (the box is hidden then; an API call still must not open server files)
            return {self.ui.ds_status: status_md(error="This server opens uploaded results files only.")}
        typed = str(path or "").strip()
        if not typed:
            return {self.ui.ds_status: status_md(error="Type the path of a results file (.parquet) first.")}
        file = Path(typed).expanduser()
        if not file.is_file():
            return {self.ui.ds_status: status_md(error=f"No results file at {path!r} on this machine.")}
        return self.show(file, file.name, folder, sort)

    def open_examples(self, sort, progress=gr.Progress()):
        """The bundled examples encoded by the server's default model (once), then shown."""
        with self._examples_lock:
            if self._examples is None or not self._examples.exists():
                progress(None, desc="Encoding the bundled examples")  # (a few seconds; no steps to count)
                out = Path(tempfile.mkdtemp(prefix="alit_examples_")) / "examples.parquet"
                try:
                    tok = self.cache.get(None)
                    alit_core.encode_dataset(alit_core.DatasetEncodeConfig(
                        root=ASSETS / "samples", out=out, checkpoint=self.cache.default_source,
                        device=tok.device.type, workers=0, progress=False), tokenizer=tok)
                except (ALITError, OSError) as err:
                    shutil.rmtree(out.parent, ignore_errors=True)
                    return {self.ui.ds_status: status_md(error=f"The bundled examples could not be encoded: {err}")}
                self._examples = out
        return self.show(self._examples, "the bundled examples", ASSETS / "samples", sort, trusted=True)

    def show(self, path, label: str, folder, sort, trusted: bool = False) -> dict:
        """Read a results file and draw everything for it; a bad file is a status line, the rest stays."""
        ui = self.ui
        try:
            results = read_results(path)
        except ALITError as err:
            return {ui.ds_status: status_md(error=str(err))}
        notes = []
        if not len(results):
            return {ui.ds_status: status_md(error=f"{label} has no rows.")}
        root = None
        if trusted or self.local_paths:
            typed = str(folder).strip() if folder else ""
            root = Path(typed).expanduser() if typed else (Path(folder) if trusted else results.root)
            if root is None or not root.is_dir():
                notes.append("The images' folder is not beside the results file" + (f" ({typed} is not a folder)"
                             if typed else "") + ": type it under Image folder to see them.")
                root = None
        else:
            notes.append("This server does not open local folders: the plots and table work, the images do not.")
        key = self.opened.add(Opened(results, root, label))
        classes = results.class_names()
        measures = results.measures
        measure = "png_bpp" if "png_bpp" in measures else (measures[0] if measures else None)
        if not measures:
            notes.append("This file has no complexity measures (encode-dataset --no-complexity): no scatter.")
        update = {ui.ds_status: status_md(notes=notes), ui.ds_summary: summary(results, label), ui.ds_key: key,
                  ui.ds_class: gr.update(choices=[ALL, *classes], value=ALL, interactive=len(classes) > 1),
                  ui.ds_measure: gr.update(choices=measures, value=measure, interactive=bool(measures))}
        update.update(self.plots(key, results, None, measure))
        update[ui.ds_table] = table_rows(results, sort)
        return update

    def plots(self, key: str, results: DatasetResults, cls: str | None, measure: str | None) -> dict:
        ui = self.ui
        update = {ui.ds_hist: dataset_figures.token_histogram(results, cls)}
        if measure is None:
            return {**update, ui.ds_scatter: None, ui.ds_corr: None}
        corr = [{"measure": m, **results.correlation(m, cls)} for m in results.measures]
        scatter = self.scatter(key, results, cls, measure, next(c for c in corr if c["measure"] == measure))
        return {**update, ui.ds_scatter: scatter, ui.ds_corr: dataset_figures.correlation_bars(corr)}

    @staticmethod
    def scatter(key: str, results: DatasetResults, cls: str | None, measure: str, correlation: dict):
        """Tokens against `measure`; the figure carries the open file's key for the hover preview (PREVIEW_JS)."""
        fig = dataset_figures.complexity_scatter(results, measure, cls, correlation)
        fig.update_layout(meta={"results": key})
        return fig

    def set_folder(self, key, folder, cls, measure):
        """The open file's images read from another folder (typed under Image folder)."""
        ui = self.ui
        item = self.opened.get(key)
        if item is None:
            return {ui.ds_status: status_md(error=GONE)}
        root = Path(str(folder or "").strip()).expanduser()
        if not self.local_paths or not str(folder or "").strip() or not root.is_dir():
            return {ui.ds_status: status_md(error=f"{folder!r} is not a folder on this machine.")}
        key = self.opened.add(Opened(item.results, root, item.label))
        update = {ui.ds_status: status_md(notes=[f"The images are read from {root}."]), ui.ds_key: key}
        if measure is None:
            return {**update, ui.ds_scatter: None}
        # only the scatter changes (it carries the new key): one correlation, not every plot again
        cls = None if cls in (None, ALL) else cls
        return {**update, ui.ds_scatter: self.scatter(key, item.results, cls, measure,
                                                      item.results.correlation(measure, cls))}

    def replot(self, key, cls, measure, sort):
        ui = self.ui
        item = self.opened.get(key)
        if item is None:
            return {ui.ds_status: status_md(error=GONE)}
        cls = None if cls in (None, ALL) else cls
        if measure not in item.results.measures:
            measure = item.results.measures[0] if item.results.measures else None
        return {ui.ds_status: status_md(), **self.plots(key, item.results, cls, measure)}

    def table(self, key, sort):
        item = self.opened.get(key)
        if item is None:
            return {self.ui.ds_status: status_md(error=GONE)}
        return {self.ui.ds_status: status_md(), self.ui.ds_table: table_rows(item.results, sort)}

    # --- the images --------------------------------------------------------------------------------
    def thumbnail(self, args) -> dict:
        """[key, row] -> row's image as a small JPEG (a data: address) and its caption; {"caption"} alone when
        it cannot be shown. Called from the page (the hover preview: gradio hands over the JavaScript call's
        arguments as one list), so nothing here trusts them."""
        key, row = (list(args) + [None, None])[:2] if isinstance(args, (list, tuple)) else (None, None)
        item = self.opened.get(key)
        if item is None:
            return {"caption": GONE}
        try:
            r = int(row)
            res = item.results
            text = f"{res.path[r]} · {res.classes[r]} · {res.num_tokens[r]} tokens"
            if item.folder is None:
                return {"caption": text + " (the image is not on this server)"}
            with Image.open(res.image_file(r, item.folder)) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMB, THUMB))
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=85)
        except (ValueError, TypeError, IndexError, OSError, ALITError) as err:
            return {"caption": f"This image cannot be shown: {err}"}
        return {"src": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), "caption": text}

    def open_row(self, key, tab_state, evt: gr.SelectData):
        """A table row clicked: its image in Explore (the row number is the table's first column, so the
        browser's own sorting of the shown rows does not matter)."""
        try:
            row = int((evt.row_value or [None])[0])
        except (TypeError, ValueError):
            return {self.ui.ds_opened: None, self.ui.ds_status: status_md(error="That row has no image.")}
        return self.open_in_explore(key, row, tab_state)

    def open_clicked(self, value, tab_state):
        """A scatter point clicked: the page sends {key, row} (PREVIEW_JS)."""
        try:
            got = json.loads(value)
            return self.open_in_explore(got["key"], int(got["row"]), tab_state)
        except (TypeError, ValueError, KeyError):
            return {self.ui.ds_opened: None, self.ui.ds_status: status_md(error="That point has no image.")}

    def open_in_explore(self, key, row: int, tab_state) -> dict:
        ui = self.ui
        item = self.opened.get(key)
        if item is None:
            return {ui.ds_opened: None, ui.ds_status: status_md(error=GONE)}
        if item.folder is None:
            return {ui.ds_opened: None, ui.ds_status: status_md(
                error="The images of this results file are not on this server: type their folder under Image folder."
                if self.local_paths else "This server does not open local folders, so it cannot open this image.")}
        try:
            src = item.results.image_file(row, item.folder)
        except (ALITError, IndexError) as err:
            return {ui.ds_opened: None, ui.ds_status: status_md(error=str(err))}
        # a copy of our own: gradio serves it, and a shared link of Explore can name it
        dest = self.outputs.folder() / src.name
        try:
            shutil.copyfile(src, dest)
        except OSError as err:  # (unreadable, or removed since the row was listed)
            return {ui.ds_opened: None, ui.ds_status: status_md(error=f"{src.name} cannot be read: {err.strerror}")}
        res = item.results
        note = (f"Opened row {row} of {item.label} in Explore: {res.path[row]} ({res.num_tokens[row]} tokens in the "
                "results file).")
        return {ui.ds_opened: str(dest), ui.image: str(dest), ui.tabs: gr.Tabs(selected="explore"),
                ui.tab_state: {**(tab_state or {}), "tabs": "explore"}, ui.ds_status: status_md(notes=[note])}

    def run_opened(self, run):
        """Explore's run on the image just opened; nothing when the click opened nothing."""

        def run_if_opened(opened, *inputs, progress=gr.Progress()):
            if not opened:
                yield {self.ui.status: gr.skip()}
                return
            yield from run(opened, *inputs[1:], progress=progress)

        return run_if_opened


GONE = "This results file is no longer open on the server (it keeps the few used most recently): open it again."


def summary(results: DatasetResults, label: str) -> str:
    """What the file holds and how it was made, in a few lines."""
    s = results.settings
    tokens = results.num_tokens
    # the settings a file records are only shown: a file rewritten by other tools may hold anything there
    crit = s.get("criterion") if isinstance(s.get("criterion"), dict) else {}
    model = s.get("checkpoint") if isinstance(s.get("checkpoint"), dict) else {}
    how = []
    if model:
        how.append(f"model **{model.get('name', '?')}**")
    if crit:
        value = crit.get("value")
        how.append(f"criterion {crit.get('kind')} {value:g}" if isinstance(value, (int, float))
                   else f"criterion {crit.get('kind')}")
    if s.get("resolution"):
        how.append(f"{s['resolution']} px")
    met = results.columns.get("met")
    fallback = f"; {100 * (1 - np.mean(met.astype(bool))):.1f}% met no iteration (fallback)" if met is not None else ""
    classes = len(results.class_names())
    return (f"**{label}**: {len(results):,} images in {classes} class{'es' if classes != 1 else ''}"
            + (f" ({', '.join(how)})" if how else "") + f". Tokens: median {np.median(tokens):g}, "
            f"mean {tokens.mean():.1f}, {tokens.min()} to {tokens.max()}{fallback}.")


def table_rows(results: DatasetResults, sort: str) -> dict:
    """The table's first TABLE_ROWS rows in the chosen order (over every row of the file), as a
    Dataframe value; the first column is the row number (a click opens that row)."""
    column, descending = SORTS.get(sort, (None, False))
    if column is None:
        order = np.arange(len(results))
    else:
        values = results.num_tokens if column == "num_tokens" else results.final_l1
        if values is None:
            order = np.arange(len(results))
        else:
            order = np.argsort(-values if descending else values, kind="stable")
    order = order[:TABLE_ROWS]
    headers = ["row", "path", "class", "tokens"]
    cols = [order, results.path[order], results.classes[order], results.num_tokens[order]]
    # (with early exit the last iteration run is where the image stopped, not the model's last iteration)
    for name, values in (("L1 (last iteration run)", results.final_l1),
                         ("PSNR (last iteration run)", results.final_psnr)):
        if values is not None:
            headers.append(name)
            cols.append(np.round(values[order], 4))
    for m in results.measures:
        headers.append(m)
        cols.append(np.round(results.columns[m][order], 4))
    data = [[c[i].item() if isinstance(c[i], np.generic) else c[i] for c in cols] for i in range(len(order))]
    return {"headers": headers, "data": data}
