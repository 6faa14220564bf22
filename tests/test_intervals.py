"""Split-conformal intervals: the margin's arithmetic, its coverage guarantee, and the wiring to a LIFTRegressor's
sampled answers (the tiny random model: plumbing, not accuracy)."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from liftnb import ConformalIntervals, LIFTRegressor
from liftnb.intervals import conformal_margin, coverage, widened

FAST = dict(model="tiny-random", epochs=1, batch_size=16, train_layers=1, verbose=0, precision="fp32")


class ShiftedQuantiles(BaseEstimator):
    """A fitted regressor stand-in whose sampled answers are y_hat = x + noise drawn with a spread too small by half."""

    def __sklearn_is_fitted__(self):
        return True

    def fit(self, X, y):
        return self

    def predict_quantiles(self, X, quantiles, n_samples=20, random_state=None):
        from scipy.stats import norm
        return X["x"].to_numpy()[:, None] + 0.5 * norm.ppf(np.asarray(quantiles))[None, :]


def test_margin_is_the_conformal_order_statistic_of_the_scores():
    low, high = np.zeros(9), np.ones(9)
    y = np.array([-3, -1, 0.5, 0.5, 0.5, 1.5, 2, 4, 0.2])  # scores 3, 1, -0.5 x3, 0.5, 1, 3, -0.2
    # (9 + 1) * 0.8 = 8: the 8th smallest of [-0.5, -0.5, -0.5, -0.2, 0.5, 1, 1, 3, 3]
    assert conformal_margin(low, high, y, 0.8) == 3.0
    assert conformal_margin(low, high, y, 0.5) == 0.5  # the 5th
    assert conformal_margin(low, high, y, 0.3) == -0.5  # intervals too wide for 30%: narrowed
    with pytest.raises(ValueError, match="90% coverage needs at least 9 calibration rows; got 8"):
        conformal_margin(low[:8], high[:8], y[:8], 0.9)


def test_a_negative_margin_narrows_an_interval_at_most_to_its_midpoint():
    low, high = widened(np.array([0.0, 0.0]), np.array([1.0, 4.0]), -1.0)
    np.testing.assert_allclose(low, [0.5, 1.0])
    np.testing.assert_allclose(high, [0.5, 3.0])


def test_coverage_counts_the_bounds_as_inside_per_level():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert coverage(np.zeros(4), np.full(4, 2.0), y) == 0.75  # 0, 1 and 2 (the bound itself) in [0, 2]
    low, high = np.array([[0.0, -1.0]] * 4), np.array([[1.0, 3.0]] * 4)  # two levels, one column each
    np.testing.assert_allclose(coverage(low, high, y), [0.5, 1.0])


def test_calibrated_intervals_reach_their_coverage_where_the_sampled_ones_fall_short():
    rng = np.random.default_rng(0)

    def rows(n):
        x = rng.uniform(0, 10, n)
        return pd.DataFrame({"x": x}), x + rng.normal(0, 1, n)

    X_cal, y_cal = rows(2000)
    X_new, y_new = rows(10000)
    conformal = ConformalIntervals(ShiftedQuantiles(), coverages=(0.8, 0.9)).fit(X_cal, y_cal)
    assert conformal.n_calibration_ == 2000 and conformal.margins_.shape == (2,)
    assert np.all(conformal.sampled_coverage_ < [0.55, 0.67])  # a spread half the truth's: 47.8% and 58.9% expected
    low, high = conformal.predict(X_new)
    assert low.shape == high.shape == (10000, 2)
    covered = coverage(low, high, y_new)
    # the calibration set moves the coverage by ~0.9 points (sd), the 10000 new rows by ~0.4: 3 sd
    np.testing.assert_allclose(covered, [0.8, 0.9], atol=0.03)
    sampled_low, sampled_high = conformal.sampled(X_new)
    np.testing.assert_allclose(high - sampled_high, np.broadcast_to(conformal.margins_, high.shape))


def test_lift_regressor_intervals_are_sampled_once_per_call_and_reproducible(monkeypatch):
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.uniform(0, 5, 24).round(1)})
    reg = LIFTRegressor(**FAST).fit(X, X["x"].to_numpy() * 2)
    calls = []
    original = reg.predict_quantiles
    monkeypatch.setattr(reg, "predict_quantiles", lambda *a, **k: calls.append(k) or original(*a, **k))
    conformal = ConformalIntervals(reg, coverages=(0.5,), n_samples=3, random_state=7).fit(X.head(12), X["x"][:12] * 2)
    low, high = conformal.predict(X.tail(4))
    assert len(calls) == 2 and all(c["n_samples"] == 3 and c["random_state"] == 7 for c in calls)
    assert low.shape == (4, 1) and np.all(low <= high)
    again = ConformalIntervals(reg, coverages=(0.5,), n_samples=3, random_state=7).fit(X.head(12), X["x"][:12] * 2)
    np.testing.assert_array_equal(again.margins_, conformal.margins_)


@pytest.mark.parametrize("settings, rows, message", [
    ({"coverages": (0.8, 1.0)}, 20, "coverages must be numbers in \\(0, 1\\)"),
    ({"coverages": ()}, 20, "coverages must be numbers in \\(0, 1\\)"),
    ({"coverages": (0.95,)}, 10, "95% coverage needs at least 19 calibration rows; got 10"),
])
def test_bad_settings_and_too_few_rows_are_named_before_any_sampling(settings, rows, message):
    X = pd.DataFrame({"x": np.arange(rows, dtype=float)})
    estimator = ShiftedQuantiles()
    estimator.predict_quantiles = lambda *a, **k: pytest.fail("sampled before the settings were checked")
    with pytest.raises(ValueError, match=message):
        ConformalIntervals(estimator, **settings).fit(X, X["x"])


def test_bad_calibration_targets_are_named():
    X = pd.DataFrame({"x": np.arange(20, dtype=float)})
    with pytest.raises(ValueError, match="X has 20 rows but y has 19 targets"):
        ConformalIntervals(ShiftedQuantiles()).fit(X, X["x"][:19])
    with pytest.raises(ValueError, match="y has 1 missing targets"):
        ConformalIntervals(ShiftedQuantiles()).fit(X, X["x"].where(X["x"] != 3))
    with pytest.raises(ValueError, match="calibration targets y must be numbers"):
        ConformalIntervals(ShiftedQuantiles()).fit(X, ["lo"] * 20)


def test_changed_coverages_or_a_classifier_are_refused_not_served_old_margins():
    from liftnb import LIFTClassifier

    X = pd.DataFrame({"x": np.arange(40, dtype=float)})
    conformal = ConformalIntervals(ShiftedQuantiles(), coverages=(0.5,)).fit(X, X["x"])
    conformal.set_params(coverages=(0.5, 0.9))
    with pytest.raises(ValueError, match=r"coverages changed since fit \(\[0.5\] -> \[0.5, 0.9\]\)"):
        conformal.predict(X)
    assert conformal.set_params(coverages=[0.5]).predict(X)[0].shape == (40, 1)  # the same levels, another sequence
    with pytest.raises(TypeError, match="needs a regressor that samples its answers .*not a LIFTClassifier"):
        ConformalIntervals(LIFTClassifier()).fit(X, X["x"])


def test_an_unfitted_regressor_or_calibration_is_refused():
    from sklearn.exceptions import NotFittedError
    X = pd.DataFrame({"x": np.arange(20, dtype=float)})
    with pytest.raises(NotFittedError):
        ConformalIntervals(LIFTRegressor(**FAST)).fit(X, X["x"])
    with pytest.raises(NotFittedError):
        ConformalIntervals(ShiftedQuantiles()).predict(X)
