"""Decision-region grids and the cached LIFT-vs-baselines region run (plumbing on the tiny model)."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from liftnb import plots

matplotlib.use("Agg")


def test_grid_covers_the_data_with_a_margin():
    X = pd.DataFrame({"a": [0.0, 1.0], "b": [-2.0, 2.0]})
    xx, yy, points = plots.grid_for(X, resolution=11, margin=0.1)
    assert xx.shape == yy.shape == (11, 11) and len(points) == 121 and list(points.columns) == ["a", "b"]
    assert points["a"].min() == pytest.approx(-0.1) and points["b"].max() == pytest.approx(2.4)
    with pytest.raises(ValueError, match="exactly 2 features"):
        plots.grid_for(pd.DataFrame({"a": [1.0]}))


def test_regions_of_a_known_function():
    X = pd.DataFrame({"x1": [-1.0, 1.0], "x2": [-1.0, 1.0]})
    xx, yy, regions = plots.decision_regions(lambda P: (P["x1"] > 0).astype(int), X, resolution=20)
    assert regions.shape == (20, 20)
    assert (regions[:, xx[0] > 0] == 1).all() and (regions[:, xx[0] < 0] == 0).all()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    plots.plot_regions(ax, xx, yy, regions, X, [0, 1], "known")
    assert ax.get_title() == "known"
    plt.close(fig)

