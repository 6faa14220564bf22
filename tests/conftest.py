"""Shared fixtures: a tiny randomly initialised Llama with the embedded tokenizer (plumbing tests only)."""
import numpy as np
import pytest
import torch

from liftnb.models import TINY_RANDOM, load_lm

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def tiny():
    """(model, tokenizer): 2-layer random Llama, fp32, CPU."""
    return load_lm(TINY_RANDOM, device="cpu")


@torch.no_grad()
def teacher_forced_scores(model, tokenizer, prompts, answers) -> np.ndarray:
    """Answer log-likelihoods (rows, answers) the plain way: one forward of prompt + answer each, no cache, no pad."""
    device = next(model.parameters()).device
    scores = np.zeros((len(prompts), len(answers)))
    for row, prompt in enumerate(prompts):
        prompt_ids = tokenizer(prompt)["input_ids"]
        for column, answer in enumerate(answers):
            answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids + answer_ids], device=device)
            logits = model(input_ids=ids, use_cache=False).logits[0].float()
            logp = torch.log_softmax(logits[len(prompt_ids) - 1:-1], dim=-1)  # the positions predicting the answer
            scores[row, column] = logp.gather(1, torch.tensor(answer_ids, device=device)[:, None]).sum().item()
    return scores
