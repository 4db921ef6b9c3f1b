"""The latent regression weighted by principal component (alit_train.latent_weighting)."""

import torch
import torch.nn.functional as F

from alit_train.latent_weighting import LatentWeighting


def latents_with_variances(variances, n=20000, seed=0):
    """(n, 1, C) latents whose principal variances are `variances`, along a random rotation."""
    gen = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(len(variances), len(variances), generator=gen))
    white = torch.randn(n, len(variances), generator=gen)
    white = (white - white.mean(0)) / white.std(0, correction=0)
    # exactly the variances asked for: whiten the sample itself before scaling
    cov = white.T @ white / n
    white = white @ torch.linalg.inv(torch.linalg.cholesky(cov)).T
    return (white * torch.tensor(variances).sqrt()) @ rotation.T + 3.0, rotation


def test_power_zero_is_the_plain_mse():
    latents, _ = latents_with_variances([4.0, 1.0, 0.25])
    w = LatentWeighting.from_latents(latents, power=0.0)
    pred = latents + torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(w(pred, latents), F.mse_loss(pred, latents), rtol=1e-4)


def test_whitening_weighs_components_by_inverse_variance_with_a_floor_and_keeps_the_scale():
    latents, rotation = latents_with_variances([4.0, 1.0, 0.25])
    w = LatentWeighting.from_latents(latents, power=1.0, floor=0.1)
    # the principal directions found are the rotation's columns, largest variance first (up to sign)
    assert torch.allclose((w.basis.T @ rotation).abs(), torch.eye(3), atol=1e-3)
    # 1 / variance, the smallest floored at 0.1 x 4: weights 1/4, 1, 1/0.4, scaled
    ratios = w.weights / w.weights[0]
    assert torch.allclose(ratios, torch.tensor([1.0, 4.0, 10.0]), rtol=1e-3)
    # a unit error along one component costs that component's weight / C
    for i in range(3):
        err = w.basis[:, i].expand(5, 1, 3)
        assert torch.allclose(w(latents[:5] + err, latents[:5]), w.weights[i] / 3, rtol=1e-4)
    # an error shaped like the latents themselves costs what the plain MSE charges
    centred = latents - latents.mean(0)
    assert torch.allclose(w(latents + centred, latents), F.mse_loss(latents + centred, latents), rtol=1e-3)


def test_half_whitening_lies_between():
    latents, _ = latents_with_variances([4.0, 1.0, 0.25])
    half = LatentWeighting.from_latents(latents, power=0.5, floor=0.0)
    assert torch.allclose(half.weights / half.weights[0], torch.tensor([1.0, 2.0, 4.0]), rtol=1e-3)
