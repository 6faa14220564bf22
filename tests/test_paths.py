"""Where data are read and results written: a checkout, an installed package, or the user's choice."""
from pathlib import Path

from liftnb import paths


def _installed(tmp_path: Path) -> Path:
    package = tmp_path / "site-packages" / "liftnb"
    (package / "_data").mkdir(parents=True)
    (tmp_path / "site-packages" / "data").mkdir()  # another distribution's top-level folder must not be taken
    return package


def test_a_checkout_reads_its_data_and_writes_its_results(monkeypatch):
    monkeypatch.delenv("LIFTNB_DATA", raising=False)
    monkeypatch.delenv("LIFTNB_RESULTS", raising=False)
    root = Path(paths.__file__).resolve().parents[1]
    assert paths.source_root() == root
    assert paths.data_dir() == root / "data" and (root / "data" / "MANIFEST.md").exists()
    assert paths.results_dir() == root / "results"


def test_an_installed_package_reads_its_own_data_and_writes_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFTNB_DATA", raising=False)
    monkeypatch.delenv("LIFTNB_RESULTS", raising=False)
    package = _installed(tmp_path)
    (tmp_path / "site-packages" / "pyproject.toml").write_text('[project]\nname = "other"\n')
    monkeypatch.chdir(tmp_path)
    assert paths.source_root(package) is None
    assert paths.data_dir(package) == package / "_data"
    assert paths.results_dir(package) == tmp_path / "results"


def test_the_environment_chooses_both_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFTNB_DATA", str(tmp_path / "mine"))
    monkeypatch.setenv("LIFTNB_RESULTS", str(tmp_path / "out"))
    package = _installed(tmp_path)
    assert paths.data_dir(package) == tmp_path / "mine" and paths.data_dir() == tmp_path / "mine"
    assert paths.results_dir(package) == tmp_path / "out" and paths.results_dir() == tmp_path / "out"
