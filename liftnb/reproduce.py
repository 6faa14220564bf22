"""Reproduce the paper's experiments in resumable pieces, with provenance.

    python -m liftnb.reproduce classification --profile full            # every (data set, seed) not done yet
    python -m liftnb.reproduce classification --profile full --datasets iris wine --seeds 0
    python -m liftnb.reproduce regression --profile full --variants p=1 --seeds 0
    python -m liftnb.reproduce classification --profile quick --list    # the plan, with each run's size

Experiments (notebooks): classification (02), boundaries (03), regression (04), robustness (05), feature_names (06),
pretraining (07), half_image (08), two_stage (09), icl_calibration (10).

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
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import baselines, datasets, experiments
from .cache import ResultsCache

PROFILES = ("quick", "full")
RESULTS_DIR = Path(os.environ.get("LIFTNB_RESULTS", Path(__file__).resolve().parent.parent / "results"))
PROVENANCE = ["experiment", "dataset", "variant", "seed", "profile", "model", "epochs", "train_layers", "n_rows", "n_train",
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
    baselines: tuple | None = None  # baseline names (None: all; (): none)
    split: tuple = ()  # options of datasets.split, e.g. (("test_size", 100), ("val_size", 50))
    changes: tuple = ()  # changes to the training part (liftnb.perturb.apply), e.g. (("outliers", 0.1),)
    variant: str = ""  # what tells this run apart from others on the same data set, e.g. "outliers 10%"

    def data(self) -> datasets.Dataset:
        return datasets.subsample(datasets.load(self.dataset, **dict(self.load)), self.rows)

    def part(self, data: datasets.Dataset) -> datasets.Split:
        from . import perturb

        part = datasets.split(data, seed=self.seed, **dict(self.split))
        return perturb.apply(part, dict(self.changes), data.task, self.seed) if self.changes else part

    def key(self, data: datasets.Dataset) -> dict:
        """Everything that determines the result (not the experiment's name: equal runs are shared)."""
        from . import __version__
        from .models import EMBEDDED

        lift = dict(self.lift)
        return {"X": data.X, "y": data.y, "seed": self.seed, "style": self.style,
                "lift": repr(sorted(lift.items())), "model": lift.get("model") or EMBEDDED, "modes": self.modes,
                "template": repr(self.template), "baselines": repr(self.baselines), "split": repr(self.split),
                "changes": repr(self.changes), "liftnb": __version__,
                "regions": REGION_RESOLUTION if data.task == "classification" and data.X.shape[1] == 2 else None}


# ----- plans ----------------------------------------------------------------------------------------------------
# The paper's main table uses the no-names style (x1=..., x2=...); images use its pixel style. Long prompts cost
# linearly in tokens, so the many-feature sets are subsampled so one fit takes minutes, not hours, on 2 CPU cores
# (the notebook prints tokens per row).
_CLASSIFICATION_FULL = {
    # name: (rows kept or None, style, extra LIFT settings, load options, template settings)
    "9clusters": (None, "no_names", {}, {}, {}),
    "blobs": (None, "no_names", {}, {}, {}),
    "circles": (None, "no_names", {}, {}, {}),
    "twocircles": (None, "no_names", {}, {}, {}),
    "moons": (None, "no_names", {}, {}, {}),
    "iris": (None, "no_names", {}, {}, {}),
    "wine": (None, "no_names", {}, {}, {}),
    "tae": (None, "no_names", {}, {}, {}),
    "cmc": (None, "no_names", {}, {}, {}),
    "vehicle": (None, "no_names", {}, {}, {}),
    "customers": (None, "no_names", {}, {}, {}),
    "pollution": (None, "no_names", {}, {}, {}),
    "led": (None, "no_names", {}, {}, {}),
    "hamster": (None, "no_names", {}, {}, {}),
    "spambase": (1000, "no_names", {}, {}, {}),
    "hill_valley": (600, "no_names", {}, {}, {"max_precision": 1}),
    "optdigits": (1000, "pixels", {}, {}, {}),
    "mfeat": (600, "no_names", {}, {}, {"max_precision": 1}),
    "margin": (800, "no_names", {}, {}, {"max_precision": 2}),
    "texture": (800, "no_names", {}, {}, {"max_precision": 2}),
    "digits": (None, "pixels", {}, {"levels": 10}, {"pixel_separator": ""}),
    "mnist": (None, "pixels", {}, {"n": 1000, "crop": 18}, {}),
    "fmnist": (600, "pixels", {}, {}, {}),
}
# The quick profile (CI): a representative subset, small samples, one seed. Measured on 2 cores and left out:
# wine (119 tokens a row, 193 s), pollution (38 training rows: LIFT at the majority class); digits at 100 rows with
# spaced 0-16 pixels (159 tokens a row) stayed at chance, so quick digits uses 10 levels written as one digit each
# (74 tokens a row) on 250 rows.
_CLASSIFICATION_QUICK = {
    "blobs": (300, "no_names", {}, {}, {}),
    "moons": (300, "no_names", {}, {}, {}),
    "iris": (None, "no_names", {}, {}, {}),
    "tae": (None, "no_names", {}, {}, {}),
    "customers": (200, "no_names", {}, {}, {}),
    "digits": (250, "pixels", {}, {"levels": 10}, {"pixel_separator": ""}),
}
_GENERATE_TOO = {"iris", "wine", "tae", "pollution", "led", "cmc"}  # where generate mode's invalid rate is reported


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


def _runs(experiment, profile, table, seeds=None, **common) -> list[Run]:
    """Runs for {(dataset, variant): settings} with seed 0 (quick) or 0, 1, 2 (full)."""
    seeds = seeds or ((0,) if profile == "quick" else (0, 1, 2))
    runs = []
    for (dataset, variant), settings in table.items():
        settings = {"style": "no_names", **common, **settings}
        for name in ("lift", "load", "template", "split", "changes"):
            settings[name] = tuple(sorted(dict(settings.get(name, {})).items()))
        runs += [Run(experiment, dataset, seed, variant=variant, **settings) for seed in seeds]
    return runs


def _synthetic_rows(name: str, profile: str) -> int | None:
    """Rows of a data set as the classification plan of this profile uses it."""
    table = _CLASSIFICATION_QUICK if profile == "quick" else _CLASSIFICATION_FULL
    return table[name][0] if name in table else None


_REGRESSION_SPLIT = {"test_size": 100, "val_size": 50}  # the paper's 200 train / 50 validation / 100 test


def _as_in_table(name: str, rows: int | None = None) -> dict:
    """Settings that make a run identical to the classification table's run of that data set (so the results
    cache shares it between notebooks)."""
    return {"rows": rows, "style": "no_names", "modes": ("score", "generate") if name in _GENERATE_TOO else ("score",)}


def regression_plan(profile: str = "quick") -> list[Run]:
    """The paper's regression functions (notebook 04): p = 1 in quick (linear and cosine), p = 1 and 2 in full."""
    functions = ["linear", "cosine"] if profile == "quick" else list(datasets.SYNTHETIC_REGRESSION)
    dimensions = (1,) if profile == "quick" else (1, 2)
    table = {(f, f"p={p}"): {"load": {"p": p, "n": 350}, "lift": _regression_lift(profile)}
             for f in functions for p in dimensions}
    return _runs("regression", profile, table, split=_REGRESSION_SPLIT)


def _regression_lift(profile: str) -> dict:
    # quick: 4 epochs (each epoch also decodes the 50 validation rows to pick the best epoch)
    return {"epochs": 4} if profile == "quick" else {}


_ROBUST_BASELINES = {"regression": ("polynomial", "kernel_ridge", "knn", "gradient_boosting", "random_forest"),
                     "classification": ("logreg", "knn", "svm_rbf", "random_forest", "xgboost")}


def robustness_plan(profile: str = "quick") -> list[Run]:
    """Outliers in regression labels, label corruption, class imbalance (notebook 05)."""
    quick = profile == "quick"
    table = {}
    for fraction in ((0.0, 0.2) if quick else (0.0, 0.05, 0.1, 0.2)):
        table[("linear", f"outliers {fraction:.0%}")] = {  # 0%: the same run as notebook 04's linear p=1
            "load": {"p": 1, "n": 350}, "split": _REGRESSION_SPLIT, "lift": _regression_lift(profile),
            "changes": {"outliers": fraction} if fraction else {}}
    for name in (["iris"] if quick else ["blobs", "iris"]):
        rows = _synthetic_rows(name, profile)
        table[(name, "clean")] = _as_in_table(name, rows)  # notebook 02's run
        for kind in ("random", "systematic"):
            for fraction in ((0.2,) if quick else (0.05, 0.1, 0.2)):
                table[(name, f"{kind} {fraction:.0%}")] = {
                    "rows": rows, "baselines": _ROBUST_BASELINES["classification"],
                    "changes": {"corrupt": kind, "fraction": fraction}}
    for share in ((0.1,) if quick else (0.05, 0.1, 0.2)):
        table[("moons", f"minority {share:.0%}")] = {"rows": 400, "baselines": _ROBUST_BASELINES["classification"],
                                                     "changes": {"imbalance": share}}
    return _runs("robustness", profile, table)


# Natural sentences for the feature-names ablation (the paper wrote dataset-specific sentences for TAE, CMC, Vehicle;
# it did not publish them, so these are ours, with the UCI codebook's meanings).
SENTENCES = {
    "iris": "An iris flower has sepals {sepal length} cm long and {sepal width} cm wide, and petals "
            "{petal length} cm long and {petal width} cm wide. Which species is it?",
    "tae": "A teaching assistant (native English speaker: {Whether_of_not_the_TA_is_a_native_English_speaker}, "
           "1 yes, 2 no) taught course {Course} of instructor {Course_instructor} in semester type "
           "{Summer_or_regular_semester} (1 summer, 2 regular) to {Class_size} students. How was the TA rated?",
    # UCI codes: education and standard of living 1 low .. 4 high; religion 1 Islam; working and media 0 yes/good
    "cmc": "A {Wifes_age}-year-old wife (education {Wifes_education} of 4, religion {Wifes_religion} with 1 Islam, "
           "working {Wifes_now_working?} with 0 yes) and her husband (education {Husbands_education} of 4, "
           "occupation group {Husbands_occupation}) have {Number_of_children_ever_born} children, standard of "
           "living {Standard-of-living_index} of 4 and media exposure {Media_exposure} (0 good). Which contraceptive "
           "method do they use?",
    "vehicle": "A vehicle's side silhouette has compactness {COMPACTNESS}, circularity {CIRCULARITY}, distance "
               "circularity {DISTANCE CIRCULARITY}, radius ratio {RADIUS RATIO}, aspect ratios {PR.AXIS ASPECT RATIO} "
               "(principal axis) and {MAX.LENGTH ASPECT RATIO} (maximum length), scatter ratio {SCATTER RATIO}, "
               "elongatedness {ELONGATEDNESS}, rectangularities {PR.AXIS RECTANGULARITY} and "
               "{MAX.LENGTH RECTANGULARITY}, scaled variances {SCALED VARIANCE_MAJOR} (major axis) and "
               "{SCALED VARIANCE_MINOR} (minor axis), radius of gyration {SCALED RADIUS OF GYRATION}, skewness "
               "{SKEWNESS ABOUT_MAJOR} and {SKEWNESS ABOUT_MINOR}, kurtosis {KURTOSIS ABOUT_MAJOR} and "
               "{KURTOSIS ABOUT_MINOR}, hollows ratio {HOLLOWS RATIO}. Is it a bus, an Opel, a Saab or a van?",
}


# With names, CMC's rows take 123 tokens and Vehicle's 245: on all rows the four templates would cost 1-2 h a data set
# and seed on 2 cores, so the ablation runs on a stratified subsample of each (the same rows for every template).
_FEATURE_NAMES_ROWS = {"cmc": 500, "vehicle": 300}


def feature_names_plan(profile: str = "quick") -> list[Run]:
    """No names vs shuffled names vs correct names vs a sentence (notebook 06)."""
    quick = profile == "quick"
    sets = ["tae"] if quick else ["iris", "tae", "cmc", "vehicle", "wine"]
    table = {}
    for name in sets:
        rows = None if quick else _FEATURE_NAMES_ROWS.get(name)
        table[(name, "no_names")] = _as_in_table(name) if rows is None else {"rows": rows}  # else notebook 02's run
        for style in ("shuffled", "names"):
            table[(name, style)] = {"rows": rows, "style": style, "baselines": ()}
        if name in SENTENCES:
            table[(name, "sentence")] = {"rows": rows, "style": "custom", "baselines": (),
                                         "template": {"format": SENTENCES[name], "question": ""}}
    return _runs("feature_names", profile, table)


def pretraining_plan(profile: str = "quick") -> list[Run]:
    """The pretrained model vs the same architecture randomly initialised or with its pretrained weights shuffled;
    accuracy vs training-set size (07)."""
    quick = profile == "quick"
    table = {}
    for name in (["iris", "tae"] if quick else ["iris", "wine", "tae", "blobs", "moons", "customers"]):
        rows = _synthetic_rows(name, profile)
        table[(name, "pretrained")] = _as_in_table(name, rows)  # notebook 02's run
        table[(name, "random init")] = {"rows": rows, "lift": {"model": "smollm2:random"}, "baselines": ()}
        if not quick or name == "iris":  # quick: Iris only, to keep notebooks 04-07 within CI's 15 minutes
            table[(name, "shuffled weights")] = {"rows": rows, "lift": {"model": "smollm2:shuffled"}, "baselines": ()}
    for name in (["iris"] if quick else ["iris", "wine", "blobs"]):
        rows = _synthetic_rows(name, profile)
        for fraction in ((0.1, 0.25, 0.5) if quick else (0.05, 0.1, 0.2, 0.5)):
            table[(name, f"{fraction:.0%} of train")] = {
                "rows": rows, "changes": {"train_fraction": fraction}, "baselines": ("logreg", "svm_rbf", "knn")}
    return _runs("pretraining", profile, table)


def boundaries_plan(profile: str = "quick") -> list[Run]:
    """The 2-D sets of the classification plan (the same runs, shared through the cache; seed 0) plus the
    NN-labelled set of the inductive-bias experiment (notebook 03)."""
    runs = [r for r in classification_plan(profile) if r.seed == 0 and r.dataset in datasets.SYNTHETIC_CLASSIFICATION]
    nn = Run("boundaries", "nn", 0, rows=300 if profile == "quick" else 2000, style="no_names",
             baselines=("majority", *REGION_BASELINES))
    return [replace(r, experiment="boundaries") for r in runs] + [nn]


PLANS = {"classification": classification_plan, "boundaries": boundaries_plan, "regression": regression_plan, "robustness": robustness_plan,
         "feature_names": feature_names_plan, "pretraining": pretraining_plan}


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


def execute(run: Run, profile: str, data: datasets.Dataset | None = None) -> tuple[pd.DataFrame, dict]:
    """Fit LIFT and the baselines for one run: (one row per method with provenance columns, extras).

    extras holds what a figure needs beyond the metrics: for 1-D regression, every method's curve on a grid."""
    from .models import EMBEDDED

    started = time.perf_counter()
    data = run.data() if data is None else data  # run() has loaded it already for the cache key
    part = run.part(data)
    lift = {"verbose": 0, "random_state": run.seed, **dict(run.lift)}
    template_settings = dict(run.template)
    if run.style == "custom":
        from .templates import Template

        template = Template.custom(**template_settings)
    else:
        template = datasets.template_for(data, style=run.style, **template_settings)
    estimator = experiments.fit_lift(data, part, template=template, **lift)
    table = pd.DataFrame(experiments.lift_rows(estimator, part, run.modes)).set_index("method")
    if run.baselines != ():
        table = pd.concat([table, baselines.evaluate(part, data.task, names=run.baselines, seed=run.seed)])
    table = table.reset_index()
    provenance = {
        "experiment": run.experiment, "dataset": run.dataset, "variant": run.variant, "seed": run.seed,
        "profile": profile,
        "model": lift.get("model") or EMBEDDED, "epochs": estimator.epochs, "train_layers": estimator.train_layers,
        "n_rows": len(data.y), "n_train": len(part.y_train), "tokens_per_row": round(estimator.tokens_per_row_, 1),
        "style": run.style, "git_commit": git_commit(), "date": datetime.date.today().isoformat(),
    }
    extras = {}
    if data.task == "regression" and data.X.shape[1] == 1:
        extras = regression_curves(estimator, part, data, run.seed)
    if data.task == "classification" and data.X.shape[1] == 2 and run.seed == 0:
        extras = decision_regions(estimator, part, data, REGION_RESOLUTION[profile], run.seed)
    provenance["run_seconds"] = round(time.perf_counter() - started, 1)  # everything, the figures' extras included
    for column, value in reversed(provenance.items()):
        table.insert(0, column, value)
    return table, extras


REGION_BASELINES = ("logreg", "tree", "knn", "svm_rbf", "mlp", "xgboost")
REGION_RESOLUTION = {"quick": 20, "full": 60}


def decision_regions(estimator, part, data, resolution: int = 30, seed: int = 0) -> dict:
    """LIFT's and the baselines' predicted class codes on a resolution x resolution grid over a 2-D data set."""
    from .plots import grid_for

    xx, yy, points = grid_for(data.X, resolution)
    classes = np.unique(data.y)
    out = {"xx": xx.tolist(), "yy": yy.tolist(), "regions": {}}
    out["regions"]["lift"] = np.searchsorted(classes, estimator.predict(points)).reshape(xx.shape).tolist()
    for name in REGION_BASELINES:
        model = baselines.fit_best(name, part, data.task, seed)
        out["regions"][name] = model.predict(points.to_numpy(dtype=float)).reshape(xx.shape).tolist()
    return out


CURVE_BASELINES = ("polynomial", "knn", "gradient_boosting", "gaussian_process")


def regression_curves(estimator, part, data, seed: int = 0, points: int = 41) -> dict:
    """LIFT's and some baselines' predictions on an evenly spaced grid over a 1-D regression input, with the truth."""
    column = data.X.columns[0]
    low, high = float(data.X[column].min()), float(data.X[column].max())
    grid = pd.DataFrame({column: np.round(np.linspace(low, high, points), 4)})
    curves = {"x": grid[column].tolist(), "lift": [float(v) for v in estimator.predict(grid)]}
    curves["lift_invalid_rate"] = float(estimator.invalid_rate_)
    for name in CURVE_BASELINES:
        if name in baselines.regressors(seed):
            curves[name] = baselines.fit_best(name, part, "regression", seed).predict(grid.to_numpy(float)).tolist()
    return curves


def cached_piece(experiment: str, profile: str, piece: str, key: dict, compute, cache: ResultsCache | None = None,
                 log=print) -> dict:
    """One named piece of an experiment that is not a LIFT-vs-baselines table (notebooks 08-10).

    compute() returns {"metrics": {name: number}, ...anything JSON-able for figures}. It runs once per key (then
    comes from the cache); in the full profile its metrics and provenance are merged into
    results/<experiment>_full.csv, one row per piece."""
    from . import __version__

    cache = cache or ResultsCache()
    started = time.perf_counter()

    def timed():
        result = compute()
        result["provenance"] = {"experiment": experiment, "piece": piece, "profile": profile,
                                "git_commit": git_commit(), "date": datetime.date.today().isoformat(),
                                "run_seconds": round(time.perf_counter() - started, 1)}
        return result

    result, cached = cache.get_or_compute({**key, "piece": piece, "liftnb": __version__}, timed)
    log(f"{experiment}/{piece}: {'cached' if cached else f'{time.perf_counter() - started:.0f} s'}")
    if profile == "full":
        row = pd.DataFrame([{"dataset": piece, "variant": "", "seed": key.get("seed", 0), **result["provenance"],
                             **result["metrics"]}])
        _write_results(row, results_path(experiment, profile))
    return result


def results_path(experiment: str, profile: str, folder: Path | None = None) -> Path:
    return Path(folder or RESULTS_DIR) / f"{experiment}_{profile}.csv"


def _write_results(table: pd.DataFrame, path: Path) -> None:
    """Merge into the results file, replacing earlier rows of the same (dataset, seed), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = pd.read_csv(path)
        columns = ["dataset", "variant", "seed"]
        old["variant"] = old["variant"].fillna("") if "variant" in old else ""
        done = set(map(tuple, table[columns].astype(str).to_numpy()))
        old = old[[tuple(r) not in done for r in old[columns].astype(str).to_numpy()]]
        table = pd.concat([old, table], ignore_index=True)
    temporary = path.with_suffix(".tmp")
    table.to_csv(temporary, index=False)
    os.replace(temporary, path)


def run(experiment: str, profile: str = "quick", datasets_: list[str] | None = None, seeds: list[int] | None = None,
        cache: ResultsCache | None = None, results_folder: Path | None = None, write_csv: bool = True,
        log=print, variants: list[str] | None = None) -> pd.DataFrame:
    """Every planned run (or the chosen data sets/seeds/variants), from the cache where finished; returns all rows.

    With write_csv, each finished run is merged into results/<experiment>_<profile>.csv as it completes."""
    cache = cache or ResultsCache()
    planned = plan(experiment, profile)
    for chosen, field in ((datasets_, "dataset"), (variants, "variant")):
        unknown = set(chosen or ()) - {getattr(r, field) for r in planned}
        if unknown:
            raise ValueError(f"{sorted(unknown)} are not {field}s in the {profile} plan of {experiment!r}.")
    runs = [r for r in planned if (datasets_ is None or r.dataset in datasets_) and (seeds is None or r.seed in seeds)
            and (variants is None or r.variant in variants)]
    tables, extras = [], {}
    for number, item in enumerate(runs, 1):
        data = item.data()
        started = time.perf_counter()

        def compute(item=item, data=data):
            table, figures = execute(item, profile, data)
            return {"table": table.to_dict(orient="list"), "extras": figures}

        stored, cached = cache.get_or_compute(item.key(data), compute)
        extras[(item.dataset, item.variant, item.seed)] = stored.get("extras", {})
        table = pd.DataFrame(stored["table"]).assign(experiment=experiment, variant=item.variant, profile=profile)
        tables.append(table)
        if write_csv:
            _write_results(table, results_path(experiment, profile, results_folder))
        lift = table[table["method"].str.startswith("lift")].iloc[0]
        metric = "accuracy" if "accuracy" in lift and pd.notna(lift["accuracy"]) else "rae"
        log(f"[{number}/{len(runs)}] {item.dataset} {item.variant} seed {item.seed}: LIFT {metric} {lift[metric]:.3f} "
            f"({'cached' if cached else f'{time.perf_counter() - started:.0f} s'})")
    results = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    results.attrs["extras"] = extras  # (dataset, variant, seed) -> what execute() kept for figures
    return results


def notebook_results(experiment: str, profile: str, log=print) -> pd.DataFrame:
    """What a notebook shows: this profile's runs (from the cache where finished), with the rows of the full run
    (results/<experiment>_full.csv) in place of this execution's for every (data set, variant) it covers.

    A `source` column says where each row came from; outside the full profile nothing is written to results/."""
    results = run(experiment, profile, write_csv=(profile == "full"), log=log)
    results["source"] = f"this execution ({profile})"
    full_path = results_path(experiment, "full")
    if profile == "full" or not full_path.exists():
        return results
    full = pd.read_csv(full_path, keep_default_na=False, na_values=[""])
    full["variant"] = full["variant"].fillna("") if "variant" in full else ""
    full["source"] = f"full run ({full_path.name}: commit {', '.join(sorted(full['git_commit'].astype(str).unique()))})"
    covered = set(zip(full["dataset"], full["variant"]))
    log(f"{full_path.name}: {len(covered)} (data set, variant) pairs, seeds {sorted(full['seed'].unique())}")
    mine = results[[(d, v) not in covered for d, v in zip(results["dataset"], results["variant"])]]
    merged = pd.concat([full, mine], ignore_index=True)
    merged.attrs["extras"] = results.attrs.get("extras", {})
    return merged


def summary(results: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Mean ± std over seeds: data sets (and variants) as rows, methods as columns (strings like '0.967 ± 0.012').

    metric defaults to accuracy where the results have it (classification), RAE otherwise (regression)."""
    metric = metric or ("accuracy" if "accuracy" in results else "rae")
    rows = ["dataset", "variant"] if "variant" in results and (results["variant"].fillna("") != "").any() else ["dataset"]
    grouped = results.groupby([*rows, "method"], sort=False)[metric].agg(["mean", "std", "count"])
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


def regression_beside_paper(results: pd.DataFrame) -> pd.DataFrame:
    """RAE (filtered as in the paper, and unfiltered), RMSE and invalid rate per function and p, beside the paper's
    p = 1 numbers; means over seeds."""
    from . import paper

    reported = paper.regression_rae()
    # sorted index (groupby's default): .loc on a prefix of an unsorted MultiIndex warns on every call
    means = results.groupby(["dataset", "variant", "method"])[["rae", "rae_unfiltered", "rmse"]].mean()
    rows = []
    for (dataset, variant), group in results.groupby(["dataset", "variant"], sort=False):
        mine = means.loc[(dataset, variant)]
        others = mine.drop(["lift", "mean"], errors="ignore")["rae"]
        lift = group[group["method"] == "lift"]
        row = {"function": dataset, "p": variant, "seeds": group["seed"].nunique(),
               "LIFT RAE": mine.loc["lift", "rae"], "LIFT RAE unfiltered": mine.loc["lift", "rae_unfiltered"],
               "LIFT RMSE": mine.loc["lift", "rmse"], "invalid %": 100 * lift["invalid_rate"].mean(),
               "best baseline RAE": others.min(), "best is": others.idxmin()}
        if variant == "p=1" and dataset in reported.index:
            paper_row = reported.loc[dataset]
            row.update({"paper LIFT/GPT-J": paper_row["lift_gptj"], "paper LIFT/GPT-3": paper_row["lift_gpt3"],
                        "paper best baseline": paper_row.drop(["lift_gptj", "lift_gpt3"]).min()})
        rows.append(row)
    return pd.DataFrame(rows).set_index(["function", "p"])


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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scale warnings: only token counts are wanted here
                template = datasets.template_for(data, style=style, **dict(item.template)).bind(X, task=data.task)
            counts[style] = sum(len(ids) for ids in tokenizer(template.prompts(X))["input_ids"]) / len(X)
        rows.append({"dataset": item.dataset, "features": data.X.shape[1], "rows used": len(data.y),
                     "style": item.style, "tokens/row": round(counts[item.style], 1),
                     "tokens/row, names style": round(counts["names"], 1),
                     "train tokens/epoch (k)": round(counts[item.style] * len(data.y) * 0.64 / 1000, 1)})
    return pd.DataFrame(rows).set_index("dataset")


def run_other(experiment: str, profile: str) -> None:
    """The experiments of notebooks 08-10, made of cached pieces rather than LIFT-vs-baselines tables."""
    from . import halfimage, icl, twostage

    if experiment == "half_image":
        for name in halfimage.image_sets(profile):
            halfimage.half_image_run(name, profile)
    elif experiment == "two_stage":
        for task in twostage.TASKS:
            twostage.experiment(profile, task)
    elif experiment == "icl_calibration":
        for name, k in icl.ICL_SETS[profile].items():
            icl.icl_run(name, k, profile)
        icl.calibration_run(profile)
    else:
        raise ValueError(f"Unknown experiment {experiment!r}.")


OTHER_EXPERIMENTS = ("half_image", "two_stage", "icl_calibration")


def other_pieces(experiment: str, profile: str) -> list[str]:
    """What run_other computes for an experiment and profile, one line per piece (for --list)."""
    from . import halfimage, icl, twostage

    if experiment == "half_image":
        return [f"{name}: {train} training images, {test} test images, {epochs} epochs ({options})"
                for name, (options, train, test, epochs) in halfimage.image_sets(profile).items()]
    if experiment == "two_stage":
        return [f"{task} n={n} seed={seed}: one stage and two stages" for task in twostage.TASKS
                for seed in twostage.SEEDS[profile] for n in twostage.SIZES[profile]]
    if experiment == "icl_calibration":
        return [*(f"icl {name} k={k}: in context vs LIFT on the same k" for name, k in icl.ICL_SETS[profile].items()),
                "calibration: {} {} rows".format(*icl.CALIBRATION_SET[profile])]
    raise ValueError(f"Unknown experiment {experiment!r}.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m liftnb.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=[*PLANS, *OTHER_EXPERIMENTS])
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--variants", nargs="+", help='e.g. "p=1" (regression) or "random init" (pretraining)')
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    if args.experiment in OTHER_EXPERIMENTS and args.list:
        print("\n".join(other_pieces(args.experiment, args.profile)))
        return
    if args.experiment in OTHER_EXPERIMENTS:
        if args.datasets or args.seeds or args.variants:
            parser.error(f"--datasets, --seeds and --variants apply to the table experiments, not {args.experiment!r}")
        import torch

        torch.set_flush_denormal(True)
        run_other(args.experiment, args.profile)
        if args.profile == "full":
            print("written:", results_path(args.experiment, args.profile))
        return
    if args.list:
        for item in plan(args.experiment, args.profile):
            print(item.dataset, "seed", item.seed, "rows", item.rows or "all", item.style, dict(item.lift))
        return
    import torch

    torch.set_flush_denormal(True)
    results = run(args.experiment, args.profile, args.datasets, args.seeds, variants=args.variants)
    print(summary(results).to_string())
    print("written:", results_path(args.experiment, args.profile))


if __name__ == "__main__":
    main(sys.argv[1:])
