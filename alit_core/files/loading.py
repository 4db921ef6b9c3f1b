"""Loading a tokenizer of either family from what a user names: a bundled model, a file (ours or an
official layout), a released checkpoint (`official:<name>`, downloaded) or a preset's random weights
(`preset:<name>`); and from an official config.json with its state dict."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..model.alit import ALIT
from ..model.config import get_preset
from ..model.karl import KARL, KARL_PRESETS
from ..running.karl_tokenizer import KARLTokenizer
from ..running.tokenizer import Tokenizer
from .checkpoints import (
    _unwrap,
    bundled_file,
    config_from_official_json,
    model_from_checkpoint,
    model_from_official_state_dict,
    read_file,
    read_metadata,
)
from .karl_checkpoints import is_karl_checkpoint, karl_from_checkpoint, karl_from_official
from .registry import fetch_official


def from_official(config, state_dict, device=None, dtype=None, *, options=None) -> Tokenizer:
    """A tokenizer from an official-layout config.json (path or dict) and state dict (path or dict).

    A configuration with a 'karl' section (../shared/karl_reference) gives a `KARLTokenizer`.
    options: `InferenceOptions` (speed settings; the defaults suit most uses).
    """
    if not isinstance(config, dict):
        try:
            config = json.loads(Path(config).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CheckpointError(f"cannot read the configuration {config}: {err}") from err
    if not isinstance(state_dict, dict):
        state_dict = read_file(state_dict)
    if "karl" in config:
        return karl_from_official(config, state_dict, device, dtype, options=options)
    try:
        cfg = config_from_official_json(config)
    except KeyError as err:
        raise CheckpointError(f"configuration lacks the field {err.args[0]!r}") from err
    return Tokenizer(model_from_official_state_dict(_unwrap(state_dict), cfg), device, dtype, options)


def load_tokenizer(source=None, device=None, dtype=None, *, heads: int | None = None, progress=None,
                   options=None) -> Tokenizer:
    """Load a tokenizer.

    source: None for the bundled model; "bundled:<name>" for one of `BUNDLED_MODELS` (e.g. "bundled:v2-preview");
    a path to an official or our own checkpoint;
    "official:<name>" for a released checkpoint (downloaded into the cache when possible, see
    `alit_core.files.registry`); or "preset:<name>" for randomly initialised weights of a preset.
    KARL files, released KARL names and KARL presets (`KARL_PRESETS`) give a `KARLTokenizer`.
    options: `InferenceOptions` (speed settings; the defaults suit most uses).
    """
    bundled = bundled_file(source)
    if bundled is not None:
        if not bundled.exists():
            raise CheckpointError(
                f"the bundled model {bundled} is missing; pass a checkpoint path or 'official:<name>'"
            )
        source = bundled
    if isinstance(source, str) and source.startswith("preset:"):
        name = source.split(":", 1)[1]
        # the same random weights on every load (drawn on the CPU), without touching the caller's generators:
        # the CPU one is restored after, and torch.manual_seed would also have reseeded every GPU's
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(0)
            model = KARL(KARL_PRESETS[name]) if name in KARL_PRESETS else ALIT(get_preset(name))
        if name in KARL_PRESETS:
            return KARLTokenizer(model, device, dtype, options)
        return Tokenizer(model, device, dtype, options)
    if isinstance(source, str) and source.startswith("official:"):
        source = fetch_official(source.split(":", 1)[1], progress=progress)
    obj = read_file(source)
    if is_karl_checkpoint(obj):
        return karl_from_checkpoint(obj, device, dtype, heads=heads, options=options)
    return Tokenizer(model_from_checkpoint(obj, heads=heads), device, dtype, options, metadata=read_metadata(obj))
