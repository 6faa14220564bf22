"""Notebook 04: the paper's regression functions, RAE with and without its outlier filter, and the coverage of
intervals from sampled answers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import datasets
from ..intervals import conformal_margin, coverage, widened
from . import reported
from .runs import Run, runs_for

SPLIT = {"test_size": 100, "val_size": 50}  # the paper's 200 train / 50 validation / 100 test


def plan(profile: str = "quick") -> list[Run]:
    """The paper's regression functions (notebook 04): linear with p = 1 in quick, all six with p = 1 and 2 in full."""
    # quick (CI): the asserted function only; cosine (the hard case, not asserted) cost 77 s of CI time
    functions = ["linear"] if profile == "quick" else list(datasets.SYNTHETIC_REGRESSION)
    dimensions = (1,) if profile == "quick" else (1, 2)
    table = {(f, f"p={p}"): {"load": {"p": p, "n": 350}, "lift": lift_settings(profile)}
             for f in functions for p in dimensions}
    # the default learner in quick too: with the quick profile's 4 layers (100 steps) the linear function's RAE was
    # 0.33 (0.12 with 12) and the 90% interval covered 77% of the test rows (fp32, AVX2, 2026-12-02)
    return runs_for("regression", profile, table, split=SPLIT, learner=False)


def lift_settings(profile: str) -> dict:
    # quick: 4 epochs (each epoch also decodes the 50 validation rows to pick the best epoch)
    return {"epochs": 4} if profile == "quick" else {}


def beside_paper(results: pd.DataFrame) -> pd.DataFrame:
    """RAE (filtered as in the paper, and unfiltered), RMSE and invalid rate per function and p, beside the paper's
    p = 1 numbers; means over seeds."""
    paper = reported.regression_rae()
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
        if variant == "p=1" and dataset in paper.index:
            paper_row = paper.loc[dataset]
            row.update({"paper LIFT/GPT-J": paper_row["lift_gptj"], "paper LIFT/GPT-3": paper_row["lift_gpt3"],
                        "paper best baseline": paper_row.drop(["lift_gptj", "lift_gpt3"]).min()})
        rows.append(row)
    return pd.DataFrame(rows).set_index(["function", "p"])


# random halvings of the test rows for the calibrated intervals' coverage (200 left about a point of chance)
CALIBRATION_SPLITS = 2000


def calibrated_on_halves(low: np.ndarray, high: np.ndarray, truth: np.ndarray, nominal: float,
                         splits: int = CALIBRATION_SPLITS, seed: int = 0) -> tuple[float, float]:
    """(coverage, mean width) of split-conformal intervals, averaged over random halvings of the rows: each time the
    margin is found on one half (liftnb.intervals.conformal_margin) and the widened intervals are measured on the
    other, so no row calibrates the interval it is scored by."""
    rng = np.random.default_rng(seed)
    covered, widths = [], []
    for _ in range(splits):
        order = rng.permutation(len(truth))
        calibration, held = order[:len(truth) // 2], order[len(truth) // 2:]
        margin = conformal_margin(low[calibration], high[calibration], truth[calibration], nominal)
        new_low, new_high = widened(low[held], high[held], margin)
        covered.append(coverage(new_low, new_high, truth[held]))
        widths.append(np.mean(new_high - new_low))
    return 100 * float(np.mean(covered)), float(np.mean(widths))


def interval_coverage(figure_data: dict) -> pd.DataFrame:
    """Empirical coverage and mean width of the central 80% and 90% intervals on the test rows, per function with
    p = 1 (means over seeds): LIFT's sampled answers as they come ("lift"), the same intervals calibrated by split
    conformal on half of the test rows and measured on the other half ("lift calibrated", see calibrated_on_halves),
    where a run sampled its validation rows (full profile) calibrated on those and measured on every test row ("lift
    calibrated on validation"), and the Gaussian process's predictive distribution. figure_data: (dataset, variant,
    seed) -> a run's extras, as in results.attrs["extras"] or reproduce.committed_extras()."""
    rows = []
    for (dataset, variant, seed), extras in figure_data.items():
        intervals = (extras or {}).get("intervals")
        if not intervals:
            continue
        truth, levels = np.asarray(intervals["truth"]), list(intervals["quantiles"])
        validation = intervals.get("validation")
        methods = ["lift", "lift calibrated", *(["lift calibrated on validation"] if validation else []),
                   "gaussian_process"]
        for method in methods:
            bounds = np.asarray(intervals["gaussian_process" if method == "gaussian_process" else "lift"])
            row = {"function": dataset, "p": variant, "method": method, "seed": seed}
            for nominal in (0.8, 0.9):
                columns = levels.index(round((1 - nominal) / 2, 2)), levels.index(round((1 + nominal) / 2, 2))
                low, high = bounds[:, columns[0]], bounds[:, columns[1]]
                if method == "lift calibrated":
                    covered, width = calibrated_on_halves(low, high, truth, nominal, seed=seed)
                else:
                    if method == "lift calibrated on validation":
                        on_validation = np.asarray(validation["lift"])[:, columns]
                        margin = conformal_margin(*on_validation.T, np.asarray(validation["truth"]), nominal)
                        low, high = widened(low, high, margin)
                    covered, width = 100 * float(coverage(low, high, truth)), float(np.mean(high - low))
                row[f"coverage {nominal:.0%}"], row[f"width {nominal:.0%}"] = covered, width
            if method.startswith("lift"):
                row["invalid samples %"] = 100 * intervals["sample_invalid_rate"]
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).drop(columns="seed")
    return table.groupby(["function", "p", "method"], sort=False).mean()

