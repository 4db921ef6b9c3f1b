"""Complexity measures and attention segmentation (public alit_core functions)."""

import numpy as np
import pytest
import torch
from PIL import Image

from alit_core.analysis.complexity import complexity, edge_density, entropy, high_freq_energy, jpeg_bpp, png_bpp
from alit_core.analysis.segmentation import (
    adjusted_rand_index,
    attention_segments,
    fg_ari,
    grid_segments,
    matched_miou,
)


@pytest.fixture(scope="module")
def flat_and_noise():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 120, dtype=np.uint8)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return flat, noise


def test_complexity_orders_flat_below_noise(flat_and_noise):
    flat, noise = flat_and_noise
    for fn in (png_bpp, jpeg_bpp, entropy, edge_density, high_freq_energy):
        assert fn(flat) < fn(noise), fn.__name__
    assert entropy(flat) == 0.0 and edge_density(flat) == 0.0
    assert 7.5 < entropy(noise) <= 8.0
    assert png_bpp(noise) > 20  # 24-bit noise does not compress
    c = complexity(torch.from_numpy(noise).permute(2, 0, 1).float() / 255)
    assert c["png_bpp"] == pytest.approx(png_bpp(noise), rel=0.02)


def test_complexity_rejects_non_rgb():
    with pytest.raises(ValueError, match="RGB"):
        png_bpp(np.zeros((8, 8), dtype=np.uint8))


def test_ari_values():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert adjusted_rand_index(a, a) == pytest.approx(1.0)
    assert adjusted_rand_index(a, np.array([5, 5, 7, 7, 9, 9])) == pytest.approx(1.0)  # names do not matter
    assert adjusted_rand_index(a, np.array([0, 1, 0, 1, 0, 1])) < 0.0
    # a known value: sklearn.metrics.adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714...
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)


def test_fg_ari_ignores_background_and_miou_matches():
    true = np.zeros((8, 8), dtype=int)
    true[:4, :4], true[4:, 4:] = 1, 2
    pred = np.full((8, 8), 9)
    pred[:4, :4], pred[4:, 4:] = 3, 4
    assert fg_ari(true, pred) == pytest.approx(1.0)
    assert matched_miou(true, pred) == pytest.approx(1.0)
    half = pred.copy()
    half[:4, :2] = 5  # object 1 split in two
    assert matched_miou(true, half) == pytest.approx((0.5 + 1.0) / 2)


def test_grid_baseline_has_the_requested_cells():
    g = grid_segments(4, 64)
    assert g.shape == (64, 64) and len(np.unique(g)) == 4
    assert len(np.unique(grid_segments(1, 16))) == 1


def test_attention_segments_pick_the_dominant_latent():
    grid, n = 4, 3
    p = grid * grid
    attn = torch.zeros(1, 1 + p + n, 1 + p + n)
    # positions in the left half attend to latent 2, the right half to latent 0
    for q in range(p):
        latent = 2 if (q % grid) < grid // 2 else 0
        attn[0, 1 + q, 1 + p + latent] = 1.0
    labels = attention_segments(attn, grid)
    assert labels.shape == (1, 4, 4)
    assert labels[0, :, :2].eq(2).all() and labels[0, :, 2:].eq(0).all()
    assert attention_segments(attn, grid, size=16).shape == (1, 16, 16)


def _with_test_photo(tiny_data, tmp_path):
    """tiny_data's index plus one photo of a held-out package (the 'test' split)."""
    import json

    entries = json.loads((tiny_data / "index.json").read_text())
    for e in entries:
        e["path"] = str(tiny_data / e["path"])
    p = tmp_path / "held_out.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(p)
    entries.append({"path": str(p), "role": "background", "split": "test", "width": 100, "height": 80,
                    "package": "held-out", "version": "0", "licence": "CC0", "sha256": ""})
    index = tmp_path / "index.json"
    index.write_text(json.dumps(entries))
    return index


def test_app_reference_set_keeps_its_groups(tiny_data, tmp_path):
    from conftest import small_config

    from alit_core import ALIT, Tokenizer, save_checkpoint
    from alit_train.reference import GROUPS, build

    torch.manual_seed(0)
    cfg = small_config()
    ck = save_checkpoint(Tokenizer(ALIT(cfg), "cpu"), tmp_path / "m.pt")
    ref = build(str(ck), str(_with_test_photo(tiny_data, tmp_path)), n=2, threshold=0.2)
    assert [r["group"] for r in ref["images"]] == [g for g in GROUPS.values() for _ in range(2)]
    assert all(cfg.latents_per_iteration <= r["tokens"] <= cfg.max_tokens and r["png_bpp"] > 0 for r in ref["images"])


# without held-out photos: the same report less its photo sections (slow: a minute more for little)
# and a model on a KL VAE (version 2's base tokenizer since session 10), with the held-out photos
@pytest.mark.parametrize("test_photos,vae", [pytest.param(False, False, marks=pytest.mark.slow), (True, False),
                                             (True, True)])
def test_evaluation_report_end_to_end(tiny_data, tmp_path, test_photos, vae):
    import json

    from conftest import small_config

    from alit_core import ALIT, Tokenizer, VAEConfig, load_tokenizer, save_checkpoint
    from alit_train.evaluate import evaluate, eval_sets, to_tensor

    index = _with_test_photo(tiny_data, tmp_path) if test_photos else tiny_data / "index.json"
    torch.manual_seed(0)
    base = dict(vae=VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(),
                              decoder_attn_resolutions=(), latent_scale=1.0)) if vae else {}
    ck = save_checkpoint(Tokenizer(ALIT(small_config(**base)), "cpu"), tmp_path / "m.pt")
    report = evaluate(str(ck), str(index), tmp_path / "report", n=2, threshold=0.2, bootstrap=20, speed_repeats=1)
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    # the base tokenizer's own PSNR on the photos: its VQGAN's codes, or its VAE's latents, decoded
    photos = to_tensor([im for im, _ in eval_sets(str(index), 64, 2, 1234)["photos"]])
    alone = load_tokenizer(str(ck), device="cpu").base_reconstruction(photos).psnr.mean().item()
    assert saved["reconstruction"]["base_psnr"] == pytest.approx(alone, abs=1e-4)
    assert saved["reconstruction"]["base"] == ("vae" if vae else "vqgan")
    assert saved["resolution"] == 64 and len(saved["reconstruction"]["per_iteration"]) == 4
    assert set(saved["complexity"]) == {"png_bpp", "jpeg_bpp", "entropy", "edge_density", "high_freq_energy"}
    sets = {"photos", "scenes", "simple", "ood_text", "ood_texture"}
    sets |= {"photos_test", "uploads_test"} if test_photos else set()
    assert set(saved["complexity_by_set"]) == sets
    assert ("complexity_with_test_photos" in saved) == ("reconstruction_test_photos" in saved) == test_photos
    if test_photos:
        assert len(saved["reconstruction_test_photos"]["per_iteration"]) == 4
        assert set(saved["complexity_with_test_photos"]) == set(saved["complexity"])
        assert set(saved["threshold_sweep"][0]["median_tokens"]) == {"photos", "scenes", "simple"}
    assert set(saved["complexity_by_set"]["photos"]) == set(saved["complexity"])
    sweep = saved["threshold_sweep"]
    assert 0.2 in [r["threshold"] for r in sweep] and len(sweep) >= 10
    # a higher threshold never asks for more tokens
    medians = [r["median_tokens"]["photos"] for r in sorted(sweep, key=lambda r: r["threshold"])]
    assert medians == sorted(medians, reverse=True)
    assert {"fg_ari", "grid_fg_ari", "miou"} <= saved["object_discovery"].keys()
    assert set(saved["ood"]) == {"ood_noise", "ood_text", "ood_clipart", "ood_screenshot", "ood_texture",
                                 "photos_median_tokens"}
    # the targets: allocation on whole held-out photos, object discovery per iteration and layer, speed
    alloc = saved["allocation"]
    assert alloc["photos"]["set"] == ("uploads_test" if test_photos else "photos")
    cfg = small_config()
    assert cfg.tokens_at(0) <= alloc["photos"]["median_tokens"] <= cfg.max_tokens
    assert 0 <= alloc["photos"]["fallback_fraction"] <= 1
    assert set(alloc["unfamiliar"]) == {n for n in saved["ood"] if n.startswith("ood_")}
    assert ("complexity_uploads_pool" in saved) == test_photos
    disc = saved["object_discovery_by_layer"]
    assert np.array(disc["per_iteration_and_layer"]).shape == (4, small_config().dec_depth)
    chosen = disc["chosen_on_validation"]
    assert disc["fg_ari"] == disc["per_iteration_and_layer"][chosen["iteration"]][chosen["layer"]]
    assert saved["speed"]["full_rollout_s"] >= saved["speed"]["first_iteration_s"] > 0
    assert (tmp_path / "report" / "summary.png").stat().st_size > 10_000
    assert (tmp_path / "report" / "segments.png").exists()
    assert report["compression"]["alit_bytes"] > 0


def test_codec_at_size_picks_the_nearest_file(flat_and_noise):
    from alit_core import codec_at_size

    _, noise = flat_and_noise
    small = codec_at_size(noise, "JPEG", 2000)
    large = codec_at_size(noise, "JPEG", 12000)
    assert abs(small[0] - 2000) < abs(large[0] - 2000) and small[0] < large[0]
    assert small[1] < large[1]  # more bytes, better PSNR
    assert codec_at_size(noise, "WEBP", 5000)[0] > 0
