"""In-context learning with the pretrained model, and calibration of label-scoring probabilities (notebook 10)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import datasets, metrics
from ..estimators import LIFTClassifier
from ..models import load_lm
from ..predict import score_answers, softmax_rows
from . import classification
from .perturb import take_fraction
from .results import results_path, write_results
from .runs import PROVENANCE, cached_piece, profile_learner, run_all

MODULE = "paper/icl_calibration.py"


def icl_prompts(template, X_context: pd.DataFrame, y_context, X_query: pd.DataFrame) -> list[str]:
    """Each query's prompt preceded by the k context examples written as "prompt answer" lines."""
    context = "".join(f"{p}{template.answer(y)}\n" for p, y in zip(template.prompts(X_context), y_context))
    return [context + p for p in template.prompts(X_query)]


def icl_predict(model, tokenizer, template, X_context, y_context, X_query) -> np.ndarray:
    """Class codes predicted in context (no training): the class answer with the highest log-likelihood."""
    prompts = icl_prompts(template, X_context, y_context, X_query)
    return score_answers(model, tokenizer, prompts, template.class_answers(), batch_size=4).argmax(1)


# ----- calibration ----------------------------------------------------------------------------------------------
def reliability(probabilities: np.ndarray, truth, bins: int = 10) -> pd.DataFrame:
    """Per confidence bin: mean confidence of the predicted class, accuracy, and the number of rows."""
    probabilities = np.asarray(probabilities, dtype=float)
    confidence, predicted = probabilities.max(1), probabilities.argmax(1)
    correct = predicted == np.asarray(truth)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = [{"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "confidence": confidence[which == b].mean(),
             "accuracy": correct[which == b].mean(), "rows": int((which == b).sum())}
            for b in range(bins) if (which == b).any()]
    return pd.DataFrame(rows)


def expected_calibration_error(probabilities: np.ndarray, truth, bins: int = 10) -> float:
    """Σ_bins (rows in bin / rows) · |accuracy − confidence|."""
    table = reliability(probabilities, truth, bins)
    return float((table["rows"] / table["rows"].sum() * (table["accuracy"] - table["confidence"]).abs()).sum())


def fit_temperature(log_likelihoods: np.ndarray, truth) -> float:
    """The temperature T minimising validation negative log-likelihood of softmax(scores / T); 1 (no scaling) where
    every validation row is already right, since then that likelihood only rises as T shrinks towards 0."""
    from scipy.optimize import minimize_scalar

    scores, truth = np.asarray(log_likelihoods, dtype=float), np.asarray(truth)
    if (scores.argmax(1) == truth).all():
        return 1.0

    def nll(log_t: float) -> float:
        probabilities = softmax_rows(scores / np.exp(log_t))
        return -np.log(np.clip(probabilities[np.arange(len(truth)), truth], 1e-12, None)).mean()

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def log_loss(probabilities: np.ndarray, truth) -> float:
    truth = np.asarray(truth)
    return float(-np.log(np.clip(np.asarray(probabilities)[np.arange(len(truth)), truth], 1e-12, None)).mean())


# ----- the experiment of notebook 10 ------------------------------------------------------------------------------
ICL_SETS = {"quick": {"tae": 9}, "full": {"iris": 15, "tae": 15, "customers": 10}}  # name -> k examples; quick: the paper's TAE


def icl_run(name: str, k: int, profile: str = "quick", cache=None, log=print) -> dict:
    """In context (k examples) vs LIFT fine-tuned on the same k vs LIFT on the whole training part."""
    learner = profile_learner(profile)
    data = datasets.load(name)

    def compute() -> dict:
        part = datasets.split(data, seed=0)
        X_k, y_k = take_fraction(part.X_train, part.y_train, k / len(part.y_train), seed=0)
        template = datasets.template_for(data, style="no_names").bind(part.X_train, task="classification",
                                                                       classes=list(np.unique(data.y)))
        classes = np.unique(data.y)
        truth = np.searchsorted(classes, part.y_test)
        model, tokenizer = load_lm()
        in_context = icl_predict(model, tokenizer, template, X_k, np.searchsorted(classes, y_k), part.X_test)
        few = LIFTClassifier(template=datasets.template_for(data, style="no_names"), verbose=0, **learner)
        few.fit(X_k, y_k)  # only the k examples, as in context: validation rows would be labels ICL never sees
        metrics_ = {"k": len(y_k), "test_rows": len(truth), "icl_accuracy": metrics.accuracy(truth, in_context),
                    "lift_k_accuracy": few.score(part.X_test, part.y_test),
                    "majority": float(pd.Series(part.y_train).value_counts(normalize=True).iloc[0]),
                    "icl_prompt_tokens": float(np.mean([len(t) for t in tokenizer(
                        icl_prompts(template, X_k, np.searchsorted(classes, y_k), part.X_test.head(5)))["input_ids"]]))}
        return {"metrics": metrics_}

    result = dict(cached_piece("icl", profile, icl_piece(name, k), icl_key(name, k, profile, data), compute, MODULE,
                               cache=cache, log=log))
    # LIFT on the whole training part: notebook 02's run in this profile (the same cached run when it was made)
    full = [r for r in classification.plan(profile) if r.dataset == name and r.seed == 0]
    if full:
        table = run_all(full, profile, "classification", cache=cache, write_csv=False, log=log)
        result["metrics"] = {**result["metrics"],
                             "lift_full_accuracy": float(table.set_index("method").loc["lift_score", "accuracy"])}
    return result


def icl_piece(name: str, k: int) -> str:
    """An ICL piece's name in results/icl_<profile>.csv."""
    return f"{name} k={k}"


def icl_key(name: str, k: int, profile: str, data: datasets.Dataset | None = None) -> dict:
    """What determines an ICL piece besides the code, library versions and model (runs.piece_key)."""
    data = datasets.load(name) if data is None else data
    return {"experiment": "icl", "dataset": name, "X": data.X, "y": data.y, "k": k,
            "lift": LIFTClassifier(verbose=0, **profile_learner(profile)).resolved_settings()}


CALIBRATION_SET = "moons"  # notebook 02's run of it, seed 0: quick 300 points, full all 2000


def calibration_source(profile: str):
    """Notebook 02's run whose label scores the calibration reads."""
    return next(r for r in classification.plan(profile) if r.dataset == CALIBRATION_SET and r.seed == 0)


def calibration_piece(profile: str) -> str:
    """The calibration row's name in results/calibration_<profile>.csv: the data set and its rows."""
    return f"{CALIBRATION_SET} {len(calibration_source(profile).data().y)}"


def calibration_run(profile: str = "quick", cache=None, log=print) -> dict:
    """LIFT's label-scoring log-likelihoods (validation and test) and logistic regression's test probabilities, read
    from notebook 02's Moons run, seed 0 (the same cached run when it was made); the full profile also writes a row
    of results/calibration_full.csv with that run's provenance."""
    run = calibration_source(profile)
    table = run_all([run], profile, "classification", cache=cache, write_csv=(profile == "full"), log=log)
    scores = table.attrs["extras"][(run.dataset, run.variant, run.seed)]["label_scores"]
    lift = table.set_index("method").loc["lift_score"]
    result = {"metrics": {"rows": int(lift["n_rows"]), "test_rows": len(scores["test_truth"]),
                          "lift_accuracy": float(lift["accuracy"])}, **scores}
    if profile == "full":
        row = {**{c: lift[c] for c in [*PROVENANCE, "plan_key"] if c in lift}, "experiment": "calibration",
               "dataset": calibration_piece(profile), "variant": "", **result["metrics"]}
        write_results(pd.DataFrame([row]), results_path("calibration", profile))
    return result
