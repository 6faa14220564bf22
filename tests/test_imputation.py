"""Imputation measured: hidden cells, the two standard imputers, the scores (tiny random model: plumbing only)."""
import numpy as np
import pandas as pd
import pytest

from liftnb.generators import LIFTGenerator
from liftnb.imputation import MeanModeImputer, NeighbourImputer, compare_imputers, hide_cells, imputation_scores
from liftnb.models import TINY_RANDOM


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    size = rng.uniform(1, 5, 40).round(1)
    return pd.DataFrame({"size": size, "weight": (size * 10 + rng.normal(0, 1, 40)).round(1),
                         "kind": np.where(size > 3, "big", "small"), "count": rng.integers(1, 9, 40)})


def test_hide_cells_hides_only_known_cells_and_never_a_whole_row(table):
    gappy = table.astype(object)
    gappy.iloc[0, [0, 1, 2]] = np.nan  # one known cell left: nothing to hide
    gappy.iloc[1, 0] = np.nan
    hidden, mask = hide_cells(gappy, per_row=2, seed=3)
    assert mask.iloc[0].sum() == 0 and mask.iloc[1].sum() == 2 and not mask.iloc[1, 0]
    assert (mask.sum(axis=1).iloc[2:] == 2).all()
    assert hidden.isna().to_numpy()[mask.to_numpy()].all()
    assert (hidden.notna().sum(axis=1) >= 1).all()
    unchanged = ~mask.to_numpy() & gappy.notna().to_numpy()
    assert (hidden.astype(object).to_numpy()[unchanged] == gappy.to_numpy()[unchanged]).all()
    assert hide_cells(gappy, per_row=2, seed=3)[1].equals(mask)  # seeded
    with pytest.raises(ValueError, match="per_row"):
        hide_cells(gappy, per_row=0)


def test_mean_mode_fills_with_training_mean_and_most_frequent_value(table):
    hidden, mask = hide_cells(table, seed=0)
    filled = MeanModeImputer().fit(table).transform(hidden)
    assert filled.notna().all().all()
    assert np.allclose(filled.loc[mask["size"], "size"], table["size"].mean())
    assert (filled.loc[mask["kind"], "kind"] == table["kind"].mode()[0]).all()
    assert filled.loc[~mask["size"], "size"].equals(table.loc[~mask["size"], "size"])


def test_neighbours_recover_a_column_that_the_others_determine(table):
    hidden, mask = hide_cells(table, seed=1)
    filled = NeighbourImputer(n_neighbors=3).fit(table).transform(hidden)
    assert filled.notna().all().all() and set(filled["kind"]) <= {"big", "small"}
    scores = imputation_scores(table, filled, mask)
    baseline = imputation_scores(table, MeanModeImputer().fit(table).transform(hidden), mask)
    assert scores.loc["weight", "nrmse"] < baseline.loc["weight", "nrmse"] / 2
    assert scores.loc["kind", "accuracy"] > 0.8


def test_scores_count_unfilled_cells_as_wrong_and_keep_them_out_of_the_rmse(table):
    hidden, mask = hide_cells(table, seed=2)
    filled = table.copy().astype(object)
    filled.loc[mask["kind"].to_numpy(), "kind"] = np.nan  # every hidden category left unfilled
    filled.loc[mask["size"].idxmax(), "size"] = np.nan
    scores = imputation_scores(table, filled, mask)
    assert scores.loc["kind", "accuracy"] == 0 and scores.loc["kind", "unfilled"] == mask["kind"].sum()
    assert scores.loc["size", "unfilled"] == 1 and scores.loc["size", "rmse"] == 0
    assert (scores["cells"] == mask.sum()[scores.index]).all()
    with pytest.raises(ValueError, match="shape"):
        imputation_scores(table, filled.iloc[:5], mask)


def test_compare_imputers_scores_every_imputer_on_the_same_hidden_cells(table):
    generator = LIFTGenerator(model=TINY_RANDOM, epochs=1, batch_size=16, verbose=0, precision="fp32",
                              train_layers=1, copies=1)
    run = compare_imputers(table.iloc[:30], table.iloc[30:], {"lift": generator, "mean / mode": MeanModeImputer()},
                           per_row=1, seed=0)
    assert set(run.filled) == {"lift", "mean / mode"} and run.mask.to_numpy().sum() == 10
    summary = run.summary()
    assert list(summary.index) == ["lift", "mean / mode"] and (summary["cells"] == 10).all()
    # the tiny random model writes nonsense: its malformed answers are counted as unfilled, not dropped
    assert summary.loc["lift", "unfilled"] == round(generator.malformed_ * 10)
    assert summary.loc["mean / mode", "unfilled"] == 0
    with pytest.raises(ValueError, match="different columns"):
        compare_imputers(table, table[["size", "kind"]], {"m": MeanModeImputer()})
    with pytest.raises(ValueError, match="train and validation have different columns"):
        compare_imputers(table, table, {"m": MeanModeImputer()}, validation=table[["size", "kind"]])


def test_compare_imputers_hands_validation_rows_only_to_imputers_that_take_them(table):
    generator = LIFTGenerator(model=TINY_RANDOM, epochs=2, batch_size=16, verbose=0, precision="fp32",
                              train_layers=1, copies=1, patience=None)
    run = compare_imputers(table.iloc[:24], table.iloc[30:], {"lift": generator, "mean / mode": MeanModeImputer()},
                           seed=0, validation=table.iloc[24:30])
    assert [("val_loss" in e) for e in generator.history_.epochs] == [True, True]
    assert generator.history_.best_epoch in (1, 2)
    assert run.summary().loc["mean / mode", "cells"] == 10
    # the mean/mode imputer was fitted on train alone: its numbers are train's means, not train + validation's
    filled, mask = run.filled["mean / mode"], run.mask
    numbers = [c for c in ("size", "weight", "count") if mask[c].any()]
    assert numbers
    for column in numbers:
        assert np.allclose(filled.loc[mask[column], column].astype(float), table[column].iloc[:24].mean()), column
    assert any(not np.isclose(table[c].iloc[:24].mean(), table[c].iloc[:30].mean()) for c in numbers)
