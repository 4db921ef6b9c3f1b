"""Helpers shared by test_app_page.py and test_app_compare_share.py: sample images, an Explore run, what gradio serves."""

from pathlib import Path

from gradio import processing_utils
from gradio.data_classes import FileData
from gradio_client import utils as client_utils

from app.choices import L1
from app.explorer import BUNDLED

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))
CAT = next(p for p in SAMPLES if "cat" in p.name)


def explore(h, image=CAT, kind=L1, l1=None, psnr=25.0, budget=128, max_iterations=8, layer=-1):
    l1 = h.cache.get().default_threshold if l1 is None else l1
    return list(h.run(str(image), BUNDLED, "cpu", "float32", kind, l1, psnr, budget, max_iterations, "deterministic",
                      0, layer, "png_bpp"))


def names(ui, update) -> set[str]:
    by_id = {id(v): k for k, v in vars(ui).items()}
    return {by_id[id(k)] for k in update}


def served_files(component, value) -> list[str]:
    """What gradio does with an output before the browser fetches it: postprocess, then its cache."""
    payload = component.postprocess(value)
    payload = processing_utils.move_files_to_cache(payload, component, postprocess=True)
    found = []
    client_utils.traverse(payload, lambda d: found.append(FileData(**d).path) or d, client_utils.is_file_obj)
    return found


def legend_outside(fig) -> bool:
    lg = fig.layout.legend
    return ((lg.yanchor == "bottom" and lg.y >= 1) or (lg.yanchor == "top" and lg.y <= 0)
            or (lg.xanchor == "left" and lg.x >= 1))
