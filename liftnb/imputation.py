"""Imputation measured: hide known cells of a table, fill them with an imputer, score the filled cells against the
truth; two standard imputers (column mean/mode, k nearest neighbours) to compare LIFTGenerator with."""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.impute import KNNImputer

from .templates import is_missing


def is_number_column(values: pd.Series) -> bool:
    """Numbers, booleans excluded (they are written as words)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def with_dtypes(filled: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Each column of a filled table back in `like`'s dtype: numbers as numbers, text and booleans as before where that keeps every cell
    (a malformed answer's NaN would turn True in a bool column, so such a column stays object)."""
    for column in like.columns:
        if is_number_column(like[column]):
            filled[column] = pd.to_numeric(filled[column], errors="coerce")
        elif filled[column].notna().all() or pd.api.types.is_string_dtype(like[column].dtype):
            try:
                filled[column] = filled[column].astype(like[column].dtype)
            except (TypeError, ValueError):
                pass  # a value the dtype cannot hold stays as written
    return filled


def hide_cells(frame: pd.DataFrame, per_row: int = 1, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """frame with `per_row` of each row's known cells hidden at random (never all of a row's cells), and the mask of
    the hidden cells; a row with too few known cells keeps one."""
    if per_row < 1:
        raise ValueError(f"per_row must be at least 1, got {per_row}.")
    rng = np.random.default_rng(seed)
    known = frame.notna().to_numpy()
    mask = np.zeros_like(known)
    for i, row in enumerate(known):
        present = np.flatnonzero(row)
        if len(present) < 2:
            continue
        mask[i, rng.choice(present, size=min(per_row, len(present) - 1), replace=False)] = True
    hidden = frame.astype(object).mask(mask)
    for column in frame.columns:  # numbers stay numbers; other columns stay object, a hidden cell NaN
        hidden[column] = pd.to_numeric(hidden[column]) if is_number_column(frame[column]) else hidden[column]
    return hidden, pd.DataFrame(mask, index=frame.index, columns=frame.columns)


class MeanModeImputer:
    """Each missing cell gets its column's training mean (numbers) or most frequent value (anything else)."""

    def fit(self, frame: pd.DataFrame) -> "MeanModeImputer":
        self.fill_ = {c: (frame[c].mean() if is_number_column(frame[c]) else frame[c].mode(dropna=True).iloc[0])
                      for c in frame.columns}
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.astype(object)
        for column, value in self.fill_.items():
            out[column] = out[column].where(~frame[column].map(is_missing), value)
        return with_dtypes(out, frame)


class NeighbourImputer:
    """k nearest training rows by the cells a row has (standardised numbers, one-hot categories): a missing number
    gets their mean, a missing category their most common value (scikit-learn's KNNImputer on that encoding)."""

    def __init__(self, n_neighbors: int = 5):
        self.n_neighbors = n_neighbors

    def fit(self, frame: pd.DataFrame) -> "NeighbourImputer":
        self.numbers_ = [c for c in frame.columns if is_number_column(frame[c])]
        self.levels_ = {c: sorted({str(v) for v in frame[c] if not is_missing(v)})
                        for c in frame.columns if c not in self.numbers_}
        self.values_ = {c: {str(v): v for v in frame[c] if not is_missing(v)} for c in self.levels_}
        self.mean_ = frame[self.numbers_].astype(float).mean()
        self.std_ = frame[self.numbers_].astype(float).std().replace(0, 1).fillna(1)
        self.knn_ = KNNImputer(n_neighbors=self.n_neighbors, keep_empty_features=True).fit(self._encode(frame))
        return self

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        parts = [((frame[self.numbers_].astype(float) - self.mean_) / self.std_).to_numpy()]
        for column, levels in self.levels_.items():
            words = frame[column].map(lambda v: None if is_missing(v) else str(v))
            onehot = np.array([[float(w == level) for level in levels] for w in words]).reshape(len(frame), -1)
            onehot[words.isna().to_numpy()] = np.nan  # a missing category: all of its coordinates unknown
            parts.append(onehot)
        return np.hstack(parts)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        filled = self.knn_.transform(self._encode(frame))
        out = frame.astype(object)
        numbers = filled[:, :len(self.numbers_)] * self.std_.to_numpy() + self.mean_.to_numpy()
        for j, column in enumerate(self.numbers_):
            out[column] = out[column].where(~frame[column].map(is_missing), numbers[:, j])
        start = len(self.numbers_)
        for column, levels in self.levels_.items():
            block = filled[:, start:start + len(levels)]
            start += len(levels)
            guess = pd.Series([self.values_[column][levels[k]] for k in block.argmax(axis=1)], index=frame.index)
            out[column] = out[column].where(~frame[column].map(is_missing), guess)
        return with_dtypes(out, frame)


def imputation_scores(truth: pd.DataFrame, filled: pd.DataFrame, mask: pd.DataFrame,
                      scale: pd.Series | None = None) -> pd.DataFrame:
    """Per hidden column: cells hidden, cells left unfilled (counted as wrong), accuracy for a category column,
    RMSE and RMSE / scale (default the truth's standard deviation) for a number column; an unfilled number cell is
    left out of its RMSE and counted in `unfilled`."""
    if not (truth.shape == filled.shape == mask.shape):
        raise ValueError(f"truth, filled and mask differ in shape: {truth.shape}, {filled.shape}, {mask.shape}.")
    rows = []
    for column in truth.columns:
        hidden = mask[column].to_numpy(bool)
        if not hidden.any():
            continue
        want, got = truth[column][hidden], filled[column][hidden]
        unfilled = got.map(is_missing).to_numpy()
        row = {"column": column, "cells": int(hidden.sum()), "unfilled": int(unfilled.sum())}
        if is_number_column(truth[column]):
            errors = (want.astype(float) - pd.to_numeric(got, errors="coerce")).to_numpy()[~unfilled]
            row["rmse"] = float(np.sqrt(np.mean(errors ** 2))) if len(errors) else float("nan")
            spread = float(scale[column]) if scale is not None else float(truth[column].astype(float).std())
            row["nrmse"] = row["rmse"] / spread if spread > 0 else float("nan")
        else:
            row["accuracy"] = float(np.mean([(not u) and str(g) == str(w) for w, g, u in zip(want, got, unfilled)]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["column", "cells", "unfilled", "accuracy", "rmse", "nrmse"]).set_index("column")


@dataclass
class ImputationRun:
    """One comparison: the test rows with cells hidden, the mask, each imputer's filled table, and the scores."""
    hidden: pd.DataFrame
    mask: pd.DataFrame
    filled: dict[str, pd.DataFrame]
    scores: pd.DataFrame  # index (imputer, column)

    def summary(self) -> pd.DataFrame:
        """Per imputer: accuracy over all hidden category cells, RMSE / std over all hidden number cells (each
        column's cells weighted by their count), cells left unfilled, fit and fill seconds."""
        rows = {}
        for name, table in self.scores.groupby(level=0, sort=False):
            categories, numbers = table[table["accuracy"].notna()], table[table["nrmse"].notna()]
            rows[name] = {
                "category accuracy": np.average(categories["accuracy"], weights=categories["cells"])
                if len(categories) else np.nan,
                "number RMSE / std": np.sqrt(np.average(numbers["nrmse"] ** 2, weights=numbers["cells"]))
                if len(numbers) else np.nan,
                "cells": int(table["cells"].sum()), "unfilled": int(table["unfilled"].sum()),
                "seconds": float(table["seconds"].iloc[0])}
        return pd.DataFrame(rows).T


def compare_imputers(train: pd.DataFrame, test: pd.DataFrame, imputers: dict, per_row: int = 1,
                     seed: int = 0, validation: pd.DataFrame | None = None) -> ImputationRun:
    """Hide `per_row` known cells of each test row, fill them with each imputer (anything with fit(frame) and
    transform(frame)) fitted on train, and score them; number errors are scaled by train's standard deviation.
    `validation` rows go to the imputers whose fit takes validation_data (LIFT's epoch choice); never to scoring."""
    for name, other in (("test", test), ("validation", validation)):
        if other is not None and list(train.columns) != list(other.columns):
            raise ValueError(f"train and {name} have different columns: {list(train.columns)} vs {list(other.columns)}.")
    hidden, mask = hide_cells(test, per_row=per_row, seed=seed)
    scale = train[[c for c in train.columns if is_number_column(train[c])]].astype(float).std()
    filled, scores = {}, []
    for name, imputer in imputers.items():
        start = time.perf_counter()
        validates = validation is not None and "validation_data" in inspect.signature(imputer.fit).parameters
        fitted = imputer.fit(train, validation_data=validation) if validates else imputer.fit(train)
        filled[name] = fitted.transform(hidden)
        seconds = time.perf_counter() - start
        scores.append(imputation_scores(test, filled[name], mask, scale).assign(imputer=name, seconds=seconds))
    table = pd.concat(scores).reset_index().set_index(["imputer", "column"])
    return ImputationRun(hidden, mask, filled, table)


__all__ = ["ImputationRun", "MeanModeImputer", "NeighbourImputer", "compare_imputers", "hide_cells",
           "imputation_scores", "is_number_column", "with_dtypes"]
