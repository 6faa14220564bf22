"""Notebook 12: LIFT as an imputer of the penguins' hidden cells, beside the column mean/mode and 5 nearest neighbours.

Each seed is a cached piece (results/imputation_full.csv and results/imputation_full/ in the full profile)."""
from __future__ import annotations

import pandas as pd

from .. import datasets
from ..cache import ResultsCache
from ..generators import LIFTGenerator
from ..imputation import ImputationRun, MeanModeImputer, NeighbourImputer, compare_imputers
from ..templates import Template
from .own_data import NAMES, UNITS, load_table
from .runs import cached_piece

MODULE = "paper/imputation_study.py"
SEEDS = {"quick": [0], "full": [0, 1, 2]}
# A cost choice, not tuned: each training row gives `copies` examples, each holding out 1-2 of its known cells.
BUDGET = {"quick": {"copies": 2, "epochs": 4}, "full": {"copies": 4, "epochs": "auto"}}
HIDDEN_PER_ROW, MAX_HOLDOUT, NEIGHBOURS = 2, 2, 5
EXAMPLE_HELD = ["sex", "species"]  # the cells the printed training example holds out


def imputation_template() -> Template:
    """The whole row, species included, with readable names and units; a missing cell is left out."""
    return Template(names=NAMES, units=UNITS)


def piece_name(seed: int) -> str:
    return f"penguins seed={seed}"


def split_tables(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, test rows) of the paper's split, species as one more column; the real gaps stay gaps."""
    data = load_table()
    part = datasets.split(data, seed=seed)
    return part.X_train.assign(species=part.y_train), part.X_test.assign(species=part.y_test)


def frame_to_json(frame: pd.DataFrame) -> dict:
    """A table as JSON: its cells (missing ones as null), index, columns and each column's dtype."""
    return {"index": [int(i) for i in frame.index], "columns": list(frame.columns),
            "dtypes": [str(t) for t in frame.dtypes],
            "data": frame.astype(object).where(frame.notna(), None).values.tolist()}


def frame_from_json(saved: dict) -> pd.DataFrame:
    """frame_to_json's table back, with its dtypes."""
    frame = pd.DataFrame(saved["data"], index=saved["index"], columns=saved["columns"])
    return frame.astype(dict(zip(saved["columns"], saved["dtypes"])))


def imputation_run(seed: int, profile: str = "quick", cache: ResultsCache | None = None, log=print) -> dict:
    """Hide HIDDEN_PER_ROW known cells of every test row and fill them with each imputer: the scores per column,
    the filled tables and how LIFT's fit went."""
    train, test = split_tables(seed)

    def compute() -> dict:
        lift = lift_imputer(seed, profile)
        imputers = {"LIFT": lift, "column mean / mode": MeanModeImputer(),
                    f"{NEIGHBOURS} nearest neighbours": NeighbourImputer(NEIGHBOURS)}
        run = compare_imputers(train, test, imputers, per_row=HIDDEN_PER_ROW, seed=seed)
        summary = run.summary()
        fit = {"training_rows": len(train), "copies": lift.copies, "tokens_per_example": float(lift.tokens_per_row_),
               "epochs_run": len(lift.history_.epochs), "steps": int(lift.history_.steps),
               "fit_seconds": round(float(lift.history_.seconds), 1), "malformed": float(lift.malformed_)}
        metrics = {"test_rows": len(test), "hidden_cells": int(summary.loc["LIFT", "cells"]), **fit,
                   **{f"{name} {column}": float(value) for name, row in summary.iterrows()
                      for column, value in row.items() if column in ("category accuracy", "number RMSE / std",
                                                                     "unfilled")}}
        return {"metrics": metrics, "seed": seed, "fit": fit, "example": list(lift.example(train.iloc[0], EXAMPLE_HELD)),
                "hidden": frame_to_json(run.hidden), "mask": frame_to_json(run.mask),
                "filled": {name: frame_to_json(frame) for name, frame in run.filled.items()},
                "scores": run.scores.reset_index().to_dict(orient="list")}

    return cached_piece("imputation", profile, piece_name(seed), imputation_key(seed, profile, train, test), compute,
                        MODULE, cache=cache, log=log)


def lift_imputer(seed: int, profile: str) -> LIFTGenerator:
    """The unfitted LIFT imputer of one seed's piece."""
    return LIFTGenerator(template=imputation_template(), max_holdout=MAX_HOLDOUT, random_state=seed, verbose=0,
                         **BUDGET[profile])


def imputation_key(seed: int, profile: str, train: pd.DataFrame | None = None,
                   test: pd.DataFrame | None = None) -> dict:
    """What determines an imputation piece besides the code, library versions and model (runs.piece_key)."""
    if train is None or test is None:
        train, test = split_tables(seed)
    return {"experiment": "imputation", "train": train, "test": test, "seed": seed,
            "lift": lift_imputer(seed, profile).resolved_settings(), "hidden_per_row": HIDDEN_PER_ROW,
            "neighbours": NEIGHBOURS}


def as_imputation_run(result: dict) -> ImputationRun:
    """The ImputationRun a piece computed, rebuilt from its stored result."""
    hidden, mask = frame_from_json(result["hidden"]), frame_from_json(result["mask"])
    filled = {name: frame_from_json(frame) for name, frame in result["filled"].items()}
    scores = pd.DataFrame(result["scores"]).set_index(["imputer", "column"])
    return ImputationRun(hidden, mask, filled, scores)
