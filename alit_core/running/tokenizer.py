"""`Tokenizer`: an ALIT model bound to a device and a precision, with the user-facing calls.

    tok = load_tokenizer()                       # or from_official(...), load_tokenizer(path)
    for step in tok.rollout(images):             # one Step per iteration, as computed
        ...
    enc = tok.encode(images, threshold=0.07)     # per-image token counts, early exit
    run = tok.cached_rollout(images)             # re-select (run.encode(...)) without recomputing

Every call runs `inference_model`, the model as the tokenizer's `InferenceOptions` (weight cache,
channels-last convolutions, fused products) make it, built once with the tokenizer, under
`inference.inference`: inference mode and autocast for lower precision.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping

import torch

from ..model.alit import ALIT
from ..model.config import ALITConfig
from ..model.halting import MODES, Halting
from .cached_rollout import CachedRollout
from .devices import resolve_device, resolve_dtype
from .encoding import Encoding, encoding_builder
from .inference import InferenceOptions, inference, inference_model
from .rollout import BaseReconstruction, ImageTokens, Step, base_reconstruction, rollout
from .selection import Criterion

__all__ = ["Encoding", "ImageTokens", "Tokenizer"]


class BoundModel:
    """A model bound to a device and a precision: what `Tokenizer` and `KARLTokenizer` share."""

    def __init__(self, model, device=None, dtype=None, options: InferenceOptions | None = None,
                 metadata: Mapping | None = None):
        self.device = resolve_device(device)
        self._metadata = copy.deepcopy(dict(metadata or {}))
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(self.device).float().eval()
        self._options = options or InferenceOptions()
        # the model as it runs under these options: the same parameters, speed-up modules
        self.inference_model = inference_model(self.model, self._options)

    @property
    def options(self) -> InferenceOptions:
        """The speed settings, fixed when the tokenizer is made (another set: another Tokenizer)."""
        return self._options

    @property
    def config(self):
        return self.model.cfg

    @property
    def metadata(self) -> dict:
        """What the checkpoint file records about the model (our format's "metadata"; {} otherwise).

        E.g. "trained_steps", and "object_discovery": {"fg_ari", "grid_fg_ari", "iteration" (0-based),
        "layer", "command"} when its attention was measured. A copy: changing it changes nothing here.
        """
        return copy.deepcopy(self._metadata)

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def is_vae(self) -> bool:
        """True for models on the KL-16 VAE base tokenizer (which take `posterior=`)."""
        return self.config.vae is not None

    def to(self, device=None, dtype=None):
        """Move to another device and/or precision (in place); returns self."""
        if device is not None:
            self.device = resolve_device(device)
            self.model.to(self.device)
        if dtype is not None:
            self.dtype = resolve_dtype(dtype, self.device)
        return self

    def _context(self):
        return inference(self.device, self.dtype)


class Tokenizer(BoundModel):
    family = "alit"  # KARL models load as a `KARLTokenizer` (family "karl")

    def __init__(self, model: ALIT, device=None, dtype=None, options: InferenceOptions | None = None,
                 metadata: Mapping | None = None):
        super().__init__(model, device, dtype, options, metadata)
        if self.options.compile:
            compile_model(self.inference_model)

    @property
    def config(self) -> ALITConfig:
        return self.model.cfg

    @property
    def default_threshold(self) -> float:
        """The model's L1 threshold when no criterion is given (official models: 0.07)."""
        return self.config.selection_threshold

    @property
    def decode_batch(self) -> int | None:
        """Images per VQGAN decoder call (see InferenceOptions.decode_pixels); None: all at once."""
        return self.options.decode_batch(self.device, self.resolution)

    def _prepare(self, images: torch.Tensor | ImageTokens) -> torch.Tensor | ImageTokens:
        if isinstance(images, ImageTokens):
            if images.tokens.shape[-1] != self.config.width or images.images.device != self.device:
                raise ValueError("these ImageTokens come from another model or device")
            return images
        return check_images(images, self.resolution, self.device)

    @property
    def halting_modes(self) -> tuple[str, ...]:
        """The halting modes this model takes by name (VAE-based models have no stochastic form)."""
        return tuple(m for m in MODES if m != "stochastic") if self.is_vae else MODES

    def _halting(self, halting, seed):
        return Halting.for_model(self.config, halting, seed)

    def _inputs(self, images, posterior):
        """Checked images (or ImageTokens), refusing a posterior for images already encoded."""
        images = self._prepare(images)
        if isinstance(images, ImageTokens) and posterior is not None:
            raise ValueError("these ImageTokens are encoded already; pass posterior= to image_tokens() instead")
        if not self.is_vae and not (posterior is None or (isinstance(posterior, str) and posterior == "mean")):
            raise ValueError("posterior= applies to VAE-based models; a VQGAN encodes deterministically")
        return images

    def image_tokens(self, images: torch.Tensor, posterior=None) -> ImageTokens:
        """The base encoding of a batch, to reuse across rollouts (other halting, other options).

        posterior (VAE models): "mean" (default: the same tokens every time), "sample" (the official
        behaviour: one draw from torch's default generator, so `torch.manual_seed` first reproduces
        an official run) or a noise tensor (B, 16, g, g) to replay a draw; the result's `noise`
        holds the draw used.
        """
        images = self._inputs(images, posterior)
        if isinstance(images, ImageTokens):
            return images
        with self._context():
            return ImageTokens.of(self.inference_model, images, posterior)

    def base_reconstruction(self, images: torch.Tensor | ImageTokens, posterior=None) -> BaseReconstruction:
        """The base tokenizer's own reconstruction of images (B, 3, H, W) in [0, 1] (or their
        `ImageTokens`): the VQGAN decoder of each image's own codes (VAE models: of its latents), with
        its L1 and PSNR. ALIT's tokens predict those codes, so its error curve flattens near this
        reference (not a bound: a mix of codes can decode a little closer to the image, e.g. a flat one).
        posterior (VAE models): see `image_tokens`."""
        tokens = self.image_tokens(images, posterior)
        with self._context():
            return base_reconstruction(self.inference_model, tokens, self.decode_batch, self.options.float32_pixels)

    def rollout(
        self,
        images: torch.Tensor | ImageTokens,
        halting="deterministic",
        *,
        seed: int | None = None,
        posterior=None,
        max_iterations: int | None = None,
        decode: bool | str = True,
        attention_layers=None,
        attention_heads: str = "mean",
        keep=None,
    ) -> Iterator[Step]:
        """Yield one `Step` per iteration for images (B, 3, H, W) in [0, 1] (or their `ImageTokens`).

        halting: "deterministic" (default: mask where p_gt >= 0.55), "stochastic" (the official
        Bernoulli draw, from a generator seeded with `seed`), "off", or a bool tensor
        (T, B, positions) of masks to replay. VAE models: "deterministic" masks where the code error
        is below 0.025 (the intended rule; the official code never masks, which is "off"), and
        there is no "stochastic". posterior (VAE models): see `image_tokens`.
        attention_layers: decoder layers whose attention to keep (int, list, "all"; -1 is the last);
        attention_heads: "mean" or "all".
        decode: True (pixels each iteration, streamed), "batched" (every iteration's pixels decoded
        together after the last one; faster for small images and on GPUs, steps arrive at the
        end) or False. keep: a callable that says which images still need iterations (see
        `alit_core.running.rollout.rollout`); the others leave the batch.
        """
        images = self._inputs(images, posterior)
        policy = self._halting(halting, seed)
        steps = rollout(
            self.inference_model,
            images,
            halting=policy,
            posterior="mean" if posterior is None else posterior,
            max_iterations=max_iterations,
            decode=decode,
            decode_batch=self.decode_batch,
            float32_pixels=self.options.float32_pixels,
            attention_layers=attention_layers,
            attention_heads=attention_heads,
            keep=keep,
        )
        # Re-enter the inference context (inference mode, autocast) around each resumption
        # of the generator, so that nothing leaks into the caller's code between steps.
        while True:
            with self._context():
                step = next(steps, None)
            if step is None:
                return
            yield step

    def encode(
        self,
        images: torch.Tensor | ImageTokens,
        threshold: float | None = None,
        *,
        psnr: float | None = None,
        tokens: int | None = None,
        criterion: Criterion | None = None,
        per_batch: bool = False,
        halting="deterministic",
        seed: int | None = None,
        posterior=None,
        max_iterations: int | None = None,
        drop_decided: bool = True,
    ) -> Encoding:
        """Choose a token count per image and stop as soon as every image has met its criterion.

        Criterion: `threshold` on L1 (default: `default_threshold`), or a `psnr` target in dB, or a fixed
        `tokens` budget, or a whole `criterion` (a `Criterion`, as the app and the CLI carry it). `per_batch=True` reproduces the official encode(): one count for the
        whole batch from the batch-mean L1.
        drop_decided: images that have met the criterion leave the batch, so that later iterations
        run only for the others (their `l1_history` is NaN after that). Only with per-image
        selection and deterministic or no halting; otherwise every image runs to the end.
        posterior (VAE models): see `image_tokens`.
        """
        images = self._inputs(images, posterior)
        crit = Criterion.of(criterion, threshold, psnr, tokens, default=self.default_threshold)
        builder = encoding_builder(_batch_size(images), crit, per_batch)
        compact = drop_decided and not per_batch and isinstance(halting, str) and halting in ("deterministic", "off")
        # leaving the generator early (every image decided) stops the computation
        steps = self.rollout(images, halting, seed=seed, posterior=posterior, max_iterations=max_iterations,
                             keep=builder.undecided if compact else None)
        return builder.run(steps)

    def cached_rollout(
        self,
        images: torch.Tensor | ImageTokens,
        halting="deterministic",
        *,
        seed: int | None = None,
        posterior=None,
        max_iterations: int | None = None,
        decode: bool | str = True,
        attention_layers=None,
        attention_heads: str = "mean",
    ) -> CachedRollout:
        """A rollout that computes each iteration once, when first needed; see `CachedRollout`.

        Its `encode(threshold=...)` gives what `Tokenizer.encode` gives for the same halting, and
        further calls with other thresholds reuse the iterations already computed.
        """
        images = self._inputs(images, posterior)
        steps = self.rollout(images, halting, seed=seed, posterior=posterior, max_iterations=max_iterations,
                             decode=decode, attention_layers=attention_layers, attention_heads=attention_heads)
        total = self.config.iterations if max_iterations is None else max(1, min(int(max_iterations),
                                                                                  self.config.iterations))
        return CachedRollout(steps, _batch_size(images), total, self.default_threshold)


def check_images(images: torch.Tensor, resolution: int, device: torch.device) -> torch.Tensor:
    """A batch (B, 3, r, r) (or one image (3, r, r)) in [0, 1] as float32 on `device`; errors say what is wrong."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a float tensor (B, 3, H, W) in [0, 1], not {type(images).__name__}")
    if images.dim() == 3:
        images = images[None]
    r = resolution
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2:] != (r, r):
        raise ValueError(
            f"images must have shape (B, 3, {r}, {r}) for this model; got {tuple(images.shape)} "
            "(use alit_core.load_image to open, crop and resize a picture)"
        )
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch")
    return images.to(device, torch.float32)


def _batch_size(images: torch.Tensor | ImageTokens) -> int:
    return (images.images if isinstance(images, ImageTokens) else images).shape[0]


def compile_model(model: ALIT) -> None:
    """torch.compile (in place: a tokenizer passes its inference copy) what dominates the time:
    transformer blocks and the base decoder.

    Sequence lengths grow every iteration, so the blocks compile with dynamic shapes. Parameter
    names and the state dict are unchanged.
    """
    for blk in list(model.encoder.transformer) + list(model.decoder.transformer):
        blk.compile(dynamic=True)
    (model.vae if model.is_vae else model.vqgan).decoder.compile()
