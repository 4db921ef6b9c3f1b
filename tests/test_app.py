"""End-to-end: the app started on a free port (conftest.app_server), driven through gradio_client."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))


def test_tokenize_an_example(app_server):
    _, client = app_server
    out = client.predict(handle_file(str(SAMPLES[3])), 0.07, "deterministic", 8, api_name="/tokenize")
    its = out["iterations"]
    assert len(its) == 8 and [it["tokens"] for it in its] == [32 * (t + 1) for t in range(8)]
    assert all(0 < it["l1"] < 1 and it["psnr"] > 0 for it in its)
    # the bundled model's error on this example (the cat) falls with every iteration
    l1 = [it["l1"] for it in its]
    assert all(a > b for a, b in zip(l1, l1[1:])), l1
    assert out["selected_tokens"] in [it["tokens"] for it in its]
    # the same image through the library gives the same numbers
    from alit_core import load_image, load_tokenizer

    tok = load_tokenizer(device="cpu")
    steps = list(tok.rollout(load_image(SAMPLES[3], size=tok.resolution)[None]))
    assert [float(s.l1[0]) for s in steps] == pytest.approx([it["l1"] for it in its], abs=1e-5)
    alone = tok.base_reconstruction(load_image(SAMPLES[3], size=tok.resolution)[None])
    assert out["base_tokenizer_alone"] == {"base": "VQGAN", "l1": pytest.approx(float(alone.l1[0]), abs=1e-5),
                                           "psnr": pytest.approx(float(alone.psnr[0]), abs=1e-3)}


def test_bad_file_is_a_clear_error_and_the_server_keeps_serving(app_server, tmp_path):
    _, client = app_server
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(Exception, match="not an image|truncated|corrupt"):
        client.predict(handle_file(str(bad)), 0.07, "deterministic", 8, api_name="/tokenize")
    out = client.predict(handle_file(str(SAMPLES[0])), 0.07, "deterministic", 2, api_name="/tokenize")
    assert len(out["iterations"]) == 2


def test_four_clients_at_once(app_server):
    url, _ = app_server

    def one(i):
        c = Client(url, verbose=False)
        return c.predict(handle_file(str(SAMPLES[i % len(SAMPLES)])), 0.07, "deterministic", 8,
                         api_name="/tokenize")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))
    assert all(len(r["iterations"]) == 8 for r in results)


def test_latency_benchmark_runs(app_server, tmp_path, capsys):
    """The benchmark (`python -m benchmarks.app_latency`, not a test itself) still works against the app: one tiny run."""
    import json

    from benchmarks.app_latency import main

    url, _ = app_server
    out = tmp_path / "latency.json"
    assert main(["--url", url, "--repeats", "1", "--images", str(SAMPLES[0]), "--iterations", "2",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    s = report["summary"]
    assert 0 < s["first_iteration_s"]["median"] <= s["last_iteration_s"]["median"] <= s["done_s"]["median"]
    assert report["runs"][0]["updates"] == 3  # two iterations streamed, then the selection's views
    assert "first iteration" in capsys.readouterr().out


def test_the_floor_note_names_the_base_tokenizer_and_what_it_decodes():
    from alit_core import Criterion
    from app.explorer import Record
    from app.handlers import Handlers

    rec = Record(name="x", image=None, grid=16, tokens=[32, 64], l1=[0.09, 0.08], psnr=[20.0, 21.0],
                 base="VQGAN", base_l1=0.075, base_psnr=21.5)
    l1 = Handlers.selection_md(rec, 1, Criterion.make(threshold=0.06), 2)
    assert "no iteration met it" in l1 and "The VQGAN alone, decoding this image's own codes" in l1
    assert "reaches L1 0.0750" in l1
    assert Handlers.floor_note(rec, Criterion.make(threshold=0.076), met=False) == ""  # the base alone meets it
    assert "reaches 21.50 dB" in Handlers.floor_note(rec, Criterion.make(psnr=22.0), met=False)
    assert Handlers.floor_note(rec, Criterion.make(psnr=21.5), met=False) == ""  # PSNR >= target is met
    rec.base = "VAE"
    assert "The VAE alone, decoding this image's own latents" in Handlers.floor_note(
        rec, Criterion.make(threshold=0.06), met=False)
    rec.base_l1 = None  # KARL records have none
    assert Handlers.floor_note(rec, Criterion.make(threshold=0.06), met=False) == ""
