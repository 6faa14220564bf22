"""One data set, one split: LIFT beside the baselines, as a table (used by the demo and the notebooks)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from . import baselines, metrics
from .datasets import Dataset, Split, split as paper_split, template_for
from .estimators import LIFTClassifier, LIFTRegressor


def fit_lift(data: Dataset, part: Split, style: str = "names", **params):
    """Fit LIFT on the training part, selecting the epoch on the validation part."""
    estimator_class = LIFTClassifier if data.task == "classification" else LIFTRegressor
    template = params.pop("template", None) or template_for(data, style=style)
    estimator = estimator_class(template=template, **params)
    estimator.fit(part.X_train, part.y_train, validation_data=(part.X_val, part.y_val))
    return estimator


def lift_rows(estimator, part: Split, modes=("score",)) -> list[dict]:
    """Test metrics of a fitted LIFT estimator, one row per prediction mode."""
    rows = []
    y_test = np.asarray(part.y_test)
    for mode in modes:
        estimator.set_params(predict_mode=mode)
        started = time.perf_counter()
        if isinstance(estimator, LIFTClassifier):
            accuracy = estimator.score(part.X_test, y_test)  # invalid generations count as wrong
            predicted = estimator.predict(part.X_test)
            row = {"method": f"lift_{mode}", "accuracy": accuracy, "f1": metrics.f1(y_test, predicted)}
            row["invalid_rate"] = estimator.invalid_rate_ if mode == "generate" else 0.0
        else:
            predicted = estimator.predict(part.X_test)
            row = {"method": "lift", "rae": metrics.rae(y_test, predicted, filter_outliers=True),
                   "rae_unfiltered": metrics.rae(y_test, predicted), "rmse": metrics.rmse(y_test, predicted),
                   "invalid_rate": estimator.invalid_rate_}
        row["seconds"] = estimator.history_.seconds + (time.perf_counter() - started)
        rows.append(row)
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
    from . import __version__
    from .models import EMBEDDED

    key = {"X": data.X, "y": data.y, "dataset": data.name, "seed": seed, "liftnb": __version__,
           "model": kwargs.get("model") or EMBEDDED, **{k: repr(v) for k, v in kwargs.items()}}
    result, _ = cache.get_or_compute(key, lambda: compare(data, seed=seed, **kwargs)[0].reset_index()
                                     .to_dict(orient="list"))
    return pd.DataFrame(result).set_index("method")


def decision_regions(data: Dataset, seed: int = 0, resolution: int = 40, baseline_names=None, cache=None,
                     **lift_params) -> dict:
    """LIFT's and the baselines' decision regions on a grid over a 2-D data set, with their test accuracy.

    Returns {"xx", "yy", "regions": {method: class codes on the grid}, "accuracy": {method: test accuracy},
    "seconds": {method: fit + grid seconds}}; with a ResultsCache, a finished run is reused."""
    from . import __version__
    from .models import EMBEDDED
    from .plots import grid_for

    baseline_names = list(baseline_names or ["logreg", "tree", "knn", "svm_rbf", "mlp", "xgboost"])

    def compute() -> dict:
        part = paper_split(data, seed=seed)
        xx, yy, points = grid_for(data.X, resolution)
        classes = np.unique(data.y)
        out = {"xx": xx.tolist(), "yy": yy.tolist(), "regions": {}, "accuracy": {}, "seconds": {}}
        started = time.perf_counter()
        estimator = fit_lift(data, part, **{"verbose": 0, "random_state": seed, "style": "no_names", **lift_params})
        out["regions"]["lift"] = np.searchsorted(classes, estimator.predict(points)).reshape(xx.shape).tolist()
        out["accuracy"]["lift"] = estimator.score(part.X_test, part.y_test)
        out["seconds"]["lift"] = time.perf_counter() - started
        y_test = np.searchsorted(classes, part.y_test)
        for name in baseline_names:
            started = time.perf_counter()
            model = baselines.fit_best(name, part, data.task, seed)
            out["regions"][name] = model.predict(points.to_numpy(dtype=float)).reshape(xx.shape).tolist()
            out["accuracy"][name] = metrics.accuracy(y_test, model.predict(part.X_test.to_numpy(dtype=float)))
            out["seconds"][name] = time.perf_counter() - started
        return out

    if cache is None:
        result = compute()
    else:
        key = {"X": data.X, "y": data.y, "dataset": data.name, "seed": seed, "resolution": resolution,
               "baselines": baseline_names, "liftnb": __version__, "model": lift_params.get("model") or EMBEDDED,
               **{k: repr(v) for k, v in lift_params.items()}}
        result, _ = cache.get_or_compute(key, compute)
    result["xx"], result["yy"] = np.asarray(result["xx"]), np.asarray(result["yy"])
    result["regions"] = {k: np.asarray(v) for k, v in result["regions"].items()}
    return result
