"""One data set, one split: LIFT beside the baselines, as a table (used by the demo and the notebooks)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from . import baselines, metrics
from .cache import computing_code, environment
from .datasets import Dataset, Split, split as paper_split, template_for
from .estimators import LIFTClassifier, LIFTRegressor
from .models import model_identity


def lift_estimator(data: Dataset, style: str = "names", **params):
    """An unfitted LIFT estimator for the data set's task, with its template in `style` unless one is given."""
    estimator_class = LIFTClassifier if data.task == "classification" else LIFTRegressor
    template = params.pop("template", None) or template_for(data, style=style)
    return estimator_class(template=template, **params)


def fit_lift(data: Dataset, part: Split, style: str = "names", **params):
    """Fit LIFT on the training part, selecting the epoch on the validation part."""
    estimator = lift_estimator(data, style, **params)
    estimator.fit(part.X_train, part.y_train, validation_data=(part.X_val, part.y_val))
    return estimator


def result_key(data: Dataset, seed: int, estimator, **more) -> dict:
    """Everything that determines a LIFT run's result: data by content, the seed, every resolved setting of the
    estimator (defaults filled in), the model's identity, library versions and the computing code."""
    return {"X": data.X, "y": data.y, "seed": seed, "lift": estimator.resolved_settings(),
            "model": model_identity(estimator.model), "environment": environment(), "code": computing_code(), **more}


def training_summary(history) -> dict:
    """How a fit went: its length, the kept epoch, its validation score and the per-epoch validation curve."""
    def curve(key):
        return " ".join(f"{m[key]:.4g}" for m in history.epochs if key in m)

    kept = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    return {"fit_seconds": round(history.seconds, 1), "steps": history.steps, "epochs_run": len(history.epochs),
            "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
            "val_score": kept.get("val_score"), "val_tiebreak": kept.get("val_tiebreak"),
            "val_curve": curve("val_score"), "val_tiebreak_curve": curve("val_tiebreak")}


def valid_answers(estimator, mode: str) -> np.ndarray | bool:
    """Which answers of the classifier's last predict call parsed (label scoring always answers with a class):
    score() counts the others as wrong, where predict() fills them with the majority class."""
    if mode == "score":
        return True
    return np.array([estimator.template_.parse(c) is not None for c in estimator.last_completions_])


def lift_rows(estimator, part: Split, modes=("score",)) -> list[dict]:
    """Test metrics of a fitted LIFT estimator, one row per prediction mode."""
    rows = []
    y_test = np.asarray(part.y_test)
    for mode in modes:
        estimator.set_params(predict_mode=mode)
        started = time.perf_counter()
        if isinstance(estimator, LIFTClassifier):
            predicted = estimator.predict(part.X_test)  # one pass over the test rows serves both metrics
            accuracy = float(np.mean((predicted == y_test) & valid_answers(estimator, mode)))  # as score() counts
            row = {"method": f"lift_{mode}", "accuracy": accuracy, "f1": metrics.f1(y_test, predicted)}
            row["invalid_rate"] = estimator.invalid_rate_ if mode == "generate" else 0.0
        else:
            predicted = estimator.predict(part.X_test)
            row = {"method": "lift", "rae": metrics.rae(y_test, predicted, filter_outliers=True),
                   "rae_unfiltered": metrics.rae(y_test, predicted), "rmse": metrics.rmse(y_test, predicted),
                   "invalid_rate": estimator.invalid_rate_}
        row["seconds"] = estimator.history_.seconds + (time.perf_counter() - started)
        rows.append({**row, **training_summary(estimator.history_)})
    estimator.set_params(predict_mode="score")
    return rows


def compare(data: Dataset, seed: int = 0, modes=("score",), baseline_names=None, **lift_params):
    """(table, fitted LIFT estimator): LIFT and the baselines on one split of the paper's protocol."""
    part = paper_split(data, seed=seed)
    estimator = fit_lift(data, part, **lift_params)
    table = pd.DataFrame(lift_rows(estimator, part, modes)).set_index("method")
    table = pd.concat([table, baselines.evaluate(part, data.task, names=baseline_names, seed=seed)])
    return table, estimator


def compare_table(data: Dataset, seed: int = 0, cache=None, **kwargs) -> pd.DataFrame:
    """compare()'s table alone, taken from the results cache when the same run has finished before."""
    if cache is None:
        return compare(data, seed=seed, **kwargs)[0]
    lift = {k: v for k, v in kwargs.items() if k not in ("modes", "baseline_names")}
    key = result_key(data, seed, lift_estimator(data, **lift), dataset=data.name,
                     modes=repr(kwargs.get("modes", ("score",))), baselines=repr(kwargs.get("baseline_names")))
    result, _ = cache.get_or_compute(key, lambda: compare(data, seed=seed, **kwargs)[0].reset_index()
                                     .to_dict(orient="list"))
    return pd.DataFrame(result).set_index("method")

