"""The explorer's page: tabs, components and the wiring of events to handlers."""

from __future__ import annotations

import gradio as gr

import alit_core

from .components import ImageUpload
from .explorer import ASSETS, BUNDLED, ModelCache
from .handlers import MEASURE_LABELS, Handlers

HOW_IT_WORKS = """
### How ALIT decides how many tokens an image needs

ALIT (*Adaptive Length Image Tokenization via Recurrent Allocation*, Duggal, Isola, Torralba and
Freeman, ICLR 2025, [arXiv 2411.02393](https://arxiv.org/abs/2411.02393)) turns an image into a
**variable** number of 1D tokens.

```
 image ──VQGAN encoder──► 16x16 image tokens ─┐
                                              ▼
   ┌──────────────► encoder transformer ◄── + 32 new latent tokens (each iteration)
   │                        │
   │             latent tokens so far (32, 64, ... 256)
   │                        ▼
   │                 decoder transformer ──► VQGAN code for every 2D position ──► pixels
   │                        │
   └── image tokens that are already well predicted are masked (dynamic halting)
```

1. Every **iteration** adds 32 latent tokens and lets the encoder refine the old ones, while it
   looks at the image tokens again.
2. After each iteration the decoder reconstructs the image from the tokens so far. The first
   iteration whose reconstruction error is below a **threshold** gives the image's token count:
   simple images stop early, complex or unfamiliar ones need more.
3. Image regions the decoder already predicts confidently are **masked** in the encoder, so later
   tokens concentrate on what is still missing.
4. The decoder's attention from each 2D position to the latent tokens shows **which token
   describes which region**: tokens tend to settle on objects.

This app runs a small ALIT trained by us on CPU (64 px, 16x16 grid); the released checkpoints
(256 px) can be loaded by name under *Model*.
"""


def examples() -> list[str]:
    return [str(p) for p in sorted((ASSETS / "samples").glob("*.png"))]


def model_choices() -> list[str]:
    names = [f"official:{n}" for n, ck in alit_core.OFFICIAL_CHECKPOINTS.items() if ck.supported]
    return [BUNDLED, *names]


def build(cache: ModelCache, device_choices: list[str], default_device: str) -> gr.Blocks:
    h = Handlers(cache)
    # the default model's own threshold (0.07 for official checkpoints; the bundled model's is calibrated)
    threshold = cache.get(None, default_device).default_threshold
    with gr.Blocks(title="ALIT Explorer") as demo:
        gr.Markdown("# ALIT Explorer\nUpload an image and watch an adaptive-length tokenizer decide how many "
                    "tokens it needs, iteration by iteration.")
        record = gr.State(None)
        selected = gr.State(None)
        with gr.Tab("Explore"):
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    # gradio's upload UI, but the file reaches alit_core's loader untouched (clear errors)
                    image = ImageUpload(type="filepath", label="Image (upload, drop or paste)",
                                        sources=["upload", "clipboard"], height=300)
                    gr.Examples(examples(), inputs=image, label="Examples: simple → complex → unfamiliar",
                                examples_per_page=12)
                    run = gr.Button("Tokenize", variant="primary")
                    with gr.Accordion("Settings", open=True):
                        model = gr.Dropdown(model_choices(), value=BUNDLED, allow_custom_value=True,
                                            label="Model (or a local checkpoint path)" if cache.local_paths else "Model")
                        with gr.Row():
                            device = gr.Dropdown(device_choices, value=default_device, label="Device",
                                                 interactive=len(device_choices) > 1)
                            dtype = gr.Dropdown(["float32", "bfloat16", "float16"], value="float32",
                                                label="Precision")
                        kind = gr.Radio(["L1 threshold", "PSNR target (dB)", "token budget"],
                                        value="L1 threshold", label="Selection criterion")
                        value = gr.Number(value=threshold, label="Threshold / target / budget")
                        max_iter = gr.Slider(1, 8, value=8, step=1, label="Maximum iterations")
                        with gr.Row():
                            halting = gr.Dropdown(["deterministic", "stochastic", "off"], value="deterministic",
                                                  label="Halting")
                            seed = gr.Number(value=0, precision=0, label="Seed (stochastic)")
                        layer = gr.Number(value=-1, precision=0, label="Attention layer (-1 = last)")
                with gr.Column(scale=2):
                    metrics = gr.Markdown("Results appear here as each iteration is computed.")
                    with gr.Row():
                        current = gr.Image(label="Current reconstruction", interactive=False, height=256)
                        halt_map = gr.Image(label="Masked image tokens (blue = halted)", interactive=False,
                                            height=256)
                        error_map = gr.Image(label="Error per position", interactive=False, height=256)
                    play = gr.Button("▶ Play through the iterations")
                    gallery = gr.Gallery(label="Every iteration (★ = selected)", columns=4, height=420)
                    compare = gr.ImageSlider(label="Original vs selected reconstruction", height=320)
                    curve = gr.Plot(label="Error against tokens")
            with gr.Row():
                measure = gr.Dropdown(list(MEASURE_LABELS), value="png_bpp", label="Complexity measure")
            with gr.Row():
                scatter = gr.Plot(label="Token count against complexity (reference set + this image)")
                comp = gr.Plot(label="Compression: ALIT tokens vs JPEG / WebP at the same size")
            with gr.Tab("Attention"):
                with gr.Row():
                    it = gr.Slider(0, 7, value=7, step=1, label="Iteration")
                    token = gr.Slider(0, 255, value=0, step=1, label="Token")
                    head = gr.Dropdown(["mean"], value="mean", allow_custom_value=True, label="Head (mean or index)")
                    opacity = gr.Slider(0.1, 0.9, value=0.5, step=0.05, label="Opacity")
                with gr.Row():
                    overlay = gr.Image(label="This token's attention (click to see who attends there)",
                                       interactive=False, height=320)
                    segments = gr.Image(label="Object discovery: regions by strongest token", interactive=False,
                                        height=320)
                attn_md = gr.Markdown()
                who = gr.Markdown()
            with gr.Tab("Export"):
                export_btn = gr.Button("Export JSON, NPZ, PNGs and an animated GIF")
                files = gr.File(label="Downloads", file_count="multiple")
        with gr.Tab("Batch"):
            batch_files = gr.File(label="Images or zips", file_count="multiple")
            batch_btn = gr.Button("Tokenize all", variant="primary")
            batch_table = gr.Dataframe(label="Results", interactive=False)
            batch_plot = gr.Plot()
            batch_csv = gr.File(label="CSV")
        with gr.Tab("How it works"):
            gr.Markdown(HOW_IT_WORKS)

        streamed = [record, gallery, current, halt_map, error_map, metrics, compare, curve, scatter, comp, selected,
                    it, token, head]
        settings = [model, device, dtype, kind, value, max_iter, halting, seed, layer, measure]
        attn_inputs = [record, it, token, head, opacity]
        attn_outputs = [overlay, segments, attn_md]
        # The UI's own endpoints are callable by name (tests, benchmark) but left out of the API page,
        # whose one documented endpoint is /tokenize.
        run.click(h.run, [image, *settings], streamed, api_name="explore", api_visibility="undocumented").then(
            h.attention, attn_inputs, attn_outputs, api_visibility="private")
        reselect_outputs = [gallery, compare, curve, scatter, comp, metrics, selected]
        for trigger in (value.submit, kind.change):
            trigger(h.reselect, [record, kind, value, measure], reselect_outputs, api_visibility="private")
        value.blur(h.reselect, [record, kind, value, measure], reselect_outputs, api_visibility="private")
        measure.change(h.complexity_plot, [record, selected, measure], scatter, api_visibility="private")
        play.click(h.play, record, [current, halt_map, metrics], api_visibility="private")
        for ctl in (it, token, head, opacity):
            ctl.change(h.attention, attn_inputs, attn_outputs, api_visibility="private")
        overlay.select(h.who_attends, [record, it, head], who, api_visibility="private")
        export_btn.click(h.export, [record, selected], files, api_visibility="private")
        batch_btn.click(h.batch, [batch_files, model, kind, value, measure], [batch_table, batch_plot, batch_csv],
                        api_name="batch", api_visibility="undocumented")

        # Named API endpoint (gradio_client): /tokenize
        api_image = gr.File(type="filepath", visible=False)  # our loader, not gradio's, reads the file
        api_threshold = gr.Number(value=threshold, visible=False)
        api_halting = gr.Textbox(value="deterministic", visible=False)
        api_iters = gr.Number(value=8, precision=0, visible=False)
        api_out = gr.JSON(visible=False)
        api_btn = gr.Button(visible=False)
        api_btn.click(h.tokenize, [api_image, api_threshold, api_halting, api_iters], api_out, api_name="tokenize")
    return demo
