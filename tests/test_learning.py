"""Real learning on the embedded model and the paper's split: fails when the learner regresses."""
import pytest

from liftnb.paper import reproduce

pytestmark = pytest.mark.slow


def test_iris_is_learned():
    # Notebook 02's quick Iris run: from the results cache when this checkout has computed it (same key), else fitted.
    results = reproduce.run("classification", "quick", datasets_=["iris"], write_csv=False, log=lambda *_: None)
    accuracy = results.set_index("method")["accuracy"]
    assert accuracy["lift_score"] >= 0.9 > accuracy["majority"], accuracy.to_dict()


def test_pollution_beats_the_majority_class():
    # 38 training rows: the old 6-epoch default took 30 optimizer steps and stayed at the majority class (50%) on all
    # three seeds; at least 300 steps (epochs="auto") reached 75% on this seed in the defaults sweep. Notebook 02's
    # quick Pollution run, from the results cache when this checkout has computed it.
    results = reproduce.run("classification", "quick", datasets_=["pollution"], write_csv=False, log=lambda *_: None)
    accuracy = results.set_index("method")["accuracy"]
    assert accuracy["lift_score"] > accuracy["majority"], accuracy.to_dict()
