"""What a run keeps for its figures beyond the metrics: decision regions and label scores of 2-D classification,
curves and sampled intervals of 1-D regression (notebooks 03, 04 and 10)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from .. import baselines
from ..plots import grid_for

REGION_BASELINES = ("logreg", "tree", "knn", "svm_rbf", "mlp", "xgboost")
# quick (CI): 12x12 grid points; LIFT scores each through the whole model (0.1-0.15 s a point in fp32 on 2 cores,
# where 20x20 took ~60 s of each 2-D run)
REGION_RESOLUTION = {"quick": 12, "full": 60}
CURVE_BASELINES = ("polynomial", "knn", "gradient_boosting", "gaussian_process")
INTERVAL_QUANTILES = (0.05, 0.1, 0.5, 0.9, 0.95)  # the median and the central 80% and 90% intervals
INTERVAL_SAMPLES = 20  # sampled answers per test row (LIFTRegressor.sample's default)


def decision_regions(estimator, part, data, resolution: int = 30, seed: int = 0) -> dict:
    """LIFT's and the baselines' predicted class codes on a resolution x resolution grid over a 2-D data set."""
    xx, yy, points = grid_for(data.X, resolution)
    classes = np.unique(data.y)
    out = {"xx": xx.tolist(), "yy": yy.tolist(), "regions": {}}
    out["regions"]["lift"] = np.searchsorted(classes, estimator.predict(points)).reshape(xx.shape).tolist()
    for name in REGION_BASELINES:
        model = baselines.fit_best(name, part, data.task, seed)
        out["regions"][name] = model.predict(points.to_numpy(dtype=float)).reshape(xx.shape).tolist()
    return out


def label_scores(estimator, part, data, seed: int = 0) -> dict:
    """LIFT's per-class log-likelihoods on the validation and test rows, their true class codes, and logistic
    regression's test probabilities: what notebook 10's calibration reads."""
    classes = np.unique(data.y)
    logreg = baselines.fit_best("logreg", part, data.task, seed)
    (_, _), (_, _), (X_test, _) = baselines.encoded(part, data.task)
    return {"val_scores": estimator.predict_log_likelihood(part.X_val).tolist(),
            "test_scores": estimator.predict_log_likelihood(part.X_test).tolist(),
            "val_truth": np.searchsorted(classes, part.y_val).tolist(),
            "test_truth": np.searchsorted(classes, part.y_test).tolist(),
            "logreg_test_proba": logreg.predict_proba(X_test).tolist()}


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


def regression_intervals(estimator, part, seed: int = 0, n_samples: int = INTERVAL_SAMPLES,
                         validation: bool = False) -> dict:
    """Quantiles of LIFT's sampled answers on each test row, the Gaussian process's predictive quantiles as a
    reference, and the truth: what notebook 04's coverage of 80% and 90% intervals reads. validation=True adds the
    same quantiles and the truth on the validation rows, on which interval_coverage calibrates."""
    lift = estimator.predict_quantiles(part.X_test, INTERVAL_QUANTILES, n_samples=n_samples, random_state=seed)
    (_, _), (_, _), (X_test, y_test) = baselines.encoded(part, "regression")
    gp = baselines.fit_best("gaussian_process", part, "regression", seed)
    mean, std = gp.predict(X_test, return_std=True)
    gaussian = mean[:, None] + std[:, None] * norm.ppf(INTERVAL_QUANTILES)[None, :]
    out = {"quantiles": list(INTERVAL_QUANTILES), "n_samples": n_samples,
           "sample_invalid_rate": float(estimator.sample_invalid_rate_), "x": part.X_test.iloc[:, 0].tolist(),
           "truth": np.asarray(y_test, dtype=float).tolist(), "lift": lift.tolist(),
           "gaussian_process": gaussian.tolist()}
    if validation:
        quantiles = estimator.predict_quantiles(part.X_val, INTERVAL_QUANTILES, n_samples=n_samples, random_state=seed)
        out["validation"] = {"truth": np.asarray(part.y_val, dtype=float).tolist(), "lift": quantiles.tolist()}
    return out


def region_resolution(data, profile: str) -> int | None:
    """The grid a run of this data set draws its regions on (None: not a 2-D classification set)."""
    return REGION_RESOLUTION[profile] if data.task == "classification" and data.X.shape[1] == 2 else None


def intervals_on_validation(data, profile: str) -> bool | None:
    """Whether a run's sampled intervals cover the validation rows too (None: not a 1-D regression set, no intervals).
    Full profile only: sampling the 50 validation rows costs about a minute on 2 cores, beyond CI's time."""
    return profile == "full" if data.task == "regression" and data.X.shape[1] == 1 else None


def extras(estimator, part, data, profile: str, seed: int) -> dict:
    """The figure data a run keeps: regions and label scores (2-D classification, seed 0) or curves and sampled
    intervals (1-D regression)."""
    validation = intervals_on_validation(data, profile)
    if validation is not None:
        return {**regression_curves(estimator, part, data, seed),
                "intervals": regression_intervals(estimator, part, seed, validation=validation)}
    if region_resolution(data, profile) and seed == 0:
        return {**decision_regions(estimator, part, data, REGION_RESOLUTION[profile], seed),
                "label_scores": label_scores(estimator, part, data, seed)}
    return {}
