"""Running the paper's experiments: a run description, its cache key, its execution with provenance, and the
named pieces of the experiments that are not LIFT-vs-baselines tables (notebooks 08-10)."""
from __future__ import annotations

import datetime
import functools
import json
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from .. import baselines, datasets
from ..atomic import atomic_write_text
from ..cache import ResultsCache, computing_code, environment, fingerprint, learner_code, source_fingerprint
from ..compare import lift_rows, lift_estimator, result_key
from ..finetune import Callback
from ..models import EMBEDDED, model_identity
from ..preprocessing import StandardisedValues
from ..templates import Template
from . import figures, perturb
from .results import piece_path, results_path, write_piece, write_results

RUNNER = ("paper/runs.py", "paper/figures.py", "paper/perturb.py", "paper/results.py")  # code every run goes through
VALUES = ("raw", "standardised")  # how a run writes its numbers (Run.values)
PROVENANCE = ["experiment", "dataset", "variant", "seed", "profile", "model", "epochs", "train_layers", "n_rows",
              "n_train", "tokens_per_row", "style", "git_commit", "date", "run_seconds", "resumed", "code",
              "learner_code", "cpu_kernels", "libraries"]  # run_all adds plan_key


@functools.lru_cache(maxsize=None)
def code_fingerprint(*paper_modules: str) -> str:
    """The core's computing code, the runner and the given paper modules (e.g. "paper/two_stage.py"), as one hash."""
    return fingerprint([computing_code(), source_fingerprint(*RUNNER, *paper_modules)])[:16]


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
    changes: tuple = ()  # changes to the training part (perturb.apply), e.g. (("outliers", 0.1),)
    variant: str = ""  # what tells this run apart from others on the same data set, e.g. "outliers 10%"
    values: str = "raw"  # how numbers are written: "raw" (as in the data) or "standardised" (z-scores of the
    # training part, preprocessing.StandardisedValues fitted on it and applied to all three parts)

    def data(self) -> datasets.Dataset:
        return datasets.subsample(datasets.load(self.dataset, **dict(self.load)), self.rows)

    def part(self, data: datasets.Dataset) -> datasets.Split:
        part = datasets.split(data, seed=self.seed, **dict(self.split))
        part = perturb.apply(part, dict(self.changes), data.task, self.seed) if self.changes else part
        if self.values not in VALUES:
            raise ValueError(f"values must be one of {VALUES}, not {self.values!r}.")
        if self.values == "raw":
            return part
        scaler = StandardisedValues().fit(part.X_train)
        return replace(part, X_train=scaler.transform(part.X_train), X_val=scaler.transform(part.X_val),
                       X_test=scaler.transform(part.X_test))

    def estimator(self, data: datasets.Dataset):
        """The unfitted LIFT estimator of this run, its template built from the run's style and settings."""
        settings = dict(self.template)
        template = (Template.custom(**settings) if self.style == "custom"
                    else datasets.template_for(data, style=self.style, **settings))
        return lift_estimator(data, template=template, **{"verbose": 0, "random_state": self.seed, **dict(self.lift)})

    def key(self, data: datasets.Dataset, profile: str) -> dict:
        """Everything that determines the result (not the experiment's name: equal runs are shared)."""
        return result_key(data, self.seed, self.estimator(data), modes=self.modes, baselines=repr(self.baselines),
                          split=repr(self.split), changes=repr(self.changes), values=self.values,
                          regions=figures.region_resolution(data, profile),
                          intervals_on_validation=figures.intervals_on_validation(data, profile),
                          code=code_fingerprint())


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """The commit of the repository liftnb runs from when this process first asked ('unknown' outside git), with
    "+dirty" where the package's files differ from it (that commit lacks some of the code that ran): read once, so a
    commit made while a long run works is not credited with the code the process had already loaded."""
    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1]).stdout.strip()

    try:
        head, changed = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if changed else head


def provenance(**fields) -> dict:
    """The given fields with where a result came from: the git commit, the date, the CPU kernels it ran on and the
    versions of Python and the libraries that computed it."""
    versions = environment()
    return {**fields, "git_commit": git_commit(), "date": datetime.date.today().isoformat(),
            "cpu_kernels": versions["cpu_kernels"],
            "libraries": " ".join(f"{name}={version}" for name, version in versions.items() if name != "cpu_kernels")}


def plan_key(key: dict) -> str:
    """What a run or piece computes, as its plan and the learner's defaults say (the data by content, every resolved
    setting, the model, the seed, and a table run's modes, baselines, changes and figures), without where and by
    which code it ran: a committed row whose plan_key is not its planned run's was computed for another plan
    (results.status)."""
    planned = {k: v for k, v in key.items() if k not in ("environment", "code")}
    if isinstance(key.get("lift"), dict):  # where it ran, as cpu_kernels says
        planned["lift"] = {k: v for k, v in key["lift"].items() if k != "device"}
    return fingerprint(planned)[:16]


class SecondsBesideCheckpoints(Callback):
    """After each epoch's checkpoint, writes the run's seconds and the fit's seconds so far beside it: a resumed
    run's run_seconds and fit_seconds then count the interrupted process up to its last checkpoint (the work after
    that was lost and is not counted)."""

    def __init__(self, path: Path, started: float, fit_before: float = 0.0):
        self.path, self.started, self.fit_before = path, started, fit_before
        self.fit_started = time.perf_counter()

    def on_train_begin(self, trainer) -> None:
        self.fit_started = time.perf_counter()  # the training loop's (a resumed fit builds its layer cache again)

    def on_epoch_end(self, trainer, metrics) -> None:
        now = time.perf_counter()
        atomic_write_text(self.path, json.dumps({"seconds": now - self.started,
                                                 "fit_seconds": self.fit_before + now - self.fit_started}))


def execute(run: Run, profile: str, data: datasets.Dataset | None = None,
            partial: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Fit LIFT and the baselines for one run: (one row per method with provenance columns, figure extras).

    With `partial` (a folder of the run's own, ResultsCache.open_partial), LIFT's fit writes a checkpoint there after
    every epoch, and a later call after an interruption continues from it to the same result (Trainer.fit's
    resume) instead of starting over."""
    started = time.perf_counter()
    data = run.data() if data is None else data  # run_all() has loaded it already for the cache key
    part = run.part(data)
    estimator = run.estimator(data)
    resume, before = False, {}
    if partial is not None:
        seconds = partial / "seconds.json"  # written after each checkpoint: present means a checkpoint is there
        resume = seconds.exists()
        before = json.loads(seconds.read_text()) if resume else {}
        started -= before.get("seconds", 0.0)
        partial.mkdir(parents=True, exist_ok=True)
        clock = SecondsBesideCheckpoints(seconds, started, before.get("fit_seconds", 0.0))
        estimator.set_params(checkpoint_dir=str(partial / "fit"), callbacks=[*(estimator.callbacks or ()), clock])
    estimator.fit(part.X_train, part.y_train, validation_data=(part.X_val, part.y_val), resume=resume)
    table = pd.DataFrame(lift_rows(estimator, part, run.modes)).set_index("method")
    if "fit_seconds" in before:  # the fit's history counts the resumed part only
        table["fit_seconds"] = (table["fit_seconds"] + before["fit_seconds"]).round(1)
    if run.baselines != ():
        table = pd.concat([table, baselines.evaluate(part, data.task, names=run.baselines, seed=run.seed)])
    table = table.reset_index()
    extras = figures.extras(estimator, part, data, profile, run.seed)
    columns = provenance(
        experiment=run.experiment, dataset=run.dataset, variant=run.variant, seed=run.seed, profile=profile,
        model=estimator.model or EMBEDDED, epochs=estimator.epochs, train_layers=estimator.train_layers,
        n_rows=len(data.y), n_train=len(part.y_train), tokens_per_row=round(estimator.tokens_per_row_, 1),
        style=run.style)
    columns.update(run_seconds=round(time.perf_counter() - started, 1), resumed=resume, code=code_fingerprint(),
                   learner_code=learner_code())  # seconds: everything, the figures' extras included
    for column, value in reversed(columns.items()):
        table.insert(0, column, value)
    return table, extras


def run_all(runs: list[Run], profile: str, experiment: str, cache: ResultsCache | None = None,
            results_folder: Path | None = None, write_csv: bool = True, log=print) -> pd.DataFrame:
    """Every run, from the cache where finished; returns all rows (extras in .attrs["extras"]).

    With write_csv, each finished run is merged into results/<experiment>_<profile>.csv as it completes."""
    cache = cache or ResultsCache()
    git_commit()  # pinned now, before hours of runs, for every row this process writes
    tables, extras = [], {}
    for number, item in enumerate(runs, 1):
        data = item.data()
        started = time.perf_counter()

        key = item.key(data, profile)

        def compute(item=item, data=data, key=key):
            # Full-profile fits run for up to hours, so they checkpoint every epoch and an interrupted command resumes
            # them; quick fits take minutes, not worth a checkpoint of the trained layers and AdamW's moments an epoch.
            partial = cache.open_partial(key) if profile == "full" else None
            table, figure_data = execute(item, profile, data, partial)
            return {"table": table.to_dict(orient="list"), "extras": figure_data}

        stored, cached = cache.get_or_compute(key, compute)
        extras[(item.dataset, item.variant, item.seed)] = stored.get("extras", {})
        table = pd.DataFrame(stored["table"]).assign(experiment=experiment, variant=item.variant, profile=profile,
                                                     plan_key=plan_key(key))
        tables.append(table)
        if write_csv:
            write_results(table, results_path(experiment, profile, results_folder))
        lift = table[table["method"].str.startswith("lift")].iloc[0]
        metric = "accuracy" if "accuracy" in lift and pd.notna(lift["accuracy"]) else "rae"
        log(f"[{number}/{len(runs)}] {item.dataset} {item.variant} seed {item.seed}: LIFT {metric} {lift[metric]:.3f} "
            f"({'cached' if cached else f'{time.perf_counter() - started:.0f} s'})")
    results = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    results.attrs["extras"] = extras  # (dataset, variant, seed) -> what execute() kept for figures
    return results


def piece_key(key: dict, piece: str, module: str) -> dict:
    """A piece's whole cache key: its own key, its name, the code (the core's, the runner's and `module`'s), the
    library versions and the model's identity."""
    return {**key, "piece": piece, "code": code_fingerprint(module), "environment": environment(),
            "model": model_identity()}


def cached_piece(experiment: str, profile: str, piece: str, key: dict, compute, module: str,
                 cache: ResultsCache | None = None, log=print) -> dict:
    """One named piece of an experiment that is not a LIFT-vs-baselines table (notebooks 08-10).

    compute() returns {"metrics": {name: number}, ...anything JSON-able for figures}. The key gets the code
    (the core's, the runner's and `module`'s, the paper module that computes the piece), the library versions and
    the embedded model's identity; key holds the rest (data, resolved settings). The piece runs once per key (then
    comes from the cache); in the full profile its metrics and provenance are merged into
    results/<experiment>_full.csv, one row per piece."""
    cache = cache or ResultsCache()
    git_commit()  # pinned before the piece computes (up to hours), as run_all does
    started = time.perf_counter()
    full_key = piece_key(key, piece, module)

    def timed():
        result = compute()
        result["provenance"] = provenance(experiment=experiment, piece=piece, profile=profile)
        result["provenance"].update(run_seconds=round(time.perf_counter() - started, 1), code=full_key["code"],
                                    learner_code=learner_code(), plan_key=plan_key(full_key))
        return result

    result, cached = cache.get_or_compute(full_key, timed)
    log(f"{experiment}/{piece}: {'cached' if cached else f'{time.perf_counter() - started:.0f} s'}")
    if profile == "full":
        row = pd.DataFrame([{"dataset": piece, "variant": "", "seed": key.get("seed", 0), **result["provenance"],
                             **result["metrics"]}])
        write_results(row, results_path(experiment, profile))
        # the figures' data too, so a reader sees a full run's pictures, not only its numbers, without rerunning it
        write_piece(result, piece_path(experiment, piece))
    return result


PROFILES = ("quick", "full")
# The quick profile is CI-sized for a 2-core CPU without native bf16 (fp32 matmuls at ~60 GFLOP/s): there the
# default learner (the top 12 of SmolLM2's 30 layers trained for at least 300 steps) took 10-14 min a fit, and the
# suite's ~16 fits did not fit CI's 90 minutes. The quick plans' fits train the top 4 layers instead, for the same
# 300 steps of batch 8 (3-4 min a fit there); a run's own settings win. The regression runs (regression.plan) and
# the notebooks that `make test` leaves out (Makefile) keep the default learner: runs_for(learner=False).
# The full profile uses the learner's defaults.
QUICK_LEARNER = {"train_layers": 4}


def profile_learner(profile: str) -> dict:
    """LIFT settings a profile puts under every fit's own: the quick profile's lighter learner; none in full."""
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose from {PROFILES}.")
    return dict(QUICK_LEARNER) if profile == "quick" else {}


def with_profile_learner(run: Run, profile: str) -> Run:
    """The run with the profile's learner settings, its own settings winning where both set one."""
    return replace(run, lift=tuple(sorted({**profile_learner(profile), **dict(run.lift)}.items())))


def runs_for(experiment: str, profile: str, table: dict, seeds=None, learner: bool = True, **common) -> list[Run]:
    """Runs for {(dataset, variant): settings} with seed 0 (quick) or 0, 1, 2 (full); learner=False: without the
    profile's learner settings (the default learner in quick too)."""
    seeds = seeds or ((0,) if profile == "quick" else (0, 1, 2))
    runs = []
    for (dataset, variant), settings in table.items():
        settings = {"style": "no_names", **common, **settings}
        for name in ("lift", "load", "template", "split", "changes"):
            settings[name] = tuple(sorted(dict(settings.get(name, {})).items()))
        for seed in seeds:
            run = Run(experiment, dataset, seed, variant=variant, **settings)
            runs.append(with_profile_learner(run, profile) if learner else run)
    return runs
