"""Rollout behaviour on a small random model: early exit, selection, halting modes, attention, devices."""

import pytest
import torch
from conftest import small_config

from alit_core import ALIT, Criterion, Tokenizer, select_batch_iteration, select_iterations
from alit_core.model.halting import Halting
from alit_core.running.devices import resolve_device, resolve_dtype
from alit_core.running.rollout import rollout


@pytest.fixture(scope="module")
def tok():
    torch.manual_seed(0)
    return Tokenizer(ALIT(small_config()), "cpu")


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(3)
    flat = torch.full((3, 64, 64), 0.5)
    return torch.stack([flat, torch.rand(3, 64, 64, generator=g)])


class PassCounter:
    def __init__(self, module):
        self.n = 0
        self.handle = module.register_forward_hook(self)

    def __call__(self, *_):
        self.n += 1


@pytest.mark.parametrize("kwargs, passes", [
    (dict(threshold=10.0), 1),        # met by every image at once
    (dict(tokens=8), 2),              # a budget of two iterations (4 latents each)
    (dict(threshold=0.0), 4),         # never met: all iterations, then the lowest-L1 fallback
])
def test_encode_stops_as_soon_as_every_image_is_done(tok, images, kwargs, passes):
    enc_counter, dec_counter = PassCounter(tok.model.encoder), PassCounter(tok.model.decoder)
    try:
        enc = tok.encode(images, **kwargs)
    finally:
        enc_counter.handle.remove()
        dec_counter.handle.remove()
    assert enc_counter.n == passes and dec_counter.n == passes
    assert enc.iterations_run == passes
    assert enc.l1_history.shape == (passes, 2)


def test_encode_picks_per_image_and_matches_select_iterations(tok, images):
    full = tok.encode(images, threshold=0.0)
    l1 = full.l1_history
    # a threshold between the two images' best errors: one image meets it, the other falls back
    lo, hi = sorted(l1.min(dim=0).values.tolist())
    thr = (lo + hi) / 2
    enc = tok.encode(images, threshold=thr)
    assert enc.iterations_run == 4  # one image never meets it, so every iteration ran
    met = [float(enc.l1_history[:, i].nan_to_num(nan=float("inf")).min()) < thr for i in range(2)]
    assert sorted(met) == [False, True]
    assert enc.iterations == select_iterations(l1[: enc.iterations_run], criterion=Criterion.make(thr))
    assert [4 * (i + 1) for i in enc.iterations] == enc.num_tokens
    assert len(enc.latents) == 2 and enc.latents[0].shape == (enc.num_tokens[0], 96)
    assert enc.codes[1].shape == (enc.num_tokens[1],)
    for i in range(2):
        assert enc.l1[i] == pytest.approx(float(enc.l1_history[enc.iterations[i], i]))
    assert enc.recon.shape == (2, 3, 64, 64)


def test_encode_drops_decided_images_from_the_batch(tok, images):
    full = tok.encode(images, threshold=0.0).l1_history
    lo, hi = sorted(full.min(dim=0).values.tolist())
    thr = (lo + hi) / 2  # one image meets it early, the other never does
    batches = []
    hook = tok.model.encoder.register_forward_hook(lambda _m, args, _o: batches.append(args[0].shape[0]))
    try:
        kept = tok.encode(images, threshold=thr, drop_decided=False)
        dropped = tok.encode(images, threshold=thr)
    finally:
        hook.remove()
    done = min(range(2), key=lambda i: kept.iterations[i] if float(kept.l1[i]) < thr else 99)
    k = dropped.iterations[done]
    assert k < 3
    assert batches[:4] == [2, 2, 2, 2]  # drop_decided=False: both images run every iteration
    assert batches[4:] == [2] * (k + 1) + [1] * (3 - k)  # then the decided image leaves
    # the same answer, image by image
    assert dropped.iterations == kept.iterations and dropped.num_tokens == kept.num_tokens
    assert dropped.l1 == pytest.approx(kept.l1, abs=1e-6)
    torch.testing.assert_close(dropped.recon, kept.recon, rtol=0, atol=1e-5)
    for a, b in zip(dropped.latents, kept.latents):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    # its history stops where it left
    assert torch.isnan(dropped.l1_history[k + 1 :, done]).all()
    assert torch.isfinite(dropped.l1_history[:, 1 - done]).all() and torch.isfinite(kept.l1_history).all()
    # stochastic halting draws for the whole batch: nobody leaves
    batches.clear()
    hook = tok.model.encoder.register_forward_hook(lambda _m, args, _o: batches.append(args[0].shape[0]))
    try:
        tok.encode(images, threshold=thr, halting="stochastic", seed=0)
    finally:
        hook.remove()
    assert batches == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="keep="):
        list(tok.rollout(images, decode="batched", keep=lambda: torch.tensor([True, False])))


def test_selection_rules():
    l1 = torch.tensor([[0.30, 0.10], [0.20, 0.12], [0.25, 0.05]])  # (T=3, B=2)
    psnr = -10 * torch.log10(l1)  # image 0: 5.2, 7.0, 6.0 dB; image 1: 10.0, 9.2, 13.0 dB
    assert select_iterations(l1, criterion=Criterion.make(threshold=0.21)) == [1, 0]
    assert select_iterations(l1, criterion=Criterion.make(threshold=0.11)) == [1, 0]  # image 0 falls back
    assert select_iterations(l1, criterion=Criterion.make(threshold=0.01)) == [1, 2]  # fallback: lowest L1
    assert select_iterations(l1, psnr, Criterion.make(psnr=9.5)) == [1, 0]
    assert select_iterations(l1, psnr, Criterion.make(psnr=100.0)) == [1, 2]  # fallback: highest PSNR
    assert select_iterations(l1, criterion=Criterion.make(tokens=64)) == [1, 1]
    assert select_iterations(l1, criterion=Criterion.make(tokens=1000)) == [2, 2]
    # batch means 0.20, 0.16, 0.15: strictly below the threshold, else the lowest
    assert select_batch_iteration(l1, 0.17) == 1
    assert select_batch_iteration(l1, 0.16) == 2
    assert select_batch_iteration(l1, 0.01) == 2


def test_a_budget_selects_the_largest_count_that_fits(tok, images):
    """Counts come in steps: a budget between two counts gets the lower one, never more tokens than it
    allows; a budget under the first count gets the first; one beyond the last gets the last."""
    l1 = torch.rand(5, 2, generator=torch.Generator().manual_seed(0))  # 32, 64, ..., 160 tokens
    pick = lambda budget: select_iterations(l1, criterion=Criterion.make(tokens=budget), tokens_per_iteration=32)
    assert pick(130) == [3, 3]  # 128 tokens, not 160
    assert pick(127) == [2, 2] and pick(128) == [3, 3]
    assert pick(20) == [0, 0] and pick(1000) == [4, 4]
    enc = tok.encode(images, tokens=11)  # 4 latents per iteration: 8 fits, 12 does not
    assert enc.num_tokens == [8, 8] and enc.iterations_run == 2  # and the rollout stops there
    assert tok.encode(images, tokens=12).num_tokens == [12, 12]


def test_criterion_validation():
    with pytest.raises(ValueError, match="at most one"):
        Criterion.make(threshold=0.1, psnr=20)
    with pytest.raises(ValueError, match="positive whole number"):
        Criterion.make(tokens=33.5)
    assert Criterion.make() == Criterion("l1", 0.07)
    with pytest.raises(ValueError, match="unknown criterion 'L1 threshold'"):
        Criterion("L1 threshold", 0.1)  # a page's label is not a kind: never read as L1
    with pytest.raises(ValueError, match="not both"):
        Criterion.of(Criterion.make(psnr=20), threshold=0.1)
    with pytest.raises(TypeError, match="must be a Criterion"):
        Criterion.of("l1")
    assert Criterion.of(None, psnr=20) == Criterion("psnr", 20.0) == Criterion.of(Criterion("psnr", 20.0))


def test_one_rule_says_whether_a_selection_reached_its_target():
    """The stopping rule (met, per iteration) and a selection's verdict (reached) compare the same way:
    strictly below an L1 threshold, at or above a PSNR target; a budget is reached by any count within it."""
    l1 = Criterion.make(threshold=0.05)
    assert l1.reached(64, 0.0499, 0.0) and not l1.reached(64, 0.05, 99.0)
    assert l1.met(64, torch.tensor([0.0499, 0.05]), torch.tensor([0.0, 0.0])).tolist() == [True, False]
    psnr = Criterion.make(psnr=25)
    assert psnr.reached(32, 1.0, 25.0) and not psnr.reached(32, 0.0, 24.99)
    assert psnr.met(32, torch.tensor([1.0, 1.0]), torch.tensor([25.0, 24.99])).tolist() == [True, False]
    budget = Criterion.make(tokens=100)
    assert budget.reached(96, 1.0, 0.0) and not budget.reached(128, 0.0, 99.0)


def test_a_criterion_goes_to_encode_whole(tok, images):
    """encode(criterion=...) gives what the keyword gives; a CachedRollout takes it too; not both at once."""
    for crit, kw in ((Criterion.make(tokens=8), dict(tokens=8)), (Criterion.make(psnr=10.0), dict(psnr=10.0)),
                     (Criterion.make(threshold=0.0), dict(threshold=0.0))):
        whole, keyword = tok.encode(images, criterion=crit), tok.encode(images, **kw)
        assert whole.num_tokens == keyword.num_tokens and whole.criterion == keyword.criterion == crit
        assert tok.cached_rollout(images).encode(criterion=crit).num_tokens == whole.num_tokens
    with pytest.raises(ValueError, match="not both"):
        tok.encode(images, 0.1, criterion=Criterion.make(tokens=8))
    with pytest.raises(ValueError, match="official L1 rule"):
        tok.encode(images, criterion=Criterion.make(psnr=20), per_batch=True)


def test_halting_modes(tok, images):
    # halting acts on the logits (p_gt), not on pixels: no rollout here needs the VQGAN decoder
    off = list(tok.rollout(images, halting="off", decode=False))
    assert all(s.halt_mask is None for s in off)
    det = list(tok.rollout(images, halting="deterministic", decode=False))
    for s in det:
        assert torch.equal(s.halt_mask, s.p_gt >= 0.55)
    a = [s.halt_mask for s in tok.rollout(images, halting="stochastic", seed=5, decode=False)]
    b = [s.halt_mask for s in tok.rollout(images, halting="stochastic", seed=5, decode=False)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    masks = torch.zeros(4, 2, 256, dtype=torch.bool)
    masks[0, 0, :128] = True
    replay = list(tok.rollout(images, halting=masks, decode=False))
    assert torch.equal(replay[0].halt_mask, masks[0])
    assert torch.equal(replay[0].logits, off[0].logits)  # masks act only after an iteration
    assert not torch.equal(replay[1].logits[0], off[1].logits[0])  # image 0 was masked
    assert torch.allclose(replay[1].logits[1], off[1].logits[1], atol=1e-5)  # image 1 was not


@pytest.mark.parametrize("halting, message", [
    ("sometimes", "unknown halting mode 'sometimes'"),
    (torch.zeros(4, 2, 256), "bool tensor"),
    (torch.zeros(4, 2, 7, dtype=torch.bool), "replayed mask 0 has shape"),
])
def test_bad_halting(tok, images, halting, message):
    with pytest.raises(ValueError, match=message):
        list(tok.rollout(images, halting=halting))


@pytest.mark.parametrize("shape, message", [((2, 3, 32, 32), r"\(B, 3, 64, 64\)"), ((2, 1, 64, 64), "shape"),
                                            ((0, 3, 64, 64), "empty batch")])
def test_bad_image_batches(tok, shape, message):
    with pytest.raises(ValueError, match=message):
        list(tok.rollout(torch.zeros(shape)))


def test_attention_options(tok, images):
    s = list(tok.rollout(images, attention_layers=-1, attention_heads="all", max_iterations=2))[-1]
    assert set(s.attention) == {1}
    assert s.attention[1].shape == (2, 2, 1 + 256 + 8, 1 + 256 + 8)
    assert torch.allclose(s.attention[1].sum(-1), torch.ones(2, 2, 265), atol=1e-5)
    mean = list(tok.rollout(images, attention_layers="all", max_iterations=2))[-1]
    assert set(mean.attention) == {0, 1}
    assert torch.allclose(mean.attention[1], s.attention[1].mean(1), atol=1e-6)
    with pytest.raises(ValueError, match="layer 5 does not exist"):
        list(tok.rollout(images, attention_layers=5))


def test_decode_off_and_max_iterations(tok, images):
    steps = list(tok.rollout(images, decode=False, max_iterations=2))
    assert len(steps) == 2 and steps[-1].recon is None and steps[-1].l1 is None
    assert steps[-1].num_tokens == 8


def test_rollout_is_deterministic_and_leaves_no_grad(tok, images):
    a = list(tok.rollout(images))[-1]
    b = list(tok.rollout(images))[-1]
    assert torch.equal(a.recon, b.recon)
    assert not a.logits.requires_grad
    assert torch.is_grad_enabled()  # contexts do not leak into the caller between steps


def test_precisions_on_cpu(tok, images):
    ref = list(tok.rollout(images, max_iterations=1))[0]
    for dtype in ("bfloat16", "float16"):
        other = Tokenizer(tok.model, "cpu", dtype)
        s = list(other.rollout(images, max_iterations=1))[0]
        assert s.logits.dtype == torch.float32
        assert (s.logits - ref.logits).abs().max() < 0.5
        assert torch.equal(s.targets, ref.targets)  # the VQGAN encoding stays float32
    tok.to(dtype="float32")


def test_device_and_dtype_errors():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        resolve_dtype("int8", torch.device("cpu"))
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16


def test_auto_precision_is_the_one_that_measures_clearly_faster(monkeypatch):
    from alit_core.running import devices

    rates = {torch.bfloat16: 0.6, torch.float32: 37.0}  # GFLOP/s on an AVX2-only AMD EPYC (session 11)
    monkeypatch.setattr(devices, "matmul_rate", lambda dtype, device="cpu", **kw: rates[dtype])
    # 40 against 37: faster, but within the margin
    for bf16, expected in ((0.6, torch.float32), (260.0, torch.bfloat16), (40.0, torch.float32)):
        rates[torch.bfloat16] = bf16
        devices.faster_precision.cache_clear()
        assert resolve_dtype("auto", torch.device("cpu")) == expected
        rates[torch.bfloat16] = 1e6  # measured once per device: a second call does not measure again
        assert resolve_dtype("auto", torch.device("cpu")) == expected
    assert devices.faster_precision("meta") == "float32"  # not a CPU or a GPU: nothing measured, no autocast
    devices.faster_precision.cache_clear()
    monkeypatch.undo()
    # the probe leaves the global random stream alone, so a seeded run's weights do not depend on it
    torch.manual_seed(5)
    first = torch.rand(3)
    torch.manual_seed(5)
    assert devices.matmul_rate(torch.float32, "cpu", size=32, seconds=0.001) > 0
    assert torch.equal(torch.rand(3), first)


def test_encode_without_a_criterion_uses_the_models_threshold(images):
    from dataclasses import replace

    torch.manual_seed(0)
    model = ALIT(small_config())
    base = Tokenizer(model, "cpu")
    run = base.cached_rollout(images)
    run.complete()
    l1, _ = run.history()
    assert base.default_threshold == 0.07  # the official value, for models that record none
    # a threshold between the two images' first-iteration L1: one stops at once, the other does not
    cut = float(l1[0].mean())
    model.cfg = replace(model.cfg, selection_threshold=cut)
    tok = Tokenizer(model, "cpu")
    assert tok.default_threshold == cut
    assert tok.encode(images).num_tokens == tok.encode(images, threshold=cut).num_tokens
    assert tok.cached_rollout(images).encode().num_tokens == tok.encode(images, threshold=cut).num_tokens
    assert Criterion.make(default=0.3) == Criterion("l1", 0.3)


def test_explicit_attention_gives_the_fused_results():
    from alit_core.model.transformer import use_fused_attention

    torch.manual_seed(0)
    model = ALIT(small_config()).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fused = [s.logits for s in rollout(model, x, halting=Halting.make("off"), decode=False)]
        use_fused_attention(model, False)
        assert not any(getattr(m, "fused", False) for m in model.modules())
        explicit = [s.logits for s in rollout(model, x, halting=Halting.make("off"), decode=False)]
    for a, b in zip(fused, explicit):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_base_reconstruction_is_the_vqgan_decoding_each_images_own_codes(tok, images):
    from alit_core.analysis.metrics import l1_error

    alone = tok.base_reconstruction(images)
    vq = tok.model.vqgan
    with torch.inference_mode():
        codes = vq.indices(vq.encode(images))
        expected = vq.decode_indices(codes)
    assert torch.allclose(alone.recon, expected, atol=1e-5)
    assert torch.equal(alone.l1, l1_error(alone.recon, images)) and alone.psnr.shape == (len(images),)
    # the same from the images' tokens, which a rollout then reuses
    tokens = tok.image_tokens(images)
    assert torch.equal(tok.base_reconstruction(tokens).recon, alone.recon)
    # a prediction that puts all its mass on the true codes draws exactly that
    from alit_core.running.rollout import reconstruct

    with torch.inference_mode():
        onehot = torch.nn.functional.one_hot(tokens.targets, tok.config.vqgan.codebook_size).float()
        assert torch.allclose(reconstruct(tok.model, onehot), alone.recon, atol=1e-5)


def test_base_reconstruction_of_a_vae_model_decodes_its_latents(vae_model):
    from alit_core import load_tokenizer

    vae = load_tokenizer(vae_model, device="cpu")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    tokens = vae.image_tokens(x)  # the posterior mean
    alone = vae.base_reconstruction(x)
    with torch.inference_mode():
        expected = vae.model.reconstruct_latents(tokens.targets)
    assert torch.allclose(alone.recon, expected, atol=1e-5) and alone.l1.shape == (2,)
