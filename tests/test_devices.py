"""The same numbers on an accelerator as on the CPU: ALIT (VQGAN and VAE) and KARL, float32 and bfloat16.

Marked `gpu`: they run only when asked for (`python -m pytest -m gpu tests/test_devices.py`) on a
machine with CUDA or MPS, and skip per device when it is absent. `benchmarks/gpu_session.sh` runs them.
"""

import pytest
import torch
from conftest import small_config, small_karl_config

from alit_core import ALIT, KARL, KARLTokenizer, Tokenizer, VAEConfig

pytestmark = pytest.mark.gpu

DEVICES = [
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
    pytest.param("mps", marks=pytest.mark.skipif(not torch.backends.mps.is_available(), reason="no MPS device")),
]
VAE = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(16,))


@pytest.fixture(scope="module")
def images():
    """A flat image and a noisy one (64 px, the tiny models' size)."""
    g = torch.Generator().manual_seed(3)
    return torch.stack([torch.full((3, 64, 64), 0.5), torch.rand(3, 64, 64, generator=g)])


def twin(make, device, dtype):
    """The CPU float32 tokenizer and one on `device` in `dtype`, with the same weights."""
    torch.manual_seed(0)
    cpu = make("cpu", torch.float32)
    other = make(device, dtype)
    other.model.load_state_dict(cpu.model.state_dict())
    return cpu, other


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("base", ["vqgan", "vae"])
def test_alit_rollout_agrees_with_the_cpu(device, dtype, base, images):
    cfg = small_config(vae=VAE) if base == "vae" else small_config()
    cpu, other = twin(lambda d, t: Tokenizer(ALIT(cfg), d, t), device, dtype)
    a = list(cpu.rollout(images, halting="off"))
    b = list(other.rollout(images.to(other.device), halting="off"))
    tol = 1e-3 if dtype == torch.float32 else 3e-2
    for sa, sb in zip(a, b):
        assert (sa.l1 - sb.l1.cpu()).abs().max().item() < tol
    if dtype == torch.float32:  # a threshold between iterations selects the same counts on both
        threshold = float(torch.stack([s.l1 for s in a]).median())
        assert cpu.encode(images, threshold=threshold).num_tokens == other.encode(
            images.to(other.device), threshold=threshold).num_tokens


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_karl_pass_agrees_with_the_cpu(device, dtype, images):
    cpu, other = twin(lambda d, t: KARLTokenizer(KARL(small_karl_config()), d, t), device, dtype)
    a = cpu.tokenize(images, budget=32, quality=0.1)
    b = other.tokenize(images.to(other.device), budget=32, quality=0.1)
    tol = 1e-3 if dtype == torch.float32 else 3e-2
    assert (a.halt_prob - b.halt_prob.float().cpu()).abs().max().item() < tol
    assert (a.l1 - b.l1.cpu()).abs().max().item() < tol
    if dtype == torch.float32:
        # counts agree unless a halting probability sits within the tolerance of the 0.75 cut
        near = ((a.halt_prob - 0.75).abs() < tol).any(dim=1)
        assert all(x == y for x, y, n in zip(a.num_tokens, b.num_tokens, near.tolist()) if not n)
