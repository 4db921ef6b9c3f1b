"""Shared fixtures. The reference data lives in ../shared (beside the project, never copied in);
tests that need it skip with a visible reason in a plain clone."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "alit_reference"
TINY = REFERENCE / "tiny"
MANIFESTS = REFERENCE / "manifests"

needs_reference = pytest.mark.skipif(
    not (TINY / "state_dict.pt").exists(),
    reason=f"official reference outputs not found at {TINY} (they sit beside the project in ../shared)",
)


# Torch threads per test: 2 (the reference was recorded with 2), or 1 in each of pytest-xdist's worker
# processes, which already keep both cores busy (2 threads each would oversubscribe them, and torch's
# OpenMP threads then wait on each other for whole time slices).
TEST_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2


@pytest.fixture(scope="session", autouse=True)
def _session_threads():
    """The same for module- and session-scoped fixtures, which pytest sets up before any function-scoped
    one: with torch's default of one thread per core they oversubscribed the cores (test_app_batch's
    module fixture took 126 s instead of 8 s beside another busy process)."""
    torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def _test_threads():
    prev = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="session")
def reference_tokenizer():
    from alit_core import from_official

    return from_official(config=TINY / "config.json", state_dict=TINY / "state_dict.pt", device="cpu")


@pytest.fixture(scope="session")
def io_nohalt():
    return torch.load(TINY / "io_nohalt.pt", weights_only=True)


@pytest.fixture(scope="session")
def io_halt():
    return torch.load(TINY / "io_halt.pt", weights_only=True)


def small_config(**changes):
    """A tiny ALIT for fast tests: 64 px, 16x16 grid (patch 4), 2-layer transformers."""
    from alit_core import ALITConfig, VQGANConfig

    base = dict(
        width=96, depth=2, heads=2, latents_per_iteration=4, iterations=4, latent_codebook_size=64,
        vqgan=VQGANConfig(resolution=64, ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, z_channels=64,
                          codebook_size=128),
        patch_size=4,
    )
    base.update(changes)
    return ALITConfig(**base)


def small_karl_config(**changes):
    """A tiny KARL for fast tests: small_config's sizes and VQGAN, budgets up to 64 latents."""
    from alit_core import KARLConfig

    base = dict(width=96, depth=2, heads=2, patch_size=4, latent_codebook_size=64, max_tokens=64, max_grid=32,
                halting_hidden=32, vqgan=small_config().vqgan)
    base.update(changes)
    return KARLConfig(**base)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A fake photo index: noise backgrounds, opaque-square stamps and clip art, both splits."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    entries = []
    for i in range(4):
        p = root / f"bg{i}.png"
        Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(p)
        entries.append({"path": p.name, "role": "background", "split": "train" if i else "val",
                        "width": 120, "height": 90, "package": "fake", "version": "0", "licence": "CC0", "sha256": ""})
    for i in range(3):
        p = root / f"obj{i}.png"
        a = np.zeros((40, 40, 4), dtype=np.uint8)
        a[5:35, 5:35] = (255, 40 * i, 0, 255)
        Image.fromarray(a, "RGBA").save(p)
        entries.append({"path": p.name, "role": "object", "split": "train" if i else "val",
                        "width": 40, "height": 40, "package": "fake", "version": "0", "licence": "CC0", "sha256": ""})
    for i, split in enumerate(("train", "val")):
        p = root / f"clip{i}.png"
        a = np.zeros((48, 48, 4), dtype=np.uint8)
        a[:, 16:32] = (0, 0, 255, 255)
        Image.fromarray(a, "RGBA").save(p)
        entries.append({"path": p.name, "role": "clipart", "split": split, "width": 48, "height": 48,
                        "package": "fake", "version": "0", "licence": "CC0", "sha256": ""})
    (root / "index.json").write_text(json.dumps(entries))
    cfg = root / "model.json"
    cfg.write_text(json.dumps(small_config().to_dict()))
    return root


# --- a fake source tree for alit_train.data (tests/test_data*.py; its files in fake_packages.py) ---------
@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    """<tmp>/sources: three fake packages (backgrounds, stamps, scikit-image's data), as fetching leaves them."""
    from fake_packages import write_fake_sources

    return write_fake_sources(tmp_path_factory.mktemp("data") / "sources")


@pytest.fixture(scope="module")
def fake_index(fake_root) -> list[dict]:
    from alit_train import data as D

    return D.build_index(fake_root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_page(tmp_path_factory):
    """The page built in this process, (demo, ui, handlers) on the bundled model: the handler-level app tests
    share it (building it takes seconds)."""
    from app.explorer import ModelCache
    from app.files import OutputDir
    from app.layout import make_page

    return make_page(ModelCache(None, "cpu"), ["cpu"], "cpu", OutputDir(tmp_path_factory.mktemp("outputs")))


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The app (`python app.py`) on a free port, started once for every app test: (url, Client)."""
    client_lib = pytest.importorskip("gradio_client")
    port = free_port()
    # A file, not a pipe: nobody reads the app's output while tests run, and a full pipe (every
    # refused upload logs a traceback) would block the server.
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    log = open(log_path, "w")
    # Offline on purpose: an empty checkpoint cache and a proxy that refuses every connection, so a released
    # checkpoint chosen in a test is never downloaded (gigabytes) but always gets the offline message.
    # (and the server's torch threads are the tests', for the same reason as TEST_THREADS)
    offline = "http://127.0.0.1:9"
    env = {**os.environ, "ALIT_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "http_proxy": offline,
           "https_proxy": offline, "HTTP_PROXY": offline, "HTTPS_PROXY": offline, "no_proxy": "127.0.0.1,localhost",
           "NO_PROXY": "127.0.0.1,localhost", "OMP_NUM_THREADS": str(TEST_THREADS)}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--concurrency", "2"], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    client = None
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail("the app exited: " + log_path.read_text()[-2000:])
        try:
            client = client_lib.Client(url, verbose=False)
            break
        except Exception:
            time.sleep(1)
    if client is None:
        proc.kill()
        pytest.fail("the app did not start within 120 s: " + log_path.read_text()[-2000:])
    yield url, client
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()



# --- the browser suite (tests/test_browser_*.py; helpers in browser_page.py) --------------------------
@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium for one browser test file (playwright imported here, only when asked for: the
    browser files skip themselves without it). Per file, not per session: while playwright's sync API
    is open the main thread looks as if an asyncio loop were running, which would break a later test
    file that calls asyncio.run (gradio_client does)."""
    from browser_page import CHROMIUM
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def visitor(chromium, app_server):
    from browser_page import Page

    page = Page(chromium, app_server[0])
    yield page
    page.close()


@pytest.fixture(scope="session")
def library():
    """The bundled model in this process: the counts the page shows are checked against it."""
    from alit_core import load_tokenizer

    return load_tokenizer(device="cpu")


@pytest.fixture(scope="session")
def vae_model(tmp_path_factory):
    """A small model on the VAE base tokenizer (4 iterations of 4 tokens; no stochastic halting), as a file."""
    from alit_core import ALIT, Tokenizer, VAEConfig, save_checkpoint

    vae = VAEConfig(resolution=64, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, encoder_attn_resolutions=(16,),
                    decoder_attn_resolutions=())
    torch.manual_seed(0)
    return str(save_checkpoint(Tokenizer(ALIT(small_config(vae=vae)), "cpu"),
                               tmp_path_factory.mktemp("vae") / "vae.pt"))

# --- a generated dataset folder (encode-dataset, the Dataset tab) -------------------------------------
KINDS = ("flat", "shapes", "stripes", "noise")
# noise runs every iteration and costs the most: one image in eight
CYCLE = ("flat", "shapes", "stripes", "noise", "flat", "shapes", "stripes", "shapes")


def make_image(kind: str, rng: np.random.Generator) -> Image.Image:
    h, w = (int(v) for v in rng.integers(40, 97, size=2))
    if kind == "flat":
        a = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3)).copy()
    elif kind == "shapes":
        a = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3)).copy()
        for _ in range(3):
            y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
            a[y : y + rng.integers(8, h // 2 + 9), x : x + rng.integers(8, w // 2 + 9)] = rng.integers(0, 256, 3)
    elif kind == "stripes":
        period = int(rng.integers(3, 12))
        a = np.zeros((h, w, 3), np.uint8)
        a[:, (np.arange(w) // period) % 2 == 0] = rng.integers(0, 256, 3)
    else:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(a)


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    """A dataset folder for encode-dataset, n images: class folders by kind, every tenth directly in root; PNG and JPEG."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        kind = CYCLE[i % len(CYCLE)]
        folder = root if i % 10 == 9 else root / kind
        folder.mkdir(parents=True, exist_ok=True)
        ext = ".jpg" if i % 3 == 0 else ".png"
        make_image(kind, rng).save(folder / f"{kind}_{i:05d}{ext}")
    return root


@pytest.fixture(scope="session")
def encoded_dataset(tmp_path_factory):
    """(folder, results.parquet): 24 generated images (4 classes and a few loose files) encoded by the
    bundled model, the results file beside the folder as `encode-dataset images --out results.parquet`
    puts it."""
    pytest.importorskip("pyarrow")
    from alit_core import DatasetEncodeConfig, encode_dataset

    base = tmp_path_factory.mktemp("dataset")
    folder = make_folder(base / "images", 24)
    out = base / "results.parquet"
    encode_dataset(DatasetEncodeConfig(root=folder, out=out, workers=0, progress=False, shard_size=8))
    return folder, out
