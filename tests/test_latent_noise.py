"""Training-only noise on continuous latents (alit_train.latent_noise)."""

import json

import pytest
import torch
from conftest import small_config

from alit_core import ALIT, save_checkpoint
from alit_train.latent_noise import LatentNoise, bits_per_token, sigma_at
from alit_train.train import main


def test_noise_is_added_in_training_only_and_scales_with_each_latent():
    torch.manual_seed(0)
    model = ALIT(small_config(quantize_latents=False))
    noise = LatentNoise(model)
    latents = torch.randn(4, 6, model.cfg.width)
    proj = model.pre_quantizer_mlp
    clean = proj(latents).detach()
    noise.sigma = 0.5
    proj.eval()
    assert torch.equal(proj(latents), clean)
    proj.train()
    big = 1000 * torch.randn(200, 64, model.cfg.width)  # latents of very different scales
    for x in (big / 1000, big):
        proj.eval()
        z = proj(x).detach()
        proj.train()
        ratio = (proj(x).detach() - z).pow(2).mean().sqrt() / z.pow(2).mean().sqrt()
        assert ratio.item() == pytest.approx(0.5, rel=0.05)  # the encoder cannot outgrow the noise
    noise.sigma = 0.0
    assert torch.equal(proj(latents), clean)
    with pytest.raises(ValueError, match="continuous"):
        LatentNoise(ALIT(small_config(quantize_latents=True)))


def test_schedule_and_capacity():
    assert [sigma_at(s, 0.6, 2000) for s in (0, 1000, 2000, 9000)] == pytest.approx([0.0, 0.3, 0.6, 0.6])
    assert sigma_at(5, 0.4, 0) == 0.4
    # brought in mid-training: nothing before the start, then the same ramp
    assert [sigma_at(s, 0.35, 1000, 1400) for s in (0, 1399, 1400, 1900, 2400, 5000)] == pytest.approx(
        [0.0, 0.0, 0.0, 0.175, 0.35, 0.35])
    # sigma 0.577 over 12 numbers: 12 bits, what a token of the official 4096-entry codebook holds
    assert bits_per_token(1 / 3**0.5, 12) == pytest.approx(12.0)
    assert bits_per_token(0.0, 12) == float("inf")


# slow: phases 3 and 5 (latent noise) have ended (assets/MODEL_CARD.md); the schedule itself is tested above
@pytest.mark.slow
def test_training_with_latent_noise_logs_its_schedule(tiny_data, tmp_path):
    torch.manual_seed(0)
    cfg = small_config(quantize_latents=False)
    (tmp_path / "model.json").write_text(json.dumps(cfg.to_dict()))
    start = save_checkpoint(ALIT(cfg), tmp_path / "start.pt")
    assert main(["alit", "--out", str(tmp_path / "run"), "--steps", "3", "--batch-size", "2", "--model",
                 str(tmp_path / "model.json"), "--index", str(tiny_data / "index.json"), "--log-every", "1",
                 "--warmup", "1", "--init", str(start), "--latent-noise", "0.4", "--latent-noise-ramp", "2"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["latent_noise"] for r in rows] == pytest.approx([0.0, 0.2, 0.4])
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    assert set(saved) == set(ALIT(cfg).state_dict())  # the plain continuous model: nothing added
