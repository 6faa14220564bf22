"""Where liftnb reads its data sets and writes its results: the source tree when it runs from a checkout, else the
data files installed with the package and a folder in the working directory (never site-packages)."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
INSTALLED_DATA = PACKAGE / "_data"  # the wheel maps the checkout's data/ here (pyproject.toml's package-dir)


def source_root(package: Path = PACKAGE) -> Path | None:
    """The checkout liftnb runs from (the folder holding pyproject.toml beside the package), or None when installed."""
    root = package.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "liftnb"' in pyproject.read_text(errors="replace"):
        return root
    return None


def data_dir(package: Path = PACKAGE) -> Path:
    """$LIFTNB_DATA; else the checkout's data/; else the data files installed with the package."""
    if os.environ.get("LIFTNB_DATA"):
        return Path(os.environ["LIFTNB_DATA"])
    root = source_root(package)
    if root is not None and (root / "data").is_dir():
        return root / "data"
    return package / INSTALLED_DATA.name


def results_dir(package: Path = PACKAGE) -> Path:
    """$LIFTNB_RESULTS; else the checkout's results/ (committed with provenance); else ./results where it runs."""
    if os.environ.get("LIFTNB_RESULTS"):
        return Path(os.environ["LIFTNB_RESULTS"])
    root = source_root(package)
    return root / "results" if root is not None else Path.cwd() / "results"
