"""The main demo: fine-tune the embedded SmolLM2 on Iris and print test accuracy beside the baselines."""
from __future__ import annotations

import time

import pandas as pd

from .. import datasets
from ..compare import compare
from . import reported


def main() -> None:
    started = time.perf_counter()
    data = datasets.load("iris")
    print(f"{data}; split: 20% stratified test (seed 0), train/validation 80/20 (seed 0)")
    table, estimator = compare(data, seed=0, modes=("score", "generate"), verbose=1)
    print("\nTemplate preview:\n" + estimator.template_.preview(data.X, data.y.map(lambda v: int(v)), n=2))
    paper = reported.classification_accuracy().loc["iris"]
    table["paper_%"] = [paper.get("lift_gptj") if m.startswith("lift") else paper.get(m) for m in table.index]
    table["accuracy_%"] = 100 * table["accuracy"]
    shown = table[["accuracy_%", "paper_%", "f1", "invalid_rate", "seconds"]]
    with pd.option_context("display.float_format", "{:.2f}".format):
        print("\nIris test accuracy (30 rows); paper_% is the paper's number (LIFT rows: LIFT/GPT-J):")
        print(shown.to_string())
    lift = table.loc["lift_score", "accuracy"]
    print(f"\nLIFT (embedded SmolLM2-135M, label scoring): test accuracy {lift:.3f}; "
          f"fine-tuning {estimator.history_.seconds:.1f} s; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
