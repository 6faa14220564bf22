"""Notebooks 11 and 12's pieces: cached per seed, written with provenance in the full profile, seed 0's fitted
estimator saved and loaded (plumbing on the tiny random model; the notebooks assert the findings)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liftnb import LIFTClassifier
from liftnb.cache import ResultsCache
from liftnb.models import TINY_RANDOM
from liftnb.paper import imputation_study, own_data, reproduce, results

TINY = dict(epochs=1, batch_size=16, precision="fp32", train_layers=1, model=TINY_RANDOM)


def test_the_penguins_piece_saves_its_model_reads_the_cache_and_refits_when_the_model_is_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(own_data, "FIT", TINY)
    cache = ResultsCache(tmp_path / "cache")
    first = own_data.penguins_run(0, "full", cache=cache, log=lambda *a: None)
    metrics = first["metrics"]
    assert metrics["test_rows"] == 69 and 0 <= metrics["lift_score"] <= 1
    assert metrics["best_baseline"] not in ("lift_score", "lift_generate", "majority")
    table = own_data.comparison_table(first)
    assert {"lift_score", "lift_generate", "majority"} <= set(table.index)
    assert metrics["best_baseline_accuracy"] == table.drop(index=["lift_score", "lift_generate", "majority"])[
        "accuracy"].max()

    # the saved model is the one that computed the stored probabilities
    loaded = LIFTClassifier.load(first["saved"])
    test = own_data.load_table().X.loc[first["test_index"]]
    np.testing.assert_allclose(loaded.predict_proba(test), first["test_probabilities"], atol=1e-5)

    # the full profile wrote the row and the piece, with provenance
    row = pd.read_csv(tmp_path / "results" / "own_data_full.csv")
    assert list(row["dataset"]) == ["penguins seed=0"] and row["learner_code"].notna().all()
    assert (tmp_path / "results" / "own_data_full" / "penguins seed=0.json.gz").exists()

    calls = []
    real_compare = own_data.compare
    monkeypatch.setattr(own_data, "compare", lambda *a, **k: calls.append(1) or real_compare(*a, **k))
    again = own_data.penguins_run(0, "quick", cache=cache, log=lambda *a: None)
    assert not calls and again["saved"] == first["saved"]  # from the cache: the profile is not part of the run
    for path in sorted(tmp_path.joinpath(first["saved"]).iterdir()):
        path.unlink()
    refitted = own_data.penguins_run(0, "quick", cache=cache, log=lambda *a: None)
    assert calls == [1] and (tmp_path / refitted["saved"] / "estimator.pt").exists()  # numbers and model together

    other = own_data.penguins_run(1, "quick", cache=cache, log=lambda *a: None)
    assert other["saved"] is None and calls == [1, 1]  # only seed 0's model is kept


def test_a_table_survives_its_json_form_with_gaps_and_dtypes():
    frame = pd.DataFrame({"x": [1.5, np.nan, 3.0], "word": ["a", None, "c"], "year": [2007, 2008, 2009],
                          "flag": [True, False, True]}, index=[10, 4, 7])
    back = imputation_study.frame_from_json(imputation_study.frame_to_json(frame))
    pd.testing.assert_frame_equal(back, frame)


def test_the_imputation_piece_rebuilds_its_run_from_the_stored_result(tmp_path, monkeypatch):
    monkeypatch.setattr(imputation_study, "BUDGET", {"quick": dict(copies=1, **TINY)})
    cache = ResultsCache(tmp_path / "cache")
    computed = imputation_study.imputation_run(0, "quick", cache=cache, log=lambda *a: None)
    monkeypatch.setattr(imputation_study, "compare_imputers", lambda *a, **k: pytest.fail("computed again"))
    stored = imputation_study.imputation_run(0, "quick", cache=cache, log=lambda *a: None)
    assert stored["provenance"] == computed["provenance"]
    run = imputation_study.as_imputation_run(stored)
    _, test = imputation_study.split_tables(0)
    assert run.mask.sum().sum() == 2 * len(test) == computed["metrics"]["hidden_cells"]
    assert run.hidden[run.mask].isna().all().all()  # the hidden cells are gaps in what the imputers saw
    for name, filled in run.filled.items():
        assert list(filled.index) == list(test.index) and list(filled.columns) == list(test.columns), name
    summary = run.summary()
    assert list(summary.index) == ["LIFT", "column mean / mode", "5 nearest neighbours"]
    assert summary.loc["LIFT", "cells"] == computed["metrics"]["hidden_cells"]
    assert computed["metrics"]["LIFT unfilled"] == summary.loc["LIFT", "unfilled"]
    assert stored["fit"]["training_rows"] == 220 and stored["fit"]["epochs_run"] == 1


def test_the_paper_command_plans_notebooks_11_and_12():
    assert reproduce.planned_full_runs("own_data") == {"own_data": [(f"penguins seed={s}", "", s) for s in range(3)]}
    assert [p for p, _, _ in reproduce.planned_full_runs("imputation")["imputation"]] == [
        "penguins seed=0", "penguins seed=1", "penguins seed=2"]
    assert len(reproduce.piece_names("own_data", "quick")) == 1
    with pytest.raises(SystemExit):
        reproduce.main(["own_data", "--seeds", "0"])  # the piece experiments take no selection


def test_the_builder_settings_of_notebook_11_make_the_command_s_template():
    from liftnb.widgets import TemplateBuilder

    table = own_data.load_table()
    builder = TemplateBuilder(table.X.assign(species=table.y), target="species", rows=2)
    for column, name in own_data.NAMES.items():
        builder.names[column].value = name
        builder.units[column].value = own_data.UNITS.get(column, "")
    builder.label_style.value = "name"
    assert builder.template == own_data.penguins_template()  # so the notebook and the command share their runs
