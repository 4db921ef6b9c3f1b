"""The Dataset tab at handler level: what a server that does not open local paths shows, and that nothing
the page sends (hover arguments, clicked points, results files) reaches a file outside a dataset's folder.
The tab as a visitor uses it: tests/test_browser_dataset.py (test_dataset_tab_...)."""

import json

import pytest

from alit_core import read_results
from app.dataset_tab import GONE, DatasetTab, Opened, OpenedResults, table_rows

pytest.importorskip("pyarrow")


@pytest.fixture
def tabs(app_page, tmp_path):
    """The tab's handlers on the page's components: a public server's (no local paths) and a local one's."""
    _, ui, h = app_page
    return ui, DatasetTab(ui, h.cache, h.outputs, local_paths=False), DatasetTab(ui, h.cache, h.outputs, True)


def test_a_public_server_shows_the_plots_but_reads_no_folder(tabs, encoded_dataset):
    ui, public, _ = tabs
    folder, out = encoded_dataset
    shown = public.open_upload(str(out), str(folder), "most tokens first")
    assert "does not open local folders" in shown[ui.ds_status]
    assert "24 images in 5 classes" in shown[ui.ds_summary] and shown[ui.ds_file] is None
    assert len(shown[ui.ds_hist].data) == 5 and sum(len(t.x) for t in shown[ui.ds_scatter].data) == 24
    key = shown[ui.ds_key]
    assert public.opened.get(key).folder is None  # the folder typed is ignored
    got = public.thumbnail([key, 0])
    assert "src" not in got and "not on this server" in got["caption"]
    opened = public.open_in_explore(key, 0, {})
    assert opened[ui.ds_opened] is None and "cannot open this image" in opened[ui.ds_status]
    refused = public.open_path(str(out), str(folder), "most tokens first")
    assert "opens uploaded results files only" in refused[ui.ds_status] and ui.ds_key not in refused
    assert "folder" in public.set_folder(key, str(folder), None, "png_bpp")[ui.ds_status]


def test_what_the_page_sends_is_checked(tabs, encoded_dataset):
    ui, _, local = tabs
    folder, out = encoded_dataset
    assert "Type the path of a results file" in local.open_path("  ", "", "file order")[ui.ds_status]
    assert "No results file at 'nope.parquet'" in local.open_path("nope.parquet", "", "file order")[ui.ds_status]
    shown = local.open_path(str(out), "", "file order")
    key = shown[ui.ds_key]
    assert local.opened.get(key).folder == folder  # the folder beside the results file
    assert local.thumbnail([key, 2])["src"].startswith("data:image/jpeg;base64,")
    for args in (None, "x", [key], [key, "../../etc/passwd"], [key, 10**9], ["no such key", 0], [key, -1]):
        got = local.thumbnail(args)
        assert "src" not in got and got["caption"], args
    assert local.thumbnail(["no such key", 0])["caption"] == GONE
    for value in ("", "{", json.dumps({"key": key}), json.dumps({"key": "nope", "row": 0}),
                  json.dumps({"key": key, "row": 99})):
        assert local.open_clicked(value, {})[ui.ds_opened] is None, value
    # a results file naming a file outside its folder: refused, nothing copied
    results = read_results(out)
    results.path[0] = "../results.parquet"
    evil = local.opened.add(Opened(results, folder, "evil"))
    assert "not an image inside" in local.open_in_explore(evil, 0, {})[ui.ds_status]
    # a good row: a copy of the image, Explore selected, the tab's state says so
    ok = local.open_in_explore(key, 2, {"explore_tabs": "attention"})
    assert ok[ui.ds_opened] == ok[ui.image] and ok[ui.image].endswith(read_results(out).path[2].split("/")[-1])
    assert ok[ui.tab_state] == {"explore_tabs": "attention", "tabs": "explore"}


def test_the_table_orders_every_row_and_names_its_rows(encoded_dataset):
    _, out = encoded_dataset
    res = read_results(out)
    fewest = table_rows(res, "fewest tokens first")
    assert fewest["headers"][:4] == ["row", "path", "class", "tokens"]
    tokens = [r[3] for r in fewest["data"]]
    assert tokens == sorted(res.num_tokens.tolist()) and len(fewest["data"]) == 24
    assert all(res.path[r[0]] == r[1] and res.num_tokens[r[0]] == r[3] for r in fewest["data"])
    worst = table_rows(res, "highest L1 (last iteration run) first")["data"]
    l1 = [r[fewest["headers"].index("L1 (last iteration run)")] for r in worst]
    assert l1 == sorted(l1, reverse=True)
    assert [r[0] for r in table_rows(res, "file order")["data"]] == list(range(24))


def test_only_the_most_recently_used_open_files_are_kept():
    opened = OpenedResults(capacity=2)
    keys = [opened.add(Opened(None, None, str(i))) for i in range(3)]
    assert opened.get(keys[0]) is None and [opened.get(k).label for k in keys[1:]] == ["1", "2"]
    assert len(set(keys)) == 3 and all(len(k) >= 16 for k in keys) and opened.get(None) is None
    # a file in use stays while another is opened: "1" was used after "2", so "2" goes
    opened.get(keys[1])
    newest = opened.add(Opened(None, None, "3"))
    assert opened.get(keys[2]) is None and opened.get(keys[1]).label == "1" and opened.get(newest).label == "3"


def test_odd_settings_in_a_file_are_shown_as_far_as_they_go(tabs, tmp_path):
    """Settings are only shown: a model or criterion recorded in another shape does not break the summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ui, _, local = tabs
    meta = {"checkpoint": "bundled", "criterion": {"kind": "l1", "value": "0.05"}, "resolution": 64}
    table = pa.table({"path": ["a.png"], "num_tokens": [32]}).replace_schema_metadata({"alit": json.dumps(meta)})
    pq.write_table(table, tmp_path / "odd.parquet")
    shown = local.open_path(str(tmp_path / "odd.parquet"), "", "file order")
    assert "1 images in 1 class (criterion l1, 64 px)" in shown[ui.ds_summary], shown[ui.ds_summary]
    # a column of another kind: the status line says which, nothing else changes
    pq.write_table(pa.table({"path": ["a.png"], "num_tokens": ["32"]}), tmp_path / "strings.parquet")
    refused = local.open_upload(str(tmp_path / "strings.parquet"), "", "file order")
    assert set(refused) == {ui.ds_status, ui.ds_file} and "column 'num_tokens' holds string" in refused[ui.ds_status]


def test_a_folder_of_nearly_all_tied_counts_says_its_correlation_has_no_interval(tabs, tmp_path):
    """Fifteen images at 32 tokens and the most complex one at 64: rho 0.42, but no resample can bound it
    (alit_core.bootstrap_ci gives NaN), and the plots say so instead of an interval that excludes it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ui, _, local = tabs
    table = pa.table({"path": [f"{i:02d}.png" for i in range(16)], "num_tokens": [32] * 15 + [64],
                      "png_bpp": [i / 16 for i in range(16)]})
    pq.write_table(table, tmp_path / "tied.parquet")
    shown = local.open_path(str(tmp_path / "tied.parquet"), "", "file order")
    title = shown[ui.ds_scatter].layout.title.text
    assert title.startswith("Spearman rho 0.42 (no 95% CI: the counts are nearly all tied), 16 images"), title
    bar = shown[ui.ds_corr].data[0]
    assert list(bar.x) == ["png bpp"] and list(bar.text) == [title.split(", 16 images")[0]]
    # an ordinary interval where the counts vary: the bar's hover names it
    table = table.set_column(1, "num_tokens", pa.array([32 * (1 + i // 2) for i in range(16)]))
    pq.write_table(table, tmp_path / "spread.parquet")
    bar = local.open_path(str(tmp_path / "spread.parquet"), "", "file order")[ui.ds_corr].data[0]
    assert bar.text[0] == "Spearman rho 0.99 (95% CI 0.99 to 1.00)", bar.text[0]
