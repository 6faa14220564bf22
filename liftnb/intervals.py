"""Prediction intervals that keep their coverage: a fitted LIFTRegressor's sampled intervals, widened (or narrowed)
on held-out rows by split-conformal calibration (conformalized quantile regression, Romano, Patterson and Candès,
NeurIPS 2019)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


def _conformal_rank(rows: int, coverage: float) -> int:
    """Which smallest score (1-based) bounds `coverage` of new rows: ceil((rows + 1) * coverage), if rows suffice."""
    rank = math.ceil(round((rows + 1) * coverage, 9))  # rounded: 10 * 0.3 is 3.0000000000000004 in floats
    if rank > rows:
        raise ValueError(f"{coverage:.0%} coverage needs at least {math.ceil(round(coverage / (1 - coverage), 9))} "
                         f"calibration rows; got {rows}.")
    return rank


def conformal_margin(low: np.ndarray, high: np.ndarray, y: np.ndarray, coverage: float) -> float:
    """The margin that widens every [low, high] to cover `coverage` of new rows: the ceil((n + 1) * coverage)-th
    smallest of the calibration rows' scores max(low - y, y - high) (negative where the intervals were too wide)."""
    scores = np.sort(np.maximum(np.asarray(low) - y, y - np.asarray(high)))
    return float(scores[_conformal_rank(len(scores), coverage) - 1])


def coverage(low: np.ndarray, high: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The share of rows whose y lies in [low, high]; low and high (rows,) or (rows, levels) give one share a level."""
    y = np.asarray(y, dtype=float).reshape(len(y), *[1] * (np.ndim(low) - 1))
    return ((np.asarray(low) <= y) & (y <= np.asarray(high))).mean(axis=0)


def widened(low: np.ndarray, high: np.ndarray, margin: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[low - margin, high + margin], margins broadcast; a negative one narrows an interval at most to its midpoint."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    middle = (low + high) / 2
    return np.minimum(low - margin, middle), np.maximum(high + margin, middle)


class ConformalIntervals(BaseEstimator):
    """Central intervals of a fitted LIFTRegressor's sampled answers, calibrated on rows it was not trained on.

    `fit(X_cal, y_cal)` samples the calibration rows' central intervals and finds, for each coverage, the margin that
    makes them cover it (`margins_`); `predict(X)` samples the new rows' intervals and applies the margins: with
    calibration rows drawn like the new ones, the intervals cover at least that share of new rows on average (and at
    most 1 / (n + 1) more), whatever the model. Calibration rows must be neither training nor validation rows of the
    estimator (the fit chose its epoch on those). Sampled answers come from `estimator.predict_quantiles`."""

    def __init__(self, estimator, coverages: Sequence[float] = (0.8, 0.9), n_samples: int = 20,
                 random_state: int | None = None):
        self.estimator = estimator
        self.coverages = coverages
        self.n_samples = n_samples
        self.random_state = random_state

    def _levels(self) -> np.ndarray:
        levels = np.asarray(self.coverages, dtype=float).ravel()
        if len(levels) == 0 or not np.all((levels > 0) & (levels < 1)):
            raise ValueError(f"coverages must be numbers in (0, 1), not {self.coverages!r}.")
        return levels

    def sampled(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each (rows, coverages): the central intervals of the rows' sampled answers, uncalibrated."""
        if not hasattr(self.estimator, "predict_quantiles"):
            raise TypeError(f"ConformalIntervals needs a regressor that samples its answers (LIFTRegressor), not a "
                            f"{type(self.estimator).__name__}.")
        check_is_fitted(self.estimator)
        levels = self._levels()
        quantiles = np.concatenate([(1 - levels) / 2, (1 + levels) / 2])
        bounds = self.estimator.predict_quantiles(X, quantiles, n_samples=self.n_samples,
                                                  random_state=self.random_state)
        return bounds[:, :len(levels)], bounds[:, len(levels):]

    def fit(self, X, y) -> "ConformalIntervals":
        """Find each coverage's margin on calibration rows (X, y)."""
        levels = self._levels()
        try:
            y = np.asarray(y, dtype=float).ravel()
        except (TypeError, ValueError) as error:
            raise ValueError(f"The calibration targets y must be numbers (intervals are for regression): {error}.") \
                from None
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} targets.")
        if np.isnan(y).any():
            raise ValueError(f"y has {int(np.isnan(y).sum())} missing targets; calibration needs every row's target.")
        for level in levels:  # before sampling: a set too small for a level is named at once
            _conformal_rank(len(y), level)
        low, high = self.sampled(X)
        self.margins_ = np.array([conformal_margin(low[:, j], high[:, j], y, level) for j, level in enumerate(levels)])
        self.sampled_coverage_ = coverage(low, high, y)  # before calibration
        self.n_calibration_ = len(y)
        self.coverages_ = levels  # what the margins were found for
        return self

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each (rows, coverages): the rows' sampled central intervals with the calibrated margins."""
        check_is_fitted(self, "margins_")
        levels = self._levels()
        if hasattr(self, "coverages_") and not np.array_equal(levels, self.coverages_):
            raise ValueError(f"coverages changed since fit ({self.coverages_.tolist()} -> {levels.tolist()}): "
                             f"the margins belong to the old ones; fit again on the calibration rows.")
        low, high = self.sampled(X)
        return widened(low, high, self.margins_[None, :])
