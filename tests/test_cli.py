"""The command line, run in-process through alit_core.cli.main."""

import json

import numpy as np
import pytest
import torch
from conftest import small_config, small_karl_config
from PIL import Image

from alit_core import ALIT, BUNDLED_MODELS, KARL, KARLTokenizer, Tokenizer, load_image, load_tokenizer, save_checkpoint
from alit_core.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(Tokenizer(ALIT(small_config()), "cpu"), tmp_path_factory.mktemp("ck") / "small.pt")


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(path)
    return path


def test_encode_json(checkpoint, photo, capsys):
    assert main(["encode", str(photo), "--checkpoint", str(checkpoint), "--tokens", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and out[0]["num_tokens"] == 8 and out[0]["iteration"] == 1
    assert out[0]["iterations_run"] == 2 and len(out[0]["per_iteration"]) == 2
    assert [it["tokens"] for it in out[0]["per_iteration"]] == [4, 8]


def test_encode_table_and_bad_image(checkpoint, photo, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    code = main(["encode", str(photo), str(bad), "--checkpoint", str(checkpoint), "--threshold", "0"])
    captured = capsys.readouterr()
    assert code == 1  # one image failed, the other was still encoded
    assert "iteration 3:" in captured.out and "<- selected" in captured.out
    assert "no iteration met L1 < 0: the lowest-error one" in captured.out
    assert "notes.png" in captured.err and "not an image" in captured.err
    assert "Traceback" not in captured.err


def test_encode_in_batches_gives_the_one_by_one_results(capsys):
    from pathlib import Path

    # the bundled model on its samples: their error curves are far apart at the threshold, so
    # batching (other rounding) cannot move a selection
    paths = [str(p) for p in sorted((Path(__file__).resolve().parent.parent / "assets" / "samples").glob("*.png"))]
    assert main(["encode", *paths, "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["encode", *paths, "--json", "--batch", "4"]) == 0
    batched = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in batched] == paths
    assert [r["num_tokens"] for r in batched] == [r["num_tokens"] for r in one]
    assert len({r["num_tokens"] for r in one}) > 2
    for a, b in zip(one, batched):
        # each image reports the iterations it ran, though its batch may have run more
        assert b["iterations_run"] == a["iterations_run"] == len(b["per_iteration"]) > b["iteration"]
        assert [it["l1"] for it in b["per_iteration"]] == pytest.approx([it["l1"] for it in a["per_iteration"]], abs=1e-5)
    assert main(["encode", *paths, "--batch", "0"]) == 2


def test_missing_checkpoint_is_a_message(photo, tmp_path, capsys):
    code = main(["encode", str(photo), "--checkpoint", str(tmp_path / "nope.pt")])
    assert code == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_info(checkpoint, capsys):
    assert main(["info", str(checkpoint), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["width"] == 96
    model = ALIT(small_config())
    assert info["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert main(["info", "preset:base"]) == 0
    assert "768 wide x 12 layers x 12 heads" in capsys.readouterr().out
    assert main(["info", "bundled:v2-preview"]) == 0  # a bundled model by name
    out = capsys.readouterr().out
    assert out.startswith(str(BUNDLED_MODELS["v2-preview"])) and "resolution 128 px, 16x16 grid" in out


@pytest.fixture(scope="module")
def karl_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(KARLTokenizer(KARL(small_karl_config()), "cpu"), tmp_path_factory.mktemp("ck") / "karl.pt")


def test_encode_a_karl_model_gives_its_own_count(karl_checkpoint, photo, capsys):
    tok = load_tokenizer(karl_checkpoint, device="cpu")
    x = load_image(photo, size=64)[None]
    assert main(["encode", str(photo), "--checkpoint", str(karl_checkpoint), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    want = tok.encode(x)
    assert out == [{"image": str(photo), "family": "karl", "num_tokens": want.num_tokens[0], "budget": 64,
                    "l1": round(want.l1[0], 6), "psnr": round(want.psnr[0], 3),
                    "criterion": {"kind": "l1", "value": 0.05}}]
    assert main(["encode", str(photo), "--checkpoint", str(karl_checkpoint), "--threshold", "0.2",
                 "--budget", "32"]) == 0
    want = tok.encode(x, 0.2, budget=32)
    assert capsys.readouterr().out.startswith(
        f"{photo}: {want.num_tokens[0]} tokens of 32 (KARL's one-pass estimate for a desired L1 of 0.2; "
        f"reconstruction from them: L1 {want.l1[0]:.4f}")
    # what only ALIT has is refused for KARL, and the other way round
    assert main(["encode", str(photo), "--checkpoint", str(karl_checkpoint), "--tokens", "8", "--halting", "off"]) == 2
    assert "--tokens, --halting: not for a KARL model" in capsys.readouterr().err
    assert main(["encode", str(photo), "--checkpoint", str(karl_checkpoint), "--budget", "65"]) == 2
    assert "--budget must be from 1 to 64 (this model's largest), not 65" in capsys.readouterr().err


def test_encode_refuses_a_budget_for_alit(checkpoint, photo, capsys):
    assert main(["encode", str(photo), "--checkpoint", str(checkpoint), "--budget", "8"]) == 2
    assert "--budget: not for an ALIT model" in capsys.readouterr().err


def test_info_on_karl_files_and_presets(karl_checkpoint, tmp_path, capsys):
    assert main(["info", str(karl_checkpoint), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    model = KARL(small_karl_config())
    assert info["family"] == "karl" and info["config"]["max_tokens"] == 64 and info["config"]["width"] == 96
    assert info["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert info["parameters"]["other"] == 0  # the halting head and quality embeddings count as the encoder's

    # an official file (official key names, heads not in the tensors)
    sd = {("base_tokenizer." + k if k.startswith("vqgan.") else k): v
          for k, v in torch.load(karl_checkpoint, weights_only=True)["state_dict"].items()}
    torch.save({"ema": sd}, tmp_path / "official.pth")
    assert main(["info", str(tmp_path / "official.pth")]) == 0
    captured = capsys.readouterr()
    assert "pass --heads N; showing 1 head" in captured.err
    assert main(["info", str(tmp_path / "official.pth"), "--heads", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == info["parameters"]

    assert main(["info", "preset:karl_small_vqgan_quantized"]) == 0
    out = capsys.readouterr().out
    assert "KARL: resolution 256 px, 16x16 grid" in out and "1024 wide x 8 layers x 8 heads" in out
    assert "one pass over up to 512 latents (encode: T = 256), 12-d latents, quantised (4096 codes)" in out
    assert "19 desired-L1 bins 0.005 ... 0.38 (default 0.05)" in out and "VQGAN ch 128" in out
    assert main(["info", "preset:karl_small_vae_continuous"]) == 0
    out = capsys.readouterr().out
    assert "continuous" in out and "KL-16 VAE" in out and "code error" not in out
    assert main(["info", "preset:small"]) == 0
    assert "ALIT: resolution 256 px" in capsys.readouterr().out
