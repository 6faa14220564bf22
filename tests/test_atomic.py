"""atomic_folder and atomic_write_text: the target is either complete and new or what was there before, never half-written."""
import pytest

from liftnb.atomic import atomic_folder, atomic_write_text


def _staging_leftovers(target):
    return [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}-")]


def test_success_replaces_the_target_and_leaves_no_staging(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".model-")
        (staging / "new.txt").write_text("new")
        assert not (target / "new.txt").exists()  # nothing shows before the block ends
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert _staging_leftovers(target) == []


def test_an_error_inside_leaves_neither_target_nor_staging(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_folder(target) as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert _staging_leftovers(target) == []


def test_an_error_inside_keeps_the_previous_target(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_folder(target) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"] and (target / "old.txt").read_text() == "old"
    assert _staging_leftovers(target) == []


def test_writing_a_file_replaces_it_whole_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "runs" / "table.csv"
    atomic_write_text(target, "old\n")
    monkeypatch.setattr("os.replace", lambda *a: (_ for _ in ()).throw(OSError("interrupted")))
    with pytest.raises(OSError, match="interrupted"):  # a write cut off before the rename leaves the old file
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    monkeypatch.undo()
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]
