"""atomic_folder: the target is either the complete new folder or what was there before, never half-written."""
import pytest

from liftnb.atomic import atomic_folder


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
