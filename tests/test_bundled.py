"""The bundled default model in assets/: present, small, loadable, and showing ALIT's behaviour."""

from pathlib import Path

import pytest
import torch

from alit_core import load_image, load_tokenizer
from alit_core.checkpoints import BUNDLED_CHECKPOINT

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "assets" / "samples").glob("*.png"))


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(device="cpu")


def test_bundled_model_is_shipped_and_small():
    assets = BUNDLED_CHECKPOINT.parent
    assert BUNDLED_CHECKPOINT.exists()
    total = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    assert total <= 30 * 2**20, f"assets/ holds {total / 2**20:.1f} MiB, over the 30 MiB budget"


def test_bundled_model_has_a_16x16_grid(tok):
    assert tok.config.grid_size == 16
    assert tok.resolution == 64


def test_reconstructions_improve_over_iterations(tok):
    x = torch.stack([load_image(p, size=tok.resolution) for p in SAMPLES])
    steps = list(tok.rollout(x))
    assert len(steps) == tok.config.iterations
    mean_l1 = [float(s.l1.mean()) for s in steps]
    assert mean_l1[-1] < mean_l1[0]
    assert float(steps[-1].psnr.mean()) > float(steps[0].psnr.mean())


def test_simple_images_need_fewer_tokens_than_noise(tok):
    by_name = {p.stem: p for p in SAMPLES}
    x = torch.stack([load_image(by_name[n], size=tok.resolution) for n in ("01_flat", "02_shapes", "10_noise")])
    enc = tok.encode(x)
    assert enc.num_tokens[0] <= enc.num_tokens[2] and enc.num_tokens[1] <= enc.num_tokens[2]
    assert enc.num_tokens[0] < enc.num_tokens[2]
