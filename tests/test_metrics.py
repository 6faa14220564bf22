"""Metrics against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from liftnb.metrics import accuracy, f1, outlier_mask, rae, rmse


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 2, 2, 2]) == 0.75
    assert accuracy(["a", "b"], ["a", "b"]) == 1.0
    assert accuracy(pd.Series([1, 1, 1]), np.array([0, 0, 0])) == 0.0
    assert isinstance(accuracy([0], [0]), float)


def test_f1_macro_and_micro():
    # class 0: precision 1, recall 1/2 -> F1 2/3; class 1: precision 2/3, recall 1 -> F1 4/5
    assert f1([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert f1([0, 0, 1, 1], [0, 1, 1, 1], average="micro") == pytest.approx(0.75)
    # binary F1 of the positive class only
    assert f1([0, 0, 1, 1], [0, 1, 1, 1], average="binary") == pytest.approx(4 / 5)
    assert f1([0, 1, 2], [0, 1, 2]) == 1.0


def test_f1_macro_punishes_ignoring_the_minority_class():
    y_true = [0] * 9 + [1]
    y_pred = [0] * 10
    assert accuracy(y_true, y_pred) == 0.9
    # class 0: P 0.9, R 1 -> 18/19; class 1: F1 0
    assert f1(y_true, y_pred) == pytest.approx((18 / 19) / 2)


def test_rmse():
    assert rmse([0, 0, 0, 0], [1, -1, 1, -1]) == 1.0
    assert rmse([1, 2, 3], [1, 2, 6]) == pytest.approx(math.sqrt(3))
    assert rmse([2.5], [2.5]) == 0.0


def test_rae():
    # mean(y) = 2.5: sum |mean - y| = 1.5 + 0.5 + 0.5 + 1.5 = 4; sum |yhat - y| = 2
    assert rae([1, 2, 3, 4], [1, 2, 3, 6]) == pytest.approx(0.5)
    assert rae([1, 2, 3, 4], [1, 2, 3, 4]) == 0.0
    assert rae([1, 2, 3, 4], [2.5] * 4) == pytest.approx(1.0)
    assert rae([1, 2, 3, 4], [0, 0, 0, 0]) == pytest.approx(10 / 4)


def test_rae_of_a_constant_target_is_nan():
    assert math.isnan(rae([3, 3, 3], [1, 2, 3]))


def _planted_outlier():
    y_true = np.arange(20, dtype=float)
    y_pred = y_true + 0.1
    y_pred[19] = y_true[19] + 50.0  # RMSE = sqrt((19 * 0.01 + 2500) / 20) = 11.18, 3 RMSE = 33.5 < 50
    return y_true, y_pred


def test_outlier_mask_flags_only_the_planted_outlier():
    y_true, y_pred = _planted_outlier()
    assert 50.0 > 3 * rmse(y_true, y_pred)
    mask = outlier_mask(y_true, y_pred)
    assert mask.dtype == bool
    assert mask.tolist() == [True] * 19 + [False]


def test_rae_filter_outliers_drops_the_planted_outlier():
    y_true, y_pred = _planted_outlier()
    # unfiltered: mean 9.5, sum |mean - y| = 2 * (0.5 + ... + 9.5) = 100; errors 19 * 0.1 + 50 = 51.9
    assert rae(y_true, y_pred) == pytest.approx(51.9 / 100)
    # filtered: rows 0..18, mean 9, sum |mean - y| = 2 * (1 + ... + 9) = 90; errors 19 * 0.1 = 1.9
    assert rae(y_true, y_pred, filter_outliers=True) == pytest.approx(1.9 / 90)
    assert rae(y_true, y_pred, filter_outliers=True) < rae(y_true, y_pred) / 10


def test_rae_filter_keeps_everything_without_outliers():
    y_true = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y_pred = y_true + np.array([0.5, -0.5, 0.2, -0.3, 0.1])
    assert outlier_mask(y_true, y_pred).all()
    assert rae(y_true, y_pred, filter_outliers=True) == rae(y_true, y_pred) == pytest.approx(1.6 / 6)


def test_outlier_mask_factor():
    y_true, y_pred = np.zeros(4), np.array([1.0, 1.0, 1.0, 3.0])  # RMSE = sqrt(12 / 4) = sqrt(3) = 1.73
    assert outlier_mask(y_true, y_pred).all()
    assert outlier_mask(y_true, y_pred, factor=1.5).tolist() == [True, True, True, False]
