"""Two-stage fine-tuning: first on synthetic pretext tasks, then on a small target task (notebook 09).

Two target tasks: the paper's regression y = 0.2·x1 + 0.4·x2 (pretext: random linear functions) and a small
classification task, three Gaussian clusters (pretext: random three-cluster problems)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from .. import metrics
from ..cache import environment, fingerprint
from ..datasets import Dataset
from ..estimators import LIFTClassifier, LIFTRegressor
from ..models import cache_dir, model_identity
from .runs import cached_piece, code_fingerprint, profile_learner

MODULE = "paper/two_stage.py"


def target_task(n: int, seed: int = 0, noise: float = 0.1) -> Dataset:
    """The paper's target: y = 0.2·x1 + 0.4·x2 + noise, x ~ U(-10, 10)^2 (noise as a fraction of std(y))."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-10, 10, size=(n, 2))
    clean = 0.2 * X[:, 0] + 0.4 * X[:, 1]
    y = clean + noise * clean.std() * rng.normal(size=n)
    return Dataset("two_stage_target", pd.DataFrame(np.round(X, 4), columns=["x1", "x2"]),
                   pd.Series(y, name="y"), "regression", source=f"y = 0.2 x1 + 0.4 x2, n={n}, seed={seed}")


def pretext_tasks(n_tasks: int = 20, rows_per_task: int = 20, seed: int = 100) -> Dataset:
    """Pretext data: rows of many random linear functions y = w·x (w ~ N(0, 0.5^2)^2), in the target's format.

    No single function is learnable from the mix; what transfers is the format, the scale of the numbers and
    "y is a linear function of x1, x2"."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-10, 10, size=(n_tasks * rows_per_task, 2))
    weights = np.repeat(rng.normal(scale=0.5, size=(n_tasks, 2)), rows_per_task, axis=0)
    y = (X * weights).sum(1)
    return Dataset("pretext_linear", pd.DataFrame(np.round(X, 4), columns=["x1", "x2"]), pd.Series(y, name="y"),
                   "regression", source=f"{n_tasks} random linear functions x {rows_per_task} rows, seed={seed}")


CLUSTER_CENTRES = np.array([[-5.0, -4.0], [5.0, -3.0], [0.0, 6.0]])


def cluster_task(n: int, seed: int = 0, spread: float = 3.0) -> Dataset:
    """The small classification target: three Gaussian clusters (std `spread`) at fixed centres, labels 0-2,
    every class present when n >= 3."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 3)
    X = CLUSTER_CENTRES[labels] + rng.normal(scale=spread, size=(n, 2))
    return Dataset("two_stage_clusters", pd.DataFrame(np.round(X, 4), columns=["x1", "x2"]),
                   pd.Series(labels, name="y"), "classification",
                   source=f"3 Gaussian clusters (std {spread}) at {CLUSTER_CENTRES.tolist()}, n={n}, seed={seed}")


def pretext_clusters(n_tasks: int = 20, rows_per_task: int = 20, seed: int = 100, spread: float = 3.0) -> Dataset:
    """Pretext data: rows of many random three-cluster problems (centres ~ U(-8, 8)^2), in the target's format.

    The target's centres are not among them; what can transfer is the format and "the label is the cluster a
    point falls in"."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([rng.permutation(np.arange(rows_per_task) % 3) for _ in range(n_tasks)])
    centres = np.repeat(rng.uniform(-8, 8, size=(n_tasks, 3, 2)), rows_per_task, axis=0)
    X = centres[np.arange(len(labels)), labels] + rng.normal(scale=spread, size=(len(labels), 2))
    return Dataset("pretext_clusters", pd.DataFrame(np.round(X, 4), columns=["x1", "x2"]),
                   pd.Series(labels, name="y"), "classification",
                   source=f"{n_tasks} random 3-cluster problems x {rows_per_task} rows, seed={seed}")


class Task(NamedTuple):
    """A two-stage target task: how to make its rows and its pretext rows, the estimator, the test metric."""

    target: Callable[..., Dataset]
    pretext: Callable[..., Dataset]
    estimator: type
    metric: str  # a liftnb.metrics function: rmse (lower is better) or accuracy


TASKS = {"regression": Task(target_task, pretext_tasks, LIFTRegressor, "rmse"),
         "classification": Task(cluster_task, pretext_clusters, LIFTClassifier, "accuracy")}


def held_out_rows(task: str) -> Dataset:
    """The fixed 100 test rows of a task's target."""
    return TASKS[task].target(100, seed=999)


def training_rows(task: str, n: int, seed: int) -> Dataset:
    """The n target rows a run with this seed trains on."""
    return TASKS[task].target(n, seed=seed + 1)


SIZES = {"quick": (10,), "full": (10, 50, 200)}  # target training rows n; quick: the smallest, where the paper's gap is
SEEDS = {"quick": (0,), "full": (0, 1, 2)}
# quick (CI): classification only, where the assertion is. Regression at n = 10 on one seed followed the CPU's bf16
# kernels (one stage 2.38 -> two stages 2.16 on AVX512-BF16, 1.78 -> 1.87 on AMX), so CI printed it without
# asserting, at 290 s of CI time; the full profile runs it with 3 seeds.
PLANNED_TASKS = {"quick": ("classification",), "full": ("regression", "classification")}


STAGE_ONE_PREFIX = "two-stage-"  # stage-one model folders in the cache: prefix, computing code's tag, key


def stage_one_tag() -> str:
    """The code's tag that leads this checkout's stage-one folder names (after STAGE_ONE_PREFIX): the core's computing
    code, the runner and this module, which holds stage_one."""
    return code_fingerprint(MODULE)[:8]


def stage_one_code(folder: Path) -> str | None:
    """The code tag a stage-one folder was named with; None where its name predates recording it."""
    parts = folder.name[len(STAGE_ONE_PREFIX):].split("-")
    return parts[0] if len(parts) == 2 else None


def stage_one_folder(pretext: Dataset, estimator) -> Path:
    """Where the stage-one model of this pretext data and estimator is kept: named by everything that determines it
    (the data, the settings, the model it starts from, the code, the library versions)."""
    key = {"X": pretext.X, "y": pretext.y, "lift": estimator.resolved_settings(), "code": code_fingerprint(MODULE),
           "environment": environment(), "model": model_identity(estimator.model)}
    # the code leads the name, so the cache's pruning (paper.prune) knows a folder of other code without reading it
    return cache_dir() / f"{STAGE_ONE_PREFIX}{stage_one_tag()}-{fingerprint(key)[:16]}"


def stage_one(pretext: Dataset, epochs: int = 2, **params) -> str:
    """Fine-tune the embedded model on the pretext data once and export it; returns its folder (cached on disk)."""
    estimator = TASKS[pretext.task].estimator(epochs=epochs, verbose=0, **params)
    folder = stage_one_folder(pretext, estimator)
    if not (folder / "config.json").exists():
        estimator.fit(pretext.X, pretext.y).export_model(folder)
    return str(folder)


def compare_stages(n: int, stage_one_model: str, test: Dataset, seed: int = 0, **params) -> dict:
    """Test error (RMSE, or accuracy for classification) of fine-tuning on n target rows from the pretrained model
    (one stage) and from the pretext-tuned model (two stages), with the same settings."""
    task = TASKS[test.task]
    train = training_rows(test.task, n, seed)
    out = {"n": n}
    for name, model in (("one_stage", None), ("two_stage", stage_one_model)):
        estimator = task.estimator(model=model, verbose=0, random_state=seed, **params).fit(train.X, train.y)
        predicted = estimator.predict(test.X)
        out[f"{task.metric}_{name}"] = getattr(metrics, task.metric)(test.y, predicted)
        if test.task == "regression":
            out[f"invalid_{name}"] = estimator.invalid_rate_
        out[f"seconds_{name}"] = estimator.history_.seconds
    return out


def logistic_reference(profile: str = "quick") -> pd.Series:
    """Test accuracy of logistic regression on the classification target's n rows (mean over the profile's seeds),
    and of the nearest true centre as n = "oracle": what the few-shot LIFT numbers should be read against."""
    from sklearn.linear_model import LogisticRegression

    test = held_out_rows("classification")
    out = {}
    for n in SIZES[profile]:
        scores = []
        for seed in SEEDS[profile]:
            train = training_rows("classification", n, seed)
            scores.append(LogisticRegression(max_iter=1000).fit(train.X, train.y).score(test.X, test.y))
        out[n] = float(np.mean(scores))
    nearest = ((test.X.to_numpy()[:, None, :] - CLUSTER_CENTRES[None]) ** 2).sum(-1).argmin(1)
    out["oracle"] = float((nearest == test.y.to_numpy()).mean())
    return pd.Series(out, name="logistic regression")


def piece_name(task: str, n: int, seed: int) -> str:
    """A piece's name in results/two_stage_full.csv (regression pieces keep the names they were first written under)."""
    return f"{'' if task == 'regression' else task + ' '}n={n} seed={seed}"


def experiment(profile: str = "quick", task: str = "regression", cache=None, log=print) -> pd.DataFrame:
    """Error vs n for one- and two-stage fine-tuning on one target task (cached pieces; provenance CSV in the
    full profile)."""
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose from {sorted(TASKS)}.")
    if task not in PLANNED_TASKS[profile]:
        raise ValueError(f"The {profile} profile does not plan the {task} task; it plans {PLANNED_TASKS[profile]}.")
    sizes, seeds = SIZES[profile], SEEDS[profile]
    pretext = pretext_rows(task, profile)
    test = held_out_rows(task)
    learner = profile_learner(profile)  # both stages' fits: the quick profile trains fewer layers (CI time)
    rows = []
    for seed in seeds:
        for n in sizes:
            def compute(n=n, seed=seed):
                return {"metrics": compare_stages(n, stage_one(pretext, **learner), test, seed=seed, **learner)}
            result = cached_piece("two_stage", profile, piece_name(task, n, seed),
                                  two_stage_key(task, n, seed, profile, pretext), compute, MODULE, cache=cache, log=log)
            rows.append({**result["metrics"], "seed": seed})
    return pd.DataFrame(rows)


def pretext_rows(task: str, profile: str) -> Dataset:
    """The stage-one data of a task in a profile: 20 synthetic tasks of 20 (quick) or 50 (full) rows each."""
    return TASKS[task].pretext(n_tasks=20, rows_per_task=20 if profile == "quick" else 50)


def two_stage_key(task: str, n: int, seed: int, profile: str, pretext: Dataset | None = None) -> dict:
    """What determines one (task, n, seed) piece besides the code, library versions and model (runs.piece_key)."""
    pretext = pretext_rows(task, profile) if pretext is None else pretext
    settings = TASKS[task].estimator(random_state=seed, verbose=0, **profile_learner(profile)).resolved_settings()
    return {"experiment": "two_stage", "pretext": fingerprint({"X": pretext.X, "y": pretext.y}), "n": n,
            "seed": seed, "lift": settings}
