"""Configurations of the base tokenizers (VQGAN, KL-16 VAE) and of ALIT, and the released presets.

Configs are plain dataclasses so they can be written into our own checkpoints as a dict
and rebuilt exactly (`to_dict` / `from_dict`). Presets are data: a table of sizes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


class _ConvGrid:
    """The latent grid of a convolutional base tokenizer that halves the resolution at every level but one."""

    resolution: int
    ch_mult: tuple[int, ...]

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.resolution // self.downsample


@dataclass(frozen=True)
class VQGANConfig(_ConvGrid):
    """The MaskGIT/MAGE VQGAN: conv encoder -> codebook -> conv decoder.

    The official base tokenizer is ch=128, ch_mult=(1,1,2,2,4), 2 residual blocks per level,
    256-d features and a 1024 x 256 codebook (about 54.5 M parameters).
    """

    resolution: int = 256
    in_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    codebook_size: int = 1024


@dataclass(frozen=True)
class VAEConfig(_ConvGrid):
    """The KL-16 VAE of MAR / latent diffusion (`AutoencoderKL`): conv encoder -> diagonal Gaussian
    posterior -> conv decoder. The alternative base tokenizer of two released ALIT checkpoints.

    Released: ch=128, ch_mult=(1,1,2,2,4), 2 residual blocks per level, self-attention at the
    16x16 level of the encoder and in both middle blocks (none in the decoder's levels), 16 latent
    channels. ALIT sees the latents multiplied by `latent_scale` and regresses them directly.
    """

    resolution: int = 256
    in_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 16  # the encoder outputs 2 * z_channels (mean and log-variance)
    embed_dim: int = 16  # latent channels after quant_conv: what ALIT reads and regresses
    encoder_attn_resolutions: tuple[int, ...] = (16,)
    decoder_attn_resolutions: tuple[int, ...] = ()
    latent_scale: float = 0.2325


@dataclass(frozen=True)
class _LatentTokenizerFields:
    """What ALITConfig and KARLConfig share: encoder and decoder ViTs (the decoder's sizes default to
    the encoder's; the official models are symmetric) over the 2D tokens of a VQGAN or, with `vae`
    set, a KL-16 VAE. The subclasses add latent_dim, quantize_latents, latent_codebook_size, vqgan
    and vae, which the properties below read."""

    width: int = 1024
    depth: int = 8
    heads: int = 8
    decoder_width: int | None = None
    decoder_depth: int | None = None
    decoder_heads: int | None = None
    mlp_ratio: float = 4.0
    patch_size: int = 16

    def _check(self, model: str) -> None:
        """Validate the sizes (from __post_init__); a VAE model drops the default VQGAN."""
        if self.vae is not None:
            object.__setattr__(self, "vqgan", None)  # a VAE model has no VQGAN (not even the default)
        elif self.vqgan is None:
            raise ValueError(f"{model} needs a base tokenizer: vqgan or vae")
        name, base = ("VAE", self.vae) if self.vae is not None else ("VQGAN", self.vqgan)
        if base.resolution // self.patch_size != base.grid_size:
            raise ValueError(
                f"patch size {self.patch_size} gives a {base.resolution // self.patch_size} grid "
                f"but the {name} gives {base.grid_size}; they must match"
            )
        if self.width <= self.feature_dim:
            raise ValueError(
                f"width {self.width} must exceed the {name} feature size {self.feature_dim}: "
                f"image tokens are the concat of {name} features and a (width - features) patch embedding"
            )
        for name, w, h in (("encoder", self.width, self.heads), ("decoder", self.dec_width, self.dec_heads)):
            if w % h:
                raise ValueError(f"{name} width {w} is not divisible by its {h} heads")

    @property
    def dec_width(self) -> int:
        return self.decoder_width or self.width

    @property
    def dec_depth(self) -> int:
        return self.decoder_depth or self.depth

    @property
    def dec_heads(self) -> int:
        return self.decoder_heads or self.heads

    @property
    def base(self) -> VQGANConfig | VAEConfig:
        """The base tokenizer's configuration."""
        return self.vae if self.vae is not None else self.vqgan

    @property
    def base_name(self) -> str:
        """"vae" or "vqgan": the base tokenizer's attribute on the model, its training stage and its flag."""
        return "vae" if self.vae is not None else "vqgan"

    @property
    def feature_dim(self) -> int:
        """Channels of the base tokenizer's 2D tokens, which open every image token."""
        return self.vae.embed_dim if self.vae is not None else self.vqgan.z_channels

    @property
    def head_dim(self) -> int:
        """Outputs of the decoder head per position: VQGAN code logits, or the regressed VAE latent."""
        return self.vae.embed_dim if self.vae is not None else self.vqgan.codebook_size

    @property
    def resolution(self) -> int:
        return self.base.resolution

    @property
    def grid_size(self) -> int:
        return self.base.grid_size

    @property
    def num_positions(self) -> int:
        return self.grid_size**2

    @property
    def bits_per_token(self) -> float:
        """Storage cost of one token: a codebook index, or its latent as float16 numbers."""
        return math.log2(self.latent_codebook_size) if self.quantize_latents else 16.0 * self.latent_dim


@dataclass(frozen=True)
class ALITConfig(_LatentTokenizerFields):
    """The recurrent ALIT tokenizer on top of a VQGAN.

    Encoder and decoder ViTs are symmetric (the official models) unless the decoder fields
    are set. Sequence layout, both encoder and decoder: [class, 256 image/mask tokens, latents].

    With `vae` set, the base tokenizer is the KL-16 VAE instead of the VQGAN (`vqgan` becomes
    None): the decoder regresses the VAE latent of every position instead of predicting logits
    over a codebook, and halting compares the regression error with `code_error_threshold`.
    """

    latents_per_iteration: int = 32
    iterations: int = 8
    latent_dim: int = 12  # the "factorisation" bottleneck
    quantize_latents: bool = True
    latent_codebook_size: int = 4096
    halting_threshold: float = 0.55
    # The L1 threshold an encode uses when the caller gives no criterion: the official 0.07, unless
    # a trained model records its own (the bundled one is calibrated on its training images).
    selection_threshold: float = 0.07
    layernorm_eps: float = 1e-5
    vqgan: VQGANConfig | None = field(default_factory=VQGANConfig)
    vae: VAEConfig | None = None
    # VAE models: a position halts where mean |regressed latent - VAE latent| is below this
    # (the official adaptive_vae.yaml's value).
    code_error_threshold: float = 0.025

    def __post_init__(self):
        self._check("an ALIT model")

    @property
    def max_tokens(self) -> int:
        return self.latents_per_iteration * self.iterations

    def tokens_at(self, iteration: int) -> int:
        """Number of latent tokens after `iteration` (0-based)."""
        return self.latents_per_iteration * (iteration + 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.vae is None:
            d["vqgan"]["ch_mult"] = list(self.vqgan.ch_mult)
            # VQGAN models omit the VAE fields, so their files stay readable by older versions
            del d["vae"], d["code_error_threshold"]
        else:
            for k in ("ch_mult", "encoder_attn_resolutions", "decoder_attn_resolutions"):
                d["vae"][k] = list(d["vae"][k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ALITConfig:
        d = dict(d)
        vq = d.pop("vqgan", {})
        vae = d.pop("vae", None)
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ALIT config fields: {sorted(unknown)}")
        if vae is not None:
            vae = {k: tuple(v) if isinstance(v, list) else v for k, v in vae.items()}
            return cls(**d, vae=VAEConfig(**vae))
        vq = dict(vq or {})
        if "ch_mult" in vq:
            vq["ch_mult"] = tuple(vq["ch_mult"])
        return cls(**d, vqgan=VQGANConfig(**vq))


# Official transformer sizes (docs/method.md §7). "small" is the 1024-wide one: the naming is the
# official code's, kept so that checkpoint names line up.
OFFICIAL_SIZES: dict[str, dict] = {
    "tiny": dict(width=512, depth=8, heads=8),
    "small": dict(width=1024, depth=8, heads=8),
    "base": dict(width=768, depth=12, heads=12),
    "semilarge": dict(width=1024, depth=16, heads=16),
}


def _official_presets() -> dict[str, ALITConfig]:
    presets = {}
    for size, dims in OFFICIAL_SIZES.items():
        for quantized in (True, False):
            kind = "quantized" if quantized else "continuous"
            presets[f"alit_{size}_vqgan_{kind}"] = ALITConfig(**dims, quantize_latents=quantized)
    return presets


PRESETS: dict[str, ALITConfig] = _official_presets()

# The two released VAE-based checkpoints (alit_small only).
for _quantized in (True, False):
    PRESETS[f"alit_small_vae_{'quantized' if _quantized else 'continuous'}"] = ALITConfig(
        **OFFICIAL_SIZES["small"], quantize_latents=_quantized, vae=VAEConfig())

# Our own small model, trained on CPU for the bundled default (alit_train): a 16x16 grid like the
# official models, so attention maps have the same layout, at 64 px (4x downsampling). The VQGAN
# uses 64 channels throughout: with 32 channels, GroupNorm(32) normalises every channel on its own
# and removes the image's global colour, and training plateaued near 14.5 dB PSNR.
PRESETS["explorer_64"] = ALITConfig(
    width=192, depth=3, heads=3,
    patch_size=4,
    # Continuous latents: with the 4096-entry latent codebook, CPU-sized training collapsed to one
    # code (identical tokens for every image) within 150 steps, even with dead-code restarts.
    quantize_latents=False,
    vqgan=VQGANConfig(resolution=64, ch=64, ch_mult=(1, 1, 1), num_res_blocks=1, z_channels=64,
                      codebook_size=1024),
)


# Version 2 of the bundled model: 128 px with 8x downsampling, so a 16x16 grid of 8-pixel cells,
# the official geometry (256 px, 16 px cells) at half scale. The transformer has explorer_64's
# sizes, so a rollout costs about the same and training can start from explorer_64's weights.
PRESETS["explorer_128"] = ALITConfig(
    width=192, depth=3, heads=3,
    patch_size=8,
    quantize_latents=False,
    vqgan=VQGANConfig(resolution=128, ch=64, ch_mult=(1, 1, 2, 2), num_res_blocks=1, z_channels=64,
                      codebook_size=1024),
)

# Version 2 on a continuous base tokenizer: the same geometry and transformer over a small KL VAE with
# 16 latent channels per 8-pixel cell (as the released KL-16 VAE has per 16-pixel cell). The VQGAN of
# explorer_128 draws unseen photos at about 22 dB with 1,024 or 4,096 codes (MODEL_CARD.md, session 9),
# and most photos that fall back do so because the VQGAN alone misses the threshold. latent_scale 1:
# ALIT regresses the latents the decoder was trained on (the released models scale them by 0.2325
# and fine-tune the decoder on the scaled ones).
PRESETS["explorer_128_vae"] = ALITConfig(
    width=192, depth=3, heads=3,
    patch_size=8,
    quantize_latents=False,
    vae=VAEConfig(resolution=128, ch=64, ch_mult=(1, 1, 2, 2), num_res_blocks=1, z_channels=16, embed_dim=16,
                  encoder_attn_resolutions=(), decoder_attn_resolutions=(), latent_scale=1.0),
)


def get_preset(name: str) -> ALITConfig:
    """A preset by name; short names like 'small' mean the quantised VQGAN variant."""
    if name in PRESETS:
        return PRESETS[name]
    long = f"alit_{name}_vqgan_quantized"
    if long in PRESETS:
        return PRESETS[long]
    raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")


def heads_for(width: int, depth: int) -> int | None:
    """Heads of the official size with this width and depth (not recoverable from tensors)."""
    for dims in OFFICIAL_SIZES.values():
        if dims["width"] == width and dims["depth"] == depth:
            return dims["heads"]
    return None
