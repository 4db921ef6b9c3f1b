"""Turning a continuous-latent ALIT into the official quantized variant (alit_train.quantize_latents)."""

import torch
import torch.nn.functional as F
from conftest import small_config

from alit_core import ALIT
from alit_train.code_pack import CodePack
from alit_train.quantize_latents import (anneal_quantizer, latent_samples, main, quantized_from, residual_at,
                                        spherical_kmeans)
from alit_train.training_state import initial_model


def test_spherical_kmeans_finds_the_directions_of_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    directions = F.normalize(torch.randn(3, 12, generator=gen), dim=-1)
    # each cluster: 200 points near its direction, at lengths 0.5 - 3 (k-means on the sphere ignores length)
    points = torch.cat([(d + 0.05 * torch.randn(200, 12, generator=gen)) * (0.5 + 2.5 * torch.rand(200, 1, generator=gen))
                        for d in directions])
    centres = spherical_kmeans(points, 3, seed=1)
    assert torch.allclose(centres.norm(dim=-1), torch.ones(3), atol=1e-5)
    match = (centres @ directions.t()).max(0).values  # best centre for every true direction
    assert match.min() > 0.995


def tiny_pack(model: ALIT, n: int = 6) -> CodePack:
    torch.manual_seed(1)
    images = torch.rand(n, 3, model.cfg.resolution, model.cfg.resolution)
    with torch.no_grad():
        features = model.vqgan.encode(images)
        targets = model.vqgan.indices(features)
    return CodePack((images * 255).round().to(torch.uint8), features.half(), targets.to(torch.int16), {})


def test_quantized_copy_keeps_every_weight_and_seeds_the_codebook_from_its_latents(tmp_path):
    torch.manual_seed(0)
    cfg = small_config(quantize_latents=False, latent_codebook_size=16)
    model = ALIT(cfg).eval()
    pack = tiny_pack(model)
    z = latent_samples(model, pack, images=6)
    # every iteration's latents of every image: 6 images x 4 iterations x 4 latents
    assert z.shape == (6 * cfg.iterations * cfg.latents_per_iteration, cfg.latent_dim)

    quantized = quantized_from(model, pack, images=6)
    assert quantized.cfg.quantize_latents and not model.cfg.quantize_latents
    before, after = model.state_dict(), quantized.state_dict()
    scaled = "decoder.decoder_embed.weight"
    assert set(after) - set(before) == {"quantize.embedding.weight"}
    assert all(torch.equal(before[k], after[k]) for k in before if k != scaled)
    # the decoder now reads unit vectors: its input projection grows by the latents' mean length
    assert torch.allclose(after[scaled], before[scaled] * z.norm(dim=-1).mean())
    book = after["quantize.embedding.weight"]
    assert torch.allclose(book.norm(dim=-1), torch.ones(16), atol=1e-5)
    # every entry is the direction of some of the model's own latents: each is the nearest entry of one
    nearest = (F.normalize(z, dim=-1) @ book.t()).argmax(-1)
    assert len(nearest.unique()) == 16

    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "step": 0,
                "model_config": cfg.to_dict()}, tmp_path / "continuous.pt")
    pack.save(tmp_path / "pack.pt")
    assert main([str(tmp_path / "continuous.pt"), str(tmp_path / "q.pt"), "--codes", str(tmp_path / "pack.pt"),
                 "--images", "6"]) == 0
    loaded = initial_model(str(tmp_path / "q.pt"))
    assert loaded.cfg.quantize_latents
    assert torch.equal(loaded.state_dict()["quantize.embedding.weight"], book)


def test_initial_model_reads_a_compact_state_with_its_frozen_vqgan(tmp_path):
    """A compact state keeps only the EMA weights that differ from the model's; the rest come from the model."""
    torch.manual_seed(0)
    cfg = small_config()
    model = ALIT(cfg)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    ema = {"latent_tokens": torch.zeros_like(state["latent_tokens"])}
    torch.save({"compact": True, "model": state, "ema": ema, "step": 7, "model_config": cfg.to_dict()},
               tmp_path / "state.pt")
    loaded = initial_model(str(tmp_path / "state.pt")).state_dict()
    assert torch.equal(loaded["latent_tokens"], torch.zeros_like(loaded["latent_tokens"]))
    key = "vqgan.quantize.embedding.weight"
    assert torch.equal(loaded[key], state[key].float())


def test_annealed_quantizer_moves_the_decoder_input_from_the_latent_to_its_code():
    torch.manual_seed(0)
    model = ALIT(small_config(quantize_latents=True, latent_codebook_size=16))
    plain = model.quantize
    annealed = anneal_quantizer(model)
    assert model.quantize is annealed and annealed.embedding is plain.embedding  # the same parameter
    assert set(model.state_dict()) == set(ALIT(small_config(quantize_latents=True, latent_codebook_size=16)).state_dict())
    z = torch.randn(2, 5, 12, requires_grad=True)
    codes, idx = plain(z)
    unit = F.normalize(z, dim=-1)
    for step, residual in ((0, 1.0), (300, 0.75), (1200, 0.0), (5000, 0.0)):
        annealed.residual = residual_at(step, 1200)
        assert annealed.residual == residual
        out, out_idx = annealed(z)
        assert torch.equal(out_idx, idx)
        assert torch.allclose(out, codes + residual * (unit - codes), atol=1e-6)
    # the gradient is the plain quantiser's straight-through one at every residual
    annealed.residual = 0.5
    (grad_annealed,) = torch.autograd.grad(annealed(z)[0].sum(), z)
    (grad_plain,) = torch.autograd.grad(plain(z)[0].sum(), z)
    assert torch.allclose(grad_annealed, grad_plain, atol=1e-6)
