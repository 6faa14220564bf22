"""Widgets with real ipywidgets (no kernel): the template builder and the live training display."""
import numpy as np
import pandas as pd
import pytest

from liftnb import datasets
from liftnb.finetune import FitConfig, Trainer, encode
from liftnb.progress import LiveProgress, TextProgress, default_progress
from liftnb.templates import Template
from liftnb.widgets import TemplateBuilder


@pytest.fixture
def builder():
    data = datasets.load("iris")
    frame = data.X.assign(species=[data.class_names[v] for v in data.y])
    return TemplateBuilder(frame, target="species")


def test_preview_follows_the_widgets(builder):
    assert "Given that sepal length is 5.1" in builder.preview.value
    assert builder.error is None and builder.token_counts[0] > 10
    builder.names["sepal length"].value = "length of the sepal"
    builder.units["sepal length"].value = "cm"
    assert "length of the sepal is 5.1 cm" in builder.preview.value
    assert builder.template.names == {"sepal length": "length of the sepal"}
    builder.style.value = "no_names"
    assert "x1=5.1" in builder.preview.value and builder.template.style == "no_names"
    builder.precision.value = 3
    assert "x1=5.100" in builder.preview.value
    builder.label_style.value = "name"
    builder.class_names["setosa"].value = "Iris setosa"
    assert "Iris setosa@@@" in builder.preview.value
    builder.answer_end.value = "<end>"
    assert "Iris setosa&lt;end&gt;" in builder.preview.value


def test_missing_cells_in_the_preview_follow_the_missing_word():
    frame = datasets.load("penguins").X.head(4).assign(species=["a", "b", "a", "b"])  # row 3 has 5 gaps
    builder = TemplateBuilder(frame, target="species", rows=4)
    last = builder.preview.value.split("<br>")[3]
    assert "island is Torgersen" in last and "bill" not in last and builder.template.missing is None
    builder.missing.value = "unknown"
    assert "bill_length_mm is unknown" in builder.preview.value.split("<br>")[3]
    assert builder.template.missing == "unknown"
    builder.style.value = "no_names"
    builder.missing.value = ""
    assert "missing='unknown'" in builder.error and "missing=&#x27;unknown&#x27;" in builder.status.value


def test_invalid_custom_template_shows_the_error_instead_of_raising(builder):
    builder.style.value = "custom"
    builder.custom.value = "A flower with {no such column}"
    assert builder.error is not None and "matches no column" in builder.status.value
    builder.custom.value = "A flower with petals {petal length} cm long"
    assert builder.error is None
    assert "never uses column" in builder.status.value  # unused columns are a warning
    assert "A flower with petals 1.4 cm long" in builder.preview.value
    template = builder.template
    assert isinstance(template, Template) and template.style == "custom"


def test_long_rows_warn(builder):
    builder.warn_tokens = 10
    builder.update()
    assert "tokens" in builder.status.value and "cost" in builder.status.value
    builder.context = 20
    builder.update()
    assert "will not fit" in builder.status.value


def test_builder_template_trains(builder, tiny):
    from liftnb import LIFTClassifier
    from liftnb.models import TINY_RANDOM

    builder.style.value = "no_names"
    clf = LIFTClassifier(model=TINY_RANDOM, template=builder.template, epochs=1, verbose=0, precision="fp32",
                         train_layers=1)
    rows = builder.X.index[::8]  # every class
    clf.fit(builder.X.loc[rows], builder.y.loc[rows])
    assert clf.template_.style == "no_names"
    assert clf.template_.prompts(builder.X.head(1))[0].startswith("When we have x1=")
    assert clf.history_.step_loss and np.all(np.isfinite(clf.history_.step_loss))


PROMPTS = ["When we have x1=1, What is this type?###", "When we have x1=2, What is this type?###"] * 3
ANSWERS = ["0@@@", "1@@@"] * 3


def test_live_progress_gets_every_event_and_draws_the_series(tiny, monkeypatch):
    model, tokenizer = tiny
    updates = []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=None: Handle())
    live = LiveProgress(every=0)
    scores = iter([0.5, 0.75])
    trainer = Trainer(model, tokenizer, FitConfig(epochs=2, batch_size=2, precision="fp32", train_layers=1),
                      callbacks=[live])
    history = trainer.fit(encode(tokenizer, PROMPTS, ANSWERS), validate=lambda: {"val_score": next(scores)})
    assert live.total == 6 and len(history.step_loss) == 6
    assert live.step_loss == history.step_loss
    assert [m["val_score"] for m in live.epochs] == [0.5, 0.75]
    np.testing.assert_allclose(live.loss_axis.lines[0].get_ydata(), history.step_loss)
    assert [line.get_label() for line in live.epoch_axis.lines] == ["train_loss"]
    assert [line.get_label() for line in live.score_axis.lines] == ["val_score"]
    np.testing.assert_allclose(live.score_axis.lines[0].get_ydata(), [0.5, 0.75])
    assert any(getattr(u, "data", "").startswith("<progress value='6' max='6'") for u in updates)
    assert updates[-1] is live.figure  # the last draw is the figure, which stays in the saved notebook


def test_live_figure_keeps_to_its_share_of_the_time_and_the_bar_does_not_wait(monkeypatch):
    import time

    import IPython.display

    class Handle:
        def update(self, obj):
            updates.append(obj)

    updates = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=None: Handle())
    live = LiveProgress(every=0, figure_share=0.2)
    live.on_train_begin(type("T", (), {"total_steps": 40})())

    def slow_figure():
        time.sleep(0.02)
        return "figure"

    monkeypatch.setattr(live, "build_figure", slow_figure)
    started = time.perf_counter()
    for _ in range(40):
        live.on_step_end(None, 1.0)
        time.sleep(0.002)
    live.on_train_end(None)
    figures, bars = updates.count("figure"), len(updates) - updates.count("figure")
    assert bars == 41  # every step and the end refresh the bar
    assert 2 <= figures < 20  # every step's redraw would be 41
    assert (figures - 1) * 0.02 <= 0.2 * (time.perf_counter() - started) + 0.02  # the final, forced one aside
    assert updates[-1] == "figure"  # the end always leaves the final figure


def test_text_progress_outside_a_notebook(tiny, capsys):
    assert isinstance(default_progress(), TextProgress)
    model, tokenizer = tiny
    Trainer(model, tokenizer, FitConfig(epochs=2, batch_size=2, precision="fp32", train_layers=1),
            callbacks=[default_progress()]).fit(encode(tokenizer, PROMPTS, ANSWERS))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: train_loss=") and "left]" in lines[0]


def test_verbose_zero_prints_nothing(capsys):
    from liftnb import LIFTClassifier
    from liftnb.models import TINY_RANDOM

    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    LIFTClassifier(model=TINY_RANDOM, epochs=1, verbose=0, train_layers=1).fit(X, [0, 1, 0, 1])
    assert capsys.readouterr().out == ""
