"""The bundled models in assets/: present, small, loadable, and showing ALIT's behaviour (the default, v1; and
the 128 px line in training, shipped as `bundled:v2-preview`)."""

from pathlib import Path

import pytest
import torch

from alit_core import BUNDLED_MODELS, CheckpointError, load_image, load_tokenizer
from alit_core.files.checkpoints import BUNDLED_CHECKPOINT

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "assets" / "samples").glob("*.png"))


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(device="cpu")


def test_bundled_model_is_shipped_and_small():
    assets = BUNDLED_CHECKPOINT.parent
    assert BUNDLED_CHECKPOINT.exists()
    total = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    # the default (8.6 MB), the v2 preview (14 MB), the training state (20 MB), samples and reference set
    assert total <= 48 * 2**20, f"assets/ holds {total / 2**20:.1f} MiB, over the 48 MiB budget"
    assert all(p.stat().st_size <= 40e6 for p in BUNDLED_MODELS.values())  # the limit per shipped model


def test_one_training_state_carries_the_next_model():
    # the compact state of the line being trained (README, "The next bundled model"): one file, replaced whole
    states = sorted((BUNDLED_CHECKPOINT.parent / "training_state").glob("*.pt"))
    assert len(states) == 1, f"assets/training_state/ holds {[p.name for p in states]}: one state, replaced each time"
    ck = torch.load(states[0], map_location="cpu", weights_only=True)
    assert ck["compact"] and "optimizer" not in ck and ck["step"] > 0
    assert all(v.dtype == torch.float16 for v in ck["model"].values() if v.is_floating_point())


def test_bundled_model_has_a_16x16_grid(tok):
    assert tok.config.grid_size == 16
    assert tok.resolution == 64


def test_bundled_model_rolls_out_every_iteration_on_the_samples(tok):
    # The model's quality is measured by alit_train.evaluate (see assets/MODEL_CARD.md); this
    # checks that every sample goes through every iteration.
    x = torch.stack([load_image(p, size=tok.resolution) for p in SAMPLES])
    assert len(SAMPLES) >= 8
    steps = list(tok.rollout(x))
    assert [s.num_tokens for s in steps] == [32 * (t + 1) for t in range(tok.config.iterations)]
    for s in steps:
        assert s.recon.shape == x.shape and torch.isfinite(s.recon).all()
        assert torch.isfinite(s.l1).all() and (s.l1 > 0).all()
    enc = tok.encode(x)
    assert all(n in [s.num_tokens for s in steps] for n in enc.num_tokens)


def test_bundled_model_improves_with_tokens_and_spends_them_on_complex_images(tok):
    x = torch.stack([load_image(p, size=tok.resolution) for p in SAMPLES])
    l1 = torch.stack([s.l1 for s in tok.rollout(x)])  # (iterations, images)
    mean = l1.mean(1)
    assert all(a > b for a, b in zip(mean, mean[1:]))  # more tokens, better reconstructions, every iteration
    assert mean[-1] < 0.8 * mean[0]
    enc = tok.encode(x)  # the model's own (calibrated) threshold
    names = [p.stem for p in SAMPLES]
    tokens = dict(zip(names, enc.num_tokens))
    assert tokens["01_flat"] == 32 and tokens["06_astronaut"] == 256
    assert tokens["01_flat"] < tokens["04_cat"] < tokens["03_coffee"]
    assert tokens["10_noise"] == 256 and tokens["09_text"] > tokens["04_cat"]  # unfamiliar images take more


def test_bundled_model_records_its_measured_object_discovery(tok):
    """The app's attention captions read these numbers: they must be the evaluation report's."""
    import json

    report = json.loads((BUNDLED_CHECKPOINT.parent.parent / "docs" / "model_report" / "report.json").read_text())
    od = tok.metadata["object_discovery"]
    assert od["fg_ari"] == report["object_discovery"]["fg_ari"]
    assert od["grid_fg_ari"] == report["object_discovery"]["grid_fg_ari"]
    assert od["layer"] == report["attention_layer"] == tok.config.dec_depth - 1
    assert "--checkpoint assets/alit_default.pt" in od["command"] and f"--n {report['n_per_set']}" in od["command"]


def test_the_v2_preview_loads_by_name_with_its_photo_calibration_and_allocates_by_content():
    with pytest.raises(CheckpointError, match="'bundled:default', 'bundled:v2-preview'"):
        load_tokenizer("bundled:v3")
    tok = load_tokenizer("bundled:v2-preview", device="cpu")
    assert (tok.resolution, tok.config.grid_size) == (128, 16)
    cal = tok.metadata["calibration"]
    # calibrated on whole held-out photos (alit_train.export --calibrate-photos): the threshold the app starts
    # at, with the photos' median count inside the issue's band and few of them falling back
    assert cal["split"] == "calib" and tok.default_threshold == cal["threshold"]
    assert 64 <= cal["median_tokens"] <= 192 and cal["fallback"] <= 0.10
    assert tok.metadata["object_discovery"]["iteration"] == 0  # the attention view's default, chosen on validation
    x = torch.stack([load_image(p, size=tok.resolution) for p in SAMPLES])
    tokens = dict(zip([p.stem for p in SAMPLES], tok.encode(x).num_tokens))
    # the preview of session 19 (step 3,307): simple images at the first count, the everyday photos at the
    # second, the detailed one later, text above every photo, noise never met
    assert tokens["01_flat"] == tokens["02_shapes"] == tokens["05_scene"] == tokens["08_clipart"] == 32
    assert tokens["03_coffee"] == tokens["04_cat"] == tokens["07_temple"] == 64
    assert 64 < tokens["06_astronaut"] < tokens["09_text"] < tokens["10_noise"] == 256
