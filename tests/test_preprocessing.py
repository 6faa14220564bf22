"""Standardised values: numbers as z-scores of the training rows, before a template writes them."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from liftnb import LIFTClassifier, StandardisedValues
from liftnb.models import TINY_RANDOM
from liftnb.paper import runs


@parametrize_with_checks([StandardisedValues()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"mass": rng.normal(4000, 800, 40).round(), "bill": rng.normal(44, 5, 40).round(1),
                      "region": rng.integers(1, 4, 40), "island": rng.choice(["Biscoe", "Dream"], 40),
                      "adult": rng.random(40) > 0.5, "flat": np.full(40, 7.5)})
    X.loc[3, "bill"] = np.nan
    return X


def test_measured_columns_become_training_z_scores_and_the_rest_is_untouched(table):
    before = table.copy()
    scaler = StandardisedValues(decimals=None).fit(table)
    out = scaler.transform(table)
    assert scaler.columns_ == ["mass", "bill", "flat"]  # region: 3 whole numbers, a code; text, booleans: no numbers
    for column in ("mass", "bill"):
        assert out[column].mean() == pytest.approx(0, abs=1e-9)
        assert out[column].std(ddof=0) == pytest.approx(1)
    assert (out["flat"] == 0).all()  # a constant column is 0 from the mean, not a division by zero
    assert np.isnan(out.loc[3, "bill"]) and out["bill"].isna().sum() == 1  # missing stays missing
    kept = ["region", "island", "adult"]
    pd.testing.assert_frame_equal(out[kept], table[kept])
    pd.testing.assert_frame_equal(table, before)  # the input is not modified


def test_new_rows_use_the_training_rows_mean_and_spread(table):
    scaler = StandardisedValues(columns=["mass", "flat"], decimals=None).fit(table.iloc[:30])
    later = scaler.transform(table.iloc[30:])
    expected = (table["mass"].iloc[30:] - table["mass"].iloc[:30].mean()) / table["mass"].iloc[:30].std(ddof=0)
    np.testing.assert_allclose(later["mass"], expected)
    assert (later["flat"] == 0).all()


def test_an_array_is_read_by_the_fitted_tables_column_order(table):
    numbers = table[["mass", "bill", "flat"]]
    scaler = StandardisedValues().fit(numbers)  # fitted on a table, then given its values as an array
    np.testing.assert_array_equal(scaler.transform(numbers.to_numpy()), scaler.transform(numbers).to_numpy())


def test_a_column_with_no_value_stays_missing_without_a_warning(table):
    empty = table.assign(bill=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = StandardisedValues(columns=["bill", "mass"]).fit(empty).transform(empty)
    assert out["bill"].isna().all() and out["mass"].notna().all()


def test_z_scores_are_rounded_to_what_a_template_writes_so_values_near_the_mean_raise_no_warning(table):
    from liftnb import Template

    near = table.assign(bill=table["bill"].mean() + np.r_[0.004, np.linspace(-10, 10, 39)])  # z-scores near 0
    exact = StandardisedValues(decimals=None).fit(near).transform(near)
    rounded = StandardisedValues().fit(near).transform(near)
    np.testing.assert_array_equal(rounded["bill"], exact["bill"].round(2))
    assert StandardisedValues(decimals=0).fit(near).transform(near)["mass"].isin([-3, -2, -1, 0, 1, 2, 3]).all()
    with pytest.warns(UserWarning, match=r"'bill': \d+ of its 40 non-zero values .* print as 0"):
        unrounded = Template().bind(exact)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        template = Template().bind(rounded)
    assert [template.prompt(row) for _, row in rounded.iterrows()] == \
        [unrounded.prompt(row) for _, row in exact.iterrows()]  # the same prompts: only the warning is gone


def test_codes_are_few_whole_numbers_and_a_fraction_is_always_measured():
    X = pd.DataFrame({"region": [1, 2, 3, 1, 2, 3], "count": [0, 5, 11, 19, 24, 30],
                      "share": np.array([0, 1, 2, 0, 1, 3]) / 512})  # Margin's features: few multiples of 1/512
    assert StandardisedValues(max_levels=3).fit(X).columns_ == ["count", "share"]
    assert StandardisedValues(max_levels=10).fit(X).columns_ == ["share"]  # 6 whole numbers: a code at 10 levels


def test_bad_input_names_the_problem(table):
    with pytest.raises(ValueError, match=r"\['beak'\] are not in the data"):
        StandardisedValues(columns=["beak"]).fit(table)
    with pytest.raises(ValueError, match=r"\['island'\] are not numeric"):
        StandardisedValues(columns=["island"]).fit(table)
    with pytest.raises(ValueError, match=r"\['mass'\] hold infinite values"):
        StandardisedValues().fit(table.assign(mass=np.inf))
    with pytest.raises(ValueError, match=r"\['mass'\] hold infinite values"):  # at transform as at fit
        StandardisedValues().fit(table).transform(table.assign(mass=np.inf))
    with pytest.raises(ValueError, match="max_levels must be a positive integer"):
        StandardisedValues(max_levels=0).fit(table)
    for decimals in (-1, 1.5, True):
        with pytest.raises(ValueError, match="decimals must be None or a whole number >= 0"):
            StandardisedValues(decimals=decimals).fit(table)
    scaler = StandardisedValues().fit(table)
    with pytest.raises(ValueError, match=r"\['bill'\] were seen in fit"):
        scaler.transform(table.drop(columns="bill"))


def test_a_run_standardises_its_three_parts_by_the_training_part_alone():
    raw = runs.Run("sweep", "hamster", 1, style="no_names")
    scaled = runs.Run("sweep", "hamster", 1, style="no_names", values="standardised")
    data = raw.data()
    before, after = raw.part(data), scaled.part(data)
    for name in ("train", "val", "test"):  # the same rows and labels, only the numbers rewritten
        assert list(getattr(after, f"X_{name}").index) == list(getattr(before, f"X_{name}").index)
        assert getattr(after, f"y_{name}").equals(getattr(before, f"y_{name}"))
    mean, spread = before.X_train.mean(), before.X_train.std(ddof=0)
    for name in ("train", "test"):  # the training part's mean and spread, to the transformer's 2 decimals
        expected = ((getattr(before, f"X_{name}") - mean) / spread).round(2)
        np.testing.assert_allclose(getattr(after, f"X_{name}"), expected)
    assert raw.key(data, "full")["values"] == "raw" and scaled.key(data, "full")["values"] == "standardised"
    with pytest.raises(ValueError, match="values must be one of"):
        runs.Run("sweep", "hamster", 1, values="scaled").part(data)


def test_it_goes_before_lift_in_a_pipeline(table):
    y = np.where(table["mass"] > table["mass"].median(), "heavy", "light")
    lift = LIFTClassifier(model=TINY_RANDOM, epochs=1, batch_size=16, verbose=0, precision="fp32", train_layers=1)
    pipeline = make_pipeline(StandardisedValues(), lift).fit(table, y)
    assert set(pipeline.predict(table)) <= {"heavy", "light"}
    prompt = pipeline[-1].template_.prompt(pipeline[0].transform(table).iloc[0])
    assert f"{pipeline[0].transform(table)['mass'].iloc[0]:.2f}" in prompt and table["island"].iloc[0] in prompt
