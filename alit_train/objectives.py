"""Training objectives as modules whose forward returns (loss, metrics).

Wrapping each stage's loss in an nn.Module lets DistributedDataParallel see a forward call,
which it needs to synchronise gradients.

- VQGANObjective: pixel L1 + MSE through the straight-through quantiser, plus the codebook and
  commitment losses. (The official VQGAN also used LPIPS and a GAN loss; LPIPS needs pretrained
  VGG weights that cannot be fetched here, so ours optimises pixel error only.)
- VAEObjective: pixel L1 + MSE of the decoding of one draw from the posterior, plus a KL term that
  keeps the latents near a unit Gaussian (mean over latent elements, so its weight does not depend
  on the grid). The draw during training makes the decoder tolerant of small latent errors, which
  is what ALIT's regressed latents will be.
- ALITStage1: the official stage-1 loss (docs/method.md §6): per-iteration weighted cross-entropy of the
  decoder's code logits against the VQGAN codes, MSE between the soft codes and the true code
  vectors, and the latent VQ loss; the VQGAN is frozen. On a VAE (whose latents ALIT regresses) the
  weighted MSE of each iteration's regressed latents takes the place of the cross-entropy and the
  soft-code MSE; the VAE is frozen.
  With pixel_weight > 0, each step also decodes one iteration (cycling through them) to pixels
  through the VQGAN decoder and adds a pixel L1 loss: with the VQGAN frozen this steers the soft
  codes towards good pixels; in the end-to-end stage (train.py) the VQGAN decoder trains too.
  With sample_depth=True, each step unrolls only the first K iterations (full backpropagation
  through them, a loss at each), K drawn per step: K = 1 with probability 0.3, else uniform over
  2..depth_limit (the trainer raises depth_limit from 1 to T over the first steps: unrolling
  all 8 iterations from a random start stalled at about 11 dB in our runs). Iteration 0 then
  learns at every step and a step costs about half of the full unroll.
  (Training one cycled iteration per step with the earlier ones run without gradients, which
  is cheaper still, stalled at about 12 dB in our CPU runs: the shared encoder never learned a
  first pass that later passes could build on.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from alit_core.analysis.metrics import psnr
from alit_core.model.alit import ALIT
from alit_core.model.halting import Halting
from alit_core.model.vae import KLVAE
from alit_core.model.vqgan import VQGAN
from alit_core.running.rollout import ImageTokens, rollout

# Each iteration's weight in the prediction loss (phase 1's, favouring the first iterations); iterations past
# the tuple weigh 1.0
ITERATION_WEIGHTS = (2.5, 2.0, 1.5, 1.25, 1.0, 1.0, 1.0, 1.0)


class VQGANObjective(nn.Module):
    def __init__(self, vqgan: VQGAN, commitment: float = 0.25):
        super().__init__()
        self.vqgan = vqgan
        self.commitment = commitment

    def forward(self, images: torch.Tensor):
        h = self.vqgan.encode(images)
        idx = self.vqgan.indices(h)
        # crops may be smaller than the model's resolution, so the grid comes from h itself
        code = rearrange(self.vqgan.codebook[idx], "b (y x) c -> b c y x", y=h.shape[2]).to(h.dtype)
        zq = h + (code - h).detach()
        recon = self.vqgan.decode(zq).float()
        l1 = (recon - images).abs().mean()
        mse = (recon - images).pow(2).mean()
        vq = F.mse_loss(code.float(), h.detach().float()) + self.commitment * F.mse_loss(h.float(), code.detach().float())
        loss = l1 + mse + vq
        samples = rearrange(h.detach().float(), "b c y x -> (b y x) c")
        return loss, {"l1": l1.detach(), "mse": mse.detach(), "vq": vq.detach(), "psnr": psnr(recon.detach(), images).mean(),
                      "codes": idx.detach(),
                      "samples": samples}


class VAEObjective(nn.Module):
    def __init__(self, vae: KLVAE, kl_weight: float):
        super().__init__()
        self.vae = vae
        self.kl_weight = kl_weight

    def forward(self, images: torch.Tensor):
        post = self.vae.encode(images)  # mean, logvar: (B, C, g, g)
        z = post.mean + post.std * torch.randn_like(post.mean)
        recon = self.vae.decode(z).float()  # latent_scale 1 for a VAE we train (see PRESETS["explorer_128_vae"])
        l1 = (recon - images).abs().mean()
        mse = (recon - images).pow(2).mean()
        mean, logvar = post.mean.float(), post.logvar.float()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        loss = l1 + mse + self.kl_weight * kl
        return loss, {"l1": l1.detach(), "mse": mse.detach(), "kl": kl.detach(),
                      "psnr": psnr(recon.detach(), images).mean(), "latent_rms": mean.detach().pow(2).mean().sqrt(),
                      "posterior_std": post.std.detach().float().mean()}


class ALITStage1(nn.Module):
    def __init__(self, model: ALIT, halting: str = "stochastic", pixel_weight: float = 0.0, ce_weight: float = 1.0,
                 mse_weight: float = 1.0, sample_depth: bool = False,
                 iteration_weights: tuple[float, ...] = ITERATION_WEIGHTS):
        super().__init__()
        self.iteration_weights = tuple(iteration_weights)
        self.model = model
        self.halting = halting
        self.pixel_weight = pixel_weight
        self.ce_weight = ce_weight
        self.mse_weight = mse_weight
        self.sample_depth = sample_depth
        # VAE models: the regression's weighting by principal component (alit_train.latent_weighting; None:
        # the plain MSE), set once the code pack is loaded
        self.latent_weighting = None
        self.depth_limit = model.cfg.iterations
        self.calls = 0

    def forward(self, images: torch.Tensor, features: torch.Tensor | None = None, targets: torch.Tensor | None = None):
        """images (B, 3, S, S); or with the frozen base tokenizer's stored features (B, C, g, g) and targets
        (a code pack): VQGAN codes (B, P), or VAE latents (B, P, C)."""
        m = self.model
        inputs = images
        if features is not None:  # a code pack: the base encoder is skipped, the patch embedding trains
            with torch.autocast(images.device.type, enabled=False):
                inputs = ImageTokens(images, m.tokens_from_features(features, images), targets)
        # A fresh seed per call keeps halting draws independent across steps and ranks.
        policy = Halting.for_model(m.cfg, self.halting, seed=int(torch.randint(0, 2**31 - 1, (1,)).item()))
        ce_total = mse_total = vq_total = 0.0
        metrics = {}
        iterations = m.cfg.iterations
        decode_at = self.calls % iterations
        self.calls += 1
        pixel = images.new_zeros(())
        depth = iterations
        if self.sample_depth:
            # the same draw on every DDP rank: the generator is seeded by the call count
            gen = torch.Generator().manual_seed(self.calls)
            limit = max(1, min(self.depth_limit, iterations))
            draw = torch.rand((), generator=gen) < 0.3 or limit == 1
            depth = 1 if draw else int(torch.randint(2, limit + 1, (), generator=gen))
            decode_at = min(decode_at, depth - 1)
        if self.pixel_weight and not self.ce_weight and not self.mse_weight:
            depth = decode_at + 1  # pixels only: later iterations add nothing to the loss
        for step in rollout(m, inputs, halting=policy, decode=False, max_iterations=depth):
            t = step.iteration
            w = self.iteration_weights[t] if t < len(self.iteration_weights) else 1.0
            ce, mse, prediction = self._prediction_losses(step, metrics)
            vq = m.quantize.loss(step.factorized, step.codes) if step.codes is not None else images.new_zeros(())
            ce_total = ce_total + w * ce
            # VAE models have no codes to classify: the weighted regression is their whole prediction loss
            mse_total = mse_total + (w * mse if m.is_vae else mse)
            vq_total = vq_total + vq
            if self.pixel_weight and t == decode_at:
                recon = m.pixels(prediction).float()
                pixel = (recon - images).abs().mean()
                metrics["pixel_l1"] = pixel.detach()
                metrics["pixel_iteration"] = torch.tensor(t)
        loss = self.ce_weight * ce_total + self.mse_weight * mse_total + vq_total + self.pixel_weight * pixel
        metrics.update(ce=ce_total.detach(), mse=mse_total.detach(), vq=vq_total.detach())
        if hasattr(getattr(m, "quantize", None), "codes_per_slot"):  # sign latents (SignQuantizer), last iteration
            metrics.update(codes_per_slot=m.quantize.codes_per_slot, balance=m.quantize.balance)
        if step.codes is not None:  # the last iteration's codes and (normalised) z, for dead-code restarts
            metrics["codes"] = step.codes.detach()
            metrics["samples"] = F.normalize(step.factorized.detach().float(), dim=-1).flatten(0, 1)
        return loss, metrics

    def _prediction_losses(self, step, metrics: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cross-entropy, MSE, what the pixels decode from) of one iteration's head output.

        VQGAN models: cross-entropy of the code logits, MSE of the soft codes against the true code
        vectors; VAE models: no cross-entropy (0), MSE of the regressed latents against the VAE's
        (weighted by principal component with `latent_weighting`).
        """
        m, t = self.model, step.iteration
        if m.is_vae:
            mse = F.mse_loss(step.code, step.targets)
            metrics[f"mse_{t}"] = mse.detach()  # the plain MSE whatever the weighting: runs stay comparable
            if self.latent_weighting is not None:
                mse = self.latent_weighting(step.code, step.targets)
            return step.code.new_zeros(()), mse, step.code
        ce = F.cross_entropy(step.logits.flatten(0, 1), step.targets.flatten())
        soft = m.soft_codes(step.logits)
        mse = F.mse_loss(soft, m.vqgan.codebook.detach().float()[step.targets])
        metrics[f"ce_{t}"] = ce.detach()
        metrics[f"acc_{t}"] = (step.logits.argmax(-1) == step.targets).float().mean().detach()
        return ce, mse, torch.softmax(step.logits.float(), dim=-1)
