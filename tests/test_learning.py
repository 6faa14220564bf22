"""Real learning on the embedded model and the paper's split: fails when the learner regresses."""
import pytest

from liftnb.paper import reproduce

pytestmark = pytest.mark.slow


def _lift_and_majority(name: str) -> tuple[float, float]:
    """(LIFT, majority) test accuracy of notebook 02's quick run of a data set: from the results cache when this
    checkout has computed it (same key), else fitted."""
    results = reproduce.run("classification", "quick", datasets_=[name], write_csv=False, log=lambda *_: None)
    accuracy = results.set_index("method")["accuracy"]
    return accuracy["lift_score"], accuracy["majority"]


def test_iris_is_learned():
    lift, majority = _lift_and_majority("iris")
    assert lift >= 0.9 > majority, (lift, majority)


def test_tae_beats_the_majority_class_by_a_wide_margin():
    # 96 training rows: the old 6-epoch default (72 optimizer steps) stayed near the 35.5% majority (39.8% over three
    # seeds); at least 300 steps (epochs="auto") lift it well above. With the default learner (top 12 layers) this
    # run gave 77.4% on AVX512-BF16 kernels, 64.5% on AMX and 61.3% in fp32 (AVX2), so the bar was 20 points above
    # the majority. The quick profile now trains the top 4 layers (CI time, runs.QUICK_LEARNER): in fp32 that gave
    # 51.6% at 300 steps and 41.9% at 150 steps (2026-12-02), so the bar is 10 points: still above a learner that
    # stops too early, no longer a measure of the default learner's accuracy (the full profile's rows are).
    lift, majority = _lift_and_majority("tae")
    assert lift >= majority + 0.1, (lift, majority)
