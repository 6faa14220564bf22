"""Results files: results/<experiment>_<profile>.csv, one row per method and run, merged as runs finish; the
committed full-profile rows with their provenance and whether they are what this checkout computes (its learner,
the plan)."""
from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import pandas as pd

from .. import paths
from ..atomic import atomic_write_bytes, atomic_write_text
from ..cache import learner_code

RESULTS_DIR = paths.results_dir()  # $LIFTNB_RESULTS, the checkout's results/, or ./results (never site-packages)
RUN_COLUMNS = ["dataset", "variant", "seed"]  # what identifies a run inside one experiment's file


def results_path(experiment: str, profile: str, folder: Path | None = None) -> Path:
    return Path(folder or RESULTS_DIR) / f"{experiment}_{profile}.csv"


def write_results(table: pd.DataFrame, path: Path) -> None:
    """Merge into the results file, atomically: a run's new rows take the place of its earlier rows (same dataset,
    variant and seed), so a re-run leaves the file's order as it was; runs new to the file go at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = read_results(path)
        old_keys, new_keys = _run_keys(old), _run_keys(table)
        first = {}
        for at, key in enumerate(old_keys):
            first.setdefault(key, at)
        replaced = set(new_keys)
        kept = [at for at, key in enumerate(old_keys) if key not in replaced]
        position = [*kept, *(first.get(key, len(old) + at) for at, key in enumerate(new_keys))]
        table = pd.concat([old.iloc[kept], table], ignore_index=True)
        table = table.iloc[pd.Series(position).argsort(kind="stable").to_numpy()]
    atomic_write_text(path, table.to_csv(index=False))


def _run_keys(table: pd.DataFrame) -> list[tuple]:
    return list(map(tuple, table[RUN_COLUMNS].astype(str).to_numpy()))


def read_results(path: Path) -> pd.DataFrame:
    """A results file with empty variants as "" (not NaN), every float as written (a merge rewrites the file)."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""], float_precision="round_trip")
    table["variant"] = table["variant"].fillna("") if "variant" in table else ""
    return table


def committed(experiment: str, folder: Path | None = None, plan_keys: dict | None = None) -> pd.DataFrame:
    """The committed full-profile rows of an experiment (empty if none), each with its provenance in `source` (file,
    commit, CPU kernels where recorded), its `state` (judged_state) and `stale` (not current). `plan_keys` maps a
    planned (dataset, variant, seed) to a function giving its plan_key, asked once per run at most."""
    path = results_path(experiment, "full", folder)
    if not path.exists():
        return pd.DataFrame(columns=[*RUN_COLUMNS, "source", "state", "stale"])
    table = read_results(path)
    learners = table["learner_code"].astype(str) if "learner_code" in table else pd.Series("", index=table.index)
    keys = table["plan_key"] if "plan_key" in table else pd.Series(None, index=table.index, dtype=object)
    planned = {run: functools.cache(key) for run, key in (plan_keys or {}).items()}
    runs = zip(table["dataset"], table["variant"], table["seed"].astype(int))
    table["state"] = [judged_state(learner, key, planned.get(run)) for learner, key, run in zip(learners, keys, runs)]
    table["stale"] = table["state"] != "current"
    commits = table["git_commit"] if "git_commit" in table else pd.Series("unknown", index=table.index)
    kernels = table["cpu_kernels"] if "cpu_kernels" in table else pd.Series(None, index=table.index, dtype=object)
    table["source"] = [_source(path, commit, kernel, state)
                       for commit, kernel, state in zip(commits, kernels, table["state"])]
    return table


def judged_state(learner, key, planned_key=None) -> str:
    """A committed result's state: "stale" where the learner code that produced it is not this checkout's (or was not
    recorded); "other plan" where it recorded a plan_key (runs.plan_key) that is not `planned_key()`, its planned
    run's: other data, settings or model than the plan names now; else "current". The plan is asked about only for
    results of this learner, and results from before 2026-12-06 recorded no plan_key: judged by their learner alone."""
    if learner != learner_code():
        return "stale"
    if isinstance(key, str) and planned_key is not None and key != planned_key():
        return "other plan"
    return "current"


def kernel_family(kernels: pd.Series) -> pd.Series:
    """The kernel family of each recorded `cpu_kernels` entry (what bf16 matmuls ran on, e.g. "avx512_core_amx";
    a GPU run's leads with the GPU), without the ATen dispatch level after " /"; missing where none was recorded."""
    return kernels.astype("string").str.split(" /").str[0]


STATE_WORDS = {"current": "", "stale": " (stale: learner changed since)",
               "other plan": " (stale: computed for another plan)"}


def _source(path: Path, commit, kernel, state: str) -> str:
    """Where a committed result came from, in words: file, commit, kernels, and why it is stale where it is."""
    return f"{path.name} @ {commit}" + (f" on {kernel}" if isinstance(kernel, str) else "") + STATE_WORDS[state]


def piece_path(experiment: str, piece: str, folder: Path | None = None) -> Path:
    """Where a full-profile piece's whole result (its figures' data too) is committed, beside its metrics row."""
    return Path(folder or RESULTS_DIR) / f"{experiment}_full" / f"{piece}.json.gz"


def write_piece(result: dict, path: Path) -> None:
    """A piece's result as gzipped JSON, byte-identical for an identical result (no timestamp in the gzip header)."""
    atomic_write_bytes(path, gzip.compress(json.dumps(result, sort_keys=True).encode(), mtime=0))


def committed_piece(experiment: str, piece: str, folder: Path | None = None, planned_key=None) -> dict | None:
    """A committed full-profile piece (metrics, figure data, provenance) with `source`, `state` and `stale` as
    committed() gives them for rows (`planned_key`: a function giving its plan_key); None where none was committed."""
    path = piece_path(experiment, piece, folder)
    return judged_piece(read_piece(path), path, planned_key) if path.exists() else None


def read_piece(path: Path) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()))


def judged_piece(result: dict, path: Path, planned_key=None) -> dict:
    """A piece read from `path` with `source`, `state` and `stale` added (committed_piece)."""
    recorded = result.get("provenance", {})
    result["state"] = judged_state(recorded.get("learner_code"), recorded.get("plan_key"), planned_key)
    result["stale"] = result["state"] != "current"
    result["source"] = _source(path, recorded.get("git_commit", "unknown"), recorded.get("cpu_kernels"),
                               result["state"])
    return result


def status(experiment: str, planned: list[tuple[str, str, int]], folder: Path | None = None,
           plan_keys: dict | None = None) -> pd.DataFrame:
    """Per planned full-profile run (dataset, variant, seed): its committed rows' state (committed(): "current",
    "stale", "other plan") or "missing" in results/."""
    rows = committed(experiment, folder, plan_keys)
    found = dict(zip(zip(rows["dataset"], rows["variant"], rows["seed"].astype(int)), rows["state"])) if len(rows) \
        else {}
    return pd.DataFrame([{"experiment": experiment, "dataset": d, "variant": v, "seed": s,
                          "state": found.get((d, v, s), "missing")} for d, v, s in planned])


def summary(results: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Mean ± std over seeds: data sets (and variants) as rows, methods as columns (strings like '0.967 ± 0.012').

    metric defaults to accuracy where the results have it (classification), RAE otherwise (regression)."""
    metric = metric or ("accuracy" if "accuracy" in results else "rae")
    rows = ["dataset", "variant"] if "variant" in results and (results["variant"].fillna("") != "").any() else ["dataset"]
    grouped = results.groupby([*rows, "method"], sort=False)[metric].agg(["mean", "std", "count"])
    text = grouped.apply(lambda r: f"{r['mean']:.3f}" + (f" ± {r['std']:.3f}" if r["count"] > 1 else ""), axis=1)
    return text.unstack("method")
