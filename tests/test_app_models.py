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
