"""Setup for the KARL tests: where the official KARL reference lives, reading it, and a tiny VAE-based KARL."""

import pytest
import torch
from conftest import ROOT

from alit_core import KARL, KARLConfig, VAEConfig

KARL_REFERENCE = ROOT.parent / "shared" / "karl_reference"
KARL_TINY = KARL_REFERENCE / "karl_tiny"
KARL_MANIFESTS = sorted((KARL_REFERENCE / "manifests").glob("*.tsv")) if KARL_REFERENCE.exists() else []
needs_karl_reference = pytest.mark.skipif(
    not (KARL_TINY / "state_dict.pt").exists(),
    reason=f"official KARL reference outputs not found at {KARL_TINY} (they sit beside the project in ../shared)",
)


def load(name):
    return torch.load(KARL_TINY / name, weights_only=True)


def tiny_vae_karl(quantized=True) -> KARL:
    """A tiny KARL on a VAE base tokenizer (seed 0), quantized or continuous, with some latents halting."""
    torch.manual_seed(0)
    cfg = KARLConfig(
        width=96, depth=2, heads=2, patch_size=4, quantize_latents=quantized, latent_codebook_size=64,
        max_tokens=64, max_grid=32, halting_hidden=32,
        vae=VAEConfig(resolution=64, ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, encoder_attn_resolutions=(16,)),
    )
    model = KARL(cfg).eval()
    with torch.no_grad():  # a bias that makes some latents halt, so that the masks matter
        x = torch.rand(2, 3, 64, 64)
        feats, _ = model.base_features(x)
        lat = model.encode(model.image_tokens(x, feats), 64, torch.tensor([5, 5]))
        model.halting_mlp[2].bias -= model.halting_logits(lat).median() - 1.0986  # logit(0.75)
    return model
