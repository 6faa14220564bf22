"""The paper's baselines, with hyperparameters chosen on the validation split."""
from __future__ import annotations

import itertools
import time
import warnings
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from . import metrics


def _scaled(estimator):
    return make_pipeline(StandardScaler(), estimator)


def classifiers(seed: int = 0) -> dict[str, tuple[object, dict]]:
    """name -> (estimator, grid of its hyperparameters), as in the paper's baseline table."""
    from xgboost import XGBClassifier

    return {
        "majority": (DummyClassifier(strategy="most_frequent"), {}),
        "logreg": (_scaled(LogisticRegression(max_iter=2000)), {"logisticregression__C": [0.01, 0.1, 1, 10, 100]}),
        "tree": (DecisionTreeClassifier(random_state=seed), {"max_depth": [2, 4, 8, 16, None]}),
        "knn": (_scaled(KNeighborsClassifier()), {"kneighborsclassifier__n_neighbors": [1, 3, 5, 9, 15],
                                                  "kneighborsclassifier__p": [1, 2]}),
        "svm_linear": (_scaled(SVC(kernel="linear", probability=False)), {"svc__C": [0.01, 0.1, 1, 10]}),
        "svm_rbf": (_scaled(SVC(kernel="rbf")), {"svc__C": [0.1, 1, 10, 100], "svc__gamma": ["scale", 0.1, 1]}),
        "mlp": (_scaled(MLPClassifier(hidden_layer_sizes=(100, 100), max_iter=500, random_state=seed)),
                {"mlpclassifier__alpha": [1e-4, 1e-2]}),
        "random_forest": (RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1),
                          {"max_depth": [4, 8, None]}),
        "xgboost": (XGBClassifier(n_estimators=200, random_state=seed, n_jobs=1, verbosity=0),
                    {"max_depth": [2, 4, 6], "learning_rate": [0.1, 0.3]}),
    }


def regressors(seed: int = 0) -> dict[str, tuple[object, dict]]:
    """name -> (estimator, grid), the paper's regression baselines."""
    return {
        "mean": (DummyRegressor(), {}),
        "polynomial": (make_pipeline(PolynomialFeatures(3), StandardScaler(), LinearRegression()), {}),
        "kernel_ridge": (_scaled(KernelRidge(kernel="rbf")), {"kernelridge__gamma": [0.01, 0.1, 1],
                                                              "kernelridge__alpha": [1e-3, 1e-1, 1]}),
        "knn": (_scaled(KNeighborsRegressor()), {"kneighborsregressor__n_neighbors": [2, 5, 8]}),
        "mlp": (_scaled(MLPRegressor(hidden_layer_sizes=(50, 50, 50), max_iter=2000, random_state=seed)), {}),
        "gradient_boosting": (GradientBoostingRegressor(n_estimators=500, random_state=seed),
                              {"max_depth": [2, 3]}),
        "random_forest": (RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=1), {}),
        "gaussian_process": (GaussianProcessRegressor(kernel=RBF() + WhiteKernel(), normalize_y=True,
                                                      random_state=seed), {}),
    }


def _numeric(X_train: pd.DataFrame, *others: pd.DataFrame):
    """Numbers for every baseline: a missing number becomes its column's training median (the standard imputer),
    non-numeric columns are one-hot encoded, a missing category being a category of its own."""
    categorical = [c for c in X_train.columns if not pd.api.types.is_numeric_dtype(X_train[c])]
    numeric = [c for c in X_train.columns if c not in categorical]
    medians = np.nan_to_num(np.nanmedian(_floats(X_train[numeric]), axis=0), nan=0.0) if numeric else None
    encoder = (OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(_words(X_train[categorical]))
               if categorical else None)

    def encode(frame):
        numbers = _floats(frame[numeric])
        if numeric and np.isnan(numbers).any():
            numbers = np.where(np.isnan(numbers), medians[None, :], numbers)
        return np.hstack([numbers, encoder.transform(_words(frame[categorical]))]) if categorical else numbers

    return (encode(X_train), *[encode(o) for o in others])


def _floats(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=float, na_value=np.nan)


def _words(frame: pd.DataFrame) -> pd.DataFrame:
    """Category columns as strings, a missing cell as the word "missing" (one-hot's own category)."""
    return frame.astype(object).where(frame.notna(), "missing").astype(str)


def select_on_validation(estimator, grid: dict, X_train, y_train, X_val, y_val,
                         score: Callable[[np.ndarray, np.ndarray], float]):
    """Fit every grid point on train, keep the one with the best validation score (higher is better)."""
    best, best_score, errors = None, -np.inf, []
    keys = list(grid)
    for values in itertools.product(*[grid[k] for k in keys]) if keys else [()]:
        candidate = clone(estimator).set_params(**dict(zip(keys, values)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                candidate.fit(X_train, y_train)
                value = score(y_val, candidate.predict(X_val))
        except ValueError as error:  # a grid point that does not fit this data, e.g. k > rows for KNN
            errors.append(f"{dict(zip(keys, values))}: {error}")
            continue
        if value > best_score:
            best, best_score = candidate, value
    if best is None:
        raise ValueError(f"No setting of {type(estimator).__name__} could be fitted: {'; '.join(errors[:3])}")
    return best


def encoded(split, task: str):
    """Numeric feature matrices and (for classification) targets coded 0..C-1, as every baseline wants them."""
    X_train, X_val, X_test = _numeric(split.X_train, split.X_val, split.X_test)
    y_train, y_val, y_test = (np.asarray(split.y_train), np.asarray(split.y_val), np.asarray(split.y_test))
    if task == "classification":
        # xgboost wants labels 0..C-1
        classes = np.unique(np.concatenate([y_train, y_val, y_test]))
        y_train, y_val, y_test = (np.searchsorted(classes, y) for y in (y_train, y_val, y_test))
    return (X_train, y_train), (X_val, y_val), (X_test, y_test)


def fit_best(name: str, split, task: str = "classification", seed: int = 0):
    """One baseline fitted on the train part with the hyperparameters best on the validation part.

    Its predictions are class codes 0..C-1 (classification); inputs are numeric (as `_numeric` makes them)."""
    catalogue = classifiers(seed) if task == "classification" else regressors(seed)
    if name not in catalogue:
        raise ValueError(f"Unknown baseline {name!r}; choose from {sorted(catalogue)}.")
    estimator, grid = catalogue[name]
    (X_train, y_train), (X_val, y_val), _ = encoded(split, task)
    score = metrics.accuracy if task == "classification" else (lambda t, p: -metrics.rmse(t, p))
    return select_on_validation(estimator, grid, X_train, y_train, X_val, y_val, score)


def evaluate(split, task: str = "classification", names: list[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Test metrics of every baseline on a Split, hyperparameters picked on its validation part."""
    catalogue = classifiers(seed) if task == "classification" else regressors(seed)
    _, _, (X_test, y_test) = encoded(split, task)
    rows = []
    for name in names or list(catalogue):
        started = time.perf_counter()
        predicted = fit_best(name, split, task, seed).predict(X_test)
        if task == "classification":
            row = {"method": name, "accuracy": metrics.accuracy(y_test, predicted), "f1": metrics.f1(y_test, predicted)}
        else:
            row = {"method": name, "rae": metrics.rae(y_test, predicted, filter_outliers=True),
                   "rae_unfiltered": metrics.rae(y_test, predicted), "rmse": metrics.rmse(y_test, predicted)}
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")
