"""encode-dataset: rows, worker processes, torchrun with 2 processes, resuming after a kill, bad files.

The bundled model on a generated folder of tiny images (flat, shapes, stripes, noise), so that
early exit is real: flat images stop at the first iteration, noise runs to the end. Every run
here uses one thread per process, so that rows from different runs (and ranks) compare exactly.
"""

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import KINDS, ROOT, make_folder
from PIL import Image

from alit_core import load_image, load_tokenizer
from alit_core.analysis.complexity import MEASURES, complexity
from alit_core.cli import main
from alit_core.datasets.dataset_encoding import (
    COLUMNS,
    DatasetEncodeConfig,
    DatasetEncodeError,
    class_of,
    encode_dataset,
    list_images,
    read_metadata,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

def add_bad_files(root: Path) -> dict[str, str]:
    """The bad files and a word their reason must contain."""
    good = root / "flat" / "flat_00000.jpg"
    data = good.read_bytes()
    (root / "flat" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "shapes" / "text.png").write_text("not an image at all\n")
    (root / "empty.jpg").write_bytes(b"")
    (root / "README.txt").write_text("not listed: no image extension")
    (root / ".hidden.png").write_text("not listed: hidden")
    return {"flat/truncated.jpg": "truncated", "shapes/text.png": "not an image", "empty.jpg": "empty"}


def config(root: Path, out: Path, **kw) -> DatasetEncodeConfig:
    kw = {"shard_size": 4, "batch": 4, "workers": 0, "device": "cpu", "progress": False, **kw}
    return DatasetEncodeConfig(root=root, out=out, **kw)


@pytest.fixture
def one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def env_one_thread() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("images"), 20)


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    """The folder encoded by one process, in-process, no workers."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("ref") / "results.parquet"
        result = encode_dataset(config(folder, out))
    finally:
        torch.set_num_threads(prev)
    assert result.images == 20 and result.failed == 0 and result.shards == 5
    return out


def same_file(a: Path, b: Path) -> None:
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.schema.equals(tb.schema, check_metadata=True)
    assert ta.equals(tb)
    assert a.read_bytes() == b.read_bytes()


def test_rows_are_the_encoding_of_each_image(folder, reference):
    table = pq.read_table(reference)
    assert table.column_names == list(COLUMNS)
    rows = table.to_pylist()
    assert [r["path"] for r in rows] == list_images(folder) == sorted(r["path"] for r in rows)
    assert {r["class"] for r in rows} == {*KINDS, None}
    assert all(r["class"] == class_of(r["path"]) for r in rows)
    assert not (reference.parent / "results.parquet.parts").exists()  # the work folder goes after the merge
    assert (reference.parent / "results.errors.csv").read_text().splitlines() == ["path,reason"]

    assert len({r["num_tokens"] for r in rows}) >= 3  # early exit is real: flat images stop early, noise does not
    tok = load_tokenizer(device="cpu")
    some = rows[::3]  # encoding them again costs time; a third says as much
    images = torch.stack([load_image(folder / r["path"], size=tok.resolution) for r in some])
    enc = tok.encode(images)
    assert [r["num_tokens"] for r in some] == enc.num_tokens
    for i, r in enumerate(some):
        t = r["iteration"]
        assert r["num_tokens"] == tok.config.tokens_at(t) and len(r["l1"]) == len(r["psnr"])
        # an image that met the threshold stopped there; one that did not ran every iteration
        assert len(r["l1"]) == (t + 1 if r["met"] else tok.config.iterations)
        assert r["met"] == (r["l1"][t] < tok.default_threshold)
        ran = ~torch.isnan(enc.l1_history[:, i])
        np.testing.assert_allclose(r["l1"], enc.l1_history[ran, i].numpy(), atol=1e-5)
        np.testing.assert_allclose(r["psnr"], enc.psnr_history[ran, i].numpy(), atol=1e-2)
        with Image.open(folder / r["path"]) as im:
            assert (r["width"], r["height"]) == im.size
        expected = complexity(images[i])
        assert {m: r[m] for m in MEASURES} == pytest.approx(expected)

    meta = read_metadata(reference)
    assert meta["criterion"] == {"kind": "l1", "value": tok.default_threshold}
    assert meta["files"] == 20 and meta["dtype"] == "float32" and meta["checkpoint"]["name"] == "bundled"

    pd = pytest.importorskip("pandas")
    df = pd.read_parquet(reference)
    assert len(df) == 20 and df.groupby("class", dropna=False)["num_tokens"].mean().notna().all()


def test_two_processes_give_exactly_the_rows_of_one(folder, reference, tmp_path):
    out = tmp_path / "results.parquet"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "alit_core", "encode-dataset", str(folder), "--out", str(out), "--shard-size", "4",
           "--batch", "4", "--workers", "0", "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env_one_thread(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 processes" in proc.stderr
    same_file(reference, out)


KILL_AFTER_THREE_SHARDS = """
import os, signal, sys
from alit_core.datasets.dataset_encoding import DatasetEncodeConfig, encode_dataset

def crash(shard):
    if shard == 2:
        os.kill(os.getpid(), signal.SIGKILL)

cfg = DatasetEncodeConfig(root=sys.argv[1], out=sys.argv[2], shard_size=4, batch=4, workers=2, device="cpu",
                          progress=False)
encode_dataset(cfg, on_shard=crash)
"""


def killed_run(script: str, root: Path, out: Path, log: Path) -> None:
    """Run script, which kills itself; its output goes to a file, not a pipe, since the worker
    processes it leaves behind for a moment would hold a pipe open."""
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-c", script, str(root), str(out)], cwd=ROOT, env=env_one_thread(),
                              stdout=f, stderr=subprocess.STDOUT, timeout=3600)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]


def test_killed_run_resumes_to_the_same_file(folder, reference, tmp_path, one_thread):
    """Also: files decoded in worker processes (the killed run) give the rows of files decoded in-process."""
    out = tmp_path / "results.parquet"
    killed_run(KILL_AFTER_THREE_SHARDS, folder, out, tmp_path / "killed.log")
    parts = tmp_path / "results.parquet.parts"
    assert sorted(p.name for p in parts.glob("shard-*.parquet")) == [f"shard-{i:06d}.parquet" for i in range(3)]
    assert not out.exists()

    result = encode_dataset(config(folder, out))
    assert result.shards_skipped == 3 and result.images == 20
    same_file(reference, out)


def test_bad_files_are_listed_and_skipped(small_folder, tmp_path, one_thread, capsys):
    import csv
    import shutil

    root = shutil.copytree(small_folder, tmp_path / "images")
    bad = add_bad_files(root)
    out = tmp_path / "results.parquet"
    assert main(["encode-dataset", str(root), "--out", str(out), "--shard-size", "4", "--batch", "4",
                 "--workers", "1", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "3 bad files skipped" in err and "results.errors.csv" in err
    with open(tmp_path / "results.errors.csv") as f:
        listed = {r["path"]: r["reason"] for r in csv.DictReader(f)}
    assert set(listed) == set(bad)
    for path, word in bad.items():
        assert word in listed[path] and path.split("/")[-1] in listed[path]
    assert [r["path"] for r in pq.read_table(out).to_pylist()] == list_images(small_folder)


def interrupted(folder: Path, cfg: DatasetEncodeConfig, after: int) -> None:
    def stop(shard):
        if shard == after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_dataset(cfg, on_shard=stop)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("small"), 6)


def test_resume_needs_the_same_settings(small_folder, tmp_path, one_thread):
    out = tmp_path / "r.parquet"
    cfg = config(small_folder, out, shard_size=2, batch=2)
    interrupted(small_folder, cfg, after=0)
    with pytest.raises(DatasetEncodeError, match=r"other settings \(criterion"):
        encode_dataset(replace(cfg, psnr=30.0))
    assert encode_dataset(cfg).shards_skipped == 1
    with pytest.raises(DatasetEncodeError, match="--overwrite"):
        encode_dataset(cfg)
    interrupted(small_folder, replace(cfg, overwrite=True), after=1)
    result = encode_dataset(replace(cfg, overwrite=True, restart=True, psnr=30.0))
    assert result.shards_skipped == 0 and read_metadata(out)["criterion"] == {"kind": "psnr", "value": 30.0}


def test_criteria_and_options_reach_the_rows(small_folder, tmp_path, one_thread):
    out = tmp_path / "t.parquet"
    encode_dataset(config(small_folder, out, tokens=64, max_iterations=3, complexity=False))
    table = pq.read_table(out)
    assert not set(MEASURES) & set(table.column_names)
    rows = table.to_pylist()
    assert {r["num_tokens"] for r in rows} == {64} and all(r["met"] and len(r["l1"]) == 2 for r in rows)
    # the official way (every iteration, then select) picks the same counts, with every iteration listed
    out2 = tmp_path / "official.parquet"
    encode_dataset(config(small_folder, out2, early_exit=False))
    encode_dataset(config(small_folder, out, overwrite=True))
    full, early = pq.read_table(out2).to_pylist(), pq.read_table(out).to_pylist()
    assert [r["num_tokens"] for r in full] == [r["num_tokens"] for r in early]
    assert all(len(r["l1"]) == 8 for r in full)


def test_auto_precision_is_resolved_once_and_recorded(small_folder, tmp_path, one_thread, monkeypatch):
    from alit_core.datasets import dataset_encoding

    asked = []
    monkeypatch.setattr(dataset_encoding, "faster_precision", lambda device: asked.append(device) or "float32")
    out = tmp_path / "auto.parquet"
    encode_dataset(config(small_folder, out, dtype="auto", max_iterations=1, complexity=False, device=None))
    from alit_core.running.devices import resolve_device

    assert asked == [resolve_device(None)]  # measured once, on the device it runs on (none asked: the best here)
    assert read_metadata(out)["dtype"] == "float32"  # what ran, not "auto": a resume compares like with like


def test_errors_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetEncodeError, match="no image files"):
        encode_dataset(config(tmp_path / "empty", tmp_path / "o.parquet"))
    with pytest.raises(DatasetEncodeError, match="not a folder"):
        encode_dataset(config(tmp_path / "nowhere", tmp_path / "o.parquet"))
    with pytest.raises(DatasetEncodeError, match="halting"):
        config(tmp_path, tmp_path / "o.parquet", halting="stochastic")
    assert main(["encode-dataset", str(tmp_path / "empty"), "--out", str(tmp_path / "o.parquet")]) == 2
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DatasetEncodeError, match="pip install pyarrow"):
        encode_dataset(config(tmp_path / "empty", tmp_path / "o.parquet"))


def test_importing_alit_core_does_not_import_pyarrow():
    code = "import sys, alit_core, alit_core.cli, alit_core.datasets.dataset_encoding; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_one_thread(), capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


SLOW_IMAGES = 3000


@pytest.mark.slow
def test_thousands_of_images(tmp_path, one_thread):
    """A few thousand images: 1 vs 2 processes, a killed run resumed, bad files among them."""
    root = make_folder(tmp_path / "images", SLOW_IMAGES, seed=1)
    bad = add_bad_files(root)
    common = ["--shard-size", "256", "--batch", "32", "--workers", "1", "--device", "cpu"]
    one = tmp_path / "one.parquet"
    assert main(["encode-dataset", str(root), "--out", str(one), *common, "--quiet"]) == 0
    two = tmp_path / "two.parquet"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "alit_core", "encode-dataset", str(root), "--out", str(two), *common],
                          cwd=ROOT, env=env_one_thread(), capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    same_file(one, two)
    assert len(pq.read_table(one)) == SLOW_IMAGES
    assert (tmp_path / "one.errors.csv").read_text().count("\n") == 1 + len(bad)

    killed = tmp_path / "killed.parquet"
    script = KILL_AFTER_THREE_SHARDS.replace("shard_size=4, batch=4, workers=2", "shard_size=256, batch=32, workers=1")
    killed_run(script, root, killed, tmp_path / "killed.log")
    assert main(["encode-dataset", str(root), "--out", str(killed), *common, "--quiet"]) == 0
    same_file(one, killed)
