"""The command line, run in-process through alit_core.cli.main."""

import json

import numpy as np
import pytest
import torch
from conftest import small_config
from PIL import Image

from alit_core import ALIT, Tokenizer, save_checkpoint
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
