"""Reproduce the paper's experiments in resumable pieces, with provenance.

    python -m liftnb.paper classification --profile full            # every (data set, seed) not done yet
    python -m liftnb.paper classification --profile full --datasets iris wine --seeds 0
    python -m liftnb.paper regression --profile full --variants p=1 --seeds 0
    python -m liftnb.paper classification --profile quick --list    # the plan, with each run's size
    python -m liftnb.paper --status                                 # committed full rows: current, stale, missing, ...
    python -m liftnb.paper classification --table                   # the committed table, as the README shows it
    python -m liftnb.paper --prune-cache --dry-run                  # what the cache holds for other code or versions

Experiments (notebooks): classification (02), boundaries (03), regression (04), robustness (05), feature_names (06),
pretraining (07), half_image (08), two_stage (09), icl_calibration (10), own_data (11), imputation (12); sweep: the learner's defaults chosen on
validation data (README, "How the defaults were chosen").

Each run is cached by everything that determines it (data, every resolved setting, model, library versions and
the computing code's fingerprint), so an interrupted command continues where it stopped (a full-profile fit from
its last finished epoch), a notebook re-run takes the finished runs from the cache, and a change to the learner
recomputes instead of serving old numbers. In the full
profile every finished run is also merged into `results/<experiment>_full.csv`, one row per method, with provenance
(model, seed, epochs, git commit, date, seconds, CPU kernels, library versions, code fingerprints).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from ..cache import ResultsCache
from . import (boundaries, classification, feature_names, half_image, icl_calibration, imputation_study, own_data,
               pretraining, prune, regression, results as results_files, robustness, sweep, two_stage)
from .results import results_path, summary
from .runs import PROFILES, Run, piece_key, plan_key, run_all

TABLES = {"classification": classification, "boundaries": boundaries, "regression": regression,
          "robustness": robustness, "feature_names": feature_names, "pretraining": pretraining, "sweep": sweep}
# experiments made of cached pieces (notebooks 08-12)
PIECES = ("half_image", "two_stage", "icl_calibration", "own_data", "imputation")


def plan(experiment: str, profile: str = "quick") -> list[Run]:
    """The runs of a table experiment for a profile."""
    if experiment not in TABLES:
        raise ValueError(f"Unknown experiment {experiment!r}; choose from {sorted(TABLES)}.")
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose from {PROFILES}.")
    return TABLES[experiment].plan(profile)


def select(experiment: str, profile: str, datasets_: list[str] | None = None, seeds: list[int] | None = None,
           variants: list[str] | None = None) -> list[Run]:
    """The planned runs of the chosen data sets, seeds and variants (all where None); unknown names are an error."""
    planned = plan(experiment, profile)
    for chosen, field in ((datasets_, "dataset"), (variants, "variant")):
        unknown = set(chosen or ()) - {getattr(r, field) for r in planned}
        if unknown:
            raise ValueError(f"{sorted(unknown)} are not {field}s in the {profile} plan of {experiment!r}.")
    return [r for r in planned if (datasets_ is None or r.dataset in datasets_) and (seeds is None or r.seed in seeds)
            and (variants is None or r.variant in variants)]


def run(experiment: str, profile: str = "quick", datasets_: list[str] | None = None, seeds: list[int] | None = None,
        cache: ResultsCache | None = None, results_folder=None, write_csv: bool = True, log=print,
        variants: list[str] | None = None) -> pd.DataFrame:
    """Every planned run (or the chosen data sets/seeds/variants), from the cache where finished; returns all rows."""
    runs = select(experiment, profile, datasets_, seeds, variants)
    return run_and_commit(runs, profile, experiment, cache=cache, results_folder=results_folder, write_csv=write_csv,
                          log=log)


def run_and_commit(runs: list[Run], profile: str, experiment: str, results_folder=None, write_csv: bool = True,
                   **options) -> pd.DataFrame:
    """run_all, then (full profile, results written) each run's figure data committed beside its rows."""
    results = run_all(runs, profile, experiment, results_folder=results_folder, write_csv=write_csv, **options)
    if write_csv and profile == "full":
        write_extras(experiment, results, results_folder)
    return results


EXTRAS_PROVENANCE = ["git_commit", "date", "code", "learner_code", "cpu_kernels", "libraries", "plan_key"]


def extras_piece(dataset: str, variant: str, seed: int) -> str:
    """The name of one full-profile run's figure-data file, e.g. "extras-linear-outliers-10pct-seed0"."""
    words = re.sub(r"[^A-Za-z0-9.=]+", "-", f"{dataset} {variant}".replace("%", "pct")).strip("-")
    return f"extras-{words}-seed{seed}"


def write_extras(experiment: str, results: pd.DataFrame, folder=None) -> list[Path]:
    """Commit each full-profile run's figure data (regions, curves, sampled intervals) beside its rows, in
    results/<experiment>_full/, with the run's provenance: what notebooks show from the full profile without
    recomputing it. Runs without figure data write nothing; returns the files written."""
    written = []
    for (dataset, variant, seed), extras in results.attrs.get("extras", {}).items():
        if not extras:
            continue
        rows = results[(results["dataset"] == dataset) & (results["variant"] == variant) & (results["seed"] == seed)]
        provenance = {column: rows[column].iloc[0] for column in EXTRAS_PROVENANCE if column in rows}
        path = results_files.piece_path(experiment, extras_piece(dataset, variant, seed), folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        results_files.write_piece({"dataset": dataset, "variant": variant, "seed": int(seed), "extras": extras,
                                   "provenance": {k: (v.item() if hasattr(v, "item") else v)
                                                  for k, v in provenance.items()}}, path)
        written.append(path)
    return written


def committed_extras(experiment: str, folder=None) -> dict:
    """The committed full-profile runs' figure data: (dataset, variant, seed) -> extras, each with the run's
    provenance in "source" and "stale" as committed() gives them for rows (results/<experiment>_full/extras-*)."""
    def in_plan_order(path: Path) -> list:  # numbers as numbers: "outliers 5%" before "outliers 10%"
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    found, planned = {}, planned_keys(experiment)
    folder_of_runs = Path(folder or results_files.RESULTS_DIR) / f"{experiment}_full"
    for path in sorted(folder_of_runs.glob("extras-*.json.gz"), key=in_plan_order):
        stored = results_files.read_piece(path)
        run = (stored["dataset"], stored["variant"], stored["seed"])
        piece = results_files.judged_piece(stored, path, planned.get(run))
        found[run] = {**piece["extras"], "source": piece["source"], "state": piece["state"], "stale": piece["stale"]}
    return found


def run_command(experiment: str, profile: str, item: Run) -> list[str]:
    """The command line that computes one planned run in a process of its own."""
    return [sys.executable, "-m", "liftnb.paper", experiment, "--profile", profile, "--datasets", item.dataset,
            "--seeds", str(item.seed), *(["--variants", item.variant] if item.variant else [])]


def run_in_processes(experiment: str, profile: str, runs: list[Run], jobs: int, command=run_command,
                     log=print) -> list[Run]:
    """Each run in a process of its own, `jobs` at a time, all sharing the results cache; returns those that finished.

    For a machine with room for several fits at once (one GPU holds eight 135M fits): each process writes its rows to
    a scratch results folder, so no two processes rewrite one results file; the caller then collects the finished
    runs from the cache into results/ (run_all, one writer). Never worth it on a 2-core CPU: fits share the cores."""
    scratch = Path(tempfile.mkdtemp(prefix=f"liftnb-{experiment}-"))
    waiting, running, finished, failed = list(enumerate(runs)), {}, [], []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                number, item = waiting.pop(0)
                log_file = open(scratch / f"{number}.log", "w")
                env = {**os.environ, "LIFTNB_RESULTS": str(scratch / str(number)), "PYTHONUNBUFFERED": "1"}
                running[number] = (item, log_file, subprocess.Popen(command(experiment, profile, item), env=env,
                                                                    stdout=log_file, stderr=subprocess.STDOUT))
            time.sleep(1)
            for number, (item, log_file, process) in list(running.items()):
                if process.poll() is None:
                    continue
                log_file.close()
                del running[number]
                name = f"{item.dataset} {item.variant} seed {item.seed}".replace("  ", " ")
                if process.returncode == 0:
                    finished.append(item)
                    log(f"finished {len(finished)} of {len(runs)}: {name}")
                else:
                    failed.append(item)
                    tail = (scratch / f"{number}.log").read_text(errors="replace").splitlines()[-15:]
                    log(f"FAILED (exit {process.returncode}): {name}; the end of its log:\n" + "\n".join(tail))
    finally:  # an interrupted parent (Ctrl-C) takes its processes with it
        for _, log_file, process in running.values():
            process.terminate()
            log_file.close()
    if failed:
        log(f"{len(failed)} of {len(runs)} runs failed; their logs are in {scratch}")
    else:
        shutil.rmtree(scratch)
    return [item for item in runs if item in finished]


def notebook_results(experiment: str, profile: str, log=print) -> pd.DataFrame:
    """What a notebook asserts on: this profile's runs computed by this checkout (from the cache where the same
    code, settings and data ran before). Only the full profile writes results/."""
    results = run(experiment, profile, write_csv=(profile == "full"), log=log)
    results["source"] = f"this execution ({profile})"
    return results


def committed(experiment: str) -> pd.DataFrame:
    """The committed full-profile rows (results/<experiment>_full.csv) for readers, each with its provenance in
    `source`, its `state` and `stale`: not what this checkout computes (the learner code changed since, or the row
    was computed for another plan)."""
    return results_files.committed(experiment, plan_keys=planned_keys(experiment_of(experiment)))


def experiment_of(results_name: str) -> str:
    """The experiment that writes a results file (results/<results_name>_full.csv)."""
    return next(experiment for experiment in [*TABLES, *PIECES] if results_name in planned_full_runs(experiment))


NOT_BASELINES = ["lift", "lift_score", "lift_generate", "majority", "mean"]  # methods a best baseline is not
LOWER_IS_BETTER = {"rae", "rmse"}


def committed_overview(full: pd.DataFrame, metric="accuracy") -> pd.DataFrame:
    """Committed rows per (data set, variant): LIFT's mean over seeds beside the best baseline's, how many rows are
    stale, and where they were computed (commit, kernels or GPU). `metric` is a column name or a function of
    (dataset, variant, rows) that returns one."""
    overview = []
    for (dataset, variant), rows in full.groupby(["dataset", "variant"], sort=False):
        name = metric(dataset, variant, rows) if callable(metric) else metric
        means = rows.groupby("method")[name].mean()
        others = means.drop(NOT_BASELINES, errors="ignore").dropna()
        best = (others.idxmin() if name in LOWER_IS_BETTER else others.idxmax()) if len(others) else None
        overview.append({"dataset": dataset, "variant": variant, "metric": name, "seeds": rows["seed"].nunique(),
                         "LIFT": means.get("lift_score", means.get("lift")),
                         "best baseline": others.get(best), "best is": best,
                         "stale": f"{int(rows['stale'].sum())} of {len(rows)} rows",
                         "computed": computed_where(rows)})
    return pd.DataFrame(overview).set_index(["dataset", "variant"])


def computed_where(rows: pd.DataFrame) -> str:
    """The distinct provenances of some committed rows, without the file name committed() starts each with."""
    return "; ".join(rows["source"].str.split(" @ ", n=1).str[-1].unique())


def committed_interval_coverage(figure_data: dict) -> pd.DataFrame:
    """regression.interval_coverage of committed runs (committed_extras) beside, per function and p, the seeds, how
    many of the runs are stale and where they were computed (commit, kernels or GPU)."""
    table = regression.interval_coverage(figure_data)
    if table.empty:
        return table
    runs = pd.DataFrame([{"function": dataset, "p": variant, "stale": extras["stale"], "source": extras["source"]}
                         for (dataset, variant, _), extras in figure_data.items() if extras.get("intervals")])
    by_run = runs.groupby(["function", "p"], sort=False)
    about = by_run.agg(seeds=("stale", "size"), stale=("stale", "sum"))
    about["computed"] = by_run[["source"]].apply(computed_where)
    return table.join(about)


def committed_piece(experiment: str, piece: str) -> dict | None:
    """A committed full-profile piece of notebooks 08-12 with its figures' data (results/<experiment>_full/), its
    provenance in `source`, `state` and `stale`; None where none was committed."""
    planned = {run[0]: key for run, key in planned_keys(experiment_of(experiment)).items()}
    return results_files.committed_piece(experiment, piece, planned_key=planned.get(piece))


def planned_full_runs(experiment: str) -> dict[str, list[tuple[str, str, int]]]:
    """(dataset or piece, variant, seed) of every full-profile run, per results file the experiment writes."""
    if experiment in TABLES:
        return {experiment: [(r.dataset, r.variant, r.seed) for r in plan(experiment, "full")]}
    if experiment == "half_image":
        return {"half_image": [(name, "", 0) for name in half_image.image_sets("full")]}
    if experiment == "two_stage":
        return {"two_stage": [(two_stage.piece_name(task, n, seed), "", seed)
                              for task in two_stage.PLANNED_TASKS["full"]
                              for seed in two_stage.SEEDS["full"] for n in two_stage.SIZES["full"]]}
    if experiment == "icl_calibration":
        return {"icl": [(icl_calibration.icl_piece(name, k), "", 0)
                        for name, k in icl_calibration.ICL_SETS["full"].items()],
                "calibration": [(icl_calibration.calibration_piece("full"), "", 0)]}
    if experiment == "own_data":
        return {"own_data": [(own_data.piece_name(seed), "", seed) for seed in own_data.SEEDS["full"]]}
    if experiment == "imputation":
        return {"imputation": [(imputation_study.piece_name(seed), "", seed) for seed in imputation_study.SEEDS["full"]]}
    raise ValueError(f"Unknown experiment {experiment!r}.")


def planned_keys(experiment: str) -> dict:
    """(dataset or piece, variant, seed) -> a function giving that full-profile run's or piece's plan_key (loading
    the data is why it waits to be called), for every results file the experiment writes."""
    if experiment in TABLES:
        return {(r.dataset, r.variant, r.seed): (lambda r=r: plan_key(r.key(r.data(), "full")))
                for r in plan(experiment, "full")}

    def piece(name: str, key, module: str):
        return lambda: plan_key(piece_key(key(), name, module))

    if experiment == "half_image":
        return {(name, "", 0): piece(name, lambda name=name: half_image.half_image_key(name, "full"), half_image.MODULE)
                for name in half_image.image_sets("full")}
    if experiment == "two_stage":
        return {(two_stage.piece_name(task, n, seed), "", seed): piece(
                    two_stage.piece_name(task, n, seed),
                    lambda task=task, n=n, seed=seed: two_stage.two_stage_key(task, n, seed, "full"), two_stage.MODULE)
                for task in two_stage.PLANNED_TASKS["full"] for seed in two_stage.SEEDS["full"]
                for n in two_stage.SIZES["full"]}
    if experiment == "icl_calibration":
        source = icl_calibration.calibration_source("full")
        return {**{(icl_calibration.icl_piece(name, k), "", 0): piece(
                       icl_calibration.icl_piece(name, k),
                       lambda name=name, k=k: icl_calibration.icl_key(name, k, "full"), icl_calibration.MODULE)
                   for name, k in icl_calibration.ICL_SETS["full"].items()},
                (icl_calibration.calibration_piece("full"), "", 0): lambda: plan_key(source.key(source.data(), "full"))}
    if experiment == "own_data":
        return {(own_data.piece_name(seed), "", seed): piece(
                    own_data.piece_name(seed), lambda seed=seed: own_data.penguins_key(seed), own_data.MODULE)
                for seed in own_data.SEEDS["full"]}
    if experiment == "imputation":
        return {(imputation_study.piece_name(seed), "", seed): piece(
                    imputation_study.piece_name(seed), lambda seed=seed: imputation_study.imputation_key(seed, "full"),
                    imputation_study.MODULE)
                for seed in imputation_study.SEEDS["full"]}
    raise ValueError(f"Unknown experiment {experiment!r}.")


def status(experiments=None) -> pd.DataFrame:
    """Every planned full-profile run with its state in results/: "current", "stale", "other plan" or "missing"."""
    return pd.concat([results_files.status(name, planned, plan_keys=planned_keys(experiment))
                      for experiment in experiments or [*TABLES, *PIECES]
                      for name, planned in planned_full_runs(experiment).items()], ignore_index=True)


def status_report(table: pd.DataFrame) -> str:
    """Counts per results file, then the runs that are not current, seeds gathered per (data set, variant)."""
    counts = table.groupby(["experiment", "state"]).size().unstack("state", fill_value=0)
    behind = table[table["state"] != "current"].groupby(["experiment", "state", "dataset", "variant"], sort=False)
    lines = [f"{e} {state}: {d}{f' ({v})' if v else ''} seeds {sorted(group['seed'])}"
             for (e, state, d, v), group in behind]
    return counts.to_string() + "\n\n" + "\n".join(lines)


def run_pieces(experiment: str, profile: str) -> None:
    """The experiments of notebooks 08-12, made of cached pieces rather than LIFT-vs-baselines tables."""
    if experiment == "half_image":
        for name in half_image.image_sets(profile):
            half_image.half_image_run(name, profile)
    elif experiment == "two_stage":
        for task in two_stage.PLANNED_TASKS[profile]:
            two_stage.experiment(profile, task)
    elif experiment == "icl_calibration":
        for name, k in icl_calibration.ICL_SETS[profile].items():
            icl_calibration.icl_run(name, k, profile)
        icl_calibration.calibration_run(profile)
    elif experiment == "own_data":
        for seed in own_data.SEEDS[profile]:
            own_data.penguins_run(seed, profile)
    elif experiment == "imputation":
        for seed in imputation_study.SEEDS[profile]:
            imputation_study.imputation_run(seed, profile)
    else:
        raise ValueError(f"Unknown experiment {experiment!r}.")


def piece_names(experiment: str, profile: str) -> list[str]:
    """What run_pieces computes for an experiment and profile, one line per piece (for --list)."""
    if experiment == "half_image":
        def images(s: half_image.ImageSet) -> str:
            more = f" ({s.n_train} + {s.extra_train} from the rest of the data set)" if s.extra_train else ""
            return f"{s.train_images} training{more}, {s.n_val} validation and {s.n_test} test images"

        return [f"{name}: {images(s)}, epochs={s.epochs} ({s.options})"
                for name, s in half_image.image_sets(profile).items()]
    if experiment == "two_stage":
        return [f"{task} n={n} seed={seed}: one stage and two stages" for task in two_stage.PLANNED_TASKS[profile]
                for seed in two_stage.SEEDS[profile] for n in two_stage.SIZES[profile]]
    if experiment == "icl_calibration":
        return [*(f"icl {name} k={k}: in context vs LIFT on the same k"
                  for name, k in icl_calibration.ICL_SETS[profile].items()),
                f"calibration: notebook 02's run of {icl_calibration.calibration_piece(profile)} rows, seed 0"]
    if experiment == "own_data":
        return [f"{own_data.piece_name(seed)}: LIFT ({' and '.join(own_data.MODES)}) beside the baselines, {own_data.FIT}"
                for seed in own_data.SEEDS[profile]]
    if experiment == "imputation":
        return [f"{imputation_study.piece_name(seed)}: LIFT, the column mean/mode and {imputation_study.NEIGHBOURS} "
                f"nearest neighbours fill {imputation_study.HIDDEN_PER_ROW} hidden cells a test row, "
                f"{imputation_study.BUDGET[profile]}" for seed in imputation_study.SEEDS[profile]]
    raise ValueError(f"Unknown experiment {experiment!r}.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m liftnb.paper", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", choices=[*TABLES, *PIECES])
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--variants", nargs="+", help='e.g. "p=1" (regression) or "random init" (pretraining)')
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, each in a process of its own (a GPU's room; never on a 2-core CPU)")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--status", action="store_true",
                        help="count the full-profile runs of results/ that are current, stale (another learner), "
                             "of another plan or missing")
    parser.add_argument("--table", action="store_true",
                        help="print the committed full-profile classification table as markdown (the README's)")
    parser.add_argument("--prune-cache", action="store_true",
                        help="remove what ~/.cache/liftnb holds for other code or library versions (see --dry-run)")
    parser.add_argument("--dry-run", action="store_true", help="with --prune-cache: list, remove nothing")
    args = parser.parse_args(argv)
    if args.dry_run and not args.prune_cache:
        parser.error("--dry-run goes with --prune-cache")
    if args.prune_cache:
        if args.experiment is not None:
            parser.error("--prune-cache looks at the whole cache, not one experiment")
        print(prune.report(prune.prune(dry_run=args.dry_run), dry_run=args.dry_run))
        return
    if args.table:
        if args.experiment not in (None, "classification"):
            parser.error("--table prints the classification table only")
        print(classification.committed_markdown(committed("classification")), end="")
        return
    if args.status:
        print(status_report(status([args.experiment] if args.experiment else None)))
        return
    if args.experiment is None:
        parser.error("name an experiment (or --status)")
    if args.experiment in PIECES:
        if args.list:
            print("\n".join(piece_names(args.experiment, args.profile)))
            return
        if args.datasets or args.seeds or args.variants or args.jobs != 1:
            parser.error(f"--datasets, --seeds, --variants and --jobs apply to the table experiments, "
                         f"not {args.experiment!r}")
        run_pieces(args.experiment, args.profile)
        if args.profile == "full":
            print("written:", ", ".join(str(results_path(name, "full")) for name in planned_full_runs(args.experiment)))
        return
    if args.list:
        for item in plan(args.experiment, args.profile):
            print(item.dataset, item.variant, "seed", item.seed, "rows", item.rows or "all", item.style,
                  dict(item.lift))
        return
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    chosen = select(args.experiment, args.profile, args.datasets, args.seeds, args.variants)
    # with --jobs, the runs go to processes of their own and run_all then collects them from the cache they filled
    finished = chosen if args.jobs == 1 else run_in_processes(args.experiment, args.profile, chosen, args.jobs)
    results = run_and_commit(finished, args.profile, args.experiment)
    print(summary(results).to_string() if len(results) else "no run finished")
    print("written:", results_path(args.experiment, args.profile))
    if len(finished) < len(chosen):
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
