"""End-to-end: the app started on a free port, driven through gradio_client."""

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--concurrency", "2"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    client = None
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail("the app exited: " + proc.stdout.read()[-2000:])
        try:
            client = Client(url, verbose=False)
            break
        except Exception:
            time.sleep(1)
    if client is None:
        proc.kill()
        pytest.fail("the app did not start within 120 s")
    yield url, client
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_tokenize_an_example(server):
    _, client = server
    out = client.predict(handle_file(str(SAMPLES[3])), 0.07, "deterministic", 8, api_name="/tokenize")
    its = out["iterations"]
    assert len(its) == 8 and [it["tokens"] for it in its] == [32 * (t + 1) for t in range(8)]
    assert all(0 < it["l1"] < 1 and it["psnr"] > 0 for it in its)
    assert out["selected_tokens"] in [it["tokens"] for it in its]
    # the same image through the library gives the same numbers
    from alit_core import load_image, load_tokenizer

    tok = load_tokenizer(device="cpu")
    steps = list(tok.rollout(load_image(SAMPLES[3], size=tok.resolution)[None]))
    assert [float(s.l1[0]) for s in steps] == pytest.approx([it["l1"] for it in its], abs=1e-5)


def test_bad_file_is_a_clear_error_and_the_server_keeps_serving(server, tmp_path):
    _, client = server
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(Exception, match="not an image|truncated|corrupt"):
        client.predict(handle_file(str(bad)), 0.07, "deterministic", 8, api_name="/tokenize")
    out = client.predict(handle_file(str(SAMPLES[0])), 0.07, "deterministic", 2, api_name="/tokenize")
    assert len(out["iterations"]) == 2


def test_four_clients_at_once(server):
    url, _ = server

    def one(i):
        c = Client(url, verbose=False)
        return c.predict(handle_file(str(SAMPLES[i % len(SAMPLES)])), 0.07, "deterministic", 8,
                         api_name="/tokenize")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))
    assert all(len(r["iterations"]) == 8 for r in results)
