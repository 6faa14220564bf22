"""Metrics the paper reports: accuracy, F1, RAE (with and without its outlier filter), RMSE."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    return float(accuracy_score(np.asarray(y_true), np.asarray(y_pred)))


def f1(y_true, y_pred, average: str = "macro") -> float:
    """F1 score (macro-averaged by default, as for imbalanced sets)."""
    return float(f1_score(np.asarray(y_true), np.asarray(y_pred), average=average))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    err = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return float(np.sqrt(np.mean(err ** 2)))


def outlier_mask(y_true, y_pred, factor: float = 3.0) -> np.ndarray:
    """True for rows the paper keeps: |error| <= factor * RMSE."""
    err = np.abs(np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float))
    return err <= factor * rmse(y_true, y_pred)


def rae(y_true, y_pred, filter_outliers: bool = False) -> float:
    """Relative absolute error sum|yhat - y| / sum|mean(y) - y|; optionally after the paper's 3-RMSE filter."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if filter_outliers:
        keep = outlier_mask(y_true, y_pred)
        y_true, y_pred = y_true[keep], y_pred[keep]
    denominator = np.abs(y_true.mean() - y_true).sum()
    if denominator == 0:
        return float("nan")
    return float(np.abs(y_pred - y_true).sum() / denominator)
