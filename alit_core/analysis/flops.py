"""Floating-point operations of an ALIT rollout or a KARL pass, counted from the configuration alone.

Counts 2 FLOPs per multiply-add of every matrix product and convolution (biases, norms,
activations, softmax and resampling are not counted), the convention of
torch.utils.flop_counter.FlopCounterMode, which the tests check this against exactly.

    f = count_flops(get_preset("small"))
    f.transformer / 1e12      # about 1.4 TFLOP: encoder + decoder + head over 8 iterations
    f.rollout(decode=True)    # everything for one image, with the 8 pixel reconstructions

    k = count_flops(KARL_PRESETS["karl_small_vqgan_quantized"])   # a KARLConfig: one KARL pass
    k.single_pass(decode=True)  # at T = 256 (`budget=` for another), with its pixel reconstruction

For VAE-based models the `vqgan_*` parts count the KL-16 VAE (its encoder with quant_conv, its
decoder with post_quant_conv), and there are no soft codes nor a nearest-code search.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.config import ALITConfig, VAEConfig, VQGANConfig
from ..model.karl import KARLConfig


def block_flops(length: int, width: int, hidden: int, queries: int | None = None) -> int:
    """One pre-LN ViT block over `length` tokens: q,k,v and output projections, the MLP, attention.

    queries: rows whose output is computed (default: all); q, k and v still cover every token.
    """
    queries = length if queries is None else queries
    projections = 2 * length * width * 3 * width + 2 * queries * width * (width + 2 * hidden)
    attention = 2 * 2 * queries * length * width  # q @ k^T and weights @ v, summed over heads
    return projections + attention


def _conv(pixels: int, c_in: int, c_out: int, k: int) -> int:
    return 2 * pixels * c_in * c_out * k * k


def _res_block(pixels: int, c_in: int, c_out: int) -> int:
    f = _conv(pixels, c_in, c_out, 3) + _conv(pixels, c_out, c_out, 3)
    return f + (_conv(pixels, c_out, c_out, 1) if c_in != c_out else 0)


def vqgan_encode_flops(cfg: VQGANConfig) -> int:
    """The VQGAN encoder for one image (conv_in, levels with average-pool downsampling, mid, conv_out)."""
    chans = [cfg.ch * m for m in cfg.ch_mult]
    side = cfg.resolution
    f = _conv(side * side, cfg.in_channels, cfg.ch, 3)
    c = cfg.ch
    for i, out in enumerate(chans):
        for _ in range(cfg.num_res_blocks):
            f += _res_block(side * side, c, out)
            c = out
        if i < len(chans) - 1:
            side //= 2
    f += 2 * _res_block(side * side, c, c)
    return f + _conv(side * side, c, cfg.z_channels, 1)


def vqgan_decode_flops(cfg: VQGANConfig) -> int:
    """The VQGAN decoder for one image (conv_in, mid, levels coarse to fine with upsampling, conv_out)."""
    chans = [cfg.ch * m for m in cfg.ch_mult]
    side = cfg.grid_size
    c = chans[-1]
    f = _conv(side * side, cfg.z_channels, c, 3) + 2 * _res_block(side * side, c, c)
    for i in reversed(range(len(chans))):
        for _ in range(cfg.num_res_blocks):
            f += _res_block(side * side, c, chans[i])
            c = chans[i]
        if i > 0:
            side *= 2
            f += _conv(side * side, c, c, 3)
    return f + _conv(side * side, c, 3, 3)


def _attention(pixels: int, ch: int) -> int:
    """The VAE's single-head spatial attention: q, k, v, output 1x1 convs and the two products."""
    return 4 * _conv(pixels, ch, ch, 1) + 2 * 2 * pixels * pixels * ch


def _vae_res_block(pixels: int, c_in: int, c_out: int) -> int:
    f = _conv(pixels, c_in, c_out, 3) + _conv(pixels, c_out, c_out, 3)
    return f + (_conv(pixels, c_in, c_out, 1) if c_in != c_out else 0)  # the shortcut reads the input


def vae_encode_flops(cfg: VAEConfig) -> int:
    """The KL-16 VAE encoder for one image, quant_conv included (the posterior's moments)."""
    chans = [cfg.ch * m for m in cfg.ch_mult]
    side = cfg.resolution
    f = _conv(side * side, cfg.in_channels, cfg.ch, 3)
    c = cfg.ch
    for i, out in enumerate(chans):
        for _ in range(cfg.num_res_blocks):
            f += _vae_res_block(side * side, c, out)
            c = out
            if side in cfg.encoder_attn_resolutions:
                f += _attention(side * side, c)
        if i < len(chans) - 1:
            side //= 2
            f += _conv(side * side, c, c, 3)  # stride 2: counted at the output size
    f += 2 * _vae_res_block(side * side, c, c) + _attention(side * side, c)
    return f + _conv(side * side, c, 2 * cfg.z_channels, 3) + _conv(side * side, 2 * cfg.z_channels,
                                                                    2 * cfg.embed_dim, 1)


def vae_decode_flops(cfg: VAEConfig) -> int:
    """The KL-16 VAE decoder for one image, post_quant_conv included."""
    chans = [cfg.ch * m for m in cfg.ch_mult]
    side = cfg.grid_size
    c = chans[-1]
    f = _conv(side * side, cfg.embed_dim, cfg.z_channels, 1) + _conv(side * side, cfg.z_channels, c, 3)
    f += 2 * _vae_res_block(side * side, c, c) + _attention(side * side, c)
    for i in reversed(range(len(chans))):
        for _ in range(cfg.num_res_blocks + 1):
            f += _vae_res_block(side * side, c, chans[i])
            c = chans[i]
            if side in cfg.decoder_attn_resolutions:
                f += _attention(side * side, c)
        if i > 0:
            side *= 2
            f += _conv(side * side, c, c, 3)
    return f + _conv(side * side, c, 3, 3)


def _base_flops(cfg: ALITConfig | KARLConfig) -> tuple[int, int]:
    """The base tokenizer's encoder and decoder for one image: (encode, decode)."""
    if cfg.vae is not None:
        return vae_encode_flops(cfg.vae), vae_decode_flops(cfg.vae)
    return vqgan_encode_flops(cfg.vqgan), vqgan_decode_flops(cfg.vqgan)


def _patch_embedding(cfg: ALITConfig | KARLConfig) -> int:
    return _conv(cfg.num_positions, cfg.base.in_channels, cfg.width - cfg.feature_dim, cfg.patch_size)


def _bottleneck(cfg: ALITConfig | KARLConfig, n: int) -> int:
    """n latents through W -> latent_dim (+ the latent codebook search) and the decoder's latent_dim -> W."""
    f = 2 * n * cfg.width * cfg.latent_dim + 2 * n * cfg.latent_dim * cfg.dec_width
    return f + (2 * n * cfg.latent_dim * cfg.latent_codebook_size if cfg.quantize_latents else 0)


def _decoder_head(cfg: ALITConfig | KARLConfig) -> int:
    """The decoder's output MLP (W -> 2W -> logits or VAE latents) on the grid rows."""
    dw, p = cfg.dec_width, cfg.num_positions
    return 2 * p * dw * 2 * dw + 2 * p * 2 * dw * cfg.head_dim


def _soft_codes(cfg: ALITConfig | KARLConfig) -> int:
    """softmax(logits) @ VQGAN codebook for one reconstruction; a VAE's latents are regressed directly."""
    return 0 if cfg.vae is not None else 2 * cfg.num_positions * cfg.head_dim * cfg.feature_dim


@dataclass(frozen=True)
class FlopCount:
    """FLOPs for ONE image (multiply by the batch size), by part; lists are per iteration."""

    vqgan_encode: int  # VQGAN (or VAE) encoder convolutions
    image_tokens: int  # patch embedding + nearest-code search for the targets (none for a VAE)
    encoder: list[int]  # encoder transformer over the running sequence
    bottleneck: list[int]  # W -> 12 factorisation (+ latent codebook search) + the decoder's 12 -> W
    decoder: list[int]  # decoder transformer + head (logits over the VQGAN codebook, or VAE latents)
    soft_codes: int  # softmax(logits) @ VQGAN codebook, per reconstruction (0 for a VAE)
    vqgan_decode: int  # VQGAN (or VAE) decoder, per reconstruction

    @property
    def iterations(self) -> int:
        return len(self.encoder)

    @property
    def transformer(self) -> int:
        """The recurrent part: encoder, bottleneck and decoder over every iteration."""
        return sum(self.encoder) + sum(self.bottleneck) + sum(self.decoder)

    @property
    def reconstruction(self) -> int:
        """One pixel reconstruction (soft codes + VQGAN decoder)."""
        return self.soft_codes + self.vqgan_decode

    def rollout(self, decode: bool = True) -> int:
        """A whole rollout of one image, with or without a pixel reconstruction per iteration."""
        f = self.vqgan_encode + self.image_tokens + self.transformer
        return f + (self.iterations * self.reconstruction if decode else 0)

    def as_dict(self) -> dict:
        return {
            "vqgan_encode": self.vqgan_encode, "image_tokens": self.image_tokens,
            "encoder": list(self.encoder), "bottleneck": list(self.bottleneck), "decoder": list(self.decoder),
            "soft_codes": self.soft_codes, "vqgan_decode": self.vqgan_decode,
            "transformer": self.transformer, "reconstruction": self.reconstruction,
            "rollout_no_decode": self.rollout(False), "rollout_with_decode": self.rollout(True),
        }


def count_flops(cfg: ALITConfig | KARLConfig, iterations: int | None = None, decoder_rows: bool = True, *,
                budget: int | None = None) -> FlopCount | KARLFlopCount:
    """FLOPs of a rollout of `iterations` (default: all) for one image of this configuration.

    decoder_rows: as `InferenceOptions.decoder_rows` (False: the official every-row decoder).
    A KARLConfig gives the count of one KARL pass at `budget` latents instead (see `count_karl_flops`).
    """
    if isinstance(cfg, KARLConfig):
        if iterations is not None or not decoder_rows:
            raise ValueError("a KARL pass has no iterations, and its decoder always computes only the grid rows")
        return count_karl_flops(cfg, budget)
    if budget is not None:
        raise ValueError("budget= is KARL's; an ALIT rollout is counted by iterations=")
    t_run = cfg.iterations if iterations is None else iterations
    p, w, dw = cfg.num_positions, cfg.width, cfg.dec_width
    hidden, dec_hidden = int(w * cfg.mlp_ratio), int(dw * cfg.mlp_ratio)
    targets = 0 if cfg.vae is not None else 2 * p * cfg.feature_dim * cfg.head_dim  # nearest VQGAN code
    encoder, bottleneck, decoder = [], [], []
    for t in range(t_run):
        n = cfg.tokens_at(t)
        length = 1 + p + n
        encoder.append(cfg.depth * block_flops(length, w, hidden))
        bottleneck.append(_bottleneck(cfg, n))
        last = block_flops(length, dw, dec_hidden, p if decoder_rows else None)
        blocks = (cfg.dec_depth - 1) * block_flops(length, dw, dec_hidden) + last
        decoder.append(blocks + _decoder_head(cfg))
    encode, decode = _base_flops(cfg)
    return FlopCount(
        vqgan_encode=encode,
        image_tokens=_patch_embedding(cfg) + targets,
        encoder=encoder,
        bottleneck=bottleneck,
        decoder=decoder,
        soft_codes=_soft_codes(cfg),
        vqgan_decode=decode,
    )


@dataclass(frozen=True)
class KARLFlopCount:
    """FLOPs of ONE KARL pass for ONE image at `budget` latents, by part. Halting changes no count:
    halted latents are computed, quantised and masked out of the decoder, not removed from it."""

    budget: int
    vqgan_encode: int  # VQGAN (or VAE) encoder convolutions
    image_tokens: int  # patch embedding (KARL's image tokens need no nearest-code search)
    encoder: int  # encoder transformer over [quality; P image tokens; T latents]
    halting: int  # halting MLP on the T latents
    bottleneck: int  # W -> 12 factorisation (+ latent codebook search) + the decoder's 12 -> W
    decoder: int  # decoder transformer over [P grid queries; T latents] + head on the P grid rows
    soft_codes: int  # softmax(logits) @ VQGAN codebook (0 for a VAE)
    vqgan_decode: int  # VQGAN (or VAE) decoder

    @property
    def transformer(self) -> int:
        """The pass from cached image tokens: encoder, halting, bottleneck and decoder."""
        return self.encoder + self.halting + self.bottleneck + self.decoder

    @property
    def reconstruction(self) -> int:
        """One pixel reconstruction (soft codes + VQGAN decoder)."""
        return self.soft_codes + self.vqgan_decode

    def single_pass(self, decode: bool = True) -> int:
        """The whole pass from pixels for one image (`KARLTokenizer.tokenize`), with or without its pixels."""
        return self.vqgan_encode + self.image_tokens + self.transformer + (self.reconstruction if decode else 0)

    def as_dict(self) -> dict:
        return {
            "budget": self.budget, "vqgan_encode": self.vqgan_encode, "image_tokens": self.image_tokens,
            "encoder": self.encoder, "halting": self.halting, "bottleneck": self.bottleneck, "decoder": self.decoder,
            "soft_codes": self.soft_codes, "vqgan_decode": self.vqgan_decode, "transformer": self.transformer,
            "reconstruction": self.reconstruction, "single_pass_no_decode": self.single_pass(False),
            "single_pass_with_decode": self.single_pass(True),
        }


def count_karl_flops(cfg: KARLConfig, budget: int | None = None) -> KARLFlopCount:
    """FLOPs of one KARL pass for one image at `budget` latents (default: `encode`'s T, 256).

    Both transformers compute their last block only on the rows read next (`Transformer` rows=):
    the encoder's on the T latents, the decoder's on the P grid positions.
    """
    t = cfg.encode_budget if budget is None else budget
    p, w, dw = cfg.num_positions, cfg.width, cfg.dec_width
    hidden, dec_hidden = int(w * cfg.mlp_ratio), int(dw * cfg.mlp_ratio)
    length, dec_length = 1 + p + t, p + t  # the decoder has no class or quality token
    encode, decode = _base_flops(cfg)
    return KARLFlopCount(
        budget=t,
        vqgan_encode=encode,
        image_tokens=_patch_embedding(cfg),
        encoder=(cfg.depth - 1) * block_flops(length, w, hidden) + block_flops(length, w, hidden, t),
        halting=2 * t * w * cfg.halting_hidden + 2 * t * cfg.halting_hidden,
        bottleneck=_bottleneck(cfg, t),
        decoder=((cfg.dec_depth - 1) * block_flops(dec_length, dw, dec_hidden)
                 + block_flops(dec_length, dw, dec_hidden, p) + _decoder_head(cfg)),
        soft_codes=_soft_codes(cfg),
        vqgan_decode=decode,
    )
