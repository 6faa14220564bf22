"""The layout: the core library never imports the paper's experiments, no import cycles, no private names used
across modules, and the README's layout section names every module."""
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "liftnb"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def _imports(name: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import in a module, function-level ones included."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [a.name for a in node.names]
            found.append((base, names))
            found += [(f"{base}.{n}", []) for n in names if f"{base}.{n}" in MODULES]
    return [(m, n) for m, n in found if m in MODULES]


def test_the_core_never_imports_the_paper_code():
    core = [m for m in MODULES if not m.startswith("liftnb.paper")]
    offenders = {m: sorted(t for t, _ in _imports(m) if t.startswith("liftnb.paper")) for m in core}
    assert not {m: t for m, t in offenders.items() if t}
    code = "import sys, liftnb, liftnb.compare, liftnb.bench, liftnb.widgets, liftnb.progress; " \
           "print([m for m in sys.modules if m.startswith('liftnb.paper')])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_no_import_cycles():
    graph = {m: {t for t, _ in _imports(m) if t != m and not MODULES[t].name == "__init__.py"} for m in MODULES}
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in graph[module]:
            assert state.get(target) != "open", "import cycle: " + " -> ".join(stack[stack.index(target):] + [target])
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module)


def test_no_private_name_crosses_a_module():
    crossing = []
    for name, path in MODULES.items():
        for target, names in _imports(name):
            crossing += [f"{name} imports {target}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for a in node.names if (node.level or (node.module or "").startswith("liftnb"))}
        crossing += [f"{name} uses {node.value.id}.{node.attr}" for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                     and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert not crossing


def test_the_readme_layout_names_every_module_and_nothing_else():
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(liftnb/[\w/]+(?:\.py|/))`", section))
    files = {str(p.relative_to(PACKAGE.parent)) for p in MODULES.values() if p.name != "__init__.py"}
    packages = {str(p.parent.relative_to(PACKAGE.parent)) + "/" for p in MODULES.values()
                if p.name == "__init__.py" and p.parent != PACKAGE}
    assert files - named == set(), "modules the README's layout does not name"
    assert named - files - packages == set(), "README names modules that do not exist"


def test_the_notebooks_make_test_leaves_out_exist_and_the_readme_names_them():
    root = PACKAGE.parent
    make = (root / "Makefile").read_text()
    listed = re.search(r"CI_SKIPPED_NOTEBOOKS :=((?:.*\\\n)*.*)", make).group(1).replace("\\\n", " ").split()
    assert listed and all((root / path).is_file() for path in listed), listed
    readme = (root / "README.md").read_text()
    assert "make test-all" in readme and all(Path(path).name in readme for path in listed)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_leaves_those_notebooks_out_only_on_a_cpu_without_native_bf16():
    root = PACKAGE.parent
    for native, leaves_out in (("0", True), ("1", False)):
        commands = subprocess.run(["make", "-n", "test", f"NATIVE_BF16={native}"], cwd=root, capture_output=True,
                                  text=True, check=True).stdout
        assert "pytest" in commands and "notebooks --nbval-lax" in commands
        assert ("--ignore=notebooks/05_robustness.ipynb" in commands) == leaves_out, commands[-600:]
        assert "--ignore=notebooks/12_imputation.ipynb" not in commands  # run everywhere since 2026-12-06
