"""Atomic writes: a file or folder is either complete or absent, never half-written."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


WRITTEN_BY_LIFTNB = ".written-by-liftnb"  # marks a folder atomic_folder wrote, which a later write may replace
SAVED_ESTIMATOR = ("estimator.pt", "trained.safetensors")  # a folder saved before the mark existed


def check_replaceable(target: Path) -> None:
    """Refuse a target whose replacement would lose what liftnb did not write: a file, the working folder or one
    above it, or a folder holding anything but an earlier liftnb write (the mark, or a saved estimator)."""
    here = Path.cwd().resolve()
    where = target.resolve()
    if where == here or where in here.parents:
        raise ValueError(f"Cannot write into {str(target)!r}: it is the working folder or one above it, and writing "
                         f"replaces the whole folder. Name a new folder, e.g. {str(target / 'model')!r}.")
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{str(target)!r} is a file, not a folder: name a new folder to write into.")
    if target.is_dir():
        entries = sorted(entry.name for entry in target.iterdir())
        ours = WRITTEN_BY_LIFTNB in entries or all(name in entries for name in SAVED_ESTIMATOR)
        if entries and not ours:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise FileExistsError(f"{str(target)!r} already holds files liftnb did not write ({shown}); writing "
                                  f"replaces the whole folder, so nothing was written. Name a new or empty folder, "
                                  f"or remove this one first.")


@contextlib.contextmanager
def atomic_folder(target: Path):
    """Yield a staging folder beside `target`; on success it replaces `target` in one rename, on error it goes.
    A target that holds anything liftnb did not write is refused before anything is written (check_replaceable)."""
    target = Path(target)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    os.chmod(staging, 0o755)
    try:
        yield staging
        (staging / WRITTEN_BY_LIFTNB).write_text("Written by liftnb: a later write to this folder replaces it whole.\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it, renamed over it in one step."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it, renamed over it in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
