"""Baselines with validation-selected hyperparameters (kept fast: the slow MLPs are mostly skipped)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.neighbors import KNeighborsClassifier

from liftnb import baselines, metrics
from liftnb.datasets import load, make_regression, split


@pytest.fixture(scope="module")
def iris_results() -> pd.DataFrame:
    return baselines.evaluate(split(load("iris")))  # every classifier, MLP included (~1 s on iris)


@pytest.fixture(scope="module")
def linear_results() -> pd.DataFrame:
    part = split(make_regression("linear", p=1), test_size=100, val_size=50)
    return baselines.evaluate(part, task="regression", names=["mean", "polynomial", "knn"])


def test_iris_returns_every_classifier(iris_results):
    assert list(iris_results.index) == list(baselines.classifiers())
    assert {"accuracy", "f1", "seconds"} <= set(iris_results.columns)


def test_iris_scores(iris_results):
    assert iris_results.loc["majority", "accuracy"] == pytest.approx(1 / 3, abs=0.02)  # balanced test set
    assert iris_results.loc["logreg", "accuracy"] > 0.8
    for name in ("knn", "svm_rbf", "random_forest", "xgboost"):
        assert iris_results.loc[name, "accuracy"] > 0.85, name
    assert iris_results.drop("majority")["accuracy"].min() > iris_results.loc["majority", "accuracy"]


def test_regression_on_a_linear_function(linear_results):
    assert list(linear_results.index) == ["mean", "polynomial", "knn"]
    assert {"rae", "rae_unfiltered", "rmse"} <= set(linear_results.columns)
    assert linear_results.loc["polynomial", "rae"] < 0.3
    assert linear_results.loc["mean", "rae"] == pytest.approx(1.0, abs=0.15)
    assert linear_results.loc["knn", "rae"] < 0.5
    assert linear_results.loc["polynomial", "rmse"] < linear_results.loc["mean", "rmse"] / 3


def test_string_labels_and_categorical_features():
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], size=120)
    X = pd.DataFrame({"colour": colour, "noise": rng.normal(size=120)})
    y = pd.Series(np.where(colour == "red", "hot", "cold"))
    part = split((X, y))
    results = baselines.evaluate(part, names=["majority", "logreg", "xgboost"])
    assert results.loc["logreg", "accuracy"] == 1.0  # the one-hot colour decides the class
    assert results.loc["xgboost", "accuracy"] == 1.0
    assert results.loc["majority", "accuracy"] == pytest.approx((part.y_test == "cold").mean())


def test_unknown_baseline_name_raises():
    with pytest.raises(ValueError, match="Unknown baseline 'no_such_method'"):
        baselines.evaluate(split(load("iris")), names=["no_such_method"])


# ----- select_on_validation ---------------------------------------------------------------------------------
def _neg_rmse(t, p):
    return -metrics.rmse(t, p)


def test_select_on_validation_picks_the_best_grid_point():
    X_train, y_train = np.zeros((10, 1)), np.zeros(10)
    X_val, y_val = np.zeros((4, 1)), np.full(4, 5.0)
    estimator = DummyRegressor(strategy="constant", constant=0.0)
    best = baselines.select_on_validation(estimator, {"constant": [0.0, 4.0, 5.0, 9.0]}, X_train, y_train,
                                          X_val, y_val, _neg_rmse)
    assert best.get_params()["constant"] == 5.0
    assert best.predict(X_val).tolist() == [5.0] * 4  # fitted
    assert best is not estimator and estimator.get_params()["constant"] == 0.0  # the original is untouched


def test_select_on_validation_searches_the_product_of_the_grid():
    X_train, y_train = np.zeros((6, 1)), np.array([0, 0, 0, 0, 1, 2])  # most frequent: 0
    X_val, y_val = np.zeros((5, 1)), np.array([2, 2, 2, 1, 0])
    grid = {"strategy": ["most_frequent", "constant"], "constant": [1, 2]}
    best = baselines.select_on_validation(DummyClassifier(), grid, X_train, y_train, X_val, y_val,
                                          metrics.accuracy)
    assert best.get_params()["strategy"] == "constant" and best.get_params()["constant"] == 2
    assert metrics.accuracy(y_val, best.predict(X_val)) == 0.6


def test_select_on_validation_uses_validation_not_training_score():
    # 1-NN is perfect on train but worse than 5-NN on noisy validation labels
    rng = np.random.default_rng(0)
    X_train = rng.uniform(-1, 1, size=(200, 1))
    y_train = (X_train[:, 0] > 0).astype(int)
    flip = rng.random(200) < 0.25
    y_train[flip] = 1 - y_train[flip]
    X_val = rng.uniform(-1, 1, size=(200, 1))
    y_val = (X_val[:, 0] > 0).astype(int)
    grid = {"n_neighbors": [1, 25]}
    best = baselines.select_on_validation(KNeighborsClassifier(), grid, X_train, y_train, X_val, y_val,
                                          metrics.accuracy)
    assert best.get_params()["n_neighbors"] == 25
    scores = {k: metrics.accuracy(y_val, KNeighborsClassifier(n_neighbors=k).fit(X_train, y_train).predict(X_val))
              for k in (1, 25)}
    assert scores[25] > scores[1]


def test_select_on_validation_with_an_empty_grid():
    X_train, y_train = np.zeros((4, 1)), np.array([1.0, 2.0, 3.0, 6.0])
    best = baselines.select_on_validation(DummyRegressor(), {}, X_train, y_train, X_train, y_train, _neg_rmse)
    assert best.predict(np.zeros((1, 1))).tolist() == [3.0]


def test_fit_best_picks_on_validation_and_predicts_codes():
    part = split(load("wine"))
    model = baselines.fit_best("knn", part)
    X_test = part.X_test.to_numpy(dtype=float)
    codes = np.searchsorted(np.unique(load("wine").y), part.y_test)
    assert set(model.predict(X_test)) <= {0, 1, 2}
    assert metrics.accuracy(codes, model.predict(X_test)) > 0.8
    with pytest.raises(ValueError, match="Unknown baseline 'nope'"):
        baselines.fit_best("nope", part)


def test_grid_points_that_do_not_fit_small_data_are_skipped():
    """With 10 training rows, KNN's k = 15 cannot fit: the other k values are tried, the impossible one skipped."""
    part = split(load("iris"))
    from dataclasses import replace

    tiny = replace(part, X_train=part.X_train.head(10), y_train=part.y_train.head(10))
    model = baselines.fit_best("knn", tiny)
    assert model.get_params()["kneighborsclassifier__n_neighbors"] <= 10
    with pytest.raises(ValueError, match="No setting of"):
        baselines.select_on_validation(KNeighborsClassifier(), {"n_neighbors": [50]}, part.X_train.head(10),
                                       part.y_train.head(10), part.X_val, part.y_val, metrics.accuracy)


def test_baselines_impute_missing_numbers_and_give_missing_categories_their_own_column():
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0], "b": ["x", None, "y", "x"],
                          "c": pd.array([True, None, False, True])})
    test = pd.DataFrame({"a": [np.nan, 2.0], "b": [None, "z"], "c": pd.array([None, False], dtype="boolean")})
    encoded_train, encoded_test = baselines._numeric(train, test)
    # columns: a, c (numbers; a gap is the training median), then b one-hot as missing, x, y
    np.testing.assert_array_equal(encoded_train, [[1, 1, 0, 1, 0], [3, 1, 1, 0, 0], [3, 0, 0, 0, 1],
                                                  [5, 1, 0, 1, 0]])
    np.testing.assert_array_equal(encoded_test, [[3, 1, 1, 0, 0], [2, 0, 0, 0, 0]])  # "z": unseen, all zeros


def test_every_classifier_fits_the_penguins_with_their_gaps():
    data = load("penguins")
    assert data.X.isna().any().any()
    results = baselines.evaluate(split(data, seed=0), "classification")
    assert results.loc["majority", "accuracy"] < 0.5 < results["accuracy"].max()
