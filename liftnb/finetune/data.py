"""Tokenized training examples and right-padded batches with the positions that predict answer tokens."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class Example:
    """One tokenized training example: prompt ids followed by answer ids."""

    input_ids: list[int]
    n_prompt: int


def encode(tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> list[Example]:
    """Tokenize prompt and answer separately so the answer's tokens are the same at training and scoring."""
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    answer_ids = tokenizer(list(answers), add_special_tokens=False)["input_ids"]
    return [Example(p + a, len(p)) for p, a in zip(prompt_ids, answer_ids)]


def collate(examples: Sequence[Example], pad_id: int, device) -> dict:
    """Right-padded batch with the flat indices of positions that predict an answer token."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    predict_at, targets = [], []
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        for position in range(example.n_prompt, n):
            predict_at.append(row * width + position - 1)
            targets.append(example.input_ids[position])
    return {
        "input_ids": ids.to(device), "attention_mask": mask.to(device),
        "position_ids": (mask.cumsum(-1) - 1).clamp(min=0).to(device),
        "predict_at": torch.tensor(predict_at, device=device), "targets": torch.tensor(targets, device=device),
    }

