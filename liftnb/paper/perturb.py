"""Changes to a training part for the robustness and sample-size experiments; the test part is never touched."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split


def add_outliers(y: pd.Series, fraction: float, seed: int = 0, scale: float = 10.0) -> tuple[pd.Series, np.ndarray]:
    """A fraction of regression labels moved far away (by +-U(0.5, 1) * scale * std(y)); returns (y, moved mask)."""
    _check_fraction(fraction)
    rng = np.random.default_rng(seed)
    moved = np.zeros(len(y), dtype=bool)
    moved[rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)] = True
    shift = rng.choice([-1.0, 1.0], size=len(y)) * rng.uniform(0.5, 1.0, size=len(y)) * scale * float(np.std(y))
    return y.where(~moved, y + shift), moved


def corrupt_labels(y: pd.Series, fraction: float, kind: str = "random", seed: int = 0) -> tuple[pd.Series, np.ndarray]:
    """A fraction of class labels replaced: "random" (a different class, uniformly) or "systematic" (the next class,
    y+1 mod C, as in the paper); returns (y, corrupted mask)."""
    _check_fraction(fraction)
    if kind not in ("random", "systematic"):
        raise ValueError(f"kind must be 'random' or 'systematic', not {kind!r}.")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    codes = np.searchsorted(classes, y)
    hit = np.zeros(len(y), dtype=bool)
    hit[rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)] = True
    if kind == "systematic":
        new = (codes + 1) % len(classes)
    else:
        new = (codes + rng.integers(1, len(classes), size=len(y))) % len(classes)  # never the true class
    return pd.Series(np.where(hit, classes[new], np.asarray(y)), index=y.index, name=y.name), hit


def take_fraction(X: pd.DataFrame, y: pd.Series, fraction: float, seed: int = 0, stratify: bool = True):
    """A (stratified) fraction of the rows, at least one per class when stratified."""
    _check_fraction(fraction, allow_one=True)
    if fraction >= 1:
        return X, y
    size = max(int(round(fraction * len(y))), y.nunique() if stratify else 1)
    keep, _ = train_test_split(np.arange(len(y)), train_size=size, random_state=seed,
                               stratify=y if stratify else None)
    keep = np.sort(keep)
    return X.iloc[keep], y.iloc[keep]


def imbalance(X: pd.DataFrame, y: pd.Series, minority_share: float, seed: int = 0):
    """Keep every row of the majority classes and only enough of the first (smallest-valued) class that it makes
    minority_share of the rows."""
    _check_fraction(minority_share)
    minority = np.sort(y.unique())[0]
    is_minority = (y == minority).to_numpy()
    others = int((~is_minority).sum())
    wanted = max(1, int(round(minority_share * others / (1 - minority_share))))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(np.flatnonzero(is_minority), size=min(wanted, int(is_minority.sum())), replace=False)
    keep = np.sort(np.concatenate([np.flatnonzero(~is_minority), chosen]))
    return X.iloc[keep], y.iloc[keep]


def apply(part, changes: dict, task: str, seed: int = 0):
    """The Split with its training part changed as `changes` says (outliers, corrupt + fraction, train_fraction,
    imbalance); validation is changed like training (what a user would have), the test part never."""
    unknown = set(changes) - {"outliers", "corrupt", "fraction", "train_fraction", "imbalance"}
    if unknown:
        raise ValueError(f"Unknown training changes {sorted(unknown)}.")
    X_train, y_train, X_val, y_val = part.X_train, part.y_train, part.X_val, part.y_val
    if "train_fraction" in changes:
        stratify = task == "classification"
        X_train, y_train = take_fraction(X_train, y_train, changes["train_fraction"], seed, stratify)
        X_val, y_val = take_fraction(X_val, y_val, changes["train_fraction"], seed, stratify)
    if "imbalance" in changes:
        X_train, y_train = imbalance(X_train, y_train, changes["imbalance"], seed)
        X_val, y_val = imbalance(X_val, y_val, changes["imbalance"], seed + 1)
    if "outliers" in changes:
        y_train = add_outliers(y_train, changes["outliers"], seed)[0]
        y_val = add_outliers(y_val, changes["outliers"], seed + 1)[0]
    if "corrupt" in changes:
        fraction = changes.get("fraction", 0.1)
        y_train = corrupt_labels(y_train, fraction, changes["corrupt"], seed)[0]
        y_val = corrupt_labels(y_val, fraction, changes["corrupt"], seed + 1)[0]
    return replace(part, X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val)


def _check_fraction(fraction: float, allow_one: bool = False) -> None:
    if not (0 <= fraction < 1 or (allow_one and fraction == 1)):
        raise ValueError(f"fraction must be in [0, 1{']' if allow_one else ')'}, not {fraction}.")
