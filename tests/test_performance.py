"""Speed machinery on a small random model: FLOP counts, the inference options (weight cache,
channels-last, batched decoding, float32 pixels), cached rollouts, and the benchmark's output.
No wall-clock times are asserted."""

import json

import pytest
import torch
from conftest import small_config, small_karl_config
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from alit_core import ALIT, CachedRollout, InferenceOptions, Tokenizer, VQGANConfig, count_flops, save_checkpoint
from alit_core.model.transformer import MLP
from alit_core.running.inference import FastLinear, FastMLP, inference, inference_model, onednn_linear_available
from benchmarks.timing import matmul_peak, timed


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ALIT(small_config()).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(3)
    return torch.stack([torch.full((3, 64, 64), 0.5), torch.rand(3, 64, 64, generator=g)])


def _cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs):
    # FlopCounterMode knows the CUDA attention kernels but not the CPU one; same formula.
    return sdpa_flop_count(q, k, v)


@pytest.mark.parametrize("changes", [{}, dict(quantize_latents=False, decoder_width=64, decoder_heads=2,
                                              decoder_depth=1)])
@pytest.mark.parametrize("decode", [False, True])
@pytest.mark.parametrize("decoder_rows", [True, False])
def test_flop_count_matches_flop_counter_mode(changes, decode, decoder_rows, images):
    torch.manual_seed(0)
    cfg = small_config(**changes)
    tok = Tokenizer(ALIT(cfg), "cpu", options=InferenceOptions(decoder_rows=decoder_rows))
    with FlopCounterMode(display=False, custom_mapping={
            torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa}) as counter:
        list(tok.rollout(images, halting="off", decode=decode))
    assert counter.get_total_flops() == 2 * count_flops(cfg, decoder_rows=decoder_rows).rollout(decode=decode)


@pytest.mark.parametrize("quantized", [True, False])
@pytest.mark.parametrize("decode", [False, True])
def test_flop_count_matches_flop_counter_mode_vae(quantized, decode, images):
    from alit_core import VAEConfig

    # attention at 16 px in the encoder and 32 px in the decoder: both kinds of level are counted
    vae = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(16,),
                    decoder_attn_resolutions=(32,))
    cfg = small_config(vae=vae, quantize_latents=quantized, iterations=3)
    torch.manual_seed(0)
    tok = Tokenizer(ALIT(cfg), "cpu")
    with FlopCounterMode(display=False, custom_mapping={
            torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa}) as counter:
        list(tok.rollout(images, halting="off", decode=decode))
    f = count_flops(cfg)
    assert f.soft_codes == 0 and f.image_tokens == 2 * 256 * 3 * (96 - 16) * 4 * 4  # the patch embedding alone
    assert counter.get_total_flops() == 2 * f.rollout(decode=decode)


def tiny_karl_config(vae: bool, quantized: bool):
    """A tiny KARL with a narrower one-layer decoder, so that both widths are counted."""
    from alit_core import VAEConfig

    base = dict(vae=VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1,
                              encoder_attn_resolutions=(16,), decoder_attn_resolutions=(32,))) if vae else {}
    return small_karl_config(decoder_width=64, decoder_depth=1, decoder_heads=2, quantize_latents=quantized, **base)


@pytest.mark.parametrize("vae", [False, True], ids=["vqgan", "vae"])
@pytest.mark.parametrize("quantized", [True, False], ids=["quantized", "continuous"])
@pytest.mark.parametrize("decode", [False, True])
def test_karl_flop_count_matches_flop_counter_mode(vae, quantized, decode, images):
    from alit_core import KARL, KARLTokenizer

    cfg = tiny_karl_config(vae, quantized)
    torch.manual_seed(0)
    tok = KARLTokenizer(KARL(cfg), "cpu")
    with FlopCounterMode(display=False, custom_mapping={
            torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa}) as counter:
        tok.tokenize(images, budget=48, quality=0.05, decode=decode)  # halting masks the decoder: same count
    f = count_flops(cfg, budget=48)
    assert f.budget == 48 and (f.soft_codes == 0) == vae
    assert counter.get_total_flops() == 2 * f.single_pass(decode=decode)
    assert count_flops(cfg).budget == 64  # encode's T = 256, capped at the model's largest budget


def test_karl_flop_count_of_karl_small_beside_alit_small():
    from alit_core import KARL_PRESETS, get_preset

    karl, alit = count_flops(KARL_PRESETS["karl_small_vqgan_quantized"]), count_flops(get_preset("small"))
    assert karl.budget == 256 and karl.vqgan_encode == alit.vqgan_encode and karl.vqgan_decode == alit.vqgan_decode
    # one pass at T = 256 costs about what ALIT's last iteration (256 tokens) costs, not its 8 iterations
    last = alit.encoder[-1] + alit.bottleneck[-1] + alit.decoder[-1]
    assert karl.transformer == pytest.approx(last, rel=0.05) and karl.transformer < alit.transformer / 4
    assert karl.single_pass(True) == karl.single_pass(False) + karl.reconstruction
    assert json.loads(json.dumps(karl.as_dict()))["single_pass_with_decode"] == karl.single_pass(True)
    with pytest.raises(ValueError, match="no iterations"):
        count_flops(KARL_PRESETS["karl_small_vqgan_quantized"], iterations=2)
    with pytest.raises(ValueError, match="budget= is KARL's"):
        count_flops(get_preset("small"), budget=64)


def test_decoder_rows_change_no_result(model, images):
    """Skipping the decoder rows nobody reads: same logits, and the attention of a requested
    last layer still covers every row."""
    full = list(Tokenizer(model, "cpu", options=InferenceOptions(decoder_rows=False)).rollout(images, decode=False))
    read = list(Tokenizer(model, "cpu").rollout(images, decode=False))
    for a, b in zip(full, read):
        torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=2e-5)
        assert torch.equal(a.halt_mask, b.halt_mask)
    last = model.cfg.dec_depth - 1
    with_maps = list(Tokenizer(model, "cpu").rollout(images, decode=False, attention_layers=last))
    length = 1 + model.cfg.num_positions + model.cfg.tokens_at(0)
    assert with_maps[0].attention[last].shape == (2, length, length)
    torch.testing.assert_close(with_maps[0].logits, full[0].logits, rtol=0, atol=2e-5)
    assert count_flops(model.cfg).decoder[0] < count_flops(model.cfg, decoder_rows=False).decoder[0]


@pytest.mark.parametrize("side", [8, 16, 32])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_group_norm_on_channels_last_maps(side, dtype):
    from alit_core.model.vqgan import GroupNorm

    torch.manual_seed(0)
    gn = GroupNorm(32, 64, eps=1e-6)
    torch.nn.init.normal_(gn.weight)
    torch.nn.init.normal_(gn.bias)
    x = torch.randn(2, 64, side, side).to(dtype)
    with torch.inference_mode():
        want = torch.nn.functional.group_norm(x.float(), 32, gn.weight, gn.bias, 1e-6)
        got = gn.to(dtype)(x.contiguous(memory_format=torch.channels_last))
    assert got.is_contiguous(memory_format=torch.channels_last) and got.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 0.05
    torch.testing.assert_close(got.float(), want, rtol=0, atol=tol)


def test_flop_count_of_alit_small_is_the_issue_figure():
    from alit_core import get_preset

    f = count_flops(get_preset("small"))
    assert f.transformer == pytest.approx(1.4e12, rel=0.02)  # "about 1.4 TFLOP"
    assert f.iterations == 8 and len(f.decoder) == 8
    assert f.rollout(True) == f.rollout(False) + 8 * f.reconstruction
    assert json.loads(json.dumps(f.as_dict()))["transformer"] == f.transformer


def test_batched_and_chunked_decoding_give_the_streamed_pixels(model, images):
    streamed = list(Tokenizer(model, "cpu", options=InferenceOptions(decode_pixels=0)).rollout(images))
    batched = list(Tokenizer(model, "cpu").rollout(images, decode="batched"))
    one_by_one = list(Tokenizer(model, "cpu", options=InferenceOptions(decode_pixels=1)).rollout(
        images, decode="batched"))
    assert [s.iteration for s in batched] == list(range(4))
    for a, b, c in zip(streamed, batched, one_by_one):
        assert torch.equal(a.logits, b.logits)
        # other batch shapes sum in another order: float32 rounding (the parity tolerance is 2e-4)
        assert float((a.recon - b.recon).abs().max()) < 1e-4 and float((a.recon - c.recon).abs().max()) < 1e-4
        assert torch.allclose(a.l1, b.l1, atol=1e-6) and torch.allclose(a.psnr, c.psnr, atol=1e-3)
    with pytest.raises(ValueError, match="decode must be"):
        list(Tokenizer(model, "cpu").rollout(images, decode="later"))


def test_channels_last_agrees_with_the_plain_layout(model, images):
    fast = list(Tokenizer(model, "cpu").rollout(images, max_iterations=2))
    plain = list(Tokenizer(model, "cpu", options=InferenceOptions.plain()).rollout(images, max_iterations=2))
    for a, b in zip(fast, plain):
        assert torch.equal(a.targets, b.targets)
        assert float((a.recon - b.recon).abs().max()) < 1e-4
        assert a.recon.is_contiguous()


def test_weight_cache_is_bit_identical_to_autocast_and_follows_weight_updates(images):
    torch.manual_seed(0)
    model = ALIT(small_config()).eval()
    cached = Tokenizer(model, "cpu", "bfloat16", InferenceOptions(fused_linear=False))
    uncached = Tokenizer(model, "cpu", "bfloat16", InferenceOptions(weight_cache=False))
    a, b = list(cached.rollout(images, max_iterations=2)), list(uncached.rollout(images, max_iterations=2))
    for s, t in zip(a, b):
        assert torch.equal(s.logits, t.logits) and torch.equal(s.recon, t.recon)
    fc = model.encoder.transformer[0].mlp.c_fc
    mlp = cached.inference_model.encoder.transformer[0].mlp
    assert mlp.__dict__["_kept_weights"][(id(fc.weight), "cast")][1].dtype == torch.bfloat16
    assert "_kept_weights" not in model.encoder.transformer[0].mlp.__dict__  # the model itself is untouched
    with torch.no_grad():
        fc.weight.mul_(1.5)  # an in-place update (as an optimiser makes) must not leave a stale copy
    a, b = list(cached.rollout(images, max_iterations=2)), list(uncached.rollout(images, max_iterations=2))
    assert torch.equal(a[1].logits, b[1].logits)


needs_onednn_bf16 = pytest.mark.skipif(not onednn_linear_available(), reason="no oneDNN bfloat16 on this CPU")


@needs_onednn_bf16
def test_fused_linear_is_the_linear_and_gelu_to_bfloat16_rounding():
    torch.manual_seed(0)
    mlp = MLP(64, 256)
    fc = mlp.c_fc
    x = torch.randn(2, 37, 64)
    with torch.no_grad():
        pre = x @ fc.weight.T + fc.bias
        ref = torch.nn.functional.gelu(pre)
    fast = inference_model(mlp, InferenceOptions())
    with inference(torch.device("cpu"), torch.bfloat16):
        fused = fast.linear(x, fc.weight, fc.bias, gelu=True)
        plain = fast.c_fc(x)
    assert isinstance(fast, FastMLP) and isinstance(fast.c_fc, FastLinear) and type(mlp.c_fc) is torch.nn.Linear
    assert fused.dtype == torch.bfloat16 and fused.shape == (2, 37, 256)
    assert (id(fc.weight), "packed") in fast.__dict__["_kept_weights"]
    # bfloat16 inputs and weights: relative error of a few bfloat16 ulps (2^-8)
    assert float((fused.float() - ref).abs().max()) < 0.03 * float(ref.abs().max())
    assert float((plain.float() - pre).abs().max()) < 0.03 * float(ref.abs().max())
    with inference(torch.device("cpu"), torch.bfloat16):
        unfused = inference_model(mlp, InferenceOptions(fused_linear=False)).linear(x, fc.weight, fc.bias, gelu=True)
    assert float((fused.float() - unfused.float()).abs().max()) < 0.02 * float(ref.abs().max())


@needs_onednn_bf16
def test_fused_linear_rollout_agrees_with_autocast(images):
    torch.manual_seed(0)
    model = ALIT(small_config()).eval()
    fused = list(Tokenizer(model, "cpu", "bfloat16").rollout(images))
    unfused = list(Tokenizer(model, "cpu", "bfloat16", InferenceOptions(fused_linear=False)).rollout(images))
    for a, b in zip(fused, unfused):
        assert not torch.equal(a.logits, b.logits)  # the fused path really ran
        assert float((a.logits - b.logits).abs().max()) < 0.05 * float(b.logits.abs().max())
        assert float((a.l1 - b.l1).abs().max()) < 2e-3


def test_inference_options_stay_inside_the_tokenizer(model, images):
    """Each tokenizer runs its own copy of the model's modules over the same parameters; the model
    stays plain PyTorch, and two tokenizers with other options do not see each other's settings."""
    fast, plain = Tokenizer(model, "cpu", "bfloat16"), Tokenizer(model, "cpu", options=InferenceOptions.plain())
    for _ in fast.rollout(images, max_iterations=1):
        assert not torch.is_inference_mode_enabled()  # nothing leaks into the caller between steps
    assert type(model.encoder.transformer[0].mlp) is MLP and not hasattr(model, "options")
    assert fast.inference_model.encoder.transformer[0].mlp.options == InferenceOptions()
    assert plain.inference_model.encoder.transformer[0].mlp.options == InferenceOptions.plain()
    assert plain.inference_model.decoder_rows is False and fast.inference_model.decoder_rows is True
    assert fast.inference_model.vqgan.decoder_layout == torch.channels_last
    assert model.vqgan.decoder_layout is None and model.decoder_rows is True
    ours = dict(fast.inference_model.named_parameters())
    assert all(ours[name] is p for name, p in model.named_parameters())  # shared, not copied
    with pytest.raises(AttributeError):
        fast.options = InferenceOptions.plain()  # fixed with the tokenizer


def test_float32_pixels_decodes_the_bfloat16_logits_in_float32(model, images):
    tok = Tokenizer(model, "cpu", "bfloat16", InferenceOptions(float32_pixels=True))
    step = list(tok.rollout(images, max_iterations=1))[0]
    with torch.no_grad():
        ref = model.reconstruct(step.logits)
    assert float((step.recon - ref).abs().max()) < 1e-4


def test_cached_rollout_reuses_iterations_across_thresholds(model, images):
    tok = Tokenizer(model, "cpu")
    full = tok.encode(images, threshold=0.0)  # never met: every iteration, lowest-L1 fallback
    calls = []
    hook = model.encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        run = tok.cached_rollout(images)
        assert isinstance(run, CachedRollout) and len(run) == 0
        met = run.encode(threshold=10.0)  # met at once
        assert met.iterations_run == 1 and len(calls) == 1
        low = run.encode(threshold=0.0)  # needs every iteration
        assert len(calls) == 4 and len(run) == 4
        again = run.encode(threshold=0.0)
        budget = run.encode(tokens=8)
        assert len(calls) == 4  # nothing recomputed
    finally:
        hook.remove()
    assert low.iterations == full.iterations == again.iterations
    assert torch.equal(low.l1_history, full.l1_history) and torch.equal(low.recon, full.recon)
    assert budget.num_tokens == [8, 8]
    assert run.history()[0].shape == (4, 2)
    assert run.step(3) is run.steps[3] and len(run.complete()) == 4
    with pytest.raises(IndexError):
        run.step(4)


def test_image_tokens_are_reusable_across_halting_modes(model, images):
    tok = Tokenizer(model, "cpu")
    tokens = tok.image_tokens(images)
    for halting in ("off", "deterministic"):
        a = list(tok.rollout(tokens, halting, max_iterations=2))
        b = list(tok.rollout(images, halting, max_iterations=2))
        assert all(torch.equal(s.logits, t.logits) and torch.equal(s.recon, t.recon) for s, t in zip(a, b))
    enc = tok.encode(tokens, threshold=0.0)
    assert enc.iterations == tok.encode(images, threshold=0.0).iterations
    other = Tokenizer(ALIT(small_config(width=128)), "cpu")
    with pytest.raises(ValueError, match="another model"):
        list(other.rollout(tokens))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("decoder_rows", [True, False])
def test_operator_profile_accounts_for_every_flop_and_all_the_time(dtype, decoder_rows, images):
    from benchmarks.operator_profile import operator_profile

    torch.manual_seed(0)
    cfg = small_config()
    tok = Tokenizer(ALIT(cfg), "cpu", dtype, InferenceOptions(decoder_rows=decoder_rows))
    prof = operator_profile(tok, tok.image_tokens(images), peak_gflops=100.0, repeats=1)
    rows = {r["kind"]: r for r in prof["rows"]}
    # the profiler's products and attention kernels add up to the configuration's count
    counted = sum(r.get("gflop", 0.0) for r in prof["rows"]) * 1e9
    assert counted == pytest.approx(len(images) * count_flops(cfg, decoder_rows=decoder_rows).transformer, rel=1e-9)
    assert sum(r["share"] for r in prof["rows"]) == pytest.approx(1.0)
    assert prof["profiled_s"] == pytest.approx(sum(r["time_s"] for r in prof["rows"]))
    w = cfg.width
    qkv = rows[f"matrix product {w} -> {3 * w}"]
    assert qkv["alone_rows"] == len(images) * (1 + cfg.num_positions + cfg.max_tokens)  # the longest call
    assert qkv["alone_gflops_per_s"] > 0 and qkv["fraction_of_peak"] == pytest.approx(qkv["gflops_per_s"] / 100)
    assert rows["attention (fused)"]["gflop"] > 0
    assert "gflop" not in rows["other (norms, adds, casts, copies, halting)"]


def test_timing_helpers():
    t = timed(lambda: torch.ones(100).sum(), repeats=3)
    assert t.runs == 3 and t.min_s <= t.median_s <= t.max_s and t.peak_memory_mb > 0
    assert matmul_peak(torch.float32, size=128, repeats=2) > 0


def test_benchmark_json_on_a_tiny_model(tmp_path, capsys, images):
    from PIL import Image

    from benchmarks.rollout_speed import main

    torch.manual_seed(0)
    cfg = small_config(depth=1, iterations=2, vqgan=VQGANConfig(resolution=32, ch=32, ch_mult=(1, 1, 2),
                                                                num_res_blocks=1, z_channels=64, codebook_size=128))
    ckpt = save_checkpoint(ALIT(cfg), tmp_path / "tiny.pt")
    img = tmp_path / "img.png"
    Image.fromarray((images[1].permute(1, 2, 0).numpy() * 255).astype("uint8")).save(img)
    out = tmp_path / "res"
    assert main(["--checkpoint", str(ckpt), "--repeats", "1", "--dtype", "float32", "bfloat16", "--images",
                 str(img), "--throughput", "2", "--peak-size", "256", "--operators", "--json", "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert json.loads(out.with_suffix(".json").read_text())[0]["config"] == res["config"]
    assert "| measurement |" in out.with_suffix(".md").read_text()
    assert "Where the bfloat16 transformer's time goes" in out.with_suffix(".md").read_text()
    assert {r["kind"] for r in res["operators"]["float32"]["rows"]} >= {"attention (fused)"}
    assert set(res["matmul_peak_gflops"]) == {"float32", "bfloat16"}
    assert set(res["rows"]) >= {"official", "float32", "bfloat16"}
    for key in ("one_iteration", "transformer", "rollout_no_decode", "rollout_with_decode", "vqgan_encode",
                "vqgan_decode", "images"):
        row = res["rows"]["bfloat16"][key]
        assert row["min_s"] <= row["median_s"] <= row["max_s"] and row["peak_memory_mb"] > 0
    t = res["rows"]["bfloat16"]["transformer"]
    assert t["gflop"] == pytest.approx(count_flops(cfg).transformer / 1e9)
    assert 0 < t["fraction_of_peak"] and t["gflops_per_s"] > 0
    assert res["rows"]["official"]["images"]["tokens"] and res["throughput"][0]["images"] == 2
    assert res["ablation"][0]["speedup_vs_official"] == 1.0
    assert set(res["agreement"]["bfloat16"]) >= {"recon_max_abs_diff", "l1_max_abs_diff"}
    assert res["summary"]["bfloat16"]["rollout_speedup"] > 0
    per_image = res["rows"]["bfloat16"]["images"]["per_image_s"]
    assert len(per_image) == 1 and 0 < per_image[0] <= res["rows"]["bfloat16"]["images"]["max_s"]
    assert res["summary"]["bfloat16"]["encode_images_mean_per_image_speedup"] > 0


def test_benchmark_karl_beside_alit_on_tiny_models(tmp_path, capsys):
    from alit_core import KARL, KARLTokenizer
    from benchmarks.karl_vs_alit import RATIOS
    from benchmarks.rollout_speed import main

    torch.manual_seed(0)
    alit_cfg = small_config(depth=1, iterations=2)
    alit = save_checkpoint(ALIT(alit_cfg), tmp_path / "alit.pt")
    karl_model = KARL(tiny_karl_config(vae=False, quantized=True))
    karl = save_checkpoint(KARLTokenizer(karl_model, "cpu"), tmp_path / "karl.pt")
    out = tmp_path / "karl_vs_alit"
    assert main(["--checkpoint", str(alit), "--karl", str(karl), "--repeats", "1", "--dtype", "float32", "bfloat16",
                 "--peak-size", "128", "--json", "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert json.loads(out.with_suffix(".json").read_text())[0]["rows"].keys() == res["rows"].keys() == {
        "float32", "bfloat16"}
    rows = res["rows"]["bfloat16"]
    assert list(rows) == ["alit_one_iteration", "alit_rollout_no_decode", "alit_rollout_with_decode",
                          "karl_pass_no_decode", "karl_pass_with_decode", "karl_budget_sweep"]
    assert rows["karl_pass_no_decode"]["name"] == "KARL: one pass at T = 8, no pixels (its estimated count)"
    assert rows["alit_rollout_no_decode"]["name"] == "ALIT: full rollout, no pixels (2 iterations, 4, 8 tokens)"
    karl_flops = count_flops(tiny_karl_config(vae=False, quantized=True), budget=8)
    assert rows["karl_pass_with_decode"]["gflop"] == pytest.approx(karl_flops.single_pass(True) / 1e9)
    assert rows["alit_rollout_with_decode"]["gflop"] == pytest.approx(count_flops(alit_cfg).rollout(True) / 1e9)
    for row in rows.values():
        assert row["min_s"] <= row["median_s"] <= row["max_s"] and row["dtype"] == "bfloat16"
    assert set(res["summary"]["float32"]) == set(RATIOS) and all(v > 0 for v in res["summary"]["float32"].values())
    assert len(res["karl_count"]["float32"]) == 1 and 0 <= res["karl_count"]["float32"][0] <= 8
    assert res["config"]["karl"]["width"] == 96 and res["config"]["karl"]["decoder"] == [64, 1, 2]
    md = out.with_suffix(".md").read_text()
    assert "### KARL single pass beside ALIT rollout" in md and "| KARL: budget sweep + pixels (2 passes" in md
    assert "ALIT rollout + pixels / KARL pass + pixels" in md and "load average" in md

    # KARL with ALIT's sizes: the same transformer and base tokenizer, random weights
    assert main(["--checkpoint", str(alit), "--karl", str(karl), "--karl-sizes-from-alit", "--repeats", "1",
                 "--dtype", "float32", "--peak-size", "128", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    a, k = res["config"]["alit"], res["config"]["karl"]
    assert [k[f] for f in ("width", "depth", "heads", "decoder", "resolution", "grid", "base")] == [
        a[f] for f in ("width", "depth", "heads", "decoder", "resolution", "grid", "base")]
    with pytest.raises(ValueError, match="must name an ALIT model and --karl a KARL model"):
        main(["--checkpoint", str(karl), "--karl", str(alit), "--repeats", "1"])


def test_benchmark_rows_name_the_base_tokenizer(images):
    from alit_core import VAEConfig
    from benchmarks.rollout_speed import measure_tokenizer

    torch.manual_seed(0)
    vae = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(16,))
    vae_tok = Tokenizer(ALIT(small_config(vae=vae, depth=1, iterations=2)), "cpu")
    vq_tok = Tokenizer(ALIT(small_config(depth=1, iterations=2)), "cpu")
    which = ("transformer", "vqgan_encode", "vqgan_decode")
    vae_rows = measure_tokenizer(vae_tok, images[:1], 1, None, "", which)
    vq_rows = measure_tokenizer(vq_tok, images[:1], 1, None, "", which)
    assert [r["name"] for r in vae_rows.values()] == [
        "transformer only (2 iterations from cached VAE tokens)", "VAE encoding (+ targets, patch embedding)",
        "VAE decode"]
    assert [r["name"] for r in vq_rows.values()] == [
        "transformer only (2 iterations from cached VQGAN tokens)", "VQGAN encoding (+ targets, patch embedding)",
        "VQGAN decode"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_benchmark_on_cuda(tmp_path, capsys):
    from benchmarks.rollout_speed import main

    torch.manual_seed(0)
    ckpt = save_checkpoint(ALIT(small_config()), tmp_path / "tiny.pt")
    assert main(["--checkpoint", str(ckpt), "--device", "cuda", "--repeats", "2", "--dtype", "float32", "bfloat16",
                 "float16", "--no-images", "--throughput", "4", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["device"].startswith("cuda") and "gpu" in res["machine"]
    assert res["rows"]["bfloat16"]["rollout_with_decode"]["peak_memory_mb"] > 0  # max_memory_allocated
    assert res["agreement"]["float32"]["recon_max_abs_diff"] < 1e-3


def test_the_throughput_table_names_the_models_base_tokenizer():
    from benchmarks.dataset_throughput import variants

    rows = variants(128, 32, 1, "cpu", "VAE")
    assert [v.dtype for v in rows] == ["float32"] * 5 + ["bfloat16"] * 2 and rows[0].batch == 1 and not rows[0].early_exit
    named = " ".join(v.name for v in rows)
    assert "VQGAN" not in named and "(VAE decodes one image per call)" in named and "batched VAE decodes" in named
