"""LIFT as a conditional generator: fine-tune on rows written as "the given cells -> the held-out cells", then write
the held-out cells of new rows (an imputer's gaps, a chosen column, an image's bottom half)."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from .estimators import LIFTEstimator, as_frame
from .finetune import collate, encode, prepare_text_training
from .finetune.surgery import answer_logits, decoder_of
from .imputation import is_number_column, with_dtypes
from .predict import Sampling, allowed_token_ids, generate_answers, model_autocast, sample_answers
from .templates import NUMBER_PATTERN, Template, TemplateError, is_missing

VALIDATION_SCORES = ("cells", "loss")  # how fit picks its epoch from validation rows (see LIFTGenerator)


def _check_count(value, name: str, alternatives: str = "") -> None:
    """A clear error naming the setting unless `value` is a whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1{alternatives}, not {value!r}.")


class LIFTGenerator(LIFTEstimator):
    """Writes the missing or held-out cells of a table's rows with a fine-tuned causal LM (LIFT as a generator).

    holdout=None makes an imputer: every training row gives `copies` examples, each holding out a random non-empty
    subset (at most `max_holdout` cells) of the cells it has, so the model learns to write any cells from any others;
    `transform(X)` fills each row's missing cells. holdout=[columns] makes a conditional generator: those columns
    are always held out and `sample(X, n)` writes them from the rest (the half image: bottom pixels from the top).
    A completion that does not parse leaves its cells missing and is counted (`malformed_`, `malformed_rows_`),
    never dropped.

    With validation rows, `fit` keeps the epoch that writes their held-out cells best: validation_score="cells"
    (default) decodes them greedily, as `transform` does, and scores their cell error (a word cell 0 if right, else
    1; a number cell its squared error over the training variance of its column, so the column mean scores about 1;
    each cell of an answer that does not parse 1), ties broken by the validation loss; "loss" keeps the epoch with the
    lowest teacher-forced loss of the held-out tokens (cheaper: no decoding).
    """

    _task = "generation"

    def __init__(self, model=None, template=None, holdout=None, copies=4, max_holdout=None, epochs="auto",
                 min_steps=None, max_steps=None, patience="auto", batch_size=8, learning_rate=None, lora=None,
                 train_layers=0.4, precision="auto", random_state=0, device="auto", verbose=1, callbacks=None,
                 checkpoint_dir=None, warmup_ratio=0.06, weight_decay=0.01, lora_alpha=None,
                 gradient_accumulation_steps=1, validation_score="cells"):
        super().__init__(model=model, template=template, epochs=epochs, min_steps=min_steps, max_steps=max_steps,
                         patience=patience, batch_size=batch_size, learning_rate=learning_rate, lora=lora,
                         train_layers=train_layers, precision=precision, random_state=random_state, device=device,
                         verbose=verbose, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                         warmup_ratio=warmup_ratio, weight_decay=weight_decay, lora_alpha=lora_alpha,
                         gradient_accumulation_steps=gradient_accumulation_steps)
        self.holdout = holdout
        self.copies = copies
        self.max_holdout = max_holdout
        self.validation_score = validation_score

    # ----- fitting -----------------------------------------------------------------------------------------------
    def fit(self, X, y=None, validation_data=None, resume=False):
        """Fine-tune on the rows of X ("given cells -> held-out cells"); y is ignored. With validation_data (rows
        with X's columns, or a 2-tuple (rows, y) as the other estimators take it, y ignored), keep the best epoch by
        `validation_score` on the validation rows' own held-out cells (history_: `val_cell_error`, `val_malformed`
        and `val_loss`, the mean negative log-likelihood of a held-out token) and stop early as `patience` says;
        without it, the last epoch is kept."""
        if self.validation_score not in VALIDATION_SCORES:
            raise ValueError(f"validation_score must be one of {VALIDATION_SCORES}, not {self.validation_score!r}.")
        _check_count(self.copies, "copies")
        if self.max_holdout is not None:
            _check_count(self.max_holdout, "max_holdout", " or None")
        if isinstance(validation_data, tuple) and len(validation_data) == 2:
            validation_data = validation_data[0]  # (X_val, y_val) as the other estimators take it: y is ignored
        frame = self._frame(X, fitting=True)
        holdout = self._holdout_columns(frame)
        template = self.template if self.template is not None else Template()
        if template.style in ("no_names", "pixels") and template.missing is None:
            template = replace(template, missing="?")  # a positional sentence marks a held-out cell in its place
        self.template_ = template.bind(frame)
        # written text -> value, for every column that is not numbers (categories, booleans, text)
        self.categories_ = {c: {self.template_.format_value(c, v): v for v in frame[c] if not is_missing(v)}
                            for c in frame.columns if not is_number_column(frame[c])}
        prompts, answers = self._examples(self._cases(frame, holdout, np.random.default_rng(self.random_state)))
        if not prompts:
            raise ValueError("No training example: every row lacks the held-out columns, or has fewer than two cells.")
        validation = None
        if validation_data is not None:
            validation = self._validation_cases(self._validation_frame(validation_data, frame), holdout)
            if not validation:
                raise ValueError("No validation example: every validation row lacks the held-out columns, or has "
                                 "fewer than two cells.")
        self.number_variance_ = self._number_variances(frame)
        training = prepare_text_training(self.model, prompts, answers, self.fit_config(), device=self.device,
                                         callbacks=self.callbacks or (), verbose=self.verbose)
        self.tokenizer_, self.model_ = training.tokenizer, training.trainer.model
        self.tokens_per_row_ = training.tokens_per_row
        self.answer_tokens_ = max(len(self.tokenizer_(a, add_special_tokens=False)["input_ids"]) for a in answers)
        validate = None
        if validation is not None:
            val_examples = encode(self.tokenizer_, *self._examples(validation))

            def validate() -> dict:
                loss = answer_loss(self.model_, val_examples, self.tokenizer_.pad_token_id)
                if self.validation_score == "loss":
                    return {"val_score": -loss, "val_loss": loss}
                error, malformed = self.cell_error(validation)
                return {"val_score": -error, "val_tiebreak": -loss, "val_cell_error": error,
                        "val_malformed": malformed, "val_loss": loss}
        self.history_ = training.trainer.fit(training.examples, validate=validate, resume=resume)
        return self

    def _number_variances(self, frame: pd.DataFrame) -> dict[str, float]:
        """Each number column's training variance, which scales its cells' squared errors (a constant column: 1)."""
        spread = {c: float(pd.to_numeric(frame[c], errors="coerce").var()) for c in frame.columns
                  if c not in self.categories_}
        return {c: v if np.isfinite(v) and v > 0 else 1.0 for c, v in spread.items()}

    @staticmethod
    def _validation_frame(X_val, frame: pd.DataFrame) -> pd.DataFrame:
        """The validation rows as a frame with X's columns, checked before the model loads."""
        val = as_frame(X_val, feature_names=None if isinstance(X_val, pd.DataFrame) else list(frame.columns))
        if list(val.columns) != list(frame.columns):
            raise ValueError(f"validation_data's columns {list(val.columns)} differ from X's {list(frame.columns)}.")
        return val

    def _cases(self, frame: pd.DataFrame, holdout: list[str] | None, rng) -> list[tuple[pd.Series, list[str]]]:
        """(row, held-out columns): each row's `copies` cases, each holding out cells the row has."""
        cases = []
        for _, row in frame.iterrows():
            present = [c for c in frame.columns if not is_missing(row[c])]
            cases.extend((row, held) for held in self._training_holdouts(present, holdout, rng))
        return cases

    def _validation_cases(self, frame: pd.DataFrame, holdout: list[str] | None) -> list[tuple[pd.Series, list[str]]]:
        """The validation rows' cases, drawn from a random stream of their own so that the training examples are the
        same with or without validation."""
        seed = None if self.random_state is None else [int(self.random_state), 1]
        return self._cases(frame, holdout, np.random.default_rng(seed))

    def _examples(self, cases) -> tuple[list[str], list[str]]:
        """(prompts, answers) of the cases."""
        return [self._prompt(row, held) for row, held in cases], [self._answer(row, held) for row, held in cases]

    def cell_error(self, cases) -> tuple[float, float]:
        """(mean cell error, share of malformed answers) of the cases' held-out cells written greedily by the model
        as it is now (the score validation_score="cells" minimises); leaves malformed_ and last_completions_
        alone."""
        completions = self._complete([self._prompt(row, held) for row, held in cases], None)
        errors, malformed = [], 0
        for (row, held), (text,) in zip(cases, completions):
            cells = self._parse(text, held)
            if cells is None:
                malformed += 1
                errors.extend([1.0] * len(held))
                continue
            for column in held:
                if column in self.categories_:
                    errors.append(float(str(cells[column]) != str(row[column])))
                else:
                    errors.append((float(cells[column]) - float(row[column])) ** 2 / self.number_variance_[column])
        return float(np.mean(errors)), malformed / len(cases)

    def _holdout_columns(self, frame: pd.DataFrame) -> list[str] | None:
        if self.holdout is None:
            if frame.shape[1] < 2:
                raise ValueError("An imputer needs at least two columns: one to give, one to write.")
            return None
        columns = [str(c) for c in self.holdout]
        unknown = [c for c in columns if c not in frame.columns]
        if unknown or not columns or len(columns) == frame.shape[1]:
            raise ValueError(f"holdout must name some, not all, of X's columns {list(frame.columns)}; got {columns}.")
        return columns

    def _training_holdouts(self, present: list[str], holdout: list[str] | None, rng) -> list[list[str]]:
        """The held-out column sets of one training row's examples."""
        if holdout is not None:
            return [holdout] if all(c in present for c in holdout) else []
        if len(present) < 2:
            return []
        most = min(int(self.max_holdout or len(present) - 1), len(present) - 1)
        held = []
        for _ in range(int(self.copies)):
            size = int(rng.integers(1, most + 1))
            chosen = set(rng.choice(len(present), size=size, replace=False).tolist())
            held.append([c for i, c in enumerate(present) if i in chosen])
        return held

    # ----- text ------------------------------------------------------------------------------------------------
    def _names(self, columns: Sequence[str]) -> list[str]:
        template = self.template_
        if template.style in ("names", "shuffled", "custom"):
            return [(template.names or {}).get(c, c) for c in columns]
        return [f"x{list(template.columns).index(c) + 1}" for c in columns]

    def _prompt(self, row: pd.Series, held: Sequence[str]) -> str:
        """The row's sentence without the held-out cells, asking for them."""
        columns = list(self.template_.columns)
        values = {c: (np.nan if c in held else row[c]) for c in columns}
        if self.template_.style != "pixels":
            question = f"What {'is' if len(held) == 1 else 'are'} {_listed(self._names(held))}?"
            return replace(self.template_, question=question).prompt(values)
        if list(held) == columns[-len(held):]:  # the bottom of an image: the given pixels alone, no "?" for the rest
            given = columns[:-len(held)]
            return replace(self.template_, columns=given, question="What are the remaining pixels?").prompt(
                {c: values[c] for c in given})
        return replace(self.template_, question="What are the missing pixels?").prompt(values)

    def example(self, row: pd.Series, held: Sequence[str]) -> tuple[str, str]:
        """The (prompt, answer) text of one row with the `held` columns held out, as the fitted model is trained."""
        check_is_fitted(self, "template_")
        return self._prompt(row, held), self._answer(row, held)

    def _answer(self, row: pd.Series, held: Sequence[str]) -> str:
        return self._written(held, [self.template_.format_value(c, row[c]) for c in held]) + self.template_.answer_end

    def _written(self, held: Sequence[str], texts: Sequence[str]) -> str:
        style = self.template_.style
        if style == "pixels":
            return self.template_.pixel_separator.join(texts)
        joiner = "=" if style == "no_names" else " is "
        return ", ".join(f"{name}{joiner}{text}" for name, text in zip(self._names(held), texts))

    def _parse(self, completion: str, held: Sequence[str]) -> dict | None:
        """The held-out cells from a completion, or None when it does not have the answer's shape."""
        text = completion.split(self.template_.answer_end, 1)[0].strip()
        style = self.template_.style
        if style == "pixels":
            separator = self.template_.pixel_separator
            pieces = text.split(separator) if separator else list(text)
            pieces = [p for p in pieces if p.strip()] if separator.strip() == "" else pieces
        else:
            joiner = "=" if style == "no_names" else " is "
            pattern = ", ".join(re.escape(f"{name}{joiner}") + "(.+?)" for name in self._names(held))
            match = re.fullmatch(pattern, text)
            pieces = list(match.groups()) if match else []
        if len(pieces) != len(held):
            return None
        cells = {}
        for column, piece in zip(held, pieces):
            value = self._value(column, piece.strip())
            if value is None:
                return None
            cells[column] = value
        return cells

    def _value(self, column: str, text: str):
        """A cell's value from its text: a number for a number column, a seen category otherwise; None if neither."""
        unit = (self.template_.units or {}).get(column)
        if unit and text.endswith(f" {unit}"):
            text = text[:-len(unit) - 1]
        if column in self.categories_:
            return self.categories_[column].get(text)
        if not NUMBER_PATTERN.fullmatch(text):
            return None
        value = float(text)
        return int(value) if self.template_.writes_integer(column) and value.is_integer() else value

    # ----- generation -----------------------------------------------------------------------------------------------
    def _requests(self, frame: pd.DataFrame) -> tuple[list, list[str], list[list[str]]]:
        """(row indices, prompts, held-out columns) of the rows that have something to write."""
        holdout = self.holdout and [str(c) for c in self.holdout]
        rows, prompts, helds = [], [], []
        for position, (_, row) in enumerate(frame.iterrows()):
            held = holdout or [c for c in frame.columns if is_missing(row[c])]
            if not held or len(held) == frame.shape[1]:
                continue
            rows.append(position)
            prompts.append(self._prompt(row, held))
            helds.append(held)
        return rows, prompts, helds

    def _complete(self, prompts: list[str], sampling: Sampling | None) -> list[list[str]]:
        budget = int(self.answer_tokens_ * 1.5) + 4
        allowed = None
        if self.template_.style == "pixels":
            separator = self.template_.pixel_separator
            allowed = allowed_token_ids(self.tokenizer_, lambda text, end: set(text) <= set("0123456789" + separator)
                                        or set(text) <= set(end), self.template_.answer_end)
        size = max(8, 16 * int(self.batch_size))
        if sampling is None:
            return [[t] for t in generate_answers(self.model_, self.tokenizer_, prompts, self.template_.answer_end,
                                                  budget, batch_size=max(8, 4 * int(self.batch_size)),
                                                  allowed_token_ids=allowed)]
        return sample_answers(self.model_, self.tokenizer_, prompts, self.template_.answer_end, sampling,
                              max_new_tokens=budget, batch_size=size, allowed_token_ids=allowed)

    def _filled(self, frame: pd.DataFrame, sampling: Sampling | None) -> list[pd.DataFrame]:
        rows, prompts, helds = self._requests(frame)
        completions = self._complete(prompts, sampling) if prompts else []
        copies = 1 if sampling is None else sampling.n
        out = [frame.copy().astype(object) for _ in range(copies)]
        malformed = []
        for position, held, texts in zip(rows, helds, completions):
            for copy, text in enumerate(texts):
                cells = self._parse(text, held)
                if cells is None:
                    malformed.append(frame.index[position])
                    for column in held:
                        out[copy].iat[position, frame.columns.get_loc(column)] = np.nan
                    continue
                for column, value in cells.items():
                    out[copy].iat[position, frame.columns.get_loc(column)] = value
        self.malformed_ = len(malformed) / max(1, len(rows) * copies)
        self.malformed_rows_ = sorted(set(malformed), key=list(frame.index).index)
        self.last_completions_ = completions
        return [with_dtypes(o, frame) for o in out]

    def transform(self, X) -> pd.DataFrame:
        """X with its missing (or held-out) cells written greedily; a malformed answer leaves them missing."""
        check_is_fitted(self, "model_")
        return self._filled(self._frame(X, fitting=False), None)[0]

    def sample(self, X, n: int = 5, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               random_state: int | None = None) -> pd.DataFrame:
        """n sampled completions of every row, stacked: index (row, sample number)."""
        check_is_fitted(self, "model_")
        frame = self._frame(X, fitting=False)
        seed = self.random_state if random_state is None else random_state
        sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, n=int(n), seed=int(seed or 0))
        filled = self._filled(frame, sampling)
        stacked = pd.concat(filled, keys=range(len(filled)), names=["sample", frame.index.name])
        by_row = np.argsort(np.tile(np.arange(len(frame)), len(filled)), kind="stable")  # row by row, in X's order
        return stacked.iloc[by_row].swaplevel()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = False
        return tags


@torch.no_grad()
def answer_loss(model, examples, pad_id: int, batch_size: int = 16) -> float:
    """Mean negative log-likelihood of the answer tokens given their prompts (teacher forcing), as in training."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with model_autocast(model):
        for start in range(0, len(examples), batch_size):
            inputs = collate(examples[start:start + batch_size], pad_id, device)
            hidden = decoder_of(model)(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                       position_ids=inputs["position_ids"], use_cache=False).last_hidden_state
            logits = answer_logits(model, hidden, inputs["predict_at"])
            total += torch.nn.functional.cross_entropy(logits, inputs["targets"], reduction="sum").item()
            count += len(inputs["targets"])
    return total / count


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


__all__ = ["LIFTGenerator", "TemplateError", "answer_loss"]
