"""Templates: serialize a row to a prompt and a target to an answer, and parse an answer back."""
from __future__ import annotations

import datetime as _dt
import html
import math
import random
import re
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

STYLES = ("no_names", "names", "shuffled", "custom", "pixels")
_PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
_CLAUSE_BREAK = re.compile(r"([,;]\s+|\.\s+)")  # where a custom sentence's clauses meet
NUMBER_PATTERN = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class TemplateError(ValueError):
    """A template does not fit the data it is given."""


@dataclass
class Template:
    """How a row becomes a prompt and a target becomes an answer (and back)."""

    style: str = "names"  # no_names: "x1=5.10"; names: "sepal length is 5.10"; shuffled: names permuted; custom;
    # pixels: the paper's image prompt, values separated by spaces ("Given image with pixels 0 0 12 ...")
    format: str | None = None  # custom sentence with {column} placeholders, e.g. "A {species} of {mass} g"
    columns: Sequence[str] | None = None  # feature columns in order; None: taken from the data at bind time
    names: dict[str, str] | None = None  # column -> display name for the names style (default: the column)
    units: dict[str, str] | None = None  # column -> unit appended after the value, e.g. {"mass": "g"}
    precision: int | str = "auto"  # decimals of non-integer numbers; "auto": the fewest (<= max_precision) that
    # reproduce every training value, per column (fewer tokens per row); the paper used 2 (no names) / 4 (names)
    max_precision: int = 2  # cap of the "auto" precision
    question: str | None = None  # None: the paper's question for the style and task
    prompt_end: str = "###"  # the paper's prompt separator
    answer_end: str = "@@@"  # the paper's completion terminator
    label_style: str = "code"  # "code": answer 0, 1, 2 (the paper); "name": answer the class name
    class_names: dict | None = None  # class value -> answer text for label_style="name" (default: str(value))
    target_precision: int = 3  # decimals of regression answers (the paper used 3)
    shuffle_seed: int = 0  # permutation seed of the shuffled-names style
    pixel_separator: str = " "  # between values in the pixels style; "" for single-digit levels (1 token a pixel)
    missing: str | None = None  # a missing cell (NaN, None, NA): None leaves the feature out of the sentence (names,
    # shuffled; in custom, the clause that holds it); a word such as "unknown" is written in its place instead.
    # The no_names and pixels styles place a value by position, so they need the word.
    max_text_chars: int = 200  # longer text values are cut to this many characters, with a warning naming the rows
    bool_words: tuple[str, str] = ("no", "yes")  # how False and True are written
    task: str | None = None  # "classification" or "regression"; set at bind time
    classes: Sequence[Any] | None = None  # class values in label order; set at bind time
    _integer_columns: frozenset = field(default=frozenset(), repr=False)
    _decimals: dict = field(default_factory=dict, repr=False)  # column -> decimals, from precision="auto"

    def __post_init__(self):
        if self.style not in STYLES:
            raise TemplateError(f"Unknown template style {self.style!r}; choose one of {STYLES}.")
        if (self.style == "custom") != (self.format is not None):
            raise TemplateError("Use style='custom' together with format='... {column} ...' (and only then).")
        if self.label_style not in ("code", "name"):
            raise TemplateError(f"label_style must be 'code' or 'name', not {self.label_style!r}.")
        if self.precision != "auto" and (not isinstance(self.precision, (int, np.integer)) or self.precision < 0):
            raise TemplateError(f"precision must be 'auto' or an integer >= 0, not {self.precision!r}.")
        if self.target_precision < 0 or self.max_precision < 0:
            raise TemplateError("target_precision and max_precision must be >= 0.")
        if self.missing is not None and (not isinstance(self.missing, str) or not self.missing.strip()):
            raise TemplateError(f"missing must be None (leave the feature out) or a non-empty word, "
                                f"not {self.missing!r}.")
        if not isinstance(self.max_text_chars, (int, np.integer)) or self.max_text_chars < 1:
            raise TemplateError(f"max_text_chars must be an integer >= 1, not {self.max_text_chars!r}.")
        if len(self.bool_words) != 2 or not all(isinstance(w, str) for w in self.bool_words):
            raise TemplateError(f"bool_words must be two words (for False, True), not {self.bool_words!r}.")
        if self.columns is not None:
            self.columns = [str(c) for c in self.columns]
            self._check_columns(self.columns)

    # ----- construction helpers -------------------------------------------------------------------------
    @classmethod
    def custom(cls, format: str, **settings) -> "Template":
        """A template from a sentence with {column} placeholders."""
        return cls(style="custom", format=format, **settings)

    def placeholders(self) -> list[str]:
        """The raw placeholders of the custom format, format specs included (e.g. 'mass:.1f')."""
        if self.format is None:
            return []
        found = []
        for raw in _PLACEHOLDER.findall(self.format):
            found.append(raw)
        return found

    def _split_placeholder(self, raw: str, columns: Sequence[str]) -> tuple[str, str]:
        if raw in columns:
            return raw, ""
        name, _, spec = raw.rpartition(":")
        if name in columns:
            return name, spec
        raise TemplateError(
            f"Template placeholder {{{raw}}} matches no column. Columns are: {list(columns)}.")

    def _check_columns(self, columns: Sequence[str]) -> None:
        if self.style == "custom":
            used = {self._split_placeholder(raw, columns)[0] for raw in self.placeholders()}
            unused = [c for c in columns if c not in used]
            if unused:
                warnings.warn(f"The custom template never uses column(s) {unused}: the model will not see them.",
                              UserWarning, stacklevel=3)
        for mapping, label in ((self.names, "names"), (self.units, "units")):
            unknown = sorted(set(mapping or {}) - set(columns))
            if unknown:
                raise TemplateError(f"Template {label} refer to unknown column(s) {unknown}. Columns: {list(columns)}.")

    def bind(self, X: pd.DataFrame, y: Sequence | None = None, task: str | None = None,
             classes: Sequence | None = None) -> "Template":
        """A copy fitted to this data: columns, integer columns, task and classes filled in."""
        columns = [str(c) for c in X.columns]
        check_column_types(X)
        if self.columns is not None and list(self.columns) != columns:
            missing = [c for c in self.columns if c not in columns]
            extra = [c for c in columns if c not in self.columns]
            raise TemplateError(f"X's columns do not match the template: missing {missing}, unexpected {extra}.")
        integer_columns = frozenset(
            str(c) for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and _all_integral(X[c]))
        decimals = {}
        if self.precision == "auto":
            for c in X.columns:
                if pd.api.types.is_numeric_dtype(X[c]) and str(c) not in integer_columns:
                    decimals[str(c)] = _fewest_decimals(X[c], self.max_precision)
        bound = replace(self, columns=columns, _integer_columns=integer_columns, _decimals=decimals,
                        task=task or self.task, classes=list(classes) if classes is not None else self.classes)
        bound._warn_about_scale(X)
        if bound.missing is None and bound.style in ("no_names", "pixels"):
            gaps = [str(c) for c in X.columns if X[c].isna().any()]
            if gaps:
                raise TemplateError(f"Column(s) {gaps[:5]} have missing values, and the {bound.style} style places "
                                    f"a value by its position: set Template(missing='unknown') (or another word) "
                                    f"to write them, or use the names style, which leaves them out.")
        if y is not None and bound.task == "regression":
            bound._warn_about_target_scale(y)
        return bound

    def _warn_about_target_scale(self, y: Sequence) -> None:
        """Regression targets that print as 0 or as long digit strings: the answer loses them or grows long."""
        values = np.abs(np.asarray(y, dtype=float))
        values = values[np.isfinite(values) & (values > 0)]
        if not len(values):
            return
        lost = int(np.sum(np.round(values, self.target_precision) == 0))
        if lost:
            warnings.warn(f"The target: {lost} of its {len(values)} non-zero values ({lost / len(values):.1%}) print "
                          f"as 0 with target_precision={self.target_precision}; rescale y or raise target_precision.",
                          UserWarning, stacklevel=3)
        if values.max() >= 1e9:
            warnings.warn(f"The target reaches {values.max():.3g}: answers print as {len(f'{values.max():.0f}')}+ "
                          f"digits (one token each); consider rescaling y.", UserWarning, stacklevel=3)

    def _warn_about_scale(self, X: pd.DataFrame) -> None:
        """Numbers that print as 0 (too small for the decimals) or as very long digit strings are no surprise."""
        for c in X.columns:
            if not pd.api.types.is_numeric_dtype(X[c]):
                continue
            values = np.abs(pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float))
            values = values[np.isfinite(values) & (values > 0)]
            if not len(values):
                continue
            digits = self.precision if self.precision != "auto" else self._decimals.get(str(c), self.max_precision)
            lost = 0 if str(c) in self._integer_columns else int(np.sum(np.round(values, digits) == 0))
            if lost:
                warnings.warn(f"Column {c!r}: {lost} of its {len(values)} non-zero values ({lost / len(values):.1%}) "
                              f"print as 0 with {digits} decimals; "
                              f"rescale it or raise precision/max_precision.", UserWarning, stacklevel=3)
            if values.max() >= 1e9:
                warnings.warn(f"Column {c!r} reaches {values.max():.3g}: it prints as "
                              f"{len(f'{values.max():.0f}')}+ digits (one token each); consider rescaling.",
                              UserWarning, stacklevel=3)

    # ----- serialization --------------------------------------------------------------------------------
    def writes_integer(self, column: str) -> bool:
        """Whether this bound template writes the column's numbers as integers."""
        return column in self._integer_columns

    def format_value(self, column: str, value: Any, spec: str = "") -> str:
        """A cell as the sentence writes it (a missing cell as the missing word)."""
        if is_missing(value):
            if self.missing is None:
                raise TemplateError(f"Column {column!r} is missing, and the {self.style} style cannot leave it out: "
                                    f"set Template(missing='unknown') (or another word).")
            text = self.missing
        elif isinstance(value, (float, np.floating)) and not math.isfinite(value):
            raise TemplateError(f"Column {column!r} holds {value}: LIFT cannot serialize inf; clean it first.")
        elif spec:
            try:
                text = format(value, spec)
            except (TypeError, ValueError) as error:
                raise TemplateError(f"Format spec {spec!r} does not fit column {column!r} value {value!r}: {error}")
        elif isinstance(value, (bool, np.bool_)):
            text = self.bool_words[int(bool(value))]
        elif isinstance(value, (int, np.integer)) or (column in self._integer_columns and _is_integral(value)):
            text = str(int(value))
        elif isinstance(value, (float, np.floating)):
            digits = self.precision if self.precision != "auto" else self._decimals.get(column, self.max_precision)
            text = f"{float(value):.{digits}f}"
        else:
            text = " ".join(str(value).split())  # a line break or tab in a cell would break the prompt's layout
            if len(text) > self.max_text_chars:
                text = text[:self.max_text_chars].rstrip() + "..."
        unit = (self.units or {}).get(column)
        return f"{text} {unit}" if unit else text

    def _display_names(self) -> list[str]:
        columns = self._require_columns()
        names = [(self.names or {}).get(c, c) for c in columns]
        if self.style == "shuffled":
            random.Random(self.shuffle_seed).shuffle(names)
        return names

    def _require_columns(self) -> list[str]:
        if self.columns is None:
            raise TemplateError("This template is not bound to columns yet: call template.bind(X) first.")
        return list(self.columns)

    def default_question(self) -> str:
        """The paper's question for this style and task."""
        if self.task == "regression":
            return "What should be the y value?"
        if self.style == "pixels":
            return "What is this digit?"
        return "What is this type?" if self.style == "no_names" else "What is the category?"

    def prompt(self, row: pd.Series | dict) -> str:
        """The prompt for one row, ending with the prompt separator."""
        columns = self._require_columns()
        values = row if isinstance(row, dict) else row.to_dict()
        values = {str(k): v for k, v in values.items()}
        question = self.question if self.question is not None else self.default_question()
        if self.style == "custom":
            body = _PLACEHOLDER.sub(
                lambda m: self.format_value(*self._resolve(m.group(1), values, columns)), self._format_for(values))
            body = body.replace("{{", "{").replace("}}", "}").strip()
            if not body:  # every clause of the row is missing and left out
                return f"{question}{self.prompt_end}"
            return f"{body} {question}{self.prompt_end}" if question else f"{body}{self.prompt_end}"
        if self.style == "pixels":
            pixels = self.pixel_separator.join(self.format_value(c, values[c]) for c in columns)
            return f"Given image with pixels {pixels}, {question}{self.prompt_end}"
        if self.style == "no_names":
            parts = [f"x{i + 1}={self.format_value(c, values[c])}" for i, c in enumerate(columns)]
            lead = "When we have "
        else:
            parts = [f"{name} is {self.format_value(c, values[c])}" for c, name in zip(columns, self._display_names())
                     if self.missing is not None or not is_missing(values[c])]
            lead = "Given that "
        if not parts:  # every feature of the row is missing and left out
            return f"{question}{self.prompt_end}"
        return f"{lead}{', '.join(parts)}, {question}{self.prompt_end}"

    def _format_for(self, values: dict) -> str:
        """The custom format, less the clauses whose placeholders are missing in this row (when missing=None)."""
        if self.missing is not None:
            return self.format
        columns = self._require_columns()
        pieces = _CLAUSE_BREAK.split(self.format)
        clauses, breaks = pieces[0::2], [""] + pieces[1::2]
        kept = [(b, c) for b, c in zip(breaks, clauses)
                if not any(is_missing(values[self._split_placeholder(raw, columns)[0]])
                           for raw in _PLACEHOLDER.findall(c))]
        if len(kept) == len(clauses):
            return self.format
        return "".join(c if i == 0 else b + c for i, (b, c) in enumerate(kept))

    def left_out(self, X: pd.DataFrame) -> pd.DataFrame:
        """Which cells of X the prompts leave out (missing, with missing=None), row by column."""
        gaps = X[self._require_columns()].isna()
        return gaps if self.missing is None else gaps & False

    def _resolve(self, raw: str, values: dict, columns: Sequence[str]):
        column, spec = self._split_placeholder(raw, columns)
        return column, values[column], spec

    def prompts(self, X: pd.DataFrame) -> list[str]:
        """Prompts for every row of X; rows that cannot be serialized are reported by index."""
        self._warn_about_long_text(X)
        out, bad = [], []
        for index, row in zip(X.index, X.itertuples(index=False, name=None)):
            try:
                out.append(self.prompt(dict(zip(self._require_columns(), row))))
            except TemplateError as error:
                bad.append((index, str(error)))
        if bad:
            shown = "; ".join(f"row {i}: {e}" for i, e in bad[:5])
            raise TemplateError(f"{len(bad)} row(s) cannot be serialized ({shown}{' ...' if len(bad) > 5 else ''}).")
        return out

    def _warn_about_long_text(self, X: pd.DataFrame) -> None:
        for column in self._require_columns():
            values = X[column]
            if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                continue
            lengths = np.array([len(" ".join(v.split())) if isinstance(v, str) else 0 for v in values])
            long = list(X.index[lengths > self.max_text_chars])
            if long:
                warnings.warn(f"Column {column!r}: {len(long)} text value(s) longer than max_text_chars="
                              f"{self.max_text_chars} are cut (rows {long[:5]}{' ...' if len(long) > 5 else ''}).",
                              UserWarning, stacklevel=3)

    def label_text(self, code: int) -> str:
        """The answer text (without terminator) for class index `code`; surrounding spaces are dropped."""
        if self.label_style == "code" or self.classes is None:
            return str(int(code))
        value = self.classes[int(code)]
        return str((self.class_names or {}).get(value, (self.class_names or {}).get(str(value), value))).strip()

    def answer(self, target: Any) -> str:
        """The completion for a class index (classification) or a number (regression)."""
        if self.task == "regression":
            return f"{float(target):.{self.target_precision}f}{self.answer_end}"
        return f"{self.label_text(target)}{self.answer_end}"

    def class_answers(self) -> list[str]:
        """The full completion of every class, in label order (what label scoring compares)."""
        if self.classes is None:
            raise TemplateError("This template has no classes bound: bind it with classes=... first.")
        texts = [self.label_text(i) for i in range(len(self.classes))]
        if len(set(texts)) != len(texts):
            raise TemplateError(f"Two classes serialize to the same answer text: {texts}.")
        clashing = [t for t in texts if self.answer_end and (self.answer_end in t or t.endswith(self.answer_end[0]))]
        if clashing:
            raise TemplateError(f"Class answer(s) {clashing} contain or run into the terminator "
                                f"{self.answer_end!r}; use label_style='code' or another answer_end.")
        return [t + self.answer_end for t in texts]

    def _strip(self, completion: str) -> str:
        text = completion.split(self.answer_end, 1)[0] if self.answer_end else completion
        return text.strip()

    def parse(self, completion: str) -> Any:
        """Class index or float from a generated completion; None when it is not a valid answer."""
        text = self._strip(completion)
        if self.task == "regression":
            match = NUMBER_PATTERN.match(text)
            if not match or match.end() != len(text):
                return None
            value = float(match.group())
            return value if math.isfinite(value) else None
        texts = [self.label_text(i) for i in range(len(self.classes or []))]
        return texts.index(text) if text in texts else None

    # ----- display --------------------------------------------------------------------------------------
    def examples(self, X: pd.DataFrame, y: Sequence | None = None, n: int = 3) -> list[tuple[str, str]]:
        """(prompt, answer) for the first n rows; y holds class indices or numbers."""
        prompts = self.prompts(X.head(n))
        answers = [self.answer(t) for t in list(y)[:n]] if y is not None else [""] * len(prompts)
        return list(zip(prompts, answers))

    def preview(self, X: pd.DataFrame, y: Sequence | None = None, n: int = 3, tokenizer=None) -> str:
        """A text preview of serialized rows (with token counts when a tokenizer is given)."""
        lines = []
        for prompt, answer in self.examples(X, y, n):
            count = f"  [{len(tokenizer(prompt + answer)['input_ids'])} tokens]" if tokenizer is not None else ""
            lines.append(f"{prompt} {answer}{count}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"Template(style={self.style!r}, columns={None if self.columns is None else len(self.columns)})"

    def _repr_html_(self) -> str:
        head = html.escape(repr(self))
        if self.columns is None:
            return f"<code>{head}</code>"
        example = {c: 0 for c in self.columns}
        try:
            sample = html.escape(self.prompt(example))
        except TemplateError as error:
            sample = html.escape(f"(cannot preview: {error})")
        return f"<code>{head}</code><br><small>shape of a prompt:</small> <code>{sample}</code>"


def is_missing(value: Any) -> bool:
    """A missing cell: None, NaN, NaT or pandas' NA."""
    return value is None or (np.ndim(value) == 0 and not isinstance(value, str) and bool(pd.isna(value)))


def check_column_types(X: pd.DataFrame) -> None:
    """Datetime and timedelta columns have no one natural wording: the user converts them explicitly."""
    for column in X.columns:
        values = X[column]
        if (pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values)
                or (values.dtype == object and values.map(lambda v: isinstance(v, (pd.Timestamp, pd.Timedelta,
                                                                                      _dt.date, _dt.timedelta))).any())):
            raise TemplateError(
                f"Column {column!r} holds dates or durations, which LIFT does not word on its own: convert it "
                f"explicitly, e.g. X[{str(column)!r}].dt.year, .dt.strftime('%Y-%m-%d') or .dt.days.")


def _is_integral(value: Any) -> bool:
    try:
        return float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        return False


def _all_integral(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
    return bool(len(values)) and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values)))


def _fewest_decimals(column: pd.Series, cap: int) -> int:
    """The fewest decimals (<= cap) at which every value of the column prints without loss."""
    values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    for digits in range(cap + 1):
        if np.allclose(np.round(values, digits), values, rtol=0, atol=1e-9 * max(1.0, np.abs(values).max(initial=0))):
            return digits
    return cap
