"""Reproduce the paper's experiments in resumable pieces, with provenance.

    python -m liftnb.reproduce classification --profile full            # every (data set, seed) not done yet
    python -m liftnb.reproduce classification --profile full --datasets iris wine --seeds 0
    python -m liftnb.reproduce classification --profile quick --list    # the plan, with each run's size

Each (experiment, data set, seed) run is cached by everything that determines it (data, template, model,
hyperparameters, liftnb version), so an interrupted command continues where it stopped and a notebook re-run takes
the finished runs from the cache. Every finished run is also written to `results/<experiment>_<profile>.csv`, one
row per method, with provenance columns (model, profile, seed, epochs, git commit, date, seconds).
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import baselines, datasets, experiments
from .cache import ResultsCache

PROFILES = ("quick", "full")
RESULTS_DIR = Path(os.environ.get("LIFTNB_RESULTS", Path(__file__).resolve().parent.parent / "results"))
PROVENANCE = ["experiment", "dataset", "seed", "profile", "model", "epochs", "train_layers", "n_rows", "n_train",
              "tokens_per_row", "style", "git_commit", "date", "run_seconds"]


@dataclass(frozen=True)
class Run:
    """One LIFT-vs-baselines run: a data set (maybe subsampled), one train/validation seed, LIFT's settings."""

    experiment: str
    dataset: str
    seed: int
    rows: int | None = None  # stratified subsample of the data set before splitting (None: all rows)
    style: str = "names"  # template style
    lift: tuple = ()  # LIFTClassifier/LIFTRegressor parameters as (name, value) pairs
    modes: tuple = ("score",)  # LIFT prediction modes to report
    load: tuple = ()  # options of datasets.load as (name, value) pairs
    template: tuple = ()  # extra Template settings as (name, value) pairs
    baselines: tuple | None = None  # baseline names (None: all)

    def data(self) -> datasets.Dataset:
        return datasets.subsample(datasets.load(self.dataset, **dict(self.load)), self.rows)

    def key(self, data: datasets.Dataset) -> dict:
        from . import __version__
        from .models import EMBEDDED

        lift = dict(self.lift)
        return {"experiment": self.experiment, "X": data.X, "y": data.y, "seed": self.seed, "style": self.style,
                "lift": repr(sorted(lift.items())), "model": lift.get("model") or EMBEDDED, "modes": self.modes,
                "template": repr(self.template), "baselines": repr(self.baselines), "liftnb": __version__}


# ----- plans ----------------------------------------------------------------------------------------------------
# Long prompts cost linearly in tokens: the many-feature sets use the no-names style and, in the full profile,
# a subsample sized so one fit takes minutes, not hours, on 2 CPU cores (the notebook prints tokens per row).
_CLASSIFICATION_FULL = {
    # name: (rows kept or None, style, extra LIFT settings, load options, template settings)
    "9clusters": (None, "no_names", {}, {}, {}),
    "blobs": (None, "no_names", {}, {}, {}),
    "circles": (None, "no_names", {}, {}, {}),
    "twocircles": (None, "no_names", {}, {}, {}),
    "moons": (None, "no_names", {}, {}, {}),
    "iris": (None, "names", {}, {}, {}),
    "wine": (None, "names", {}, {}, {}),
    "tae": (None, "names", {}, {}, {}),
    "cmc": (None, "names", {}, {}, {}),
    "vehicle": (None, "no_names", {}, {}, {}),
    "customers": (None, "names", {}, {}, {}),
    "pollution": (None, "names", {}, {}, {}),
    "led": (None, "no_names", {}, {}, {}),
    "hamster": (None, "no_names", {}, {}, {}),
    "spambase": (1000, "no_names", {}, {}, {}),
    "hill_valley": (600, "no_names", {}, {}, {"max_precision": 1}),
    "optdigits": (1000, "pixels", {}, {}, {}),
    "mfeat": (600, "no_names", {}, {}, {"max_precision": 1}),
    "margin": (800, "no_names", {}, {}, {"max_precision": 2}),
    "texture": (800, "no_names", {}, {}, {"max_precision": 2}),
    "digits": (None, "pixels", {}, {}, {}),
    "mnist": (None, "pixels", {}, {"n": 1000, "crop": 18}, {}),
    "fmnist": (600, "pixels", {}, {}, {}),
}
# The quick profile (CI): a representative subset, small samples, capped epochs, one seed.
_CLASSIFICATION_QUICK = {
    "blobs": (300, "no_names", {"epochs": 4}, {}, {}),
    "moons": (300, "no_names", {"epochs": 4}, {}, {}),
    "iris": (None, "names", {"epochs": 4}, {}, {}),
    "wine": (None, "names", {"epochs": 4}, {}, {}),
    "tae": (None, "names", {"epochs": 4}, {}, {}),
    "digits": (250, "pixels", {"epochs": 4}, {}, {}),
}
_GENERATE_TOO = {"iris", "wine", "tae", "blobs", "led", "cmc"}  # where generate mode's invalid rate is reported


def classification_plan(profile: str = "quick") -> list[Run]:
    """The runs of the classification table (notebook 02) for a profile."""
    table = _CLASSIFICATION_QUICK if profile == "quick" else _CLASSIFICATION_FULL
    seeds = (0,) if profile == "quick" else (0, 1, 2)
    runs = []
    for name, (rows, style, lift, load, template) in table.items():
        modes = ("score", "generate") if name in _GENERATE_TOO else ("score",)
        for seed in seeds:
            runs.append(Run("classification", name, seed, rows, style, tuple(sorted(lift.items())), modes,
                            tuple(sorted(load.items())), tuple(sorted(template.items()))))
    return runs


PLANS = {"classification": classification_plan}


def plan(experiment: str, profile: str = "quick") -> list[Run]:
    """The runs of an experiment for a profile."""
    if experiment not in PLANS:
        raise ValueError(f"Unknown experiment {experiment!r}; choose from {sorted(PLANS)}.")
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose from {PROFILES}.")
    return PLANS[experiment](profile)


# ----- running --------------------------------------------------------------------------------------------------
def git_commit() -> str:
    """The current commit of the repository liftnb runs from ('unknown' outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def execute(run: Run, profile: str) -> pd.DataFrame:
    """Fit LIFT and the baselines for one run; one row per method with provenance columns."""
    from .models import EMBEDDED

    started = time.perf_counter()
    data = run.data()
    part = datasets.split(data, seed=run.seed)
    lift = {"verbose": 0, "random_state": run.seed, **dict(run.lift)}
    template = datasets.template_for(data, style=run.style, **dict(run.template))
    estimator = experiments.fit_lift(data, part, template=template, **lift)
    table = pd.DataFrame(experiments.lift_rows(estimator, part, run.modes)).set_index("method")
    table = pd.concat([table, baselines.evaluate(part, data.task, names=run.baselines, seed=run.seed)])
    table = table.reset_index()
    provenance = {
        "experiment": run.experiment, "dataset": run.dataset, "seed": run.seed, "profile": profile,
        "model": lift.get("model") or EMBEDDED, "epochs": estimator.epochs, "train_layers": estimator.train_layers,
        "n_rows": len(data.y), "n_train": len(part.y_train), "tokens_per_row": round(estimator.tokens_per_row_, 1),
        "style": run.style, "git_commit": git_commit(), "date": datetime.date.today().isoformat(),
        "run_seconds": round(time.perf_counter() - started, 1),
    }
    for column, value in reversed(provenance.items()):
        table.insert(0, column, value)
    return table


def results_path(experiment: str, profile: str, folder: Path | None = None) -> Path:
    return Path(folder or RESULTS_DIR) / f"{experiment}_{profile}.csv"


def _write_results(table: pd.DataFrame, path: Path) -> None:
    """Merge into the results file, replacing earlier rows of the same (dataset, seed), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = pd.read_csv(path)
        done = set(zip(table["dataset"], table["seed"]))
        old = old[[(d, s) not in done for d, s in zip(old["dataset"], old["seed"])]]
        table = pd.concat([old, table], ignore_index=True)
    temporary = path.with_suffix(".tmp")
    table.to_csv(temporary, index=False)
    os.replace(temporary, path)


def run(experiment: str, profile: str = "quick", datasets_: list[str] | None = None, seeds: list[int] | None = None,
        cache: ResultsCache | None = None, results_folder: Path | None = None, write_csv: bool = True,
        log=print) -> pd.DataFrame:
    """Every planned run (or the chosen data sets/seeds), from the cache where finished; returns all rows.

    With write_csv, each finished run is merged into results/<experiment>_<profile>.csv as it completes."""
    cache = cache or ResultsCache()
    runs = [r for r in plan(experiment, profile)
            if (datasets_ is None or r.dataset in datasets_) and (seeds is None or r.seed in seeds)]
    if datasets_:
        unknown = set(datasets_) - {r.dataset for r in plan(experiment, profile)}
        if unknown:
            raise ValueError(f"{sorted(unknown)} are not in the {profile} plan of {experiment!r}.")
    tables = []
    for number, item in enumerate(runs, 1):
        data = item.data()
        started = time.perf_counter()
        stored, cached = cache.get_or_compute(item.key(data),
                                              lambda: execute(item, profile).to_dict(orient="list"))
        table = pd.DataFrame(stored)
        tables.append(table)
        if write_csv:
            _write_results(table, results_path(experiment, profile, results_folder))
        lift = table[table["method"].str.startswith("lift")].iloc[0]
        log(f"[{number}/{len(runs)}] {item.dataset} seed {item.seed}: LIFT {lift.get('accuracy', lift.get('rae')):.3f} "
            f"({'cached' if cached else f'{time.perf_counter() - started:.0f} s'})")
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def summary(results: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Mean ± std over seeds: data sets as rows, methods as columns (strings like '0.967 ± 0.012')."""
    grouped = results.groupby(["dataset", "method"], sort=False)[metric].agg(["mean", "std", "count"])
    text = grouped.apply(lambda r: f"{r['mean']:.3f}" + (f" ± {r['std']:.3f}" if r["count"] > 1 else ""), axis=1)
    return text.unstack("method")


def beside_paper(results: pd.DataFrame) -> pd.DataFrame:
    """Our accuracy (% mean over seeds) per data set beside the paper's, with LIFT's invalid rate and run sizes."""
    from . import paper

    ours = results.groupby(["dataset", "method"], sort=False)["accuracy"].agg(["mean", "std"]) * 100
    reported = paper.classification_accuracy()
    rows = []
    for dataset, group in results.groupby("dataset", sort=False):
        mean = ours.loc[dataset, "mean"]
        baseline_means = mean.drop([m for m in mean.index if m.startswith("lift") or m == "majority"])
        row = {"dataset": dataset, "seeds": group["seed"].nunique(), "n_train": int(group["n_train"].iloc[0]),
               "tokens/row": group["tokens_per_row"].iloc[0],
               "LIFT (ours)": mean["lift_score"], "± std": ours.loc[(dataset, "lift_score"), "std"],
               "LIFT generate": mean.get("lift_generate"),
               "generate invalid %": 100 * group.loc[group["method"] == "lift_generate", "invalid_rate"].mean()
               if "lift_generate" in mean.index else None,
               "majority": mean.get("majority"), "best baseline": baseline_means.max(),
               "best is": baseline_means.idxmax()}
        if dataset in reported.index:
            paper_row = reported.loc[dataset]
            paper_baselines = paper_row.drop(["lift_gptj", "lift_gpt3", "majority"], errors="ignore").dropna()
            row.update({"paper LIFT/GPT-J": paper_row.get("lift_gptj"), "paper LIFT/GPT-3": paper_row.get("lift_gpt3"),
                        "paper best baseline": paper_baselines.max() if len(paper_baselines) else None})
        if "source" in group:
            row["source"] = group["source"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows).set_index("dataset")


def prompt_lengths(experiment: str = "classification", profile: str = "full", tokenizer=None, sample: int = 50):
    """Tokens per row of every planned data set, in its planned style and in the names style (no fitting)."""
    from .models import load_lm

    if tokenizer is None:
        tokenizer = load_lm()[1]
    rows, seen = [], set()
    for item in plan(experiment, profile):
        if item.dataset in seen:
            continue
        seen.add(item.dataset)
        data = item.data()
        X = data.X.head(sample)
        counts = {}
        for style in dict.fromkeys([item.style, "names"]):
            template = datasets.template_for(data, style=style, **dict(item.template)).bind(X, task=data.task)
            counts[style] = sum(len(ids) for ids in tokenizer(template.prompts(X))["input_ids"]) / len(X)
        rows.append({"dataset": item.dataset, "features": data.X.shape[1], "rows used": len(data.y),
                     "style": item.style, "tokens/row": round(counts[item.style], 1),
                     "tokens/row, names style": round(counts["names"], 1),
                     "train tokens/epoch (k)": round(counts[item.style] * len(data.y) * 0.64 / 1000, 1)})
    return pd.DataFrame(rows).set_index("dataset")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m liftnb.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(PLANS))
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    if args.list:
        for item in plan(args.experiment, args.profile):
            print(item.dataset, "seed", item.seed, "rows", item.rows or "all", item.style, dict(item.lift))
        return
    import torch

    torch.set_flush_denormal(True)
    results = run(args.experiment, args.profile, args.datasets, args.seeds)
    print(summary(results).to_string())
    print("written:", results_path(args.experiment, args.profile))


if __name__ == "__main__":
    main(sys.argv[1:])
