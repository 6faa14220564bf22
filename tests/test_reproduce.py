"""The resumable reproduction command: plans, caching, results files with provenance, the paper table."""
from __future__ import annotations

import warnings
from dataclasses import replace

import pandas as pd
import pytest

from liftnb import reproduce
from liftnb.cache import ResultsCache


def test_plans_cover_the_issue_and_profiles_differ():
    quick = reproduce.plan("classification", "quick")
    full = reproduce.plan("classification", "full")
    quick_sets = {r.dataset for r in quick}
    assert {r.seed for r in quick} == {0} and {r.seed for r in full} == {0, 1, 2}
    assert len(quick_sets & {"blobs", "moons", "9clusters", "circles", "twocircles"}) >= 2
    assert len(quick_sets & {"iris", "wine", "tae", "cmc", "customers"}) >= 3 and "digits" in quick_sets
    full_sets = {r.dataset for r in full}
    for name in ("9clusters", "spambase", "hill_valley", "optdigits", "mfeat", "margin", "texture", "mnist", "fmnist",
                 "led", "hamster", "pollution", "customers", "vehicle"):
        assert name in full_sets


def test_unknown_experiment_profile_or_dataset_is_named():
    with pytest.raises(ValueError, match="experiment"):
        reproduce.plan("nope")
    with pytest.raises(ValueError, match="profile"):
        reproduce.plan("classification", "medium")
    with pytest.raises(ValueError, match="not datasets in the quick plan"):
        reproduce.run("classification", "quick", datasets_=["spambase"], cache=ResultsCache("/nonexistent"))
    with pytest.raises(ValueError, match=r"\['p=3'\] are not variants in the full plan of 'regression'"):
        reproduce.run("regression", "full", variants=["p=3"], cache=ResultsCache("/nonexistent"))


def test_list_prints_the_pieces_of_notebooks_08_to_10_without_running_them(capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "run_other", lambda *a: pytest.fail("--list must not run anything"))
    reproduce.main(["two_stage", "--profile", "full", "--list"])
    pieces = capsys.readouterr().out.splitlines()
    assert len(pieces) == 2 * 3 * 3 and "classification n=200 seed=2: one stage and two stages" in pieces
    reproduce.main(["icl_calibration", "--list"])
    assert "icl tae k=9" in capsys.readouterr().out
    reproduce.main(["half_image", "--profile", "full", "--list"])
    assert "mnist14: 1500 training images" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        reproduce.main(["half_image", "--seeds", "1"])
    assert "--datasets, --seeds and --variants apply to the table experiments" in capsys.readouterr().err


def test_command_prints_the_regression_summary_in_rae(tmp_path, monkeypatch, capsys):
    def execute(run, profile, data=None):
        table = pd.DataFrame({"method": ["lift", "polynomial"], "rae": [0.12, 0.09], "dataset": run.dataset,
                              "variant": run.variant, "seed": run.seed})
        return table, {}
    monkeypatch.setattr(reproduce, "execute", execute)
    monkeypatch.setattr(reproduce, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(reproduce, "ResultsCache", lambda: ResultsCache(tmp_path / "cache"))
    reproduce.main(["regression", "--datasets", "linear"])
    out = capsys.readouterr().out
    assert "0.120" in out and "regression_quick.csv" in out


def test_two_stage_command_runs_both_target_tasks(monkeypatch):
    from liftnb import twostage

    calls = []
    monkeypatch.setattr(twostage, "experiment", lambda profile, task: calls.append((profile, task)))
    reproduce.run_other("two_stage", "full")
    assert calls == [("full", "regression"), ("full", "classification")]


def test_pretraining_plan_has_both_controls():
    variants = {r.variant: dict(r.lift).get("model") for r in reproduce.plan("pretraining", "quick")}
    assert variants["random init"] == "smollm2:random" and variants["shuffled weights"] == "smollm2:shuffled"
    assert variants["pretrained"] is None


def test_feature_name_sentences_use_every_column_and_templates_share_their_rows():
    from liftnb.templates import Template

    runs = [r for r in reproduce.plan("feature_names", "full") if r.seed == 0]
    for name in ("iris", "tae", "cmc", "vehicle"):
        sentence = next(r for r in runs if r.dataset == name and r.variant == "sentence")
        data = sentence.data()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a column the sentence forgets is a warning
            prompt = Template(style="custom", **dict(sentence.template)).bind(data.X).prompt(data.X.iloc[0])
        assert "{" not in prompt and str(data.X.iloc[0, 0]) in prompt
        assert len({r.rows for r in runs if r.dataset == name}) == 1, name  # every template sees the same rows
    table_runs = {(r.dataset, r.seed): r for r in reproduce.plan("classification", "full")}
    wine = next(r for r in runs if r.dataset == "wine" and r.variant == "no_names")
    assert replace(wine, experiment="", variant="") == replace(table_runs[("wine", 0)], experiment="", variant="")


def _fake_execute(calls):
    def execute(run, profile, data=None):
        calls.append((run.dataset, run.seed))
        rows = [("lift_score", 0.9, 0.0), ("majority", 0.4, float("nan")), ("logreg", 0.95, float("nan"))]
        table = pd.DataFrame(rows, columns=["method", "accuracy", "invalid_rate"])
        for column, value in {"dataset": run.dataset, "variant": run.variant, "seed": run.seed, "profile": profile,
                              "n_train": 10,
                              "tokens_per_row": 20.0, "git_commit": "abc", "date": "2026-11-22",
                              "run_seconds": 1.0}.items():
            table.insert(0, column, value)
        return table, {"figure": run.dataset}
    return execute


def test_run_caches_each_piece_and_merges_the_results_file(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce, "execute", _fake_execute(calls))
    cache = ResultsCache(tmp_path / "cache")
    reproduce.run("classification", "quick", datasets_=["iris"], cache=cache, results_folder=tmp_path, log=lambda *_: 0)
    reproduce.run("classification", "quick", datasets_=["iris", "tae"], cache=cache, results_folder=tmp_path,
                  log=lambda *_: 0)
    assert calls == [("iris", 0), ("tae", 0)]  # iris came from the cache the second time
    again = reproduce.run("classification", "quick", datasets_=["iris", "tae"], cache=cache, write_csv=False,
                          log=lambda *_: 0)
    assert again.attrs["extras"] == {("iris", "", 0): {"figure": "iris"}, ("tae", "", 0): {"figure": "tae"}}
    written = pd.read_csv(reproduce.results_path("classification", "quick", tmp_path))
    assert sorted(written["dataset"].unique()) == ["iris", "tae"]
    assert len(written) == 6  # no duplicated rows for iris
    for column in ("git_commit", "date", "profile", "seed"):
        assert column in written
    calls.clear()
    reproduce.run("regression", "full", datasets_=["linear"], seeds=[0], variants=["p=1"], cache=cache,
                  results_folder=tmp_path, log=lambda *_: 0)
    assert calls == [("linear", 0)]  # p=2 and seeds 1, 2 left out


def test_beside_paper_puts_the_papers_numbers_next_to_ours():
    rows = []
    for seed, lift in ((0, 0.9), (1, 1.0)):
        for method, acc in (("lift_score", lift), ("majority", 0.33), ("logreg", 0.95), ("tree", 0.97)):
            rows.append({"dataset": "iris", "seed": seed, "method": method, "accuracy": acc, "invalid_rate": 0.0,
                         "n_train": 96, "tokens_per_row": 47.0})
    table = reproduce.beside_paper(pd.DataFrame(rows))
    row = table.loc["iris"]
    assert row["LIFT (ours)"] == pytest.approx(95.0) and row["seeds"] == 2
    assert row["best baseline"] == pytest.approx(97.0) and row["best is"] == "tree"
    assert row["paper LIFT/GPT-J"] == pytest.approx(96.67) and row["paper best baseline"] == pytest.approx(100.0)
    summary = reproduce.summary(pd.DataFrame(rows))
    assert summary.loc["iris", "lift_score"] == "0.950 ± 0.071"


def test_execute_keeps_metrics_provenance_and_the_figures_extras(monkeypatch):
    """One real (tiny-model) run per kind: 2-D classification keeps decision regions, 1-D regression its curves."""
    import numpy as np

    from liftnb.models import TINY_RANDOM

    tiny = (("batch_size", 16), ("epochs", 1), ("model", TINY_RANDOM), ("precision", "fp32"), ("train_layers", 1))
    monkeypatch.setitem(reproduce.REGION_RESOLUTION, "quick", 5)
    run = reproduce.Run("boundaries", "moons", 0, rows=60, style="no_names", lift=tiny,
                        baselines=("majority", "logreg"))
    table, extras = reproduce.execute(run, "quick")
    assert list(table["method"]) == ["lift_score", "majority", "logreg"]
    for column in reproduce.PROVENANCE:
        assert column in table, column
    assert table["model"].iloc[0] == TINY_RANDOM and table["n_rows"].iloc[0] == 60
    assert set(extras["regions"]) == {"lift", *reproduce.REGION_BASELINES}
    assert np.asarray(extras["regions"]["lift"]).shape == (5, 5)
    assert set(np.unique(extras["regions"]["logreg"])) <= {0, 1}

    run = reproduce.Run("regression", "linear", 0, load=(("n", 120), ("p", 1)), lift=tiny,
                        split=(("test_size", 30), ("val_size", 20)), baselines=("mean", "polynomial"))
    table, extras = reproduce.execute(run, "quick")
    assert list(table["method"]) == ["lift", "mean", "polynomial"]
    assert table.set_index("method").loc["polynomial", "rae"] < 0.2  # a linear function, fitted by a polynomial
    assert len(extras["x"]) == len(extras["lift"]) == len(extras["polynomial"]) == 41


def test_cached_piece_computes_once_and_writes_provenance_in_full(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RESULTS_DIR", tmp_path)
    cache = ResultsCache(tmp_path / "cache")
    calls = []

    def compute():
        calls.append(1)
        return {"metrics": {"mse": 1.5}, "figure": [1, 2]}

    first = reproduce.cached_piece("half_image", "full", "digits", {"k": 1}, compute, cache=cache, log=lambda *_: 0)
    again = reproduce.cached_piece("half_image", "full", "digits", {"k": 1}, compute, cache=cache, log=lambda *_: 0)
    assert calls == [1] and again["figure"] == [1, 2] and first["provenance"]["piece"] == "digits"
    written = pd.read_csv(tmp_path / "half_image_full.csv")
    assert len(written) == 1 and written["mse"].iloc[0] == 1.5
    assert {"git_commit", "date", "run_seconds", "profile"} <= set(written.columns)
    reproduce.cached_piece("half_image", "quick", "digits", {"k": 2}, compute, cache=cache, log=lambda *_: 0)
    assert not (tmp_path / "half_image_quick.csv").exists()  # quick runs leave results/ alone


def test_notebook_results_put_full_rows_in_place_of_quick_ones(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce, "execute", _fake_execute(calls))
    monkeypatch.setattr(reproduce, "RESULTS_DIR", tmp_path)
    full = pd.DataFrame({"dataset": ["iris"] * 2, "variant": [""] * 2, "seed": [0, 1], "method": ["lift_score"] * 2,
                         "accuracy": [0.97, 0.93], "git_commit": ["abc1234"] * 2})
    full.to_csv(tmp_path / "classification_full.csv", index=False)
    monkeypatch.setattr(reproduce, "ResultsCache", lambda: ResultsCache(tmp_path / "cache"))
    shown = reproduce.notebook_results("classification", "quick", log=lambda *_: 0)
    iris = shown[shown["dataset"] == "iris"]
    assert sorted(iris["seed"]) == [0, 1] and iris["source"].str.startswith("full run").all()
    assert "abc1234" in iris["source"].iloc[0]
    others = shown[shown["dataset"] != "iris"]
    assert len(others) and (others["source"] == "this execution (quick)").all()
    assert not (tmp_path / "classification_quick.csv").exists()
