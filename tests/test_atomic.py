"""atomic_folder and atomic_write_text: the target is either complete and new or what was there before, never half-written."""
from pathlib import Path

import pytest

from liftnb.atomic import WRITTEN_BY_LIFTNB, atomic_folder, atomic_write_text


def _staging_leftovers(target):
    return [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}-")]


def _written_before(target):
    with atomic_folder(target) as staging:
        (staging / "old.txt").write_text("old")


def test_success_replaces_the_target_and_leaves_no_staging(tmp_path):
    target = tmp_path / "model"
    _written_before(target)
    with atomic_folder(target) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".model-")
        (staging / "new.txt").write_text("new")
        assert not (target / "new.txt").exists()  # nothing shows before the block ends
    assert sorted(p.name for p in target.iterdir()) == [WRITTEN_BY_LIFTNB, "new.txt"]
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
    _written_before(target)
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_folder(target) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == [WRITTEN_BY_LIFTNB, "old.txt"]
    assert (target / "old.txt").read_text() == "old"
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


def test_a_folder_holding_what_liftnb_did_not_write_is_refused_and_kept(tmp_path, monkeypatch):
    # writing replaces the whole folder: a user's own files there would be lost, so nothing is written
    mine = tmp_path / "mywork"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt, sub.*nothing was written"):
        with atomic_folder(mine) as staging:
            (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "sub"] and _staging_leftovers(mine) == []
    afile = tmp_path / "model.bin"
    afile.write_text("weights")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        with atomic_folder(afile):
            pass
    assert afile.read_text() == "weights"
    monkeypatch.chdir(mine / "sub")
    for here in (".", "..", str(tmp_path)):  # the working folder and the folders above it
        with pytest.raises(ValueError, match="working folder or one above it"):
            with atomic_folder(Path(here)):
                pass
    assert (mine / "notes.txt").read_text() == "mine" and (mine / "sub").is_dir()
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_folder(empty) as staging:  # an empty folder has nothing to lose
        (staging / "new.txt").write_text("new")
    saved = tmp_path / "saved"  # a save from before the mark existed may be replaced too
    saved.mkdir()
    for name in ("estimator.pt", "trained.safetensors", "README.txt"):
        (saved / name).write_text("old")
    with atomic_folder(saved) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in saved.iterdir()) == [WRITTEN_BY_LIFTNB, "new.txt"]
