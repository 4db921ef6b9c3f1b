"""Gradio components whose server side we change, with gradio's own front end."""

from __future__ import annotations

import gradio as gr
from gradio import processing_utils
from gradio.data_classes import ImageData


class ImageUpload(gr.Image):
    """gr.Image (upload, drag and drop, paste, examples) that hands the handler the uploaded file
    untouched, as a path.

    gr.Image opens every upload with PIL before any handler runs, even with type="filepath"
    (gradio/image_utils.py, preprocess_image), so a corrupt, empty, non-image or oversized file
    fails there with gradio's generic error, and an RGBA or 16-bit one is converted by gradio's
    rules (transparency dropped) instead of alit_core's. Skipping that step lets
    alit_core.load_image, the one loader, read every upload and say what is wrong.
    """

    # gradio then uses gr.Image's front end (Block.get_block_name). No __init__ of our own: gradio
    # reads the page's props from the signature of the class's __init__.
    is_template = True

    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.path:
            return str(payload.path)
        if payload.url and payload.url.startswith("data:"):  # raw HTTP clients may send base64
            return processing_utils.save_base64_to_cache(payload.url, self.GRADIO_CACHE)
        raise gr.Error("The image did not arrive; please upload it again.")
