"""Bad input: a clear error that names the problem, or a documented behaviour (tiny model: plumbing only)."""
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from conftest import teacher_forced_scores
from liftnb import LIFTClassifier, Template
from liftnb.models import TINY_RANDOM

FAST = dict(model=TINY_RANDOM, epochs=1, batch_size=16, verbose=0, precision="fp32", train_layers=1)
X = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "b": ["x", "y", "x", "y"]})
y = np.array(["lo", "lo", "hi", "hi"])


def test_missing_target_datetime_column_empty_frame_and_predict_before_fit():
    with pytest.raises(ValueError, match=r"y contains NaN or missing values \(1 row\(s\), e.g. rows \[1\]\)"):
        LIFTClassifier(**FAST).fit(X, np.array(["lo", None, "hi", "hi"], dtype=object))
    with pytest.raises(ValueError, match="Column 'when' holds dates"):
        LIFTClassifier(**FAST).fit(X.assign(when=pd.date_range("2020-01-01", periods=4)), y)
    with pytest.raises(ValueError, match="0 sample"):
        LIFTClassifier(**FAST).fit(X.iloc[:0], y[:0])
    with pytest.raises(NotFittedError):
        LIFTClassifier(**FAST).predict(X)


def test_inf_in_features_names_the_column():
    with pytest.raises(ValueError, match="infinity in column 'a'"):
        LIFTClassifier(**FAST).fit(X.assign(a=[0.5, np.inf, 1, 2]), y)


def test_unseen_label_at_scoring_counts_as_wrong():
    clf = LIFTClassifier(**FAST).fit(X, y)
    predicted = clf.predict(X)
    truth = np.array(["never-seen"] * 4)
    assert clf.score(X, truth) == 0.0
    assert clf.score(X, predicted) == 1.0  # the same rows against known labels do score


def test_odd_column_names_are_serialized_verbatim():
    odd = pd.DataFrame({"{brace}": [1.0, 2.0], 'quote"d': [3.0, 4.0], "new\\nline": [5.0, 6.0], "größe": [7.0, 8.0]})
    template = Template().bind(odd)
    prompt = template.prompt(odd.iloc[0])
    for name in odd.columns:
        assert f"{name} is" in prompt


def test_tiny_and_huge_numbers_warn_instead_of_surprising():
    frame = pd.DataFrame({"tiny": [1e-8, 2e-8, 3e-8], "huge": [1.5e20, 2.5e20, 3.5e20]})
    with pytest.warns(UserWarning) as caught:
        template = Template().bind(frame)
    messages = " ".join(str(w.message) for w in caught)
    assert "'tiny': 3 of its 3 non-zero values (100.0%) print as 0" in messages
    assert "'huge' reaches" in messages
    assert "e+" not in template.prompt(frame.iloc[0])  # no scientific notation sneaks into the prompt


def test_rows_longer_than_the_context_are_reported(monkeypatch):
    wide = pd.DataFrame(np.arange(4 * 600).reshape(4, 600) / 7, columns=[f"c{i}" for i in range(600)])
    with pytest.raises(ValueError, match="more tokens than the model's context of 2048"):
        LIFTClassifier(**FAST).fit(wide, y)


def test_many_classes_with_multi_digit_codes():
    many = pd.DataFrame({"a": np.arange(120) / 10})
    labels = np.arange(120) % 101  # 101 classes: codes 0..100, sharing prefixes (1, 10, 100)
    clf = LIFTClassifier(**FAST).fit(many, labels)
    proba = clf.predict_proba(many.head(3))
    assert proba.shape == (3, 101)
    np.testing.assert_allclose(proba.sum(1), 1)
    shared_prefixes = [1, 10, 100]  # "1@@@", "10@@@", "100@@@": answers of different lengths sharing first tokens
    answers = [clf.template_.class_answers()[c] for c in shared_prefixes]
    expected = teacher_forced_scores(clf.model_, clf.tokenizer_, clf.template_.prompts(many.head(2)), answers)
    scores = clf.predict_log_likelihood(many.head(2))[:, shared_prefixes]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=5e-5)


def test_mixed_number_and_string_column_is_written_as_given():
    """A column mixing numbers and strings (object dtype) is not coerced: strings are written verbatim, numbers with
    the template's precision (2 decimals when no column-wide precision can be inferred)."""
    mixed = pd.DataFrame({"size": [1.5, "large", 3, "n/a"]})
    template = Template(style="no_names").bind(mixed)
    prompts = template.prompts(mixed)
    assert [p.split("=")[1].split(",")[0] for p in prompts] == ["1.50", "large", "3", "n/a"]
    clf = LIFTClassifier(**FAST).fit(mixed, y)
    assert len(clf.predict(mixed)) == 4


def test_saving_never_replaces_a_folder_holding_the_users_files(tmp_path, monkeypatch):
    # save and export_model replace their whole folder: a folder with files liftnb did not write is refused
    clf = LIFTClassifier(**FAST).fit(X, y)
    mine = tmp_path / "mywork"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for write in (clf.save, clf.export_model):
        with pytest.raises(FileExistsError, match=r"mywork' already holds files liftnb did not write \(notes.txt\)"):
            write(mine)
        assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    monkeypatch.chdir(mine)
    with pytest.raises(ValueError, match="working folder or one above it"):
        clf.save(".")
    assert (mine / "notes.txt").read_text() == "mine"
    saved = clf.save(tmp_path / "model")
    assert LIFTClassifier.load(clf.save(saved), device="cpu").predict(X).tolist() == clf.predict(X).tolist()
