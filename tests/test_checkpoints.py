"""Loading official checkpoints (strict, inferred configuration) and our own format."""

import pytest
import torch
from conftest import MANIFESTS, TINY, needs_reference, small_config

from alit_core import (
    ALIT,
    PRESETS,
    CheckpointError,
    Tokenizer,
    VQGANConfig,
    from_official,
    infer_config,
    load_tokenizer,
    save_checkpoint,
)
from alit_core.files.checkpoints import official_to_ours
from alit_core.model.vqgan import VQGAN


def read_manifest(path):
    shapes = {}
    for line in path.read_text().splitlines():
        key, shape, *_ = line.split("\t")
        shapes[key] = tuple(int(d) for d in shape.split(",")) if shape else ()
    return shapes


def zeros_like_manifest(shapes, dtype=torch.float32):
    # expand() of a scalar allocates nothing, so even 400 M-parameter layouts cost no memory here
    return {k: torch.zeros((), dtype=dtype).expand(s) for k, s in shapes.items()}


MANIFEST_FILES = sorted(MANIFESTS.glob("*.tsv")) if MANIFESTS.exists() else []


def test_official_vqgan_size():
    n = sum(p.numel() for p in VQGAN(VQGANConfig()).parameters())
    assert n == 54_515_587  # "about 54.5 M" (docs/method.md §1)


@needs_reference
@pytest.mark.parametrize("manifest", MANIFEST_FILES, ids=lambda p: p.stem)
def test_manifest_layouts_load_and_mismatches_are_named(manifest):
    shapes = read_manifest(manifest)
    sd = zeros_like_manifest(shapes)
    base = "vae" if "_vae_" in manifest.stem else "vqgan"
    ours = official_to_ours(sd)
    cfg = infer_config(ours)
    assert cfg == PRESETS[manifest.stem]
    model = load_via_file({"ema": sd})
    assert sum(p.numel() for p in model.parameters()) == sum(
        torch.Size(s).numel() for k, s in shapes.items() if not k.startswith("gan_losses."))

    depth = cfg.depth
    for key in (f"encoder.transformer.{depth - 1}.attn.out_proj.weight", "decoder.ffn.2.bias",
                f"base_tokenizer.{base}.decoder.conv_out.weight"):
        broken = {k: v for k, v in sd.items() if k != key}
        with pytest.raises(CheckpointError, match=f"missing keys: {key.replace('base_tokenizer.', '')}"):
            load_via_file(broken)
        reshaped = dict(sd, **{key: torch.zeros(()).expand(*shapes[key][:-1], shapes[key][-1] + 1)})
        with pytest.raises(CheckpointError, match=f"wrong shape keys: {key.replace('base_tokenizer.', '')}"):
            load_via_file(reshaped)
    with pytest.raises(CheckpointError, match="unexpected keys: encoder.transformer.extra"):
        load_via_file(dict(sd, **{"encoder.transformer.extra": torch.zeros(1)}))


def load_via_file(obj):
    from alit_core.files.checkpoints import model_from_checkpoint

    return model_from_checkpoint(obj)


def test_presets_cover_every_official_size():
    for size, (w, d, h) in {"tiny": (512, 8, 8), "small": (1024, 8, 8), "base": (768, 12, 12),
                            "semilarge": (1024, 16, 16)}.items():
        for kind in ("quantized", "continuous"):
            cfg = PRESETS[f"alit_{size}_vqgan_{kind}"]
            assert (cfg.width, cfg.depth, cfg.heads, cfg.quantize_latents) == (w, d, h, kind == "quantized")


@needs_reference
def test_official_file_loads_with_heads_given(tmp_path, reference_tokenizer, io_nohalt):
    sd = torch.load(TINY / "state_dict.pt", weights_only=True)
    path = tmp_path / "official.pth"
    torch.save({"model": sd, "ema": sd}, path)
    with pytest.raises(CheckpointError, match="pass heads="):
        load_tokenizer(path, device="cpu")
    tok = load_tokenizer(path, device="cpu", heads=4)
    assert tok.config == reference_tokenizer.config
    x = io_nohalt["images"][:1]
    a = next(iter(tok.rollout(x, halting="off", decode=False)))
    assert (a.logits - io_nohalt["logits_0"][:1]).abs().max() <= 1e-4


def test_own_format_round_trip(tmp_path):
    torch.manual_seed(0)
    tok = Tokenizer(ALIT(small_config()), "cpu")
    path = save_checkpoint(tok, tmp_path / "m.pt", metadata={"note": "test"})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "alit-explorer" and raw["metadata"] == {"note": "test"}
    loaded = load_tokenizer(path, device="cpu")
    assert loaded.config == tok.config
    assert loaded.metadata == {"note": "test"} and tok.metadata == {}
    loaded.metadata["note"] = "changed"  # a copy: the tokenizer's own record stays as the file says
    assert loaded.metadata == {"note": "test"}
    with pytest.raises(AttributeError):
        loaded.metadata = {}
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    a = list(tok.rollout(x))[-1]
    b = list(loaded.rollout(x))[-1]
    assert torch.equal(a.logits, b.logits) and torch.equal(a.recon, b.recon)

    half = save_checkpoint(tok, tmp_path / "half.pt", dtype=torch.bfloat16)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    c = list(load_tokenizer(half, device="cpu").rollout(x, max_iterations=1))[0]
    assert c.logits.dtype == torch.float32 and (c.logits - list(tok.rollout(x, max_iterations=1))[0].logits).abs().max() < 0.5


def test_official_names_round_trip():
    sd = ALIT(small_config()).state_dict()
    # the official model keeps its base tokenizer under base_tokenizer.; ours directly under vqgan.
    official = {("base_tokenizer." + k if k.startswith("vqgan.") else k): v for k, v in sd.items()}
    assert "base_tokenizer.vqgan.encoder.conv_in.weight" in official and "vqgan.encoder.conv_in.weight" not in official
    assert official_to_ours(dict(official, **{"gan_losses.0.x": torch.zeros(1)})).keys() == sd.keys()


@pytest.mark.parametrize("content, message", [
    (None, "checkpoint not found"),
    (b"", "checkpoint file is empty"),
    (b"this is not a checkpoint", "not a readable PyTorch checkpoint"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_tokenizer(path)


def test_directory_and_foreign_dicts(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        load_tokenizer(tmp_path)
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="neither an ALIT Explorer checkpoint nor an official"):
        load_tokenizer(path)
    torch.save([torch.zeros(3)], path)
    with pytest.raises(CheckpointError, match="not a dict"):
        load_tokenizer(path)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "alit-explorer", "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_tokenizer(path)


def test_newer_format_version_is_refused(tmp_path):
    tok = Tokenizer(ALIT(small_config()), "cpu")
    path = save_checkpoint(tok, tmp_path / "m.pt")
    obj = torch.load(path, weights_only=True)
    obj["version"] = 99
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="newer than this alit_core reads"):
        load_tokenizer(path)


@needs_reference
def test_from_official_reports_a_bad_config(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read the configuration"):
        from_official(bad, TINY / "state_dict.pt")
    with pytest.raises(CheckpointError, match="lacks the field"):
        from_official({"alit": {}}, TINY / "state_dict.pt")


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown preset"):
        load_tokenizer("preset:huge")


def test_presets_give_the_same_weights_and_leave_the_callers_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = load_tokenizer("preset:explorer_64", device="cpu")
    drawn = torch.rand(3)  # the caller's stream continues as if nothing had been drawn
    b = load_tokenizer("preset:explorer_64", device="cpu")
    assert torch.equal(drawn, expected)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
