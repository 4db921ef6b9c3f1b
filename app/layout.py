"""The explorer's page: tabs, components and the wiring of events to handlers."""

from __future__ import annotations

import gradio as gr

import alit_core

from . import texts
from .batch_tab import BATCH_COLUMNS
from .choices import (
    CRITERIA,
    DEFAULT_PSNR,
    EXPLORE_SETTINGS,
    KARL_QUALITY,
    L1,
    PSNR,
    TABS,
    VALUE_LABELS,
    attention_layer,
    budget_slider,
    halting_choices,
    iteration_label,
)
from .compare_tab import (
    COMPARE_A,
    COMPARE_B,
    COMPARE_INPUTS,
    COMPARE_MODES,
    COMPARE_SETTINGS_A,
    DIFFERENCE_LABEL,
    TWO_IMAGES,
)
from .components import ImageUpload
from .dataset_tab import DatasetTab
from .explorer import ASSETS, BUNDLED, ModelCache
from .files import OutputDir
from .handlers import HALT_LABELS, MEASURE_LABELS, STEP_WORDS, Handlers
from .status import status_md

# The status lines keep an error readable (red) until the next action; notes are quieter.
CSS = """
.alit-status-error { color: var(--error-text-color, #b91c1c); font-weight: 600; }
.alit-status-warning { color: var(--color-accent, #c2410c); }
.alit-status-note { color: var(--body-text-color-subdued); }
/* gradio 6.31 draws the slider's two pictures up to 500 px tall in a box of the component's height, the upper
   one placed apart from the lower: both fit the box, so the halves show the same whole image, aligned */
#explore-slider img.preview { max-height: 100% !important; height: 100% !important; object-fit: contain !important;
  top: 0 !important; }
/* a component's label ends short of its buttons (download, full screen; plotly's column at the right edge): in a
   narrow window a long label is cut with an ellipsis instead of running under them */
[data-testid='block-label'] {
  max-width: calc(100% - 76px); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
/* captions wrap instead of being cut at a thumbnail's width (tokens, L1 and PSNR all readable) */
.caption-label { white-space: normal !important; text-overflow: clip !important; overflow: visible !important; }
/* every iteration's reconstruction whole, its caption below it rather than over its lower part (gradio lays the
   caption over a square thumbnail), and four columns that shrink with a narrow window instead of spilling out */
#explore-gallery .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)) !important; }
#explore-gallery .thumbnail-item { aspect-ratio: auto !important; overflow: visible !important; height: auto !important;
  display: flex !important; flex-direction: column !important; }
#explore-gallery .thumbnail-item img { aspect-ratio: 1 / 1; height: auto !important; width: 100% !important; }
#explore-gallery .thumbnail-item .caption-label { position: static !important; transform: none !important;
  max-width: none !important; margin: 0 !important; }
"""

# Outputs of /explore in the order gradio_client returns them: the status line first and the
# metrics second (benchmarks/app_latency.py and the tests read them by position).
EXPLORE_OUTPUTS = ("status", "metrics", "record", "gallery", "play", "play_pace", "current", "halt_map", "error_map",
                   "compare", "curve", "scatter", "comp", "selected", "iteration", "head", "clicked", "how",
                   "budget_plot", "kind", "l1", "psnr", "budget", "max_iter", "halting", "seed", "quality")
# What choosing a model sets: its family's settings and its own defaults (Handlers.model_defaults).
MODEL_OUTPUTS = ("kind", "l1", "psnr", "budget", "max_iter", "halting", "seed", "quality", "budget_plot")
ATTENTION_OUTPUTS = ("token", "overlay", "segments", "attn_md", "finding", "who", "status")
BATCH_OUTPUTS = ("batch_status", "batch_table", "batch_plot", "batch_csv")
# What the shared iteration and token sliders redraw, and what Compare sets besides (status line first).
COMPARE_VIEW_OUTPUTS = ("cmp_status", "cmp_recon_a", "cmp_recon_b", "cmp_diff", "cmp_view_md", "cmp_token",
                        "cmp_attn_a", "cmp_attn_b", "cmp_attn_md")
COMPARE_OUTPUTS = (*COMPARE_VIEW_OUTPUTS, "cmp_record", "cmp_summary", "cmp_curve", "cmp_iteration")
TAB_DEFAULTS = {name: ids[0] for name, ids in TABS.items()}
# The link to the page: gradio's deep link of this session (the page's values, the view box among them),
# shown and copied to the clipboard.
SHARE_JS = """async () => {
  const r = await fetch(`gradio_api/deep_link?session_hash=${window.__gradio_session_hash__}`);
  const id = (await r.text()).replace(/^"|"$/g, '');
  if (!id) return 'The link could not be made; try again.';
  const url = new URL(window.location.href);
  url.searchParams.set('deep_link', id);
  try { await navigator.clipboard.writeText(url.toString()); } catch (e) {}
  return url.toString();
}"""
# The Compare tab opens on two bundled examples of different complexity (the bundled model: 32 and 192
# tokens), and on the cat for one image under two settings.
COMPARE_DEFAULTS = ("02_shapes.png", "03_coffee.png")


class Ui:
    """The page's components by name; handlers key their updates by them."""

    def __getitem__(self, names) -> list:
        return [getattr(self, n) for n in names]


def examples() -> list[str]:
    return [str(p) for p in sorted((ASSETS / "samples").glob("*.png"))]


def picture(label: str, elem_id: str | None = None, height: int = 256) -> gr.Image:
    """A picture the page shows (a file written once by app/files.py): download and full screen, no share
    button (it posts to a Hugging Face discussion, and its icon covered the label's end in a narrow window)."""
    return gr.Image(label=label, elem_id=elem_id, interactive=False, height=height, type="filepath",
                    buttons=["download", "fullscreen"])


def sample(name: str) -> str | None:
    path = ASSETS / "samples" / name
    return str(path) if path.exists() else None


def compare_settings(ui: Ui, side: str, model_list: list[str], local_paths: bool, kind: str, value, tok):
    """One Compare side's model, halting, criterion and its value (ui.cmp_model_a, ...); `tok` is the model
    it opens on (the server's default), whose halting modes it lists."""
    s = side.lower()
    setattr(ui, f"cmp_model_{s}", gr.Dropdown(model_list, value=BUNDLED, allow_custom_value=local_paths,
                                              label=f"Model {side}", elem_id=f"cmp-model-{s}"))
    with gr.Row():
        setattr(ui, f"cmp_halting_{s}", gr.Dropdown(**halting_choices(tok, "deterministic"),
                                                    label=f"Halting {side}", elem_id=f"cmp-halting-{s}"))
        setattr(ui, f"cmp_kind_{s}", gr.Dropdown(CRITERIA, value=kind, label=f"Criterion {side}",
                                                 elem_id=f"cmp-kind-{s}"))
        setattr(ui, f"cmp_value_{s}", gr.Number(value=value, label=f"{side}: {VALUE_LABELS[kind]}",
                                                elem_id=f"cmp-value-{s}"))


def model_choices(default_source: str | None = None) -> list[str]:
    """The server's default model first (BUNDLED), the other bundled models by name, and every released
    checkpoint of both families (ALIT's, then KARL's). default_source: the server's default (None: the
    bundled default model), not listed a second time."""
    released = {**alit_core.OFFICIAL_CHECKPOINTS, **alit_core.KARL_CHECKPOINTS}
    default = default_source or "bundled:default"
    bundled = [f"bundled:{n}" for n, path in alit_core.BUNDLED_MODELS.items() if path.exists()]
    return [BUNDLED, *(b for b in bundled if b != default),
            *(f"official:{n}" for n, ck in released.items() if ck.supported and f"official:{n}" != default)]


# How long a visitor's run and the files served for it are kept (app.py --keep-minutes).
KEEP_S = 30 * 60


def make_page(cache: ModelCache, device_choices: list[str], default_device: str,
              outputs: OutputDir | None = None, keep_s: float = KEEP_S) -> tuple[gr.Blocks, Ui, Handlers]:
    """The page, its components and its handlers (tests call the handlers directly).

    What a visitor leaves behind is bounded: the run and the comparison kept for their session (rollouts
    and attention maps, a few MB each) are dropped `keep_s` seconds after they were made, and the files gradio
    copied into its cache to serve them (pictures, exports, uploads) are deleted once older than
    `keep_s`, checked every `keep_s / 4` (gradio's delete_cache). The number of sessions kept at
    all is app.py's --max-sessions (gradio's state_session_capacity)."""
    ui = Ui()
    h = Handlers(cache, ui, outputs)
    tok = cache.get(None, default_device)
    keep_s = max(1, int(keep_s))
    with gr.Blocks(title="ALIT Explorer", delete_cache=(max(1, keep_s // 4), keep_s)) as demo:
        header(ui, keep_s)
        with gr.Tabs(elem_id="tabs") as ui.tabs:
            with gr.Tab("Explore", id="explore") as ui.tab_explore:
                explore_tab(ui, cache, tok, device_choices, default_device)
            with gr.Tab("Compare", id="compare", elem_id="compare-tab") as ui.tab_compare:
                compare_tab(ui, cache, tok, keep_s)
            with gr.Tab("Batch", id="batch") as ui.tab_batch:
                batch_tab(ui)
            with gr.Tab("Dataset", id="dataset", elem_id="dataset-tab") as ui.tab_dataset:
                dataset = DatasetTab(ui, cache, h.outputs, cache.local_paths)
                dataset.layout()
            with gr.Tab("How it works", id="how") as ui.tab_how:
                label = h.model_label(BUNDLED, tok)
                ui.how = gr.Markdown(texts.how_it_works(label, tok.config, tok.metadata))
        # The UI's own endpoints are callable by name (tests, benchmarks/app_latency.py, benchmarks/app_soak.py) but left out of the
        # API page, whose one documented endpoint is /tokenize. Every event that computes rollouts
        # (/explore, /compare, /batch, /tokenize) shares one queue slot group: at most --concurrency at once.
        wire_explore(ui, h)
        mode_outputs = wire_compare(ui, h)
        wire_share(demo, ui, h, mode_outputs)
        ui.batch_files.upload(status_md, None, ui.batch_status, queue=False, api_visibility="private")
        ui.batch_run.click(h.batch, [ui.batch_files, ui.model, *criterion_inputs(ui), ui.measure, ui.quality],
                           ui[BATCH_OUTPUTS], api_name="batch", api_visibility="undocumented",
                           concurrency_id="rollout")
        dataset.wire(h.run, [ui.image, *ui[EXPLORE_SETTINGS]], ui[EXPLORE_OUTPUTS], h.attention_after_run,
                     attention_inputs(ui), ui[ATTENTION_OUTPUTS])
        tokenize_endpoint(h, tok)
    return demo, ui, h


def header(ui: Ui, keep_s: int):
    """The title, the Share row and the page's hidden state."""
    gr.Markdown("# ALIT Explorer\nUpload an image and watch an adaptive-length tokenizer decide how many "
                "tokens it needs, iteration by iteration (numbered from 0, as in the exports and the command "
                "line).")
    with gr.Row(equal_height=True):
        ui.share = gr.Button("Share this view", size="sm", scale=0, min_width=170)
        ui.share_link = gr.Textbox(show_label=False, container=False, interactive=False, elem_id="share-link",
                                   placeholder="a link that reopens this page as it is now (model, settings, "
                                               "image, tab, iteration and token) while the server keeps the "
                                               "image; copied when made")
    ui.view = gr.Textbox(visible=False)  # what a link reopens (Handlers.share_view)
    ui.tab_state = gr.State(dict(TAB_DEFAULTS))  # the tabs shown, by Tabs
    ui.record = gr.State(None, time_to_live=keep_s)
    ui.selected = gr.State(None)
    ui.clicked = gr.State(None)  # the grid position last clicked on the attention picture


def explore_tab(ui: Ui, cache: ModelCache, tok, device_choices: list[str], default_device: str):
    """Explore: the image and the settings beside the run's views; the complexity plots; Attention and Export."""
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            explore_settings(ui, cache, tok, device_choices, default_device)
        with gr.Column(scale=2):
            explore_results(ui)
    explore_below(ui, tok)


def explore_settings(ui: Ui, cache: ModelCache, tok, device_choices: list[str], default_device: str):
    cfg, od = tok.config, texts.object_discovery(tok.metadata)
    # gradio's upload UI, but the file reaches alit_core's loader untouched (clear errors)
    ui.image = ImageUpload(type="filepath", label="Image (upload, drop or paste)",
                           sources=["upload", "clipboard"], height=300, elem_id="explore-image")
    ui.examples = gr.Examples(examples(), inputs=ui.image, examples_per_page=12,
                              label="Examples: simple → complex → unfamiliar")
    ui.run = gr.Button("Tokenize", variant="primary")
    with gr.Accordion("Settings", open=True):
        ui.model = gr.Dropdown(model_choices(cache.default_source), value=BUNDLED, allow_custom_value=cache.local_paths,
                               label="Model (or a local checkpoint path)" if cache.local_paths
                               else "Model")
        with gr.Row():
            ui.device = gr.Dropdown(device_choices, value=default_device, label="Device",
                                    interactive=len(device_choices) > 1)
            # measured once per page build: bfloat16 is ~7x faster with AMX and ~60x slower on AVX2-only CPUs
            ui.dtype = gr.Dropdown(["float32", "bfloat16", "float16"], value="float32", label="Precision",
                                   info=texts.faster_precision(default_device,
                                                               alit_core.faster_precision(default_device)))
        ui.kind = gr.Radio(CRITERIA, value=L1, label="Selection criterion")
        # one value per criterion, each with its own default and range
        ui.l1 = gr.Number(value=tok.default_threshold, step=0.001, label=texts.l1_label(tok.default_threshold),
                          elem_id="explore-l1")
        ui.psnr = gr.Number(value=DEFAULT_PSNR, step=0.5, visible=False,
                            label="PSNR target (dB, 1 to 100)")
        ui.budget = gr.Slider(**budget_slider(cfg), visible=False)
        ui.max_iter = gr.Slider(1, cfg.iterations, value=cfg.iterations, step=1,
                                label="Maximum iterations")
        with gr.Row():
            ui.halting = gr.Dropdown(**halting_choices(tok, "deterministic"), label="Halting")
            ui.seed = gr.Number(value=0, precision=0, label="Seed (stochastic)")
        # KARL's own setting (shown for a KARL model, with ALIT's criteria, iterations and
        # halting hidden): the desired L1 its single pass is conditioned on
        ui.quality = gr.Slider(0.005, 0.38, value=KARL_QUALITY, step=0.005, visible=False,
                               label="KARL: desired L1 (rounded up to its quality bins, "
                                     "0.005 to 0.38)", elem_id="karl-quality")
        ui.layer = gr.Number(value=attention_layer(od), precision=0,
                             label="Attention: decoder layer (-1 = last)")


def explore_results(ui: Ui):
    ui.status = gr.Markdown(elem_id="explore-status")
    ui.metrics = gr.Markdown("Results appear here as each iteration is computed.",
                             elem_id="metrics")
    with gr.Row():
        ui.current = picture("Current reconstruction", elem_id="explore-current")
        ui.halt_map = picture(HALT_LABELS[False])
        ui.error_map = picture("Error per position")
    with gr.Row():
        ui.play = gr.Button(STEP_WORDS[False]["play"], scale=2)
        # a class may want time to talk over each picture, or a quick run-through
        ui.play_pace = gr.Slider(0.2, 3.0, value=0.8, step=0.1, label=STEP_WORDS[False]["play_pace"], scale=1,
                                 elem_id="play-pace")
    # (contain: a one-iteration run fills the grid with its one picture, which "cover" would crop)
    ui.gallery = gr.Gallery(label=STEP_WORDS[False]["gallery"], columns=4,
                            height="auto", object_fit="contain", elem_id="explore-gallery", type="filepath")
    ui.compare = gr.ImageSlider(label="Original vs selected reconstruction", height=320,
                                type="filepath", elem_id="explore-slider")
    ui.curve = gr.Plot(label="Error against tokens", elem_id="curve")
    ui.budget_plot = gr.Plot(label="KARL: estimated token count against budget", visible=False,
                             elem_id="budget-plot")


def explore_below(ui: Ui, tok):
    cfg, od = tok.config, texts.object_discovery(tok.metadata)
    most = cfg.tokens_at(cfg.iterations - 1)
    with gr.Row():
        ui.measure = gr.Dropdown(list(MEASURE_LABELS), value="png_bpp", label="Complexity measure")
    with gr.Row():
        ui.scatter = gr.Plot(label="Token count against complexity (reference set + this image)",
                             elem_id="scatter")
        ui.comp = gr.Plot(label="Compression: the selected tokens vs JPEG / WebP at the same size",
                          elem_id="comp")
    with gr.Tabs(elem_id="explore-tabs") as ui.explore_tabs:
        with gr.Tab("Attention", id="attention") as ui.tab_attention:
            with gr.Row():
                ui.iteration = gr.Slider(0, cfg.iterations - 1, value=cfg.iterations - 1, step=1,
                                         label=iteration_label(False, cfg.latents_per_iteration))
                ui.token = gr.Slider(0, most - 1, value=0, step=1, label=STEP_WORDS[False]["token"])
                ui.head = gr.Dropdown(["mean"], value="mean", label="Head (mean or index)")
                ui.opacity = gr.Slider(0.1, 0.9, value=0.5, step=0.05, label="Opacity")
            with gr.Row():
                ui.overlay = picture("This token's attention (click to see who attends there)", height=320)
                ui.segments = picture("Object discovery: regions by strongest token", height=320)
            ui.finding = gr.Markdown(texts.attention_finding(od), elem_id="finding")
            ui.attn_md = gr.Markdown()
            ui.who = gr.Markdown()
        with gr.Tab("Export", id="export") as ui.tab_export:
            ui.export = gr.Button("Export JSON, NPZ, PNGs and an animated GIF")
            ui.files = gr.File(label="Downloads", file_count="multiple")


def compare_tab(ui: Ui, cache: ModelCache, tok, keep_s: int):
    cfg = tok.config
    most = cfg.tokens_at(cfg.iterations - 1)
    gr.Markdown("Two runs side by side on one iteration slider: **two images under one model** (why does "
                "one need more tokens than the other?), or **one image under two models or settings** "
                "(another checkpoint, halting mode or selection criterion).")
    ui.cmp_mode = gr.Radio(COMPARE_MODES, value=TWO_IMAGES, label="Compare", elem_id="cmp-mode")
    with gr.Row():
        with gr.Column(elem_id="compare-a"):
            ui.cmp_a_md = gr.Markdown(COMPARE_A[False])
            ui.cmp_image_a = ImageUpload(type="filepath", label="Image A", elem_id="cmp-image-a",
                                         value=sample(COMPARE_DEFAULTS[0]), sources=["upload", "clipboard"],
                                         height=220)
            gr.Examples(examples(), inputs=ui.cmp_image_a, label="Examples for A", examples_per_page=12)
            ui.cmp_settings_a_md = gr.Markdown(COMPARE_SETTINGS_A[False])
            compare_settings(ui, "A", model_choices(cache.default_source), cache.local_paths, L1, tok.default_threshold,
                             tok)
        with gr.Column(elem_id="compare-b"):
            ui.cmp_b_md = gr.Markdown(COMPARE_B[False])
            with gr.Column() as ui.cmp_image_b_box:
                ui.cmp_image_b = ImageUpload(type="filepath", label="Image B", elem_id="cmp-image-b",
                                             value=sample(COMPARE_DEFAULTS[1]),
                                             sources=["upload", "clipboard"], height=220)
                gr.Examples(examples(), inputs=ui.cmp_image_b, label="Examples for B", examples_per_page=12)
            with gr.Column(visible=False) as ui.cmp_settings_b:
                compare_settings(ui, "B", model_choices(cache.default_source), cache.local_paths, PSNR, DEFAULT_PSNR,
                                 tok)
    ui.cmp_run = gr.Button("Compare", variant="primary")
    ui.cmp_status = gr.Markdown(elem_id="compare-status")
    ui.cmp_summary = gr.Markdown("Pick two images (or one image and two settings), then *Compare*.",
                                 elem_id="compare-summary")
    ui.cmp_iteration = gr.Slider(0, cfg.iterations - 1, value=cfg.iterations - 1, step=1,
                                 label="Iteration (both runs)", elem_id="cmp-iteration")
    with gr.Row():
        ui.cmp_recon_a = picture("A: reconstruction", "cmp-recon-a")
        ui.cmp_recon_b = picture("B: reconstruction", "cmp-recon-b")
        ui.cmp_diff = picture(DIFFERENCE_LABEL, "cmp-diff")
    ui.cmp_view_md = gr.Markdown(elem_id="compare-view")
    ui.cmp_curve = gr.Plot(label="Error against tokens: A and B", elem_id="compare-curve")
    ui.cmp_token = gr.Slider(0, most - 1, value=0, step=1, label="Token (one that both runs have)",
                             elem_id="cmp-token")
    with gr.Row():
        ui.cmp_attn_a = picture("A: this token's attention", "cmp-attn-a")
        ui.cmp_attn_b = picture("B: this token's attention", "cmp-attn-b")
    ui.cmp_attn_md = gr.Markdown(elem_id="compare-attention")
    ui.cmp_record = gr.State(None, time_to_live=keep_s)


def batch_tab(ui: Ui):
    gr.Markdown("Tokenizes every image with the model and the selection criterion set under Explore → "
                "Settings, stopping each at its selected iteration.")
    ui.batch_files = gr.File(label="Images or zips", file_count="multiple")
    ui.batch_run = gr.Button("Tokenize all", variant="primary")
    ui.batch_status = gr.Markdown(elem_id="batch-status")
    ui.batch_table = gr.Dataframe(headers=BATCH_COLUMNS, label="Results", interactive=False, elem_id="batch-table")
    ui.batch_plot = gr.Plot(label="Token count against complexity (reference set + your images)", elem_id="batch-plot")
    ui.batch_csv = gr.File(label="CSV")


def criterion_inputs(ui: Ui) -> list:
    return [ui.kind, ui.l1, ui.psnr, ui.budget]


def attention_inputs(ui: Ui) -> list:
    return [ui.record, ui.iteration, ui.token, ui.head, ui.opacity, ui.clicked]


def wire_explore(ui: Ui, h: Handlers):
    criterion, settings = criterion_inputs(ui), ui[EXPLORE_SETTINGS]
    attn_inputs, attn_outputs = attention_inputs(ui), ui[ATTENTION_OUTPUTS]
    reselect_outputs = [ui.l1, ui.psnr, ui.budget, ui.gallery, ui.compare, ui.curve, ui.scatter, ui.comp,
                        ui.metrics, ui.selected, ui.status]
    # The UI's own endpoints are callable by name (tests, benchmarks/app_latency.py, benchmarks/app_soak.py) but left out of the
    # API page, whose one documented endpoint is /tokenize. Every event that computes rollouts
    # (/explore, /compare, /batch, /tokenize) shares one queue slot group: at most --concurrency at once.
    ui.run.click(h.run, [ui.image, *settings, ui.record], ui[EXPLORE_OUTPUTS], api_name="explore",
                 api_visibility="undocumented", concurrency_id="rollout").then(
        h.attention_after_run, attn_inputs, attn_outputs, api_visibility="private")
    # A slider's `input` is the visitor's dragging, keys or typing; `release` adds its reset button.
    # Neither fires when a handler sets the value, so no event sets off another.
    gr.on([ui.kind.input, ui.l1.submit, ui.l1.blur, ui.psnr.submit, ui.psnr.blur, ui.budget.input,
           ui.budget.release], h.reselect, [ui.record, *criterion, ui.measure], reselect_outputs,
          api_name="reselect", api_visibility="undocumented", show_progress="minimal",
          trigger_mode="always_last")
    ui.measure.change(h.complexity_plot, [ui.record, ui.selected, ui.measure], [ui.scatter],
                      api_visibility="private")
    # the visitor's new image: the status line's notes and errors were about the previous one (a handler that
    # sets the image, a shared link's or the Dataset tab's, writes its own status)
    gr.on([ui.image.upload, ui.image.clear], status_md, None, ui.status, queue=False, api_visibility="private")
    # the visitor's choice only (.input): a shared link's restore sets the model and its own threshold together,
    # and the model's defaults must not overwrite that threshold (.change fires on handler updates too)
    ui.model.input(h.model_defaults, [ui.model, ui.device, ui.dtype, ui.kind, ui.halting], ui[MODEL_OUTPUTS],
                   api_visibility="private")
    panel = [ui.current, ui.halt_map, ui.error_map, ui.metrics]
    ui.play.click(h.play, [ui.record, ui.play_pace, ui.selected], [*panel, ui.status], api_visibility="private")
    ui.gallery.select(h.show_iteration, [ui.record, ui.selected], panel, api_visibility="private")
    # only what the visitor moves: the run itself sets the iteration and then draws the views
    gr.on([ui.iteration.input, ui.iteration.release, ui.token.input, ui.token.release, ui.head.input,
           ui.opacity.input, ui.opacity.release], h.attention,
          attn_inputs, attn_outputs, api_name="attention", api_visibility="undocumented",
          show_progress="minimal", trigger_mode="always_last")
    ui.overlay.select(h.who_attends, [ui.record, ui.iteration, ui.head], [ui.who, ui.clicked, ui.status],
                      api_visibility="private")
    ui.export.click(h.export, [ui.record, ui.selected, *criterion], [ui.files, ui.status], api_name="export",
                    api_visibility="undocumented")


def wire_compare(ui: Ui, h: Handlers) -> list:
    """Compare's events; the components its mode shows or hides (a restored page sets them too)."""
    # Compare: two whole runs in one rollout slot; the shared sliders redraw from the kept runs
    ui.cmp_run.click(h.compare, [*ui[COMPARE_INPUTS], ui.cmp_record], ui[COMPARE_OUTPUTS],
                     api_name="compare", api_visibility="undocumented", concurrency_id="rollout")
    gr.on([ui.cmp_iteration.input, ui.cmp_iteration.release, ui.cmp_token.input, ui.cmp_token.release],
          h.compare_view, [ui.cmp_record, ui.cmp_iteration, ui.cmp_token], ui[COMPARE_VIEW_OUTPUTS],
          api_name="compare_view", api_visibility="undocumented", show_progress="minimal",
          trigger_mode="always_last")
    mode_outputs = [ui.cmp_image_b_box, ui.cmp_settings_b, ui.cmp_a_md, ui.cmp_settings_a_md, ui.cmp_b_md]
    ui.cmp_mode.change(h.compare_mode, ui.cmp_mode, mode_outputs, api_visibility="private")
    for side in ("a", "b"):
        kind, model = getattr(ui, f"cmp_kind_{side}"), getattr(ui, f"cmp_model_{side}")
        # (.input: a restored comparison's model and value arrive together, see wire_explore)
        gr.on([kind.input, model.input], lambda k, m, side=side.upper(): h.compare_value(k, m, side),
              [kind, model], getattr(ui, f"cmp_value_{side}"), api_visibility="private")
        halting = getattr(ui, f"cmp_halting_{side}")
        model.input(h.compare_halting, [model, halting], halting, api_visibility="private")
    return mode_outputs


def wire_share(demo: gr.Blocks, ui: Ui, h: Handlers, mode_outputs: list):
    criterion, settings = criterion_inputs(ui), ui[EXPLORE_SETTINGS]
    # Share: the view box is set, then gradio's deep link of the session is made and shown; a page
    # opened from such a link restores the view and computes its run and comparison again.
    for tabs, ids in TABS.items():
        for tid in ids:
            getattr(ui, f"tab_{tid}").select(lambda state, tabs=tabs, tid=tid: {**(state or {}), tabs: tid},
                                             ui.tab_state, ui.tab_state, queue=False, show_progress="hidden",
                                             api_visibility="private")
    ui.share.click(h.share_view, [ui.record, ui.cmp_record, ui.tab_state, *criterion, ui.measure, ui.iteration,
                                  ui.token, ui.head, ui.opacity, ui.cmp_iteration, ui.cmp_token], ui.view,
                   queue=False, api_visibility="private").then(None, None, ui.share_link, js=SHARE_JS)
    demo.load(h.restore, ui.view, list(dict.fromkeys([
        ui.tabs, ui.explore_tabs, ui.tab_state, ui.image, *settings, *ui[EXPLORE_OUTPUTS], *ui[ATTENTION_OUTPUTS],
        ui.opacity, *ui[COMPARE_INPUTS], *ui[COMPARE_OUTPUTS], *mode_outputs])),
        concurrency_id="rollout", show_progress="minimal", api_visibility="private")


def tokenize_endpoint(h: Handlers, tok):
    """The named API endpoint (gradio_client): /tokenize."""
    api_image = gr.File(type="filepath", visible=False)  # our loader, not gradio's, reads the file
    api_threshold = gr.Number(value=tok.default_threshold, visible=False)
    api_halting = gr.Textbox(value="deterministic", visible=False)
    api_iters = gr.Number(value=tok.config.iterations, precision=0, visible=False)
    api_out = gr.JSON(visible=False)
    api_btn = gr.Button(visible=False)
    api_btn.click(h.tokenize, [api_image, api_threshold, api_halting, api_iters], api_out, api_name="tokenize",
                  concurrency_id="rollout")


def build(cache: ModelCache, device_choices: list[str], default_device: str, keep_s: float = KEEP_S) -> gr.Blocks:
    return make_page(cache, device_choices, default_device, keep_s=keep_s)[0]
