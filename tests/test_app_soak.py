"""What a long-running server leaves behind is bounded (issue 12, item 4), and the load/soak command
(`python -m benchmarks.app_soak`, not a test itself) works: a few seconds of it against the shared test server."""

import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.files import OutputDir, Pictures, sweep_empty_folders

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "assets" / "samples").glob("*.png"))


# --- the leaks ----------------------------------------------------------------------------------------
def test_a_runs_attention_overlays_are_capped(tmp_path):
    """Every move of the attention sliders writes a fresh overlay; a run kept every one of them, so one
    visitor dragging a slider grew its folder without limit. Now only the newest `fresh_keep` stay."""
    pictures = Pictures(OutputDir(tmp_path), fresh_keep=3)
    pictures.get("recon_0", lambda: np.zeros((8, 8, 3), np.uint8))  # named pictures are not touched
    paths = [pictures.fresh("attention_7_5", np.full((8, 8, 3), i, np.uint8)) for i in range(20)]
    left = sorted(p.name for p in pictures.folder.iterdir())
    assert left == sorted(["recon_0.png", *(Path(p).name for p in paths[-3:])])
    assert all(os.path.exists(p) for p in paths[-3:])


def test_old_empty_cache_folders_are_swept_and_nothing_else(tmp_path):
    """gradio's delete_cache removes old files from its cache but leaves their folders (one per file
    ever served); the sweeper removes those once empty and old, and nothing else."""
    old_empty, new_empty, old_full = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (old_empty, new_empty, old_full):
        d.mkdir()
    (old_full / "picture.png").write_bytes(b"x")
    (tmp_path / "loose.txt").write_text("a file directly in the cache")
    an_hour_ago = time.time() - 3600
    for d in (old_empty, old_full):
        os.utime(d, (an_hour_ago, an_hour_ago))
    assert sweep_empty_folders(tmp_path, older_than_s=60) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c", "loose.txt"]
    assert sweep_empty_folders(tmp_path / "missing", older_than_s=60) == 0


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from app.explorer import ModelCache
    from app.layout import make_page

    return make_page(ModelCache(None, "cpu"), ["cpu"], "cpu", OutputDir(tmp_path_factory.mktemp("outputs")),
                     keep_s=120)


def test_batch_zips_are_unpacked_into_a_folder_that_is_removed(page, tmp_path, monkeypatch):
    """Each Batch call unpacked its zips into a new temporary folder and never removed it."""
    import tempfile

    from app.choices import L1
    from app.explorer import BUNDLED

    _, ui, h = page
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    zipped = tmp_path / "two.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for p in SAMPLES[:2]:
            z.write(p, f"in/{p.name}")
    out = h.batch([str(zipped), str(SAMPLES[2])], BUNDLED, L1, 0.0574, 25, 128, "png_bpp",
                  progress=lambda *a, **k: None)
    assert len(out[ui.batch_table]["value"]) == 3
    assert list(scratch.iterdir()) == []  # nothing unpacked is left


def test_runs_and_served_files_are_dropped_after_keep_s(page):
    demo, ui, _ = page
    assert ui.record.time_to_live == 120  # the run kept for a session (a few MB)
    assert demo.delete_cache == (30, 120)  # gradio deletes its cached copies older than 120 s, every 30 s


def test_app_bounds_sessions_and_sweeps_the_cache(monkeypatch):
    """app.py hands gradio the session cap and the cache age, and starts the folder sweeper."""
    import importlib.util

    import gradio

    # `import app` is the package app/; the script app.py is loaded by its path
    spec = importlib.util.spec_from_file_location("alit_app_main", ROOT / "app.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    seen = {}
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kw: seen.update(launch=kw, blocks=self))
    monkeypatch.setattr(entry, "start_sweeper", lambda root, every_s, older_than_s: seen.update(
        sweeper=(str(root), every_s, older_than_s)))
    assert entry.main(["--max-sessions", "5", "--keep-minutes", "2", "--concurrency", "3"]) == 0
    assert seen["launch"]["state_session_capacity"] == 5
    assert seen["blocks"].delete_cache == (30, 120)
    assert seen["sweeper"] == (gradio.utils.get_upload_folder(), 30.0, 120.0)
    # the events that compute rollouts share one group of --concurrency slots
    groups = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in seen["blocks"].fns.values()}
    assert groups["explore"][0] == groups["batch"][0] == groups["tokenize"][0] == "rollout"


# --- the soak command -----------------------------------------------------------------------------------
def test_bound_check_says_which_limit_broke():
    from benchmarks.app_soak import check_bound

    report = {"memory": {"warm_up_rss_mb": 500.0, "end_rss_mb": 640.0}, "temp_files": {"end": {"mb": 50.0}},
              "errors": {"good_files": 0}, "bad_files": {"unclear": 0}, "queue": {"queued_failed": 0}}
    ok = check_bound(report, max_rss_growth_mb=150, max_temp_mb=100)
    assert ok["held"] and ok["checks"]["rss_growth_mb"] == {"value": 140.0, "limit": 150, "held": True}
    grown = check_bound(report, max_rss_growth_mb=100, max_temp_mb=100)
    assert not grown["held"] and not grown["checks"]["rss_growth_mb"]["held"]
    assert grown["checks"]["temp_files_end_mb"]["held"]
    assert not check_bound(report, 150, 40)["held"]
    assert not check_bound({**report, "errors": {"good_files": 1}}, 150, 100)["held"]
    assert not check_bound({**report, "bad_files": {"unclear": 2}}, 150, 100)["held"]
    assert not check_bound({**report, "queue": {"queued_failed": 1}}, 150, 100)["held"]


def test_soak_a_few_seconds_against_the_test_server(app_server, tmp_path, capsys):
    """Three visitors for 8 s: every action of the mix ran, none failed on good files, every bad file
    got the app's message, the memory was read from the server's process, the report has its keys."""
    from benchmarks.app_soak import REPORT_KEYS, main

    url, _ = app_server
    out = tmp_path / "soak.json"
    rc = main(["--url", url, "--visitors", "3", "--minutes", str(8 / 60), "--warmup", "2", "--concurrency", "2",
               "--out", str(out), "--temp-dir", str(tmp_path / "none"), "--max-rss-growth-mb", "500"])
    report = json.loads(out.read_text())
    assert set(REPORT_KEYS) <= set(report), set(REPORT_KEYS) - set(report)
    assert report["errors"]["good_files"] == 0, report["errors"]
    assert rc == 0, report["bound"]
    lat = report["latency_s"]
    for action in ("explore", "explore_first_iteration", "reselect", "attention", "export", "fetch_files", "batch",
                   "bad_explore"):
        assert lat[action]["n"] >= 1, action
        assert 0 < lat[action]["p50"] <= lat[action]["p95"] <= lat[action]["max"]
    assert lat["explore_first_iteration"]["p50"] < lat["explore"]["p50"]
    bad = report["bad_files"]
    assert bad["sent"] >= 2 and bad["unclear"] == 0 and bad["refused_with_message"] == bad["sent"]
    assert "cannot use image" in bad["example"]
    mem = report["memory"]
    assert report["settings"]["server_pid"] is not None  # found by its listening port
    assert 100 < mem["warm_up_rss_mb"] and 100 < mem["end_rss_mb"]
    assert report["queue"]["jobs"] >= 10 and report["queue"]["queued_failed"] == 0
    assert report["temp_files"]["end"] == {"mb": 0.0, "files": 0, "folders": 0}  # the folder named is empty
    assert set(report["bound"]["checks"]) == {"good_file_errors", "bad_files_without_clear_message",
                                              "queued_jobs_failed", "rss_growth_mb", "temp_files_end_mb"}
    md = out.with_suffix(".md").read_text()
    assert "| explore |" in md and "Bound held" in md
    assert "Bound held" in capsys.readouterr().out


@pytest.mark.slow
def test_soak_starts_its_own_server_and_its_temporary_files_are_cleaned(tmp_path):
    """The command as documented, briefly: its own server, with runs and files kept 15 s, so gradio's
    cache is cleaned during the soak; the visitors beyond --concurrency 1 waited in the queue."""
    from benchmarks.app_soak import main

    out = tmp_path / "soak.json"
    rc = main(["--visitors", "4", "--minutes", "1", "--concurrency", "1", "--keep-minutes", "0.25",
               "--warmup", "15", "--out", str(out)])
    report = json.loads(out.read_text())
    assert rc == 0, report["bound"]
    q = report["queue"]
    assert q["queued_jobs"] >= 1 and q["max_rank"] >= 1 and q["queued_failed"] == 0
    temp = report["temp_files"]
    assert temp["end"]["mb"] < temp["peak_mb"]  # files were deleted while the visitors went on


def test_the_bad_file_example_is_the_apps_refusal_whichever_action_came_first():
    from benchmarks.app_soak import bad_file_summary

    rows = [("batch", "broken.png", True, "batch broken.png: 5 image(s) ... skipped broken.png"),
            ("bad_explore", "broken.png", True, "<div class='alit-status-error'>cannot use image broken.png")]
    summary = bad_file_summary(rows)
    assert summary["example"].startswith("bad_explore broken.png: ") and summary["unclear"] == 0
    assert bad_file_summary(rows[:1])["example"].startswith("batch broken.png")  # the only one there is
    unclear = ("bad_tokenize", "x.png", False, "accepted")
    assert bad_file_summary([*rows, unclear])["example"] == "bad_tokenize x.png: accepted"
