"""The app's model cache: which sources a server loads, and how many models it keeps in memory."""

import pytest
import torch
from conftest import small_config

from alit_core import ALIT, save_checkpoint
from app.explorer import BUNDLED, ModelCache


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        path = root / f"model{seed}.pt"
        save_checkpoint(ALIT(small_config()), path)
        paths.append(str(path))
    return paths


def test_public_server_refuses_typed_paths_but_loads_its_own_models(checkpoints):
    cache = ModelCache(checkpoints[0], "cpu", local_paths=False)
    assert cache.get(None).config.width == small_config().width  # the default: the --checkpoint file
    with pytest.raises(ValueError, match="only the listed models, not local files.*--local-checkpoints"):
        cache.get(checkpoints[1])
    with pytest.raises(ValueError, match="not local files"):
        cache.get("/etc/passwd")
    assert cache.peek(None) is not None and cache.peek(checkpoints[1]) is None  # in memory: the default alone


def test_least_recently_used_models_are_dropped_but_the_default_stays(checkpoints):
    cache = ModelCache(None, "cpu", capacity=1)
    default = cache.get(BUNDLED)
    first = cache.get(checkpoints[0])
    assert cache.get(checkpoints[0]) is first  # loaded once
    second = cache.get(checkpoints[1])  # over capacity: checkpoints[0] goes, the default stays
    assert cache.peek(checkpoints[0]) is None and cache.peek(checkpoints[1]) is second
    assert cache.get(None) is default
    assert cache.get(checkpoints[0]) is not first  # reloaded on demand
    assert cache.peek(checkpoints[1]) is None and cache.peek(BUNDLED) is default


def test_a_slow_load_holds_up_no_one_else_and_loads_once(checkpoints, monkeypatch):
    """A released checkpoint downloading for one visitor: the others' models are served meanwhile, a second
    asker for the same model waits for that one load, and capacity 0 keeps just the model asked for."""
    import threading

    from app import explorer

    real, release, calls = explorer.load_tokenizer, threading.Event(), []

    def load(source, **kwargs):
        calls.append(source)
        if source == checkpoints[2]:
            assert release.wait(30)  # "downloading"
        return real(source, **kwargs)

    monkeypatch.setattr(explorer, "load_tokenizer", load)
    cache = ModelCache(None, "cpu", capacity=0)
    default = cache.get(BUNDLED)
    got = []
    slow = [threading.Thread(target=lambda: got.append(cache.get(checkpoints[2]))) for _ in range(2)]
    for t in slow:
        t.start()
    while calls.count(checkpoints[2]) < 1:
        threading.Event().wait(0.01)
    # while it loads: the default and another model come at once (the cache's lock is not held)
    assert cache.get(None) is default
    other = cache.get(checkpoints[0])
    assert other.config.width == small_config().width
    release.set()
    for t in slow:
        t.join(30)
    assert len(got) == 2 and got[0] is got[1] and calls.count(checkpoints[2]) == 1  # loaded once, for both
    # capacity 0: only the default and the model asked for last stay
    assert cache.peek(checkpoints[2]) is got[0] and cache.peek(checkpoints[0]) is None
    assert cache.get(checkpoints[1]).config.width == small_config().width and cache.peek(checkpoints[2]) is None


def test_a_bundled_model_is_read_when_chosen_and_named_either_way(checkpoints):
    """`known` reads a bundled model at once (its threshold fills the box) but never downloads or fails; with
    the v2 preview as the server's default, the default bundled model is still there as "bundled:default"."""
    from app.layout import model_choices

    cache = ModelCache(None, "cpu", local_paths=False)
    assert cache.known("bundled:v2-preview").resolution == 128
    assert cache.known("bundled:v3") is None and cache.known("official:in100-small-vqgan-quantized") is None
    assert cache.known(checkpoints[1]) is None  # a path this server refuses: no error either
    preview = ModelCache("bundled:v2-preview", "cpu", local_paths=False)
    assert preview.get(BUNDLED).resolution == 128 and preview.get("bundled:default").resolution == 64
    choices = model_choices("bundled:v2-preview")
    assert choices[:2] == [BUNDLED, "bundled:default"] and "bundled:v2-preview" not in choices
    assert model_choices("official:in100-small-vqgan-quantized").count("official:in100-small-vqgan-quantized") == 0


def test_a_page_on_a_vae_model_offers_only_the_halting_it_takes(tmp_path):
    """A server started on the v2 preview (a VAE model: no stochastic halting): Explore's and both Compare
    sides' halting lists are its own from the first page, not every mode until a model is chosen."""
    from app.files import OutputDir
    from app.layout import make_page

    _, ui, _ = make_page(ModelCache("bundled:v2-preview", "cpu"), ["cpu"], "cpu", OutputDir(tmp_path))
    for dropdown in (ui.halting, ui.cmp_halting_a, ui.cmp_halting_b):
        assert [value for _, value in dropdown.choices] == ["deterministic", "off"]
        assert dropdown.value == "deterministic"
    _, ui, _ = make_page(ModelCache(None, "cpu"), ["cpu"], "cpu", OutputDir(tmp_path / "v1"))
    assert [value for _, value in ui.cmp_halting_a.choices] == ["deterministic", "stochastic", "off"]
