"""KARL's files: recognising a KARL checkpoint (ours or the official layout), rebuilding its configuration
from the tensors, and loading it into a `KARLTokenizer` (docs/method.md §9)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import CheckpointError
from ..model.karl import KARL, KARLConfig
from ..running.karl_tokenizer import KARLTokenizer
from .checkpoints import (
    FORMAT,
    _unwrap,
    build_model,
    infer_base,
    infer_sizes,
    model_from_own_format,
    official_base,
    official_to_ours,
    official_transformer,
    read_file,
    read_metadata,
)

# Tensors only KARL has (ALIT has neither): how a checkpoint is recognised.
KARL_KEYS = ("halting_mlp.0.weight", "rec_loss_embeddings")


def is_karl_state_dict(state_dict: Mapping) -> bool:
    return any(k in state_dict for k in KARL_KEYS)


def is_karl_checkpoint(obj: Mapping) -> bool:
    """True for a KARL file: ours (family "karl") or an official one (a state dict, or under 'ema' / 'model')."""
    if obj.get("format") == FORMAT:
        return obj.get("family") == "karl"
    return is_karl_state_dict(_unwrap(obj))


# The released size (the official builder's karl_small): width 1024, 8 layers, 8 heads, both sides.
OFFICIAL_KARL_HEADS = {(1024, 8): 8}


def infer_karl_config(state_dict: Mapping, heads: int | None = None, grid: int = 16) -> KARLConfig:
    """Rebuild the configuration of a KARL state dict (our key names) from its tensor shapes.

    The number of heads is not in the tensors: the released size's, or `heads`. Nor is the image
    size: a `grid` x `grid` grid of patches (the official code asserts 16 x 16: 256 px images).
    """
    sd = state_dict
    try:
        width, max_grid = sd["encoder_positional_embedding"].shape[:2]
        sizes = infer_sizes(sd, width, sd["decoder_positional_embedding"].shape[0])
        heads = heads or OFFICIAL_KARL_HEADS.get((width, sizes["depth"]))
        if heads is None:
            raise CheckpointError(f"width {width} with {sizes['depth']} layers is not the released KARL size, and "
                                  "the number of attention heads cannot be read from the tensors; pass heads=<n>")
        bins = sd["rec_loss_embeddings"].shape[0]
        if bins != len(KARLConfig.quality_bins):
            raise CheckpointError(f"rec_loss_embeddings has {bins} rows; KARL's quality bins are "
                                  f"{len(KARLConfig.quality_bins)}")
        return KARLConfig(
            **sizes,
            heads=heads,
            max_tokens=sd["latent_tokens"].shape[0],
            max_grid=max_grid,
            halting_hidden=sd["halting_mlp.0.weight"].shape[0],
            **infer_base(sd, grid),
        )
    except KeyError as err:
        raise CheckpointError(f"not a KARL state dict: tensor {err.args[0]!r} is missing") from err


def karl_config_from_official_json(cfg: dict) -> KARLConfig:
    """The reference layout's config.json (sections 'karl' and 'vqgan.yaml', or 'vae') to a KARLConfig."""
    k = cfg["karl"]
    return KARLConfig(
        **official_transformer(k),
        max_tokens=k["latent_token_table"],
        max_grid=k["max_grid_tokens"],
        halting_threshold=k["halting_probability_threshold"],
        quality_bins=tuple(k["rec_losses"]),
        **official_base(cfg, k["patch_size"] * k["grid_size"]),
    )


def karl_model_from_official_state_dict(state_dict: Mapping, config: KARLConfig | None = None,
                                        heads: int | None = None) -> KARL:
    ours = official_to_ours(state_dict)
    return build_model(config or infer_karl_config(ours, heads), ours, KARL)


def karl_from_official(config: dict, state_dict: Mapping, device=None, dtype=None, *, options=None) -> KARLTokenizer:
    """`from_official` for a configuration with a 'karl' section (config dict; state dict or path)."""
    if not isinstance(state_dict, Mapping):
        state_dict = read_file(state_dict)
    try:
        cfg = karl_config_from_official_json(config)
    except KeyError as err:
        raise CheckpointError(f"configuration lacks the field {err.args[0]!r}") from err
    return KARLTokenizer(karl_model_from_official_state_dict(_unwrap(state_dict), cfg), device, dtype, options)


def karl_from_checkpoint(obj: Mapping, device=None, dtype=None, *, heads: int | None = None,
                         options=None) -> KARLTokenizer:
    """A tokenizer from a loaded KARL file: ours, or an official one (configuration inferred from the keys)."""
    if obj.get("format") == FORMAT:
        model = model_from_own_format(obj, KARLConfig, KARL)
    else:
        model = karl_model_from_official_state_dict(_unwrap(obj), heads=heads)
    return KARLTokenizer(model, device, dtype, options, metadata=read_metadata(obj))
