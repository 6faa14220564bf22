"""Training-part changes of the robustness and sample-size experiments."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liftnb.paper import perturb
from liftnb.datasets import load, split


def test_outliers_move_exactly_the_fraction_far_away():
    y = pd.Series(np.linspace(-1, 1, 200))
    moved_y, moved = perturb.add_outliers(y, 0.1, seed=0)
    assert moved.sum() == 20
    assert (moved_y[~moved] == y[~moved]).all()
    assert (np.abs(moved_y[moved] - y[moved]) >= 0.5 * 10 * y.std() * 0.99).all()


@pytest.mark.parametrize("kind", ["random", "systematic"])
def test_corruption_changes_exactly_the_fraction_to_another_class(kind):
    y = pd.Series(np.repeat([3, 5, 7], 40))
    new, hit = perturb.corrupt_labels(y, 0.2, kind, seed=1)
    assert hit.sum() == 24 and (new[hit] != y[hit]).all() and (new[~hit] == y[~hit]).all()
    assert set(new) <= {3, 5, 7}
    if kind == "systematic":
        assert (new[hit] == y[hit].map({3: 5, 5: 7, 7: 3})).all()


def test_fraction_and_imbalance_and_the_test_part_is_untouched():
    data = load("iris")
    part = split(data, seed=0)
    small = perturb.apply(part, {"train_fraction": 0.25}, "classification")
    assert len(small.y_train) == 24 and set(small.y_train) == {0, 1, 2}
    assert small.X_test is part.X_test and small.y_test is part.y_test
    skewed = perturb.apply(part, {"imbalance": 0.1}, "classification")
    share = (skewed.y_train == 0).mean()
    assert 0.07 < share < 0.13 and (skewed.y_train != 0).sum() == (part.y_train != 0).sum()


def test_bad_changes_are_named():
    part = split(load("iris"))
    with pytest.raises(ValueError, match="Unknown training changes"):
        perturb.apply(part, {"noise": 0.1}, "classification")
    with pytest.raises(ValueError, match="fraction must be in"):
        perturb.corrupt_labels(part.y_train, 1.5)
    with pytest.raises(ValueError, match="kind must be"):
        perturb.corrupt_labels(part.y_train, 0.1, "sideways")
