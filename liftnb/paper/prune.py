"""Pruning the cache: what ~/.cache/liftnb holds for code or library versions this checkout no longer runs."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import models
from ..cache import ResultsCache
from .runs import code_fingerprint
from .two_stage import STAGE_ONE_PREFIX, stage_one_code, stage_one_tag

EMBEDDED_PREFIX = "smollm2-135m-instruct-"  # converted embedded models (models.embedded_model_dir names them)


def current_codes() -> set[str]:
    """The code fingerprints this checkout writes into its cache keys: a run's, and each paper module's pieces'."""
    modules = sorted(p.name for p in (Path(__file__).parent).glob("*.py"))
    return {code_fingerprint(), *(code_fingerprint(f"paper/{name}") for name in modules)}


@dataclass
class Pruned:
    """What a prune removed (or would remove) and what it kept on purpose."""

    removed: list[Path] = field(default_factory=list)
    unfinished: list[Path] = field(default_factory=list)  # kept: an interrupted run of this code resumes from it
    unknown: list[Path] = field(default_factory=list)  # kept: unfinished runs and stage-one models that recorded no code
    kept_model: Path | None = None  # the converted embedded model this install loads
    freed: int = 0  # bytes of what was removed


def size(path: Path) -> int:
    """Bytes under a file or folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prune(root: Path | None = None, dry_run: bool = False) -> Pruned:
    """Remove the cache's results and unfinished runs of other code (with their saved models), converted embedded
    models of other transformers versions and stage-one models of other code; keep this code's unfinished runs (they
    resume) and whatever recorded no code. Run it while nothing else uses the cache."""
    root = Path(root) if root is not None else models.cache_dir()
    cache, codes = ResultsCache(root / "results"), current_codes()
    done = Pruned(removed=cache.prune(lambda key: key.get("code") in codes, dry_run=True))
    for folder in sorted(set((cache.folder / "partial").glob("*")) - set(done.removed)):
        (done.unknown if cache.partial_key(folder) is None else done.unfinished).append(folder)
    converted = sorted(root.glob(f"{EMBEDDED_PREFIX}*"))
    if converted:  # keep the one this install loads; converting it first, if it is not there yet
        done.kept_model = models.embedded_model_dir()
        done.removed += [p for p in converted if p != done.kept_model]
    stage_ones = sorted(root.glob(f"{STAGE_ONE_PREFIX}*"))
    done.unknown += [p for p in stage_ones if stage_one_code(p) is None]
    done.removed += [p for p in stage_ones if stage_one_code(p) not in (None, stage_one_tag())]
    done.freed = sum(map(size, done.removed))
    if not dry_run:
        for path in done.removed:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return done


def report(done: Pruned, dry_run: bool = False) -> str:
    """What a prune did, in lines with sizes."""
    def amount(paths):
        return f"{len(paths)} ({sum(map(size, paths)) / 1e6:.0f} MB)" if paths else "0"

    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb}: {len(done.removed)} ({done.freed / 1e6:.0f} MB)"] + [f"  {path}" for path in done.removed]
    if done.kept_model is not None:
        lines.append(f"kept the embedded model this install loads: {done.kept_model}")
    if done.unfinished:
        lines.append(f"kept unfinished runs of this code (a command with the same settings resumes them; delete the "
                     f"folders yourself if you will not): {amount(done.unfinished)} in {done.unfinished[0].parent}")
    if done.unknown:
        lines.append(f"kept what recorded no code (unfinished runs and stage-one models written before 2026-12-06; "
                     f"delete them yourself if you will not resume them): {amount(done.unknown)}")
        lines += [f"  {path}" for path in done.unknown]
    return "\n".join(lines)
