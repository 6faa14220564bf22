"""A results cache: a finished fit's metrics, keyed by everything that determines them, reused instantly."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

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


class ResultsCache:
    """JSON results on disk under `folder` (default ~/.cache/liftnb/results), written atomically."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else cache_dir() / "results"

    def path(self, key: dict) -> Path:
        return self.folder / f"{fingerprint(key)[:32]}.json"

    def get(self, key: dict) -> dict | None:
        """The stored result for this key, or None."""
        path = self.path(key)
        if not path.exists():
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
            json.dump({"key": {k: str(v)[:200] for k, v in key.items()}, "result": result}, out, default=str)
        os.replace(temporary, path)

    def get_or_compute(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        """(result, came_from_cache)."""
        found = self.get(key)
        if found is not None:
            return found, True
        result = compute()
        self.put(key, result)
        return result, False
