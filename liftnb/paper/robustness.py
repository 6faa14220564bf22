"""Notebook 05: outliers in regression labels, label corruption, class imbalance."""
from __future__ import annotations

from . import classification, regression
from .runs import Run, runs_for

BASELINES = {"regression": ("polynomial", "kernel_ridge", "knn", "gradient_boosting", "random_forest"),
                     "classification": ("logreg", "knn", "svm_rbf", "random_forest", "xgboost")}


def plan(profile: str = "quick") -> list[Run]:
    """Outliers in regression labels, label corruption, class imbalance (notebook 05)."""
    quick = profile == "quick"
    table = {}
    for fraction in ((0.0, 0.2) if quick else (0.0, 0.05, 0.1, 0.2)):
        table[("linear", f"outliers {fraction:.0%}")] = {  # 0%: the same run as notebook 04's linear p=1
            "load": {"p": 1, "n": 350}, "split": regression.SPLIT, "lift": regression.lift_settings(profile),
            "changes": {"outliers": fraction} if fraction else {}}
    if quick:  # CI: the asserted regression outliers only (a classification fit takes 1.5 min at 300 steps), with
        # the default learner like notebook 04's runs (regression.plan)
        return runs_for("robustness", profile, table, learner=False)
    for name in ("blobs", "iris"):
        rows = classification.table_rows(name, profile)
        table[(name, "clean")] = classification.as_in_table(name, profile)  # notebook 02's run
        for kind in ("random", "systematic"):
            for fraction in (0.05, 0.1, 0.2):
                table[(name, f"{kind} {fraction:.0%}")] = {
                    "rows": rows, "baselines": BASELINES["classification"],
                    "changes": {"corrupt": kind, "fraction": fraction}}
    for share in (0.05, 0.1, 0.2):
        table[("moons", f"minority {share:.0%}")] = {"rows": 400, "baselines": BASELINES["classification"],
                                                     "changes": {"imbalance": share}}
    return runs_for("robustness", profile, table)


