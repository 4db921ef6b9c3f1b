"""written_whole: a file is replaced whole or left as it was."""

import pytest

from alit_core.files.atomic import written_whole


def test_a_finished_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "state.json"
    out.write_text("old")
    with written_whole(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".state.json.") and tmp.suffix == ".tmp"
        tmp.write_text("new")
        assert out.read_text() == "old"  # nothing visible until the block ends
    assert out.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_partial_one(tmp_path):
    out = tmp_path / "state.json"
    out.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with written_whole(out) as tmp:
            tmp.write_text("ne")
            raise RuntimeError("disk full")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
