"""Notebook widgets: an interactive template builder with a live preview and token counts."""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import pandas as pd

from .templates import Template, TemplateError

_STYLES = [("feature names", "names"), ("no names (x1=...)", "no_names"), ("shuffled names", "shuffled"),
           ("custom sentence", "custom")]


class TemplateBuilder:
    """Build a Template by editing it: style, feature names and units, class names, precision, question, the word
    for a missing cell, separators, or a custom sentence; the preview of a few rows (with token counts) updates as you type.
    `.template` is the Template to pass to LIFTClassifier(template=...)."""

    def __init__(self, df: pd.DataFrame, target: str | None = None, tokenizer=None, rows: int = 3,
                 warn_tokens: int = 256, context: int | None = None):
        self.X = df.drop(columns=[target]) if target else df
        self.y = df[target] if target else None
        self.rows = rows
        self.warn_tokens = warn_tokens
        self._tokenizer = tokenizer
        self.context = context
        self.error: str | None = None
        columns = [str(c) for c in self.X.columns]
        self.style = w.Dropdown(options=_STYLES, value="names", description="style")
        self.names = {c: w.Text(value=c, description=c[:18], layout=w.Layout(width="320px")) for c in columns}
        self.units = {c: w.Text(value="", placeholder="unit", layout=w.Layout(width="90px")) for c in columns}
        self.classes = sorted(self.y.unique()) if self.y is not None else []
        self.label_style = w.ToggleButtons(options=[("codes 0, 1, ...", "code"), ("class names", "name")],
                                           value="code", description="answers")
        self.class_names = {v: w.Text(value=str(v), description=str(v)[:18], layout=w.Layout(width="320px"))
                            for v in self.classes}
        self.precision = w.Dropdown(options=["auto", 0, 1, 2, 3, 4], value="auto", description="decimals")
        self.question = w.Text(value="", placeholder="(the paper's question)", description="question",
                               layout=w.Layout(width="500px"))
        self.missing = w.Text(value="", placeholder="(left out of the sentence)", description="missing cell",
                              layout=w.Layout(width="400px"))
        self.prompt_end = w.Text(value="###", description="prompt end", layout=w.Layout(width="200px"))
        self.answer_end = w.Text(value="@@@", description="answer end", layout=w.Layout(width="200px"))
        self.custom = w.Textarea(value=" and ".join(f"{{{c}}}" for c in columns[:3]), description="sentence",
                                 layout=w.Layout(width="600px", height="60px"))
        self.preview = w.HTML()
        self.status = w.HTML()
        for control in self.controls():
            control.observe(lambda change: self.update(), names="value")
        self.update()

    def controls(self) -> list:
        """Every input widget (what a user can edit)."""
        return [self.style, *self.names.values(), *self.units.values(), self.label_style,
                *self.class_names.values(), self.precision, self.question, self.missing, self.prompt_end,
                self.answer_end, self.custom]

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from .models import cached_tokenizer, embedded_model_dir

            self._tokenizer = cached_tokenizer(str(embedded_model_dir()))
        return self._tokenizer

    def settings(self) -> dict:
        """The Template keyword arguments the widgets describe."""
        names = {c: t.value for c, t in self.names.items() if t.value and t.value != c}
        units = {c: t.value for c, t in self.units.items() if t.value}
        settings = dict(style=self.style.value, names=names or None, units=units or None,
                        precision=self.precision.value, question=self.question.value or None,
                        prompt_end=self.prompt_end.value, answer_end=self.answer_end.value,
                        label_style=self.label_style.value, missing=self.missing.value or None,
                        class_names={v: t.value for v, t in self.class_names.items()} or None)
        if self.style.value == "custom":
            settings["format"] = self.custom.value
        return settings

    @property
    def template(self) -> Template:
        """The Template for LIFTClassifier(template=...); raises TemplateError if the settings are invalid."""
        return Template(**self.settings())

    def update(self) -> None:
        """Rebuild the preview; an invalid template shows its error here instead of raising."""
        import warnings

        self.custom.layout.display = "" if self.style.value == "custom" else "none"
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                template = self.template.bind(self.X, task="classification" if self.y is not None else None,
                                              classes=self.classes or None)
                sample = self.X.head(self.rows)
                codes = np.searchsorted(self.classes, self.y.head(self.rows)) if self.y is not None else None
                pairs = template.examples(sample, codes, n=self.rows)
            self.error = None
        except (TemplateError, KeyError, ValueError) as error:
            self.error = str(error)
            self.status.value = f"<span style='color:#b00'>⚠ {html.escape(self.error)}</span>"
            return
        counts = [len(self.tokenizer(p + a)["input_ids"]) for p, a in pairs]
        self.token_counts = counts
        lines = [f"<code>{html.escape(p)}</code> <b><code>{html.escape(a)}</code></b> "
                 f"<small>[{n} tokens]</small>" for (p, a), n in zip(pairs, counts)]
        self.preview.value = "<br>".join(lines)
        notes = [html.escape(str(c.message)) for c in caught]
        longest = max(counts) if counts else 0
        if self.context and longest > self.context:
            notes.append(f"rows need {longest} tokens but the model's context is {self.context}: they will not fit")
        elif longest > self.warn_tokens:
            notes.append(f"rows take up to {longest} tokens: training and prediction cost grows with this")
        self.status.value = "<br>".join(f"<span style='color:#a60'>⚠ {n}</span>" for n in notes) or \
            f"<span style='color:#080'>✓ {len(self.X.columns)} features, ~{int(np.mean(counts))} tokens per row</span>"

    def widget(self) -> w.Widget:
        """The whole builder as one ipywidgets box."""
        features = w.VBox([w.HBox([self.names[c], self.units[c]]) for c in self.names])
        classes = w.VBox(list(self.class_names.values()))
        return w.VBox([
            w.HBox([self.style, self.precision]), self.custom,
            w.Accordion(children=[features, classes], titles=("feature names and units", "class names")),
            self.label_style, self.question, self.missing, w.HBox([self.prompt_end, self.answer_end]),
            w.HTML("<b>preview</b>"), self.preview, self.status])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())
