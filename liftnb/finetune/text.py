"""From prompts and answers to a ready Trainer: load the model, tokenize, check the context, attach callbacks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..models import load_lm
from .config import FitConfig
from .data import Example, encode
from .trainer import Callback, Trainer


@dataclass
class TextTraining:
    """A Trainer holding the prepared model, with the tokenizer and the encoded examples it will train on."""

    trainer: Trainer
    tokenizer: object
    examples: list[Example]

    @property
    def tokens_per_row(self) -> float:
        """Mean tokens of a training row, prompt and answer (the cost of a row)."""
        return float(np.mean([len(e.input_ids) for e in self.examples]))


def prepare_text_training(model, prompts: Sequence[str], answers: Sequence[str], config: FitConfig,
                          device: str = "auto", callbacks: Sequence[Callback] = (), verbose: int = 0,
                          row_names: Sequence | None = None) -> TextTraining:
    """Load `model` (None: the embedded one), encode the rows and build its Trainer; call `.trainer.fit(...)` next.

    A row longer than the model's context is an error naming the row (row_names, default positions)."""
    lm, tokenizer = load_lm(model, device=device)
    examples = encode(tokenizer, prompts, answers)
    context = getattr(lm.config, "max_position_embeddings", None) or getattr(lm.config, "n_positions", None)
    names = list(row_names) if row_names is not None else list(range(len(examples)))
    too_long = [(n, len(e.input_ids)) for n, e in zip(names, examples) if context and len(e.input_ids) > context]
    if too_long:
        raise ValueError(f"{len(too_long)} row(s) need more tokens than the model's context of {context} "
                         f"(e.g. row {too_long[0][0]}: {too_long[0][1]} tokens). Use fewer features, fewer "
                         f"decimals, the no_names style, or a model with a longer context.")
    callbacks = list(callbacks)
    if verbose:
        from ..progress import default_progress  # the display needs ipywidgets/IPython only when shown

        callbacks.append(default_progress())
    return TextTraining(Trainer(lm, tokenizer, config, callbacks=callbacks), tokenizer, examples)
