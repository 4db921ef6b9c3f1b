"""Training-only latent dropout before the decoder (alit_train.latent_dropout)."""

import pytest
import torch
from conftest import small_config

from alit_core import ALIT
from alit_train.latent_dropout import LatentDropout


def test_dropout_zeroes_whole_latents_in_training_only_and_keeps_one_per_image():
    torch.manual_seed(0)
    model = ALIT(small_config())
    embed = model.decoder.decoder_embed
    zq = torch.randn(64, 32, embed.in_features)
    clean = embed(zq).detach()
    dropout = LatentDropout(model, 0.5)
    embed.eval()
    assert torch.equal(embed(zq), clean)
    embed.train()
    out = embed(zq).detach()
    dropped = (out - embed.bias).abs().amax(-1) == 0  # (B, N): a dropped latent leaves only the bias
    kept = (out - clean).abs().amax(-1) < 1e-5
    assert torch.equal(dropped, ~kept)  # each latent is either read whole or not at all
    assert dropped.float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert 0 < dropped[0].sum() < 32 and not torch.equal(dropped[0], dropped[1])  # drawn per image
    almost_all = LatentDropout(model, 0.999)  # a second hook: nearly every draw drops everything
    dropout.handle.remove()
    out = embed(zq[:, :4]).detach()
    assert ((out - embed.bias).abs().amax(-1) > 0).sum(1).min() >= 1  # never an image without a latent
    almost_all.handle.remove()
    with pytest.raises(ValueError, match="below 1"):
        LatentDropout(model, 1.0)


@pytest.mark.parametrize(("argv", "why"), [(["alit", "--latent-dropout", "1"], "0 to below 1"),
                                           (["vae", "--latent-dropout", "0.5"], "in the vae stage")])
def test_the_train_command_refuses_a_dropout_it_cannot_use(argv, why, tmp_path):
    from alit_train.train import main

    with pytest.raises(SystemExit, match=why):
        main([*argv, "--out", str(tmp_path / "run")])
