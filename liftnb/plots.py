"""Figures the notebooks share: decision regions of 2-D classifiers."""
from __future__ import annotations

import numpy as np
import pandas as pd


def grid_for(X: pd.DataFrame, resolution: int = 40, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(xx, yy, points): a resolution x resolution grid over the two columns of X, padded by margin of the range."""
    if X.shape[1] != 2:
        raise ValueError(f"Decision regions need exactly 2 features, not {X.shape[1]}.")
    axes = []
    for column in X.columns:
        low, high = float(X[column].min()), float(X[column].max())
        pad = margin * (high - low or 1.0)
        axes.append(np.linspace(low - pad, high + pad, resolution))
    xx, yy = np.meshgrid(*axes)
    # Grid coordinates printed with 2 decimals: what the template would show anyway, and fewer distinct tokens.
    points = pd.DataFrame({X.columns[0]: np.round(xx.ravel(), 2), X.columns[1]: np.round(yy.ravel(), 2)})
    return xx, yy, points


def decision_regions(predict, X: pd.DataFrame, resolution: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xx, yy, classes): predict(points) on a grid over X, reshaped to the grid."""
    xx, yy, points = grid_for(X, resolution)
    return xx, yy, np.asarray(predict(points)).reshape(xx.shape)


def plot_regions(ax, xx, yy, regions, X: pd.DataFrame, y, title: str = "", n_classes: int | None = None) -> None:
    """Filled decision regions with the training points on top."""
    from matplotlib.colors import ListedColormap
    import matplotlib.pyplot as plt

    codes = np.unique(np.asarray(y), return_inverse=True)[1]
    n_classes = n_classes or int(max(codes.max(), np.max(regions)) + 1)
    colours = plt.get_cmap("tab10").colors[:n_classes]
    # One flat colour per grid cell: contour filling would invent bands of in-between classes along boundaries.
    ax.pcolormesh(xx, yy, regions, cmap=ListedColormap(colours), vmin=-0.5, vmax=n_classes - 0.5, shading="nearest",
                  alpha=0.35)
    ax.scatter(X.iloc[:, 0], X.iloc[:, 1], c=[colours[c] for c in codes], s=8, edgecolors="k", linewidths=0.3)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
