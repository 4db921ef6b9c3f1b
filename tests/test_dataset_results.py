"""Reading encode-dataset's results back (alit_core.read_results) and the rank statistics the Dataset tab
shows: Spearman's rho against scipy's, its bootstrap interval, histograms per class, and image files that
stay inside the dataset's folder whatever the results file says."""

import numpy as np
import pytest
from conftest import KINDS
from scipy.stats import spearmanr

from alit_core import ResultsFileError, bootstrap_ci, read_results, spearman
from alit_core.datasets.dataset_results import NO_CLASS

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def test_spearman_equals_scipys_with_ties_and_is_nan_when_constant():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 9, 500) * 32  # token counts: few values, many ties
    y = x + rng.normal(0, 80, 500)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert spearman(y, -y) == pytest.approx(-1.0)
    assert np.isnan(spearman([64, 64, 64], [1.0, 2.0, 3.0])) and np.isnan(spearman([1], [2]))


def test_bootstrap_interval_holds_rho_narrows_with_more_data_and_repeats():
    rng = np.random.default_rng(1)

    def sample(n):
        x = rng.normal(size=n)
        return x, x + rng.normal(size=n)

    small, large = sample(100), sample(3000)
    lo, hi = bootstrap_ci(*small)
    assert lo < spearman(*small) < hi and lo > 0.4 and hi < 0.85  # true rho of this pair is about 0.68
    lo2, hi2 = bootstrap_ci(*large)
    assert lo2 < spearman(*large) < hi2 and (hi2 - lo2) < (hi - lo) / 3
    assert bootstrap_ci(*small) == (lo, hi)  # a fixed seed: the same interval every time
    assert bootstrap_ci(*small, seed=1) != (lo, hi)
    assert all(np.isnan(bootstrap_ci([3, 3, 3], [1, 2, 3])))
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_ci([1, 2], [1, 2, 3])


def test_bootstrap_interval_never_excludes_its_estimate_and_says_so_when_ties_leave_it_nothing():
    """All but one image at 32 tokens: the plain percentile interval excluded the estimate in 26 of these 200
    sets; the interval now holds it or is NaN (the bootstrap cannot bound it)."""
    rng = np.random.default_rng(3)
    tokens = [32] * 15 + [64]
    held = undefined = 0
    for _ in range(200):
        y = rng.random(16)
        lo, hi = bootstrap_ci(tokens, y)
        if np.isnan(lo):
            assert np.isnan(hi)
            undefined += 1
        else:
            assert lo <= spearman(tokens, y) <= hi
            held += 1
    assert undefined == 26 and held == 174


def test_a_results_file_reads_back_row_for_row(encoded_dataset):
    folder, out = encoded_dataset
    res = read_results(out)
    table = pq.read_table(out).to_pylist()
    assert len(res) == len(table) == 24
    assert list(res.path) == [r["path"] for r in table]
    assert list(res.num_tokens) == [r["num_tokens"] for r in table]
    assert list(res.classes) == [r["class"] or NO_CLASS for r in table]
    assert res.final_l1 == pytest.approx([r["l1"][-1] for r in table])
    assert res.root == folder and res.settings["criterion"]["kind"] == "l1" and res.settings["root_name"] == "images"
    assert res.measures == ["png_bpp", "jpeg_bpp", "entropy", "edge_density", "high_freq_energy"]
    # classes, most images first; histograms per class add up to the whole
    names = res.class_names()
    assert set(names) == {*KINDS, NO_CLASS}
    sizes = [int((res.classes == n).sum()) for n in names]
    assert sizes == sorted(sizes, reverse=True)
    whole = res.token_histogram()
    assert sum(whole.values()) == 24 and len(whole) >= 2  # early exit: more than one count
    per_class = [res.token_histogram(n) for n in names]
    assert {k: sum(h.get(k, 0) for h in per_class) for k in whole} == whole
    # the correlation the tab shows is spearman over the file's columns
    c = res.correlation("png_bpp")
    rho = spearmanr([r["num_tokens"] for r in table], [r["png_bpp"] for r in table]).statistic
    assert c["rho"] == pytest.approx(rho) and c["n"] == 24 and c["ci95"][0] <= c["rho"] <= c["ci95"][1]
    with pytest.raises(ResultsFileError, match="no 'sharpness' column"):
        res.correlation("sharpness")


def test_image_files_stay_inside_the_dataset_folder(encoded_dataset, tmp_path):
    folder, out = encoded_dataset
    res = read_results(out)
    assert res.image_file(0) == (folder / res.path[0]).resolve()
    # another root (the folder moved): the same relative path under it
    moved = tmp_path / "moved"
    folder.rename(moved)
    try:
        assert res.image_file(3, root=moved) == (moved / res.path[3]).resolve()
        assert read_results(out).root is None  # no folder of that name beside the file any more
        with pytest.raises(ResultsFileError, match="not beside it"):
            read_results(out).image_file(3)
        with pytest.raises(ResultsFileError, match="not on this machine"):
            res.image_file(3, root=tmp_path)
    finally:
        moved.rename(folder)
    # a results file that names files outside its folder, or not images, is refused
    table = pq.read_table(out)
    evil = table.set_column(0, "path", pa.array(["../../etc/passwd.png", "flat/../../x.png", "README.txt"]
                                               + table.column("path").to_pylist()[3:]))
    pq.write_table(evil.replace_schema_metadata(table.schema.metadata), tmp_path / "evil.parquet")
    bad = read_results(tmp_path / "evil.parquet")
    for i in range(3):
        with pytest.raises(ResultsFileError, match="not an image inside"):
            bad.image_file(i, root=folder)
    with pytest.raises(IndexError):
        bad.image_file(24, root=folder)


def test_files_that_are_not_results_are_clear_errors(tmp_path):
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(ResultsFileError, match="not a readable Parquet file"):
        read_results(tmp_path / "text.parquet")
    pq.write_table(pa.table({"path": ["a.png"]}), tmp_path / "no_tokens.parquet")
    with pytest.raises(ResultsFileError, match="no num_tokens column"):
        read_results(tmp_path / "no_tokens.parquet")
    # a file rewritten elsewhere: only path and num_tokens, no settings, a missing measure (null)
    pq.write_table(pa.table({"path": ["a.png", "b.png", "c.png"], "num_tokens": [32, 64, 96],
                             "png_bpp": [1.0, None, 3.0]}), tmp_path / "bare.parquet")
    bare = read_results(tmp_path / "bare.parquet")
    assert bare.settings == {} and bare.root is None and list(bare.classes) == [NO_CLASS] * 3
    assert bare.measures == ["png_bpp"] and bare.correlation("png_bpp")["n"] == 2
    with pytest.raises(ResultsFileError, match="not beside it"):
        bare.image_file(0)


@pytest.mark.parametrize("column, values, kind", [
    ("num_tokens", ["32", "64"], "whole numbers"),
    ("png_bpp", ["a lot", "less"], "numbers"),
    ("l1", [0.1, 0.2], "lists of numbers"),
    ("path", [1, 2], "text"),
])
def test_a_column_of_another_kind_is_a_clear_error(tmp_path, column, values, kind):
    """A file rewritten by other tools (or uploaded to a public server) with a column of the wrong kind."""
    table = {"path": ["a.png", "b.png"], "num_tokens": [32, 64], column: values}
    pq.write_table(pa.table(table), tmp_path / "odd.parquet")
    with pytest.raises(ResultsFileError, match=rf"odd.parquet: column '{column}' holds .*, not {kind}"):
        read_results(tmp_path / "odd.parquet")


def test_settings_of_another_shape_are_left_out(tmp_path):
    table = pa.table({"path": ["a.png"], "num_tokens": [32]}).replace_schema_metadata({"alit": "[1, 2]"})
    pq.write_table(table, tmp_path / "list.parquet")
    assert read_results(tmp_path / "list.parquet").settings == {}
