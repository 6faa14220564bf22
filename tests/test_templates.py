"""Templates: row -> prompt, target -> answer, answer -> target."""
from __future__ import annotations

import re
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liftnb.templates import Template, TemplateError

TERMINATOR = "@@@"


# ----- helpers ---------------------------------------------------------------------------------------------
@pytest.fixture
def frame() -> pd.DataFrame:
    """Mixed columns: integral floats, non-integral floats, true ints, negatives."""
    return pd.DataFrame({
        "count": [1.0, 2.0, 3.0],  # float dtype but integral: printed without decimals
        "mass": [5.1, 3.25, -0.5],  # needs 2 decimals
        "age": [7, 12, 40],  # int dtype
        "ratio": [0.5, -1.5, 2.0],  # needs 1 decimal
    }, index=[10, 11, 12])


def _no_names_values(prompt: str) -> list[float]:
    body = re.fullmatch(r"When we have (.*), What is this type\?###", prompt)
    assert body, prompt
    pairs = re.findall(r"x(\d+)=([^,]+)", body.group(1))
    assert [int(i) for i, _ in pairs] == list(range(1, len(pairs) + 1))
    return [float(v) for _, v in pairs]


def _names_pairs(prompt: str, question: str = "What is the category?") -> list[tuple[str, str]]:
    assert prompt.startswith("Given that ") and prompt.endswith(f", {question}###"), prompt
    body = prompt[len("Given that "):-len(f", {question}###")]
    return [tuple(part.split(" is ", 1)) for part in body.split(", ")]


# ----- construction errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("settings_", [
    {"style": "fancy"},
    {"style": "custom"},  # custom without format
    {"style": "names", "format": "{a}"},  # format without custom
    {"label_style": "index"},
    {"precision": -1},
    {"precision": "high"},
    {"precision": 1.5},
    {"target_precision": -1},
    {"max_precision": -2},
])
def test_invalid_settings_raise(settings_):
    with pytest.raises(TemplateError):
        Template(**settings_)


def test_template_error_is_value_error():
    assert issubclass(TemplateError, ValueError)


def test_prompt_before_bind_raises():
    with pytest.raises(TemplateError, match="bind"):
        Template().prompt({"a": 1.0})


def test_bind_rejects_other_columns():
    template = Template(columns=["a", "b"])
    with pytest.raises(TemplateError, match="missing \\['b'\\].*unexpected \\['c'\\]"):
        template.bind(pd.DataFrame({"a": [1.0], "c": [2.0]}))
    with pytest.raises(TemplateError):  # same columns, other order
        template.bind(pd.DataFrame({"b": [1.0], "a": [2.0]}))


def test_bind_returns_a_copy(frame):
    template = Template()
    bound = template.bind(frame, task="classification", classes=["a", "b"])
    assert template.columns is None and template.task is None and template.classes is None
    assert bound.columns == list(frame.columns)
    assert bound.task == "classification" and bound.classes == ["a", "b"]


# ----- round trips for every style -------------------------------------------------------------------------
def test_no_names_round_trip(frame):
    template = Template(style="no_names").bind(frame, task="classification", classes=["a", "b", "c"])
    prompts = template.prompts(frame)
    assert len(prompts) == len(frame)
    for prompt, row in zip(prompts, frame.itertuples(index=False, name=None)):
        assert _no_names_values(prompt) == pytest.approx(list(row))
    assert prompts[0] == "When we have x1=1, x2=5.10, x3=7, x4=0.5, What is this type?###"
    for code in range(3):
        assert template.parse(template.answer(code)) == code


def test_names_round_trip_with_display_names(frame):
    names = {"mass": "body mass", "age": "age in years"}
    template = Template(style="names", names=names).bind(frame, task="classification", classes=[0, 1])
    for prompt, (_, row) in zip(template.prompts(frame), frame.iterrows()):
        pairs = _names_pairs(prompt)
        assert [n for n, _ in pairs] == ["count", "body mass", "age in years", "ratio"]
        assert [float(v) for _, v in pairs] == pytest.approx(row.tolist())
    assert template.prompts(frame)[1] == \
        "Given that count is 2, body mass is 3.25, age in years is 12, ratio is -1.5, What is the category?###"


def test_shuffled_names_permutes_names_not_values():
    X = pd.DataFrame({f"c{i}": [float(i) + 0.5] for i in range(8)})
    plain = _names_pairs(Template(style="names").bind(X).prompts(X)[0])
    orders = []
    for seed in range(4):
        template = Template(style="shuffled", shuffle_seed=seed).bind(X)
        pairs = _names_pairs(template.prompts(X)[0])
        # values stay in column order, the names are a permutation of the column names
        assert [v for _, v in pairs] == [v for _, v in plain]
        assert sorted(n for n, _ in pairs) == sorted(X.columns)
        # deterministic for a seed
        assert template.prompts(X) == Template(style="shuffled", shuffle_seed=seed).bind(X).prompts(X)
        orders.append([n for n, _ in pairs])
    assert any(order != list(X.columns) for order in orders)
    assert len({tuple(o) for o in orders}) > 1  # the seed matters


def test_shuffled_uses_display_names():
    X = pd.DataFrame({"a": [1.5], "b": [2.5], "c": [3.5]})
    template = Template(style="shuffled", names={"a": "alpha", "b": "beta", "c": "gamma"}).bind(X)
    assert sorted(n for n, _ in _names_pairs(template.prompts(X)[0])) == ["alpha", "beta", "gamma"]


def test_custom_round_trip(frame):
    template = Template.custom("{count} items of {mass} kg, aged {age}, ratio {ratio}.")
    bound = template.bind(frame, task="regression")
    pattern = r"(\S+) items of (\S+) kg, aged (\S+), ratio (\S+)\. What should be the y value\?###"
    for prompt, row in zip(bound.prompts(frame), frame.itertuples(index=False, name=None)):
        match = re.fullmatch(pattern, prompt)
        assert match, prompt
        assert [float(g) for g in match.groups()] == pytest.approx(list(row))
    for target in (0.0, -12.345, 3.1416, 1e5):
        assert bound.parse(bound.answer(target)) == pytest.approx(target, abs=1e-3)


def test_string_and_bool_values():
    X = pd.DataFrame({"colour": ["red", "blue"], "ok": [True, False]})
    prompts = Template(style="names").bind(X).prompts(X)
    assert prompts[0] == "Given that colour is red, ok is yes, What is the category?###"
    assert prompts[1] == "Given that colour is blue, ok is no, What is the category?###"


# ----- missing values and column types --------------------------------------------------------------------
GAPS = pd.DataFrame({"a": [1.5, np.nan, np.nan], "b": [None, "x", pd.NA], "c": pd.array([True, None, False])})


def test_missing_values_are_left_out_of_the_names_sentence():
    template = Template().bind(GAPS)
    assert template.prompts(GAPS) == ["Given that a is 1.5, c is yes, What is the category?###",
                                      "Given that b is x, What is the category?###",
                                      "Given that c is no, What is the category?###"]
    assert template.left_out(GAPS).to_numpy().tolist() == [[False, True, False], [True, False, True],
                                                           [True, True, False]]
    shuffled = Template(style="shuffled", shuffle_seed=3).bind(GAPS).prompts(GAPS)
    assert [p.count(" is ") - 1 for p in shuffled] == [2, 1, 1]  # less the question's "is"


def test_a_row_with_every_cell_missing_keeps_its_question():
    X = pd.DataFrame({"a": [np.nan, 1.0], "b": [None, "x"]})
    assert Template().bind(X).prompts(X)[0] == "What is the category?###"
    custom = Template.custom("a is {a}, b is {b}").bind(X)
    assert custom.prompts(X) == ["What is the category?###", "a is 1, b is x What is the category?###"]


def test_missing_values_are_written_as_the_chosen_word():
    prompts = Template(style="no_names", missing="unknown").bind(GAPS).prompts(GAPS)
    assert prompts == ["When we have x1=1.5, x2=unknown, x3=yes, What is this type?###",
                       "When we have x1=unknown, x2=x, x3=unknown, What is this type?###",
                       "When we have x1=unknown, x2=unknown, x3=no, What is this type?###"]
    assert not Template(missing="unknown").bind(GAPS).left_out(GAPS).to_numpy().any()


@pytest.mark.parametrize("style", ["no_names", "pixels"])
def test_positional_styles_need_a_word_for_missing_cells(style):
    with pytest.raises(TemplateError, match=r"\['a'\].*missing='unknown'"):
        Template(style=style).bind(pd.DataFrame({"a": [1.0, np.nan], "b": [1.0, 2.0]}))
    bound = Template(style=style).bind(pd.DataFrame({"a": [1.0, 2.0]}))  # complete at fit, a gap at predict
    with pytest.raises(TemplateError, match="row 1: Column 'a' is missing"):
        bound.prompts(pd.DataFrame({"a": [1.0, np.nan]}))


def test_custom_style_leaves_out_the_clause_of_a_missing_cell():
    X = pd.DataFrame({"species": ["Adelie", None, "Gentoo"], "mass": [3750.0, 4000.0, np.nan],
                      "island": ["Dream", "Biscoe", None]})
    template = Template.custom("A {species} penguin; it weighs {mass:.0f} g, from {island}", question="Sex?")
    assert template.bind(X).prompts(X) == ["A Adelie penguin; it weighs 3750 g, from Dream Sex?###",
                                           "it weighs 4000 g, from Biscoe Sex?###",
                                           "A Gentoo penguin Sex?###"]
    worded = replace(template, missing="unknown").bind(X).prompts(X)
    assert worded[1] == "A unknown penguin; it weighs 4000 g, from Biscoe Sex?###"


@pytest.mark.parametrize("bad", ["", "  ", 0])
def test_missing_word_must_be_a_word(bad):
    with pytest.raises(TemplateError, match="missing must be None"):
        Template(missing=bad)


def test_categorical_boolean_and_text_columns():
    X = pd.DataFrame({"island": pd.Categorical(["Dream", "Biscoe"]), "size": pd.Categorical([1, 3]),
                      "male": [True, False], "note": ["tall\nand  grey", "short"]})
    assert Template().bind(X).prompts(X) == [
        "Given that island is Dream, size is 1, male is yes, note is tall and grey, What is the category?###",
        "Given that island is Biscoe, size is 3, male is no, note is short, What is the category?###"]
    worded = Template(bool_words=("female", "male")).bind(X).prompts(X)
    assert "male is male" in worded[0] and "male is female" in worded[1]


def test_long_text_is_cut_with_a_warning_naming_the_rows():
    X = pd.DataFrame({"note": ["word " * 100, "short", "x" * 30]}, index=[10, 11, 12])
    template = Template(max_text_chars=20).bind(X)
    with pytest.warns(UserWarning, match=r"Column 'note': 2 text value\(s\) longer than max_text_chars=20 are cut "
                                         r"\(rows \[10, 12\]\)"):
        prompts = template.prompts(X)
    assert prompts[0] == "Given that note is word word word word..., What is the category?###"
    assert prompts[2] == f"Given that note is {'x' * 20}..., What is the category?###"


@pytest.mark.parametrize("column", [pd.to_datetime(["2020-01-01", "2021-06-30"]),
                                    pd.to_timedelta([1, 2], unit="D"),
                                    pd.Series([pd.Timestamp("2020-01-01"), "x"], dtype=object)])
def test_datetime_columns_are_a_clear_error(column):
    with pytest.raises(TemplateError, match=r"Column 'when' holds dates or durations.*\.dt\.year"):
        Template().bind(pd.DataFrame({"when": column, "a": [1.0, 2.0]}))


@pytest.mark.parametrize("y, message", [([1e-5, 2e-5, 0.5], "2 of its 3 non-zero values"),
                                        ([3e9, 1.0, 2.0], "reaches 3e\\+09")])
def test_regression_targets_that_print_badly_warn(y, message):
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.warns(UserWarning, match=f"The target.*{message}"):
        Template().bind(X, y=y, task="regression")


# ----- questions -------------------------------------------------------------------------------------------
def test_default_and_custom_questions():
    X = pd.DataFrame({"a": [1.0]})
    assert Template(style="no_names").bind(X).prompts(X)[0].endswith(", What is this type?###")
    assert Template(style="names").bind(X).prompts(X)[0].endswith(", What is the category?###")
    assert Template(style="names").bind(X, task="regression").prompts(X)[0].endswith(
        ", What should be the y value?###")
    assert Template(question="Which iris?", prompt_end=" ->").bind(X).prompts(X)[0] == \
        "Given that a is 1, Which iris? ->"
    assert Template.custom("a={a}.", question="").bind(X).prompts(X)[0] == "a=1.###"


# ----- precision -------------------------------------------------------------------------------------------
def test_auto_precision_uses_fewest_decimals_per_column():
    X = pd.DataFrame({"one": [1.5, 2.5], "two": [1.25, 2.5], "many": [0.123456, 1.0], "int": [3.0, 4.0]})
    template = Template(style="no_names").bind(X)
    assert template.prompts(X) == ["When we have x1=1.5, x2=1.25, x3=0.12, x4=3, What is this type?###",
                                   "When we have x1=2.5, x2=2.50, x3=1.00, x4=4, What is this type?###"]
    wider = Template(style="no_names", max_precision=4).bind(X)
    assert _no_names_values(wider.prompts(X)[0]) == [1.5, 1.25, 0.1235, 3.0]


def test_auto_precision_zero_cap():
    X = pd.DataFrame({"a": [1.4, 2.6]})
    assert Template(style="no_names", max_precision=0).bind(X).prompts(X) == \
        ["When we have x1=1, What is this type?###", "When we have x1=3, What is this type?###"]


def test_fixed_precision():
    X = pd.DataFrame({"a": [1.5, -2.123456], "b": [1, 2]})
    template = Template(style="no_names", precision=3).bind(X)
    assert template.prompts(X) == ["When we have x1=1.500, x2=1, What is this type?###",
                                   "When we have x1=-2.123, x2=2, What is this type?###"]
    assert Template(style="no_names", precision=0).bind(X).prompts(X)[1].startswith("When we have x1=-2, ")


@pytest.mark.parametrize("precision", ["auto", 0, 4])
def test_integer_columns_have_no_decimals(precision):
    X = pd.DataFrame({"f": [1.0, -2.0, 300.0], "i": np.array([4, 5, 6], dtype=np.int32),
                      "u": np.array([7, 8, 9], dtype=np.uint8), "n": [1.0, np.nan, 3.0]})
    prompts = Template(style="no_names", precision=precision, missing="missing").bind(X).prompts(X)
    assert prompts == ["When we have x1=1, x2=4, x3=7, x4=1, What is this type?###",
                       "When we have x1=-2, x2=5, x3=8, x4=missing, What is this type?###",
                       "When we have x1=300, x2=6, x3=9, x4=3, What is this type?###"]


def test_integer_column_does_not_lose_a_new_fractional_value():
    X = pd.DataFrame({"a": [1.0, 2.0]})
    template = Template(style="no_names").bind(X)
    assert _no_names_values(template.prompt({"a": 2.5})) == [2.5]


# ----- units -----------------------------------------------------------------------------------------------
def test_units_in_every_style():
    X = pd.DataFrame({"mass": [5.1], "legs": [4]})
    units = {"mass": "g"}
    assert Template(style="names", units=units).bind(X).prompts(X)[0] == \
        "Given that mass is 5.1 g, legs is 4, What is the category?###"
    assert Template(style="no_names", units=units).bind(X).prompts(X)[0] == \
        "When we have x1=5.1 g, x2=4, What is this type?###"
    assert Template.custom("It weighs {mass:.2f} and has {legs}.", units=units, question="").bind(X).prompts(X)[0] \
        == "It weighs 5.10 g and has 4.###"


def test_unknown_names_or_units_raise():
    with pytest.raises(TemplateError, match="names.*zzz"):
        Template(names={"zzz": "Z"}, columns=["a"])
    with pytest.raises(TemplateError, match="units.*zzz"):
        Template(units={"zzz": "kg"}, columns=["a"])
    X = pd.DataFrame({"a": [1.0]})
    with pytest.raises(TemplateError, match="names.*zzz"):
        Template(names={"zzz": "Z"}).bind(X)
    with pytest.raises(TemplateError, match="units.*zzz"):
        Template(style="no_names", units={"zzz": "kg"}).bind(X)


# ----- custom placeholders ---------------------------------------------------------------------------------
def test_custom_placeholders_with_spaces_parentheses_and_specs():
    X = pd.DataFrame({"petal length (cm)": [1.25], "sepal width": [3.14159], "n": [2]})
    template = Template.custom("Petal {petal length (cm)} cm, sepal {sepal width:.1f}, {n:03d} leaves, {{x}}.")
    assert template.placeholders() == ["petal length (cm)", "sepal width:.1f", "n:03d"]
    assert template.bind(X).prompts(X) == ["Petal 1.25 cm, sepal 3.1, 002 leaves, {x}. What is the category?###"]


def test_custom_placeholder_with_colon_in_column_name():
    X = pd.DataFrame({"ratio:a": [0.123]})
    assert Template.custom("r {ratio:a}", question="").bind(X).prompts(X) == ["r 0.12###"]
    assert Template.custom("r {ratio:a:.3f}", question="").bind(X).prompts(X) == ["r 0.123###"]


def test_unmatched_placeholder_raises_at_construction_with_columns():
    with pytest.raises(TemplateError, match="nope"):
        Template.custom("{a} and {nope}", columns=["a"])


def test_unmatched_placeholder_raises_at_bind_without_columns():
    template = Template.custom("{a} and {nope:.2f}")  # nothing to check against yet
    with pytest.raises(TemplateError, match="nope"):
        template.bind(pd.DataFrame({"a": [1.0]}))


def test_unused_column_warns():
    with pytest.warns(UserWarning, match="'b'"):
        Template.custom("{a}").bind(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    with pytest.warns(UserWarning, match="'b'"):
        Template.custom("{a}", columns=["a", "b"])


def test_all_columns_used_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Template.custom("{a} {b:.1f}").bind(pd.DataFrame({"a": [1.0], "b": [2.0]}))


# ----- labels and answers ----------------------------------------------------------------------------------
CLASSES = ["setosa", "versicolor", "virginica"]


def test_label_style_code():
    template = Template(label_style="code").bind(pd.DataFrame({"a": [1.0]}), task="classification", classes=CLASSES)
    assert [template.answer(i) for i in range(3)] == ["0@@@", "1@@@", "2@@@"]
    assert template.class_answers() == ["0@@@", "1@@@", "2@@@"]
    assert template.parse("2@@@") == 2
    assert template.parse(" 1 @@@ trailing text") == 1
    assert template.parse("versicolor@@@") is None


def test_label_style_name():
    template = Template(label_style="name").bind(pd.DataFrame({"a": [1.0]}), task="classification", classes=CLASSES)
    assert template.answer(1) == "versicolor@@@"
    assert template.answer(np.int64(2)) == "virginica@@@"
    assert template.class_answers() == ["setosa@@@", "versicolor@@@", "virginica@@@"]
    assert [template.parse(a) for a in template.class_answers()] == [0, 1, 2]
    assert template.parse("virginica") == 2  # no terminator generated
    assert template.parse("1@@@") is None


def test_custom_answer_end():
    template = Template(answer_end="\n", task="classification", classes=["a", "b"], label_style="name")
    assert template.class_answers() == ["a\n", "b\n"]
    assert template.parse("b\nmore") == 1


def test_class_answers_needs_classes_and_distinct_texts():
    with pytest.raises(TemplateError, match="classes"):
        Template(task="classification").class_answers()
    with pytest.raises(TemplateError, match="same answer"):
        Template(label_style="name", task="classification", classes=[1, "1"]).class_answers()
    # codes are always distinct
    assert Template(task="classification", classes=[1, "1"]).class_answers() == ["0@@@", "1@@@"]


@pytest.mark.parametrize("completion", ["3@@@", "-1@@@", "", "@@@", "abc@@@", "1.0@@@", "01@@@", "0 1@@@"])
def test_classification_parse_invalid(completion):
    template = Template(task="classification", classes=CLASSES)
    assert template.parse(completion) is None


@pytest.mark.parametrize("completion", ["", "@@@", "abc@@@", "1.2.3@@@", "3 apples@@@", "nan@@@", "inf@@@",
                                        "-inf", "1e999@@@", "--1@@@", "1,5@@@", "e5@@@", ".@@@"])
def test_regression_parse_invalid(completion):
    assert Template(task="regression").parse(completion) is None


@pytest.mark.parametrize("completion, value", [
    ("3.250@@@", 3.25), ("-3.250@@@", -3.25), ("-0.000@@@", 0.0), ("+4@@@", 4.0), ("12.@@@", 12.0),
    (".5@@@", 0.5), ("-.5@@@", -0.5), ("1e3@@@", 1000.0), ("-2.5E-2@@@", -0.025), ("  7.125 @@@", 7.125),
    ("42", 42.0), ("1.5@@@2.5@@@", 1.5),
])
def test_regression_parse_numbers(completion, value):
    parsed = Template(task="regression").parse(completion)
    assert isinstance(parsed, float)
    assert parsed == value


def test_regression_answer_uses_target_precision():
    assert Template(task="regression").answer(1.23456) == "1.235@@@"
    assert Template(task="regression").answer(-2) == "-2.000@@@"
    assert Template(task="regression", target_precision=1).answer(np.float32(0.25)) == "0.2@@@"  # half to even
    assert Template(task="regression", target_precision=0).answer(7.6) == "8@@@"


# ----- bad data --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["no_names", "names", "shuffled"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_raises_naming_the_column(style, bad):
    X = pd.DataFrame({"ok": [1.5, 2.5], "mass": [1.5, bad]})
    template = Template(style=style).bind(X)
    with pytest.raises(TemplateError, match="'mass'.*inf"):
        template.prompt(X.iloc[1])
    with pytest.raises(TemplateError, match="'mass'"):
        template.prompts(X)


def test_inf_raises_in_custom_template():
    X = pd.DataFrame({"mass": [np.inf]})
    with pytest.raises(TemplateError, match="'mass'"):
        Template.custom("mass {mass}").bind(X).prompts(X)


def test_inf_raises_in_custom_template_with_format_spec():
    X = pd.DataFrame({"mass": [np.inf]})
    with pytest.raises(TemplateError, match="'mass'"):
        Template.custom("mass {mass:.1f}").bind(X).prompts(X)


def test_prompts_report_bad_rows_by_index():
    X = pd.DataFrame({"a": [1.0, np.inf, 2.0, -np.inf]}, index=["r0", "r1", "r2", "r3"])
    template = Template(style="no_names").bind(X.loc[["r0", "r2"]])
    with pytest.raises(TemplateError) as info:
        template.prompts(X)
    message = str(info.value)
    assert message.startswith("2 row(s) cannot be serialized")
    assert "row r1:" in message and "row r3:" in message
    assert "row r0" not in message and "row r2" not in message
    assert not message.endswith("...).")
    assert template.prompts(X.loc[["r0", "r2"]]) == ["When we have x1=1, What is this type?###",
                                                     "When we have x1=2, What is this type?###"]


def test_prompts_truncate_long_bad_row_lists():
    X = pd.DataFrame({"a": [np.inf] * 7 + [1.0]}, index=range(100, 108))
    with pytest.raises(TemplateError) as info:
        Template(style="no_names").bind(X).prompts(X)
    message = str(info.value)
    assert message.startswith("7 row(s)")
    assert "row 104:" in message and "row 105" not in message
    assert message.endswith(" ...).")


# ----- display ---------------------------------------------------------------------------------------------
def test_examples_and_preview():
    X = pd.DataFrame({"a": [1.5, 2.5, 3.5, 4.5], "b": [1, 2, 3, 4]})
    template = Template(style="names").bind(X, task="classification", classes=["no", "yes"])
    y = [0, 1, 1, 0]
    examples = template.examples(X, y, n=2)
    assert examples == [("Given that a is 1.5, b is 1, What is the category?###", "0@@@"),
                        ("Given that a is 2.5, b is 2, What is the category?###", "1@@@")]
    preview = template.preview(X, y)
    assert preview.splitlines() == [f"{p} {a}" for p, a in template.examples(X, y, n=3)]
    assert template.preview(X, n=1) == "Given that a is 1.5, b is 1, What is the category?### "

    def tokenizer(text):
        return {"input_ids": text.split()}

    first = template.preview(X, y, n=1, tokenizer=tokenizer)
    assert first == "Given that a is 1.5, b is 1, What is the category?### 0@@@  [12 tokens]"


def test_regression_preview():
    X = pd.DataFrame({"x1": [0.5, -1.25]})
    template = Template(style="no_names").bind(X, task="regression")
    assert template.preview(X, [1.0, -2.5]) == (
        "When we have x1=0.50, What should be the y value?### 1.000@@@\n"
        "When we have x1=-1.25, What should be the y value?### -2.500@@@")


def test_html_repr():
    assert "cannot preview" not in Template(columns=["a"])._repr_html_()
    assert "a is 0" in Template(columns=["a"])._repr_html_()
    assert "<code>" in Template()._repr_html_()
    assert str(Template(columns=["a", "b"])) == "Template(style='names', columns=2)"


# ----- properties ------------------------------------------------------------------------------------------
# allow_subnormal=False: torch.set_flush_denormal(True) (set by load_lm for speed) is process-wide
finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)


@settings(max_examples=300, deadline=None)
@given(x=finite, p=st.integers(0, 8))
def test_fixed_precision_round_trip(x, p):
    X = pd.DataFrame({"x": [x]})
    prompt = Template(style="no_names", precision=p).bind(X).prompts(X)[0]
    match = re.fullmatch(r"When we have x1=(-?\d+(?:\.\d+)?), What is this type\?###", prompt)
    assert match, prompt
    text = match.group(1)
    if not float(x).is_integer():
        assert len(text.partition(".")[2]) == p
    assert float(text) == round(x, p)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), min_size=1, max_size=6), cap=st.integers(0, 5))
def test_auto_precision_error_bound(values, cap):
    X = pd.DataFrame({"x": values})
    template = Template(style="no_names", max_precision=cap).bind(X)
    parsed = [_no_names_values(p)[0] for p in template.prompts(X)]
    scale = max(1.0, max(abs(v) for v in values))
    for value, back in zip(values, parsed):
        assert abs(back - value) <= 0.5 * 10 ** -cap + 2e-9 * scale


@settings(max_examples=300, deadline=None)
@given(y=finite, p=st.integers(0, 8))
def test_regression_answer_parse_round_trip(y, p):
    template = Template(task="regression", target_precision=p)
    answer = template.answer(y)
    assert answer.endswith(TERMINATOR) and answer.count(TERMINATOR) == 1
    parsed = template.parse(answer)
    assert parsed is not None
    assert abs(parsed - y) <= 10 ** -p


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 60))
def test_class_code_round_trip(n):
    template = Template(task="classification", classes=list(range(n)))
    answers = template.class_answers()
    assert len(set(answers)) == n
    assert [template.parse(a) for a in answers] == list(range(n))
    assert [template.parse(template.answer(i)) for i in range(n)] == list(range(n))


# printable characters (str.isprintable: no control, format, private, unassigned or non-ASCII space characters)
printable = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), include_characters=" ")
class_name = st.text(printable, min_size=1, max_size=12).filter(lambda s: TERMINATOR not in s)
# Names with surrounding spaces round trip (stripped); a name running into the terminator is rejected.
clean_class_name = class_name.filter(lambda s: s == s.strip() and not s.endswith("@"))


@settings(max_examples=300, deadline=None)
@given(names=st.lists(clean_class_name, min_size=1, max_size=8, unique=True))
def test_class_name_round_trip(names):
    assert all(n.isprintable() for n in names)
    template = Template(label_style="name", task="classification", classes=names)
    answers = template.class_answers()
    assert answers == [n + TERMINATOR for n in names]
    assert [template.parse(a) for a in answers] == list(range(len(names)))
    assert [template.parse(template.answer(i)) for i in range(len(names))] == list(range(len(names)))
    assert [template.parse(a + " more generated text") for a in answers] == list(range(len(names)))


def test_class_names_with_surrounding_spaces_are_stripped_and_round_trip():
    template = Template(label_style="name", task="classification", classes=[" <=50K", " >50K"])
    answers = template.class_answers()
    assert answers == ["<=50K" + TERMINATOR, ">50K" + TERMINATOR]
    assert [template.parse(a) for a in answers] == [0, 1]


def test_class_name_ending_like_the_terminator_is_rejected():
    template = Template(label_style="name", task="classification", classes=["a@", "b"])
    with pytest.raises(TemplateError, match="run into the terminator"):
        template.class_answers()


def test_pixels_style_is_the_papers_image_prompt():
    frame = pd.DataFrame({"p1": [0, 12], "p2": [255, 3], "p3": [7, 0]})
    template = Template(style="pixels").bind(frame, task="classification", classes=[0, 1])
    assert template.prompts(frame) == ["Given image with pixels 0 255 7, What is this digit?###",
                                       "Given image with pixels 12 3 0, What is this digit?###"]
    assert template.parse(template.answer(1)) == 1


def test_pixels_without_separator_cost_one_token_each():
    frame = pd.DataFrame({f"p{i}": [i % 10] for i in range(12)})
    template = Template(style="pixels", pixel_separator="").bind(frame, task="classification", classes=[0])
    assert template.prompts(frame) == ["Given image with pixels 012345678901, What is this digit?###"]
