"""Built-in data sets, user CSVs, OpenML (offline) and the paper's split protocol."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from liftnb import datasets
from liftnb.datasets import Dataset, load, load_csv, make_classification, make_regression, names, split

REGRESSION = set(datasets.SYNTHETIC_REGRESSION)
REAL_TABLES = {"penguins"}  # shipped with gaps and categorical columns


def _load(name: str) -> Dataset:
    return load(name, n=200) if name == "mnist" else load(name)


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load("mnist", n=200)


# ----- every built-in data set ------------------------------------------------------------------------------
def test_names_are_unique_and_cover_every_kind():
    all_names = names()
    assert len(all_names) == len(set(all_names))
    for expected in ("iris", "tae", "mnist", "moons", "linear"):
        assert expected in all_names


@pytest.mark.parametrize("name", names())
def test_every_builtin_loads_consistently(name):
    data = _load(name)
    assert isinstance(data, Dataset)
    X, y = data.X, data.y
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
    assert len(X) == len(y) > 0 and X.shape[1] > 0
    assert list(X.index) == list(y.index)
    assert X.columns.is_unique
    assert not y.isna().any(), "NaN in target"
    if name in REAL_TABLES:  # kept as published: gaps and words
        assert X.isna().any().any() and not all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns)
    else:
        assert not X.isna().any().any(), "NaN in features"
        assert all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns)
        assert np.isfinite(X.to_numpy(dtype=float)).all()
    assert set(data.descriptions) <= set(X.columns)
    if name in REGRESSION:
        assert data.task == "regression"
        assert data.class_names is None
        assert pd.api.types.is_float_dtype(y)
    else:
        assert data.task == "classification"
        assert data.class_names is not None
        assert len(data.class_names) == y.nunique() >= 2
        assert len(set(data.class_names)) == len(data.class_names)
    assert name in repr(data)


def test_penguins_keep_their_gaps_and_categories():
    data = load("penguins")
    assert data.X.shape == (344, 7) and data.class_names == ["Adelie", "Chinstrap", "Gentoo"]
    assert data.X.isna().sum().to_dict() == {"island": 0, "bill_length_mm": 2, "bill_depth_mm": 2,
                                             "flipper_length_mm": 2, "body_mass_g": 2, "sex": 11, "year": 0}
    assert set(data.X["island"]) == {"Biscoe", "Dream", "Torgersen"}
    assert set(data.X["sex"].dropna()) == {"female", "male"}
    assert data.descriptions["body_mass_g"] == "body mass (g)"


@pytest.mark.parametrize("name", ["iris", "tae", "pollution", "moons", "linear"])
def test_template_for_fits_the_data(name):
    data = _load(name)
    template = datasets.template_for(data).bind(data.X.head(3), task=data.task, classes=data.class_names)
    prompts = template.prompts(data.X.head(3))
    assert len(prompts) == 3 and all(p.endswith("###") for p in prompts)


def test_readable_class_names_follow_sorted_class_values():
    assert load("iris").class_names == ["setosa", "versicolor", "virginica"]
    assert load("tae").class_names == ["low", "medium", "high"]
    assert sorted(load("tae").y.unique()) == [1, 2, 3]
    assert load("pollution").class_names == ["high mortality", "low mortality"]  # N, P
    assert load("hill_valley").class_names == ["valley", "hill"]
    assert load("vehicle").class_names == sorted(load("vehicle").y.unique())


def test_names_are_case_and_dash_insensitive():
    assert load("Hill-Valley").X.shape == load("hill_valley").X.shape
    assert load("IRIS").name == "iris"


def test_digits_are_integers():
    X = load("digits").X
    assert X.shape == (1797, 64)
    assert all(pd.api.types.is_integer_dtype(X[c]) for c in X.columns)
    assert X.min().min() >= 0 and X.max().max() <= 16


def test_synthetic_sets_are_seeded():
    a, b, c = make_classification("moons", n=100, seed=1), make_classification("moons", n=100, seed=1), \
        make_classification("moons", n=100, seed=2)
    pd.testing.assert_frame_equal(a.X, b.X)
    assert not a.X.equals(c.X)
    assert len(a.y) == 100
    r1, r2 = make_regression("cosine", n=50, p=3), make_regression("cosine", n=50, p=3)
    pd.testing.assert_series_equal(r1.y, r2.y)
    assert r1.X.shape == (50, 3) and list(r1.X.columns) == ["x1", "x2", "x3"]
    assert r1.X.abs().max().max() <= 10


@pytest.mark.parametrize("kind", datasets.SYNTHETIC_REGRESSION)
def test_synthetic_regression_follows_its_function(kind):
    data = make_regression(kind, n=300, p=2, noise=0.1)
    clean = datasets.regression_function(kind, 2)(data.X.to_numpy())
    residual = data.y.to_numpy() - clean
    # noise is 0.1 * std(f) (X is rounded to 4 decimals, which moves f a little)
    assert np.std(residual) == pytest.approx(0.1 * np.std(clean), rel=0.3)
    noiseless = make_regression(kind, n=300, p=2, noise=0)
    np.testing.assert_allclose(noiseless.y, datasets.regression_function(kind, 2)(noiseless.X.to_numpy()),
                               rtol=1e-4, atol=1e-3)


def test_regression_functions_have_their_shapes():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-10, 10, size=(2, 50, 3))
    zero = np.zeros((1, 3))

    def f(kind):
        return datasets.regression_function(kind, 3)

    linear = f("linear")
    np.testing.assert_allclose(linear(a + b), linear(a) + linear(b))
    assert linear(zero)[0] == 0
    assert np.all((0.5 <= np.abs(linear(np.eye(3)))) & (np.abs(linear(np.eye(3))) <= 1))  # 0.5 <= |w| <= 1
    quadratic = f("quadratic")
    np.testing.assert_allclose(quadratic(-a), quadratic(a))
    np.testing.assert_allclose(quadratic(2 * a), 4 * quadratic(a))
    exponential = f("exponential")
    assert np.all(exponential(a) > 0)
    np.testing.assert_allclose(np.log(exponential(a + b)), np.log(exponential(a)) + np.log(exponential(b)))
    cosine = f("cosine")
    assert np.all(np.abs(cosine(a)) <= 1) and cosine(zero)[0] == 1
    grid = datasets.regression_function("cosine", 1)(np.linspace(-10, 10, 2001)[:, None])
    assert grid.min() < -0.99 and grid.max() > 0.99  # several periods over [-10, 10]
    np.testing.assert_allclose(f("l1norm")(a), np.abs(a).mean(axis=1))
    piecewise = f("piecewise")
    np.testing.assert_allclose(piecewise(-a), -piecewise(a))
    assert np.all((1 <= np.abs(piecewise(a))) & (np.abs(piecewise(a)) <= 2))


def test_unknown_synthetic_kind_raises():
    with pytest.raises(ValueError):
        make_classification("spirals")
    with pytest.raises(ValueError):
        make_regression("sine")


# ----- mnist -------------------------------------------------------------------------------------------------
def test_mnist_pixels(mnist):
    X, y = mnist.X, mnist.y
    assert X.shape == (200, 324)  # 18 x 18 crop
    assert list(X.columns) == [f"pixel{i + 1}" for i in range(324)]
    assert all(pd.api.types.is_integer_dtype(X[c]) for c in X.columns)
    values = X.to_numpy()
    assert values.min() >= 0 and values.max() <= 255
    assert values.max() >= 250  # real ink, not values in [0, 1]
    assert (values == 0).mean() > 0.3  # mostly background
    assert set(y.unique()) == set(range(10))  # stratified subsample keeps every digit
    assert mnist.class_names == [str(i) for i in range(10)]


def test_mnist_sizes():
    assert load("mnist", n=30, crop=None).X.shape == (30, 784)
    assert load("mnist", n=30, crop=18, side=9).X.shape == (30, 81)


# ----- split protocol ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cmc() -> Dataset:
    return load("cmc")


def test_split_sizes_and_disjoint_parts(cmc):
    part = split(cmc, seed=0)
    n = len(cmc.y)
    assert len(part.y_test) == math.ceil(0.2 * n)
    assert len(part.y_val) == math.ceil(0.2 * (n - len(part.y_test)))
    assert len(part.y_train) + len(part.y_val) + len(part.y_test) == n
    indices = [set(part.X_train.index), set(part.X_val.index), set(part.X_test.index)]
    assert not (indices[0] & indices[1]) and not (indices[0] & indices[2]) and not (indices[1] & indices[2])
    assert set().union(*indices) == set(cmc.X.index)
    for X, y in ((part.X_train, part.y_train), (part.X_val, part.y_val), (part.X_test, part.y_test)):
        assert list(X.index) == list(y.index)
        pd.testing.assert_frame_equal(X, cmc.X.loc[X.index])
        pd.testing.assert_series_equal(y, cmc.y.loc[y.index])
    assert "seed=0" in repr(part)


def test_test_set_is_fixed_across_seeds(cmc):
    parts = [split(cmc, seed=s) for s in (0, 1, 2)]
    for part in parts[1:]:
        pd.testing.assert_frame_equal(part.X_test, parts[0].X_test)
        pd.testing.assert_series_equal(part.y_test, parts[0].y_test)
    trains = [frozenset(p.X_train.index) for p in parts]
    vals = [frozenset(p.X_val.index) for p in parts]
    assert len(set(trains)) == 3 and len(set(vals)) == 3
    # the same seed gives the same split
    again = split(cmc, seed=1)
    assert list(again.X_train.index) == list(parts[1].X_train.index)
    assert [p.seed for p in parts] == [0, 1, 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_split_is_stratified(cmc, seed):
    part = split(cmc, seed=seed)
    counts = cmc.y.value_counts()
    for y, share in ((part.y_test, 0.2), (part.y_val, 0.8 * 0.2), (part.y_train, 0.8 * 0.8)):
        got = y.value_counts()
        for cls, total in counts.items():
            assert abs(got[cls] - share * total) <= 1.5, (cls, got[cls], share * total)


def test_iris_test_set_is_balanced():
    part = split(load("iris"))
    assert part.y_test.value_counts().to_dict() == {0: 10, 1: 10, 2: 10}


def test_split_of_a_tuple():
    data = load("iris")
    a, b = split((data.X, data.y), seed=3), split(data, seed=3)
    pd.testing.assert_frame_equal(a.X_train, b.X_train)
    pd.testing.assert_frame_equal(a.X_test, b.X_test)


def test_regression_split_with_counts():
    data = make_regression("linear", n=350)
    parts = [split(data, seed=s, test_size=100, val_size=50) for s in (0, 1)]
    for part in parts:
        assert (len(part.y_train), len(part.y_val), len(part.y_test)) == (200, 50, 100)
    pd.testing.assert_frame_equal(parts[0].X_test, parts[1].X_test)
    assert set(parts[0].X_val.index) != set(parts[1].X_val.index)


# ----- load errors, CSVs, OpenML ----------------------------------------------------------------------------
def test_unknown_name_lists_the_builtin_names():
    with pytest.raises(ValueError, match="no_such_data") as info:
        load("no_such_data")
    message = str(info.value)
    for name in names():
        assert name in message


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "my-plants.csv"
    pd.DataFrame({
        "leaf_width": [1.5, 2.0, 0.5, 3.25, 1.0, 2.5],
        "colour": ["red", "green", "red", "blue", "green", "red"],
        "kind": ["b", "a", "b", "c", "a", "b"],
        "height": [10.0, 12.5, 9.0, 30.0, 11.0, 14.0],
    }).to_csv(path, index=False)
    return path


def test_load_csv_with_target(csv_path):
    data = load_csv(str(csv_path), target="kind")
    assert data.name == "my-plants"
    assert list(data.X.columns) == ["leaf_width", "colour", "height"]
    assert data.y.tolist() == ["b", "a", "b", "c", "a", "b"]
    assert data.y.name == "target"
    assert data.task == "classification"
    assert data.class_names == ["a", "b", "c"]
    assert data.descriptions["leaf_width"] == "leaf width"
    via_load = load(str(csv_path), target="kind")
    pd.testing.assert_frame_equal(via_load.X, data.X)
    pd.testing.assert_series_equal(via_load.y, data.y)
    for misspelt in (lambda: load_csv(str(csv_path), target="kind", task="regresion"),
                     lambda: split((data.X, data.y), task="clasification")):  # would silently skip stratifying
        with pytest.raises(ValueError, match="task must be one of \\('classification', 'regression'\\)"):
            misspelt()


def test_load_csv_default_target_is_the_last_column(csv_path):
    data = load_csv(str(csv_path))
    assert list(data.X.columns) == ["leaf_width", "colour", "kind"]
    assert data.y.tolist() == [10.0, 12.5, 9.0, 30.0, 11.0, 14.0]
    # a float column with few values is still treated as classes unless task says otherwise
    assert data.task == "classification"
    assert load_csv(str(csv_path), task="regression").class_names is None


def test_load_csv_infers_regression(tmp_path):
    path = tmp_path / "numbers.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50)}).to_csv(path, index=False)
    data = load_csv(str(path), target="y")
    assert data.task == "regression" and data.class_names is None
    assert data.X.shape == (50, 1)


def test_load_csv_missing_target_raises(csv_path):
    with pytest.raises(ValueError, match="species"):
        load_csv(str(csv_path), target="species")
    with pytest.raises(ValueError, match="species"):
        load(str(csv_path), target="species")


@pytest.mark.filterwarnings("ignore:A network error occurred:UserWarning")
def test_openml_offline_raises_connection_error():
    try:
        data = load("openml:61")
    except ConnectionError as error:
        message = str(error)
        assert "61" in message and "load_csv" in message and "iris" in message
    else:  # pragma: no cover - only with internet access or a warm OpenML cache
        assert data.X.shape[0] > 0
        pytest.skip("OpenML was reachable: the offline error path was not exercised")


def test_subsample_is_stratified_fixed_and_annotated():
    data = load("digits")
    small = datasets.subsample(data, 250)
    again = datasets.subsample(data, 250)
    assert len(small.y) == 250 and small.X.shape[1] == 64
    pd.testing.assert_frame_equal(small.X, again.X)
    assert set(small.y) == set(data.y)  # every class kept
    shares = small.y.value_counts(normalize=True)
    assert (abs(shares - data.y.value_counts(normalize=True)[shares.index]) < 0.02).all()
    assert "subsample of 250" in small.source
    assert datasets.subsample(data, None) is data and datasets.subsample(data, 10_000) is data


def test_nn_set_is_labelled_by_its_network():
    data = load("nn", n=500)
    labeller = datasets.nn_labeller(0)
    assert (labeller(data.X.to_numpy()) == data.y.to_numpy()).mean() > 0.99  # only the 4-decimal rounding differs
    assert 0.35 < data.y.mean() < 0.65
    assert ((data.X.abs() <= 2).all()).all()


def test_quantise_maps_the_range_to_levels():
    data = load("digits", levels=10)
    assert data.X.to_numpy().min() == 0 and data.X.to_numpy().max() == 9
    assert data.X.dtypes.map(lambda t: t.kind == "i").all() and "quantised to 10 levels" in data.source
    raw = load("digits")
    assert (data.X.to_numpy() == np.rint(raw.X.to_numpy() / 16 * 9)).all()  # digits range over 0..16
    with pytest.raises(ValueError, match="levels must be between 2 and 1000"):
        load("digits", levels=1)
    from liftnb.datasets import quantise

    with pytest.raises(ValueError, match=r"columns \['colour'\] are not numbers"):
        quantise(Dataset("plants", pd.DataFrame({"width": [1.0, 2.0], "colour": ["red", "blue"]}),
                         pd.Series(["a", "b"]), "classification", ["a", "b"], {}))
