"""LIFTGenerator: conditional generation and imputation (tiny random model: plumbing only, never accuracy)."""
import numpy as np
import pandas as pd
import pytest
import torch

from liftnb import Template
from liftnb.generators import LIFTGenerator, answer_loss
from liftnb.models import TINY_RANDOM, load_lm

FAST = dict(model=TINY_RANDOM, epochs=1, batch_size=16, verbose=0, precision="fp32", train_layers=1)


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"length": rng.uniform(0, 5, 20).round(1), "colour": rng.choice(["red", "blue"], 20),
                         "count": rng.integers(1, 9, 20), "ok": rng.choice([True, False], 20)})


def test_training_examples_hold_out_cells_and_ask_for_them(table):
    generator = LIFTGenerator(**FAST, copies=3).fit(table)
    row = table.iloc[0]
    prompt = generator._prompt(row, ["colour", "count"])
    assert "colour is" not in prompt.split("What")[0] and "count is" not in prompt.split("What")[0]
    assert prompt.endswith("What are colour and count?###")
    assert generator._answer(row, ["colour", "count"]) == f"colour is {row['colour']}, count is {row['count']}@@@"
    assert generator.example(row, ["colour", "count"]) == (prompt, generator._answer(row, ["colour", "count"]))


def test_answers_parse_back_to_the_cells_they_wrote(table):
    generator = LIFTGenerator(**FAST).fit(table)
    for _, row in table.head(5).iterrows():
        held = ["length", "colour", "count", "ok"][:3]
        cells = generator._parse(generator._answer(row, held), held)
        assert cells == {"length": row["length"], "colour": row["colour"], "count": row["count"]}
    assert generator._parse("length is 1.5, colour is purple@@@", ["length", "colour"]) is None  # unseen category
    assert generator._parse("length is long@@@", ["length"]) is None
    assert generator._parse("ok is yes@@@", ["ok"]) == {"ok": True}


def test_transform_fills_gaps_and_counts_malformed_rows_without_dropping_them(table):
    generator = LIFTGenerator(**FAST).fit(table)
    gaps = table.astype(object)
    gaps.iloc[[1, 4], 0] = np.nan
    gaps.iloc[2, 1] = None
    filled = generator.transform(gaps)  # the real model's answers (mostly nonsense): nothing dropped, all counted
    assert filled.shape == gaps.shape and list(filled.index) == list(gaps.index)
    assert len(generator.last_completions_) == 3 and set(generator.malformed_rows_) <= {1, 2, 4}
    assert generator.malformed_ == pytest.approx(len(generator.malformed_rows_) / 3)

    # what a model writes decides the cells: a well-formed answer, an unseen category, nonsense
    asked = []
    answers = ["length is 4.2@@@", "colour is purple@@@", "nonsense"]
    generator._complete = lambda prompts, sampling: asked.extend(prompts) or [[text] for text in answers]
    filled = generator.transform(gaps)
    assert asked == [generator._prompt(gaps.iloc[1], ["length"]), generator._prompt(gaps.iloc[2], ["colour"]),
                     generator._prompt(gaps.iloc[4], ["length"])]
    assert filled.shape == gaps.shape and list(filled.index) == list(gaps.index)
    assert filled.loc[1, "length"] == 4.2
    assert pd.isna(filled.loc[2, "colour"]) and pd.isna(filled.loc[4, "length"])
    assert generator.malformed_rows_ == [2, 4] and generator.malformed_ == pytest.approx(2 / 3)
    known = gaps.notna()
    pd.testing.assert_frame_equal(filled.astype(object).where(known), gaps.where(known), check_dtype=False)


def test_conditional_sampling_writes_the_held_out_columns_n_times_reproducibly(table):
    generator = LIFTGenerator(**FAST, holdout=["count", "ok"]).fit(table)
    first = generator.sample(table.head(4), n=3, random_state=1)
    texts = generator.last_completions_
    again = generator.sample(table.head(4), n=3, random_state=1)
    assert generator.last_completions_ == texts and len(texts) == 4 and {len(t) for t in texts} == {3}
    pd.testing.assert_frame_equal(first, again)
    generator.sample(table.head(4), n=3, random_state=2)
    assert generator.last_completions_ != texts  # another seed, other samples
    assert first.shape == (12, 4) and first.index.nlevels == 2
    pd.testing.assert_series_equal(first["colour"].droplevel(1), table.head(4)["colour"].repeat(3),
                                   check_names=False)

    # each sample's parsed answer lands in its own row of the stack: (row, sample number)
    written = [[generator._answer(pd.Series({"count": 10 * row + k, "ok": k == 1}), ["count", "ok"])
                for k in range(3)] for row in range(4)]
    generator._complete = lambda prompts, sampling: written
    stacked = generator.sample(table.head(4), n=3, random_state=1)
    assert stacked["count"].tolist() == [10 * row + k for row in range(4) for k in range(3)]
    assert stacked["ok"].tolist() == [k == 1 for row in range(4) for k in range(3)]
    assert generator.malformed_ == 0


def test_positional_styles_mark_held_out_cells(table):
    generator = LIFTGenerator(**FAST, template=Template(style="no_names")).fit(table)
    prompt = generator._prompt(table.iloc[0], ["colour"])
    assert "x2=?" in prompt and prompt.endswith("What is x2?###")
    assert generator._answer(table.iloc[0], ["colour"]) == f"x2={table.iloc[0]['colour']}@@@"


@pytest.mark.parametrize("holdout", [["nope"], [], ["length", "colour", "count", "ok"]])
def test_bad_holdout_is_a_clear_error(table, holdout):
    with pytest.raises(ValueError, match="holdout must name some, not all"):
        LIFTGenerator(**FAST, holdout=holdout).fit(table)


def test_image_bottom_is_cut_from_the_prompt_and_written_in_digits_only():
    rng = np.random.default_rng(1)
    pixels = pd.DataFrame(rng.integers(0, 10, (12, 8)), columns=[f"p{i}" for i in range(8)])
    bottom = [f"p{i}" for i in range(4, 8)]
    generator = LIFTGenerator(**FAST, holdout=bottom, template=Template(style="pixels", pixel_separator="")).fit(pixels)
    prompt = generator._prompt(pixels.iloc[0], bottom)
    top = "".join(str(v) for v in pixels.iloc[0, :4])
    assert prompt == f"Given image with pixels {top}, What are the remaining pixels?###"
    samples = generator.sample(pixels.head(3), n=2, random_state=0)
    for texts in generator.last_completions_:
        for text in texts:
            assert set(text) <= set("0123456789@"), text  # digits and the terminator's pieces, parsed or not
    written = samples[bottom].dropna()
    assert ((written >= 0) & (written <= 9)).all().all()


def test_imputer_trains_on_rows_with_gaps_and_survives_save_and_load(table, tmp_path):
    gappy = table.copy()
    gappy.loc[0, "colour"] = None
    gappy.loc[3, "length"] = np.nan
    generator = LIFTGenerator(**FAST, copies=2).fit(gappy)
    first = generator.transform(gappy.head(5))
    loaded = LIFTGenerator.load(generator.save(tmp_path / "gen"), device="cpu")
    pd.testing.assert_frame_equal(loaded.transform(gappy.head(5)), first)
    assert loaded.last_completions_ == generator.last_completions_
    # the loaded weights are the trained ones, not the model it started from
    from liftnb.finetune import encode

    examples = encode(generator.tokenizer_, *map(list, zip(*(generator.example(row, ["colour", "count"])
                                                              for _, row in table.head(6).iterrows()))))
    pad = generator.tokenizer_.pad_token_id
    trained = answer_loss(generator.model_, examples, pad)
    assert answer_loss(loaded.model_, examples, pad) == pytest.approx(trained, rel=1e-6)
    assert answer_loss(load_lm(TINY_RANDOM, device="cpu")[0], examples, pad) != pytest.approx(trained, rel=1e-6)


def test_unfitted_generator_refuses_to_write(table):
    with pytest.raises(Exception, match="not fitted"):
        LIFTGenerator(**FAST).transform(table)


def test_answer_loss_is_the_mean_nll_of_the_answer_tokens():
    from liftnb.finetune import encode

    model, tokenizer = load_lm(TINY_RANDOM, device="cpu")
    examples = encode(tokenizer, ["a b c ###", "d ###"], ["1 2@@@", "345@@@"])
    expected, count = 0.0, 0
    with torch.no_grad():
        for example in examples:
            logits = model(input_ids=torch.tensor([example.input_ids])).logits[0].float()
            for position in range(example.n_prompt, len(example.input_ids)):
                expected -= torch.log_softmax(logits[position - 1], -1)[example.input_ids[position]].item()
                count += 1
    got = answer_loss(model, examples, tokenizer.pad_token_id, batch_size=2)  # padded together
    assert got == pytest.approx(expected / count, rel=1e-4)


def test_validation_loss_keeps_the_epoch_with_the_lowest_validation_loss(table):
    train, val = table.iloc[:14], table.iloc[14:]
    settings = {**FAST, "epochs": 4, "patience": None, "learning_rate": 3e-3, "validation_score": "loss"}
    generator = LIFTGenerator(**settings).fit(train, validation_data=val)
    losses = [e["val_loss"] for e in generator.history_.epochs]
    assert len(losses) == 4 and len(set(losses)) == 4  # measured after every epoch
    assert generator.history_.best_epoch == 1 + int(np.argmin(losses))
    assert "val_cell_error" not in generator.history_.epochs[0]  # nothing decoded
    # the weights kept are that epoch's: the same validation loss, recomputed on the fitted model
    from liftnb.finetune import encode

    examples = encode(generator.tokenizer_, *generator._examples(generator._validation_cases(val, None)))
    again = answer_loss(generator.model_, examples, generator.tokenizer_.pad_token_id)
    assert again == pytest.approx(min(losses), rel=1e-5)
    # validation leaves the training examples (hence the first epoch) as they are without it
    plain = LIFTGenerator(**settings).fit(train)
    assert plain.history_.epochs[0]["train_loss"] == pytest.approx(generator.history_.epochs[0]["train_loss"])
    assert plain.history_.best_epoch is None and "val_loss" not in plain.history_.epochs[0]


def test_validation_cells_keeps_the_epoch_that_writes_the_held_out_cells_best(table):
    train, val = table.iloc[:14], table.iloc[14:]
    settings = {**FAST, "epochs": 4, "patience": None, "learning_rate": 3e-3}
    generator = LIFTGenerator(**settings).fit(train, validation_data=val)
    epochs = generator.history_.epochs
    rank = [(-e["val_cell_error"], -e["val_loss"]) for e in epochs]
    assert generator.history_.best_epoch == 1 + rank.index(max(rank))  # lowest cell error, ties: lowest loss
    cases = generator._validation_cases(val, None)
    error, malformed = generator.cell_error(cases)  # recomputed on the weights kept
    best = epochs[generator.history_.best_epoch - 1]
    assert (error, malformed) == pytest.approx((best["val_cell_error"], best["val_malformed"]))
    assert not hasattr(generator, "malformed_")  # validation leaves the user's transform attributes alone


def test_cell_error_scores_words_numbers_and_malformed_answers(table):
    generator = LIFTGenerator(**FAST).fit(table)
    row = table.iloc[0]
    other = "blue" if row["colour"] == "red" else "red"
    written = {"right": f"colour is {row['colour']}, length is {row['length'] + 2}@@@",
               "wrong": f"colour is {other}, length is {row['length']}@@@", "malformed": "colour is@@@"}
    case = [(row, ["colour", "length"])]
    variance = table["length"].var()
    for name, expected in (("right", 4 / variance / 2), ("wrong", 1 / 2), ("malformed", 1.0)):
        generator._complete = lambda prompts, sampling, text=written[name]: [[text]]
        assert generator.cell_error(case) == pytest.approx((expected, float(name == "malformed"))), name


def test_bad_validation_score_is_a_clear_error(table):
    with pytest.raises(ValueError, match="validation_score must be one of"):
        LIFTGenerator(**FAST, validation_score="accuracy").fit(table)


@pytest.mark.parametrize("settings, message", [
    ({"copies": 0}, "copies must be a whole number >= 1, not 0"),
    ({"copies": 2.5}, "copies must be a whole number >= 1, not 2.5"),
    ({"max_holdout": 0}, "max_holdout must be a whole number >= 1 or None, not 0"),  # once read as None
    ({"max_holdout": -2}, "max_holdout must be a whole number >= 1 or None, not -2"),
])
def test_bad_copies_or_max_holdout_is_a_clear_error(table, settings, message):
    with pytest.raises(ValueError, match=message):
        LIFTGenerator(**FAST, **settings).fit(table)


def test_validation_rows_may_come_as_a_pair_as_for_the_other_estimators(table, monkeypatch):
    seen = []
    original = LIFTGenerator._validation_frame
    monkeypatch.setattr(LIFTGenerator, "_validation_frame",
                        staticmethod(lambda X_val, frame: seen.append(X_val) or original(X_val, frame)))
    LIFTGenerator(**FAST).fit(table, validation_data=(table, None))  # y is ignored, as in fit
    assert len(seen) == 1 and seen[0] is table


def test_validation_rows_must_match_and_have_something_to_hold_out(table):
    with pytest.raises(ValueError, match="colour"):
        LIFTGenerator(**FAST).fit(table, validation_data=table.drop(columns="colour"))
    lone = pd.DataFrame({"length": [np.nan], "colour": ["red"], "count": [np.nan], "ok": [np.nan]})
    with pytest.raises(ValueError, match="No validation example"):
        LIFTGenerator(**FAST).fit(table, validation_data=lone)
