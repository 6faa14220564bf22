"""scikit-learn behaviour of LIFTClassifier / LIFTRegressor, on a tiny random model (plumbing, not accuracy)."""
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from liftnb import LIFTClassifier, LIFTRegressor, Template
from liftnb.models import TINY_RANDOM

FAST = dict(model=TINY_RANDOM, epochs=1, batch_size=16, verbose=0, precision="fp32", train_layers=1)

# Checks expected to fail, and why (each of these fails today; the others pass and are not listed).
CLASSIFIER_SKIPS = {
    "check_classifiers_train": "needs accuracy > 0.83 on sklearn's toy data after 1 epoch of a random 2-layer LM",
    "check_methods_subset_invariance": "rows are scored in length-sorted, left-padded batches; a row's "
                                       "probabilities move at the 1e-7 level with its batch mates",
    "check_n_features_in_after_fitting": "our messages name the columns instead of sklearn's exact text",
    "check_dataframe_column_names_consistency": "LIFT serializes by column name, so renamed columns are an error "
                                                 "(not a warning)",
}
REGRESSOR_SKIPS = {
    "check_n_features_in_after_fitting": CLASSIFIER_SKIPS["check_n_features_in_after_fitting"],
    "check_dataframe_column_names_consistency": CLASSIFIER_SKIPS["check_dataframe_column_names_consistency"],
    "check_regressors_train": "needs R^2 > 0.5 after 1 epoch of a random 2-layer LM",
    "check_regressor_multioutput": "LIFT regresses one target",
    "check_dict_unchanged": "predict records invalid_rate_ and last_completions_ (invalid-answer accounting)",
}


def _expected_failures(estimator):
    return CLASSIFIER_SKIPS if isinstance(estimator, LIFTClassifier) else REGRESSOR_SKIPS


@parametrize_with_checks([LIFTClassifier(**FAST), LIFTRegressor(**FAST)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"length": rng.uniform(0, 5, 24).round(1), "colour": rng.choice(["red", "blue"], 24)})
    y = np.where(X["length"] > 2.5, "long", "short")
    return X, y


def test_fit_predict_proba_shapes_and_classes(toy):
    X, y = toy
    clf = LIFTClassifier(**FAST).fit(X, y)
    assert list(clf.classes_) == ["long", "short"]
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 2)
    np.testing.assert_allclose(proba.sum(1), 1)
    assert set(clf.predict(X)) <= {"long", "short"}
    assert list(clf.feature_names_in_) == ["length", "colour"]
    assert clf.template_.columns == ["length", "colour"]
    assert "colour is red" in clf.template_.prompts(X.head(3))[0] or "colour is blue" in clf.template_.prompts(X)[0]


def test_generate_mode_counts_invalid_answers_as_wrong(toy):
    X, y = toy
    clf = LIFTClassifier(**FAST, predict_mode="generate").fit(X, y)
    accuracy = clf.score(X, y)
    assert 0 <= clf.invalid_rate_ <= 1
    assert len(clf.last_completions_) == len(X)
    valid = np.array([clf.template_.parse(c) is not None for c in clf.last_completions_])
    assert clf.invalid_rate_ == pytest.approx(1 - valid.mean())
    assert accuracy <= valid.mean() + 1e-12  # an invalid answer is never counted right
    assert len(clf.predict(X)) == len(X)  # nothing dropped


def test_score_mode_is_argmax_of_probabilities(toy):
    X, y = toy
    clf = LIFTClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[clf.predict_proba(X).argmax(1)])


def test_regressor_invalid_answers_fall_back_to_training_mean(toy):
    X, _ = toy
    y = X["length"].to_numpy() * 2
    reg = LIFTRegressor(**FAST).fit(X, y)
    predicted = reg.predict(X)
    assert predicted.shape == (24,) and np.all(np.isfinite(predicted))
    invalid = np.array([reg.template_.parse(c) is None for c in reg.last_completions_])
    assert reg.invalid_rate_ == pytest.approx(invalid.mean())
    np.testing.assert_allclose(predicted[invalid], y.mean())


def test_pipeline_and_cross_validation(toy):
    X, y = toy
    pipe = make_pipeline(FunctionTransformer(lambda frame: frame), LIFTClassifier(**FAST))
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))


def test_save_load_round_trip_gives_identical_predictions(toy, tmp_path):
    X, y = toy
    for params in (FAST, {**FAST, "lora": 4}):
        clf = LIFTClassifier(**params).fit(X, y)
        path = clf.save(tmp_path / "model")
        again = LIFTClassifier.load(path, device="cpu")
        np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
        assert again.get_params()["lora"] == params.get("lora")


def test_load_rejects_a_partial_folder(tmp_path):
    (tmp_path / "broken").mkdir()
    with pytest.raises(FileNotFoundError, match="partial or corrupted"):
        LIFTClassifier.load(tmp_path / "broken")


def test_clear_errors(toy):
    X, y = toy
    with pytest.raises(ValueError, match="only one class"):
        LIFTClassifier(**FAST).fit(X, ["a"] * len(X))
    with pytest.raises(ValueError, match="NaN in column 'length'"):
        LIFTClassifier(**FAST).fit(X.assign(length=np.nan), y)
    with pytest.raises(ValueError, match="predict_mode"):
        LIFTClassifier(**FAST, predict_mode="vote").fit(X, y)
    clf = LIFTClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="differ from the columns seen in fit"):
        clf.predict(X.rename(columns={"length": "size"}))


def test_template_is_used_as_given(toy):
    X, y = toy
    template = Template.custom("A {colour} stick of {length} m.", label_style="name")
    clf = LIFTClassifier(**FAST, template=template).fit(X, y)
    assert clf.template_.prompts(X.head(1))[0].startswith("A ")
    assert clf.template_.class_answers() == ["long@@@", "short@@@"]
