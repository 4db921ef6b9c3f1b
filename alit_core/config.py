"""Configurations of the base VQGAN and of ALIT, and the presets of the released models.

Configs are plain dataclasses so they can be written into our own checkpoints as a dict
and rebuilt exactly (`to_dict` / `from_dict`). Presets are data: a table of sizes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class VQGANConfig:
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

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.resolution // self.downsample


@dataclass(frozen=True)
class ALITConfig:
    """The recurrent ALIT tokenizer on top of a VQGAN.

    Encoder and decoder ViTs are symmetric (the official models) unless the decoder fields
    are set. Sequence layout, both encoder and decoder: [class, 256 image/mask tokens, latents].
    """

    width: int = 1024
    depth: int = 8
    heads: int = 8
    decoder_width: int | None = None
    decoder_depth: int | None = None
    decoder_heads: int | None = None
    mlp_ratio: float = 4.0
    patch_size: int = 16
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
    vqgan: VQGANConfig = field(default_factory=VQGANConfig)

    def __post_init__(self):
        if self.vqgan.resolution // self.patch_size != self.vqgan.grid_size:
            raise ValueError(
                f"patch size {self.patch_size} gives a {self.vqgan.resolution // self.patch_size} grid "
                f"but the VQGAN gives {self.vqgan.grid_size}; they must match"
            )
        if self.width <= self.vqgan.z_channels:
            raise ValueError(
                f"width {self.width} must exceed the VQGAN feature size {self.vqgan.z_channels}: "
                "image tokens are the concat of VQGAN features and a (width - features) patch embedding"
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
    def resolution(self) -> int:
        return self.vqgan.resolution

    @property
    def grid_size(self) -> int:
        return self.vqgan.grid_size

    @property
    def num_positions(self) -> int:
        return self.grid_size**2

    @property
    def max_tokens(self) -> int:
        return self.latents_per_iteration * self.iterations

    @property
    def bits_per_token(self) -> float:
        """Storage cost of one token: a codebook index, or its latent as float16 numbers."""
        return math.log2(self.latent_codebook_size) if self.quantize_latents else 16.0 * self.latent_dim

    def tokens_at(self, iteration: int) -> int:
        """Number of latent tokens after `iteration` (0-based)."""
        return self.latents_per_iteration * (iteration + 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["vqgan"]["ch_mult"] = list(self.vqgan.ch_mult)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ALITConfig:
        d = dict(d)
        vq = dict(d.pop("vqgan", {}))
        if "ch_mult" in vq:
            vq["ch_mult"] = tuple(vq["ch_mult"])
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ALIT config fields: {sorted(unknown)}")
        return cls(**d, vqgan=VQGANConfig(**vq))

    def with_(self, **changes) -> ALITConfig:
        return replace(self, **changes)


# Official transformer sizes (SPEC 2). "small" is the 1024-wide one: the naming is the
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
