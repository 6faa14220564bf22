"""Notebook 03: decision regions of LIFT and the baselines on the 2-D sets, and a set labelled by a known network."""
from __future__ import annotations

from dataclasses import replace

from .. import datasets
from . import classification
from .figures import REGION_BASELINES
from .runs import Run, with_profile_learner


def plan(profile: str = "quick") -> list[Run]:
    """The 2-D sets of the classification plan (the same runs, shared through the cache; seed 0) plus the
    NN-labelled set of the inductive-bias experiment (notebook 03)."""
    runs = [r for r in classification.plan(profile) if r.seed == 0 and r.dataset in datasets.SYNTHETIC_CLASSIFICATION]
    nn = with_profile_learner(Run("boundaries", "nn", 0, rows=300 if profile == "quick" else 2000, style="no_names",
                                  baselines=("majority", *REGION_BASELINES)), profile)
    return [replace(r, experiment="boundaries") for r in runs] + [nn]

