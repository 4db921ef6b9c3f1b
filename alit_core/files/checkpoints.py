"""ALIT's weights in files: official ALIT checkpoints and our own format (KARL's: karl_checkpoints.py; a
tokenizer of either family from a name or a path: loading.py).

Official files (docs/method.md §7) are dicts with 'ema' and/or 'model' state dicts under the official key
names; the configuration is inferred from the tensor shapes, plus the official table for the
number of heads (which no tensor records). Loading is strict: every tensor the model needs must
be present with the right shape, and the only keys allowed to be left over are the
training-only `gan_losses.*`.

Our own format is a dict of plain data and tensors, so `torch.load(weights_only=True)` reads it
without unpickling code:
    {"format": "alit-explorer", "version": 1, "config": ALITConfig.to_dict(),
     "state_dict": {...}, "metadata": {...}}
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..model.alit import ALIT
from ..model.config import ALITConfig, VAEConfig, VQGANConfig, heads_for
from ..running.tokenizer import BoundModel
from .atomic import written_whole

FORMAT = "alit-explorer"
FORMAT_VERSION = 1
OFFICIAL_VQGAN_PREFIX = "base_tokenizer.vqgan."
OUR_VQGAN_PREFIX = "vqgan."
OFFICIAL_VAE_PREFIX = "base_tokenizer.vae."
OUR_VAE_PREFIX = "vae."
# official prefix -> ours, for the base tokenizer's weights
_BASE_PREFIXES = ((OFFICIAL_VQGAN_PREFIX, OUR_VQGAN_PREFIX), (OFFICIAL_VAE_PREFIX, OUR_VAE_PREFIX))
TRAINING_ONLY_PREFIX = "gan_losses."
BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "alit_default.pt"
# Models shipped in assets/, by the name `load_tokenizer("bundled:<name>")` takes: the default (v1, what None
# loads) and the 128 px line still in training, shipped beside it as a preview (assets/MODEL_CARD.md says why
# it is not the default yet).
BUNDLED_MODELS = {"default": BUNDLED_CHECKPOINT, "v2-preview": BUNDLED_CHECKPOINT.parent / "alit_v2_preview.pt"}


def bundled_file(source) -> Path | None:
    """The file of a bundled model: None or "" (the default) or "bundled:<name>"; None for any other source."""
    if source is None or source == "":
        return BUNDLED_CHECKPOINT
    if not (isinstance(source, str) and source.startswith("bundled:")):
        return None
    name = source.split(":", 1)[1]
    if name not in BUNDLED_MODELS:
        raise CheckpointError(f"no bundled model called {name!r}; the bundled models are "
                              + ", ".join(f"'bundled:{n}'" for n in BUNDLED_MODELS))
    return BUNDLED_MODELS[name]


# --- reading files ------------------------------------------------------------------------------
def read_file(path) -> dict:
    """torch.load with weights_only=True, turning every failure into a CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and plain data; refusing to unpickle it "
            f"(only weights_only loading is allowed). Details: {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for non-checkpoints
        # (torch's own words, e.g. "invalid load key, 'x'." or a bare number, mean nothing to a user)
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: the file is damaged or of another "
                              f"kind (a .pt or .ckpt file saved by torch.save is expected)") from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a dict of tensors")
    return obj


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


# --- official layout ----------------------------------------------------------------------------
def official_to_ours(state_dict: dict) -> dict:
    """Rename official keys to ours and drop the training-only GAN-loss modules."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith(TRAINING_ONLY_PREFIX):
            continue
        out[_swap_prefix(k, _BASE_PREFIXES)] = v
    return out


def _swap_prefix(key: str, pairs) -> str:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def _count_indexed(keys, prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in keys if (m := pat.match(k))}
    return max(found) + 1 if found else 0


def infer_config(state_dict: dict, heads: int | None = None) -> ALITConfig:
    """Rebuild the configuration of a state dict (our key names) from its tensor shapes.

    The base tokenizer is the KL-16 VAE when there are `vae.*` tensors, else the VQGAN.
    """
    sd = state_dict
    try:
        positions = sd["encoder_positional_embedding"].shape[0] - 1
        sizes = infer_sizes(sd, sd["encoder_positional_embedding"].shape[1], sd["decoder_positional_embedding"].shape[1])
        base = infer_base(sd, round(positions**0.5))
        width, depth = sizes["width"], sizes["depth"]
        if heads is None:
            heads = heads_for(width, depth)
        if heads is None:
            raise CheckpointError(
                f"width {width} with {depth} layers is not an official ALIT size, and the number of attention "
                "heads cannot be read from the tensors; pass heads=<n>"
            )
        return ALITConfig(
            **sizes,
            heads=heads,
            latents_per_iteration=sd["latent_tokens"].shape[0],
            iterations=sd["timestep_embedding"].shape[0],
            **base,
        )
    except KeyError as err:
        raise CheckpointError(f"not an ALIT state dict: tensor {err.args[0]!r} is missing") from err


def infer_sizes(sd: dict, width: int, dec_width: int) -> dict:
    """The config fields ALIT and KARL read alike from a state dict (our key names), given the widths."""
    depth = _count_indexed(sd, "encoder.transformer.")
    dec_depth = _count_indexed(sd, "decoder.transformer.")
    quantized = "quantize.embedding.weight" in sd
    return dict(
        width=width,
        depth=depth,
        decoder_width=dec_width if dec_width != width else None,
        decoder_depth=dec_depth if dec_depth != depth else None,
        mlp_ratio=sd["encoder.transformer.0.mlp.c_fc.weight"].shape[0] / width,
        patch_size=sd["patch_embed.weight"].shape[-1],
        latent_dim=sd["pre_quantizer_mlp.weight"].shape[0],
        quantize_latents=quantized,
        latent_codebook_size=sd["quantize.embedding.weight"].shape[0] if quantized else 4096,
    )


def infer_base(sd: dict, grid: int) -> dict:
    """{"vae": VAEConfig} when there are `vae.*` tensors (our key names), else {"vqgan": VQGANConfig}."""
    if any(k.startswith(OUR_VAE_PREFIX) for k in sd):
        return dict(vae=_infer_vae(sd, grid))
    return dict(vqgan=VQGANConfig(
        **_infer_encoder_levels(sd, "vqgan", grid),
        z_channels=sd["vqgan.encoder.conv_out.weight"].shape[0],
        codebook_size=sd["vqgan.quantize.embedding.weight"].shape[0],
    ))


def _infer_encoder_levels(sd: dict, prefix: str, grid: int) -> dict:
    """What the VQGAN's and the VAE's convolutional encoders share: resolution, channels, levels, blocks."""
    levels = _count_indexed(sd, f"{prefix}.encoder.down.")
    ch = sd[f"{prefix}.encoder.conv_in.weight"].shape[0]
    return dict(
        resolution=grid * 2 ** (levels - 1),
        in_channels=sd[f"{prefix}.encoder.conv_in.weight"].shape[1],
        ch=ch,
        ch_mult=tuple(sd[f"{prefix}.encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in range(levels)),
        num_res_blocks=_count_indexed(sd, f"{prefix}.encoder.down.0.block."),
    )


def _infer_vae(sd: dict, grid: int) -> VAEConfig:
    """The KL-16 VAE's configuration from its tensors (our key names); attention is where its keys are."""
    sizes = _infer_encoder_levels(sd, "vae", grid)
    levels, resolution = len(sizes["ch_mult"]), sizes["resolution"]

    def attended(part: str) -> tuple[int, ...]:
        return tuple(resolution // 2**i for i in range(levels) if f"vae.{part}.{i}.attn.0.norm.weight" in sd)

    return VAEConfig(
        **sizes,
        z_channels=sd["vae.post_quant_conv.weight"].shape[0],
        embed_dim=sd["vae.post_quant_conv.weight"].shape[1],
        encoder_attn_resolutions=attended("encoder.down"),
        decoder_attn_resolutions=attended("decoder.up"),
    )


def load_state_dict_strict(model: ALIT, state_dict: dict) -> None:
    """Fill every model tensor from state_dict (our key names); any mismatch names the keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)}, model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    )
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            problems.append(f"{label} keys: {shown}")
    if problems:
        raise CheckpointError("checkpoint does not match the model; " + "; ".join(problems))
    with torch.no_grad():
        for k, v in expected.items():
            v.copy_(state_dict[k].to(v.dtype))


def build_model(cfg: ALITConfig, state_dict: dict, model_class=ALIT) -> ALIT:
    """An ALIT (or another `model_class` built from cfg) with the given weights, without a random init first."""
    with torch.device("meta"):
        model = model_class(cfg)
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"state dict entries that are not tensors: {', '.join(map(str, bad[:8]))}")
    # Check keys and shapes on the meta model before any memory is allocated.
    load_state_dict_strict(model, {k: v.to("meta") for k, v in state_dict.items()})
    model.to_empty(device="cpu")
    load_state_dict_strict(model, state_dict)
    return model


def model_from_official_state_dict(state_dict: dict, config: ALITConfig | None = None, heads: int | None = None) -> ALIT:
    ours = official_to_ours(state_dict)
    return build_model(config or infer_config(ours, heads), ours)


def config_from_official_json(cfg: dict) -> ALITConfig:
    """The reference layout's config.json to an ALITConfig: sections 'alit' and 'vqgan.yaml' (tiny/),
    or 'alit' and 'vae' (vae_tiny/)."""
    a = cfg["alit"]
    base = official_base(cfg, a["img_size"] if "vae" in cfg else None)
    halting = dict(code_error_threshold=a["dynamic_halting_threshold"]) if "vae" in base else dict(
        halting_threshold=a["dynamic_halting_threshold"])
    return ALITConfig(
        **official_transformer(a),
        latents_per_iteration=a["num_init_latent_tokens"],
        iterations=a["max_rollout_iters"],
        **halting,
        **base,
    )


def official_base(cfg: dict, resolution: int | None) -> dict:
    """{"vae": VAEConfig} from a reference config.json's 'vae' section (at `resolution` px), else
    {"vqgan": VQGANConfig} from its 'vqgan.yaml'."""
    if "vae" in cfg:
        v = cfg["vae"]
        return dict(vae=VAEConfig(
            resolution=resolution,
            ch=v["ch"],
            ch_mult=tuple(v["ch_mult"]),
            num_res_blocks=v["num_res_blocks"],
            z_channels=v["z_channels"],
            embed_dim=v["embed_dim"],
            encoder_attn_resolutions=tuple(v["encoder_attn_resolutions"]),
            decoder_attn_resolutions=tuple(v["decoder_attn_resolutions"]),
            latent_scale=v["latent_scale"],
        ))
    dd = cfg["vqgan"]["yaml"]["model"]["params"]
    ddc = dd["ddconfig"]
    return dict(vqgan=VQGANConfig(
        resolution=ddc["resolution"],
        in_channels=ddc["in_channels"],
        ch=ddc["ch"],
        ch_mult=tuple(ddc["ch_mult"]),
        num_res_blocks=ddc["num_res_blocks"],
        z_channels=ddc["z_channels"],
        codebook_size=dd["n_embed"],
    ))


def official_transformer(a: dict) -> dict:
    """The config fields shared by ALIT and KARL from a reference config.json's 'alit' / 'karl' section."""
    return dict(
        width=a["encoder_width"],
        depth=a["encoder_num_layers"],
        heads=a["encoder_num_heads"],
        decoder_width=a["decoder_width"] if a["decoder_width"] != a["encoder_width"] else None,
        decoder_depth=a["decoder_num_layers"] if a["decoder_num_layers"] != a["encoder_num_layers"] else None,
        decoder_heads=a["decoder_num_heads"] if a["decoder_num_heads"] != a["encoder_num_heads"] else None,
        mlp_ratio=a["mlp_ratio"],
        patch_size=a["patch_size"],
        latent_dim=a["vq_token_dim"],
        quantize_latents=a["quantize_latent"],
        latent_codebook_size=a["vq_codebook_size"],
        layernorm_eps=a.get("layernorm_eps", 1e-5),
    )


def _unwrap(obj: dict) -> dict:
    """The state dict inside an official training checkpoint ('ema' first, then 'model')."""
    for key in ("ema", "model"):
        if key in obj and isinstance(obj[key], dict):
            return obj[key]
    return obj


# --- our format ---------------------------------------------------------------------------------
def save_checkpoint(model_or_tokenizer, path, *, metadata: dict | None = None, dtype: torch.dtype | None = None) -> Path:
    """Save weights with their configuration embedded; `dtype` (e.g. bfloat16) shrinks the file.

    KARL models (or tokenizers) are saved the same way, marked "family": "karl".
    """
    model = model_or_tokenizer.model if isinstance(model_or_tokenizer, BoundModel) else model_or_tokenizer
    family = {"family": model.family} if getattr(model, "family", "alit") != "alit" else {}
    sd = {k: (v.detach().to(dtype) if dtype is not None and v.is_floating_point() else v.detach()).cpu().contiguous()
          for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as tmp:
        torch.save({"format": FORMAT, "version": FORMAT_VERSION, **family, "config": model.cfg.to_dict(),
                    "state_dict": sd, "metadata": dict(metadata or {})}, tmp)
    return path


def model_from_own_format(obj: dict, config_class=ALITConfig, model_class=ALIT):
    """The model of a file in our format (its version checked), built from its embedded configuration."""
    if obj.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {obj['version']} is newer than this alit_core reads ({FORMAT_VERSION}); "
            "update ALIT Explorer"
        )
    try:
        cfg = config_class.from_dict(obj["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint configuration is invalid: {err}") from err
    return build_model(cfg, obj["state_dict"], model_class)


def model_from_checkpoint(obj: dict, heads: int | None = None) -> ALIT:
    """An ALIT model from a loaded file of either format."""
    if obj.get("format") == FORMAT:
        return model_from_own_format(obj, ALITConfig, ALIT)
    if "model_config" in obj and "train_config" in obj:
        # alit_train's run state (its last.pt, or a compact state): the weights are there, but not the
        # selection threshold calibrated on photos, nor the attention default; its export writes both
        raise CheckpointError(
            "this is a training state (alit_train), not a model: export it first with "
            "`python -m alit_train.train export STATE MODEL.pt --calibrate data/index.json`, then load MODEL.pt")
    sd = _unwrap(obj)
    if not any(k.startswith(("encoder_", "latent_tokens", "base_tokenizer.")) for k in sd):
        raise CheckpointError(
            "file is neither an ALIT Explorer checkpoint nor an official ALIT checkpoint "
            "(no 'format' field, no 'ema'/'model' state dict with official key names)"
        )
    return model_from_official_state_dict(sd, heads=heads)


def read_metadata(obj: dict) -> dict:
    """Our format's "metadata" field; official files record none."""
    if obj.get("format") != FORMAT:
        return {}
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint metadata must be a dict, not {type(meta).__name__}")
    return meta
