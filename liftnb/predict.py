"""Prediction from a fine-tuned LM: label scoring over a shared KV cache, and greedy generation."""
from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch

from .finetune.surgery import decoder_of, head_of


def model_autocast(model):
    """bf16 autocast when the model holds bf16 weights (as after bf16 training), else nothing."""
    parameter = next(model.parameters())
    if any(p.dtype == torch.bfloat16 for p in model.parameters()):
        return torch.autocast(parameter.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def left_padded(sequences: Sequence[list[int]], pad_id: int, device):
    """Token id sequences as a left-padded batch (ids, attention mask): generation appends on the right."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq):] = torch.tensor(seq)
        mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


def _length_sorted_batches(lengths: Sequence[int], batch_size: int):
    """Batches of similar-length rows, so padding wastes little compute."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size].tolist()


@torch.no_grad()
def score_answers(model, tokenizer, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 32,
                  normalize: str | None = None) -> np.ndarray:
    """Log-likelihood of every answer after every prompt, shape (rows, answers).

    The prompt runs once; all answers continue from its KV cache in one batched pass. Scores are the sum of
    the answer's token log-probs (normalize=None, the default: answers end with the terminator, so the sum is
    the probability of the whole completion and class names that share a prefix are told apart); "mean"
    divides by the answer's token count.
    """
    if normalize not in (None, "mean"):
        raise ValueError(f"normalize must be None or 'mean', not {normalize!r}.")
    device = next(model.parameters()).device
    answer_ids = tokenizer(list(answers), add_special_tokens=False)["input_ids"]
    if any(len(a) == 0 for a in answer_ids):
        raise ValueError("An answer tokenizes to nothing; every class needs a non-empty answer text.")
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    n_answers, longest = len(answer_ids), max(len(a) for a in answer_ids)
    first = torch.tensor([a[0] for a in answer_ids], device=device)
    # Continuation inputs: every answer but its last token, right-padded; the targets are the tokens after.
    cont = torch.full((n_answers, max(1, longest - 1)), tokenizer.pad_token_id, dtype=torch.long)
    cont_mask = torch.zeros_like(cont)
    for c, ids in enumerate(answer_ids):
        cont[c, :len(ids) - 1] = torch.tensor(ids[:-1], dtype=torch.long)
        cont_mask[c, :len(ids) - 1] = 1
    cont_pairs = [(c, j) for c, ids in enumerate(answer_ids) for j in range(len(ids) - 1)]
    cont_targets = torch.tensor([answer_ids[c][j + 1] for c, j in cont_pairs], dtype=torch.long, device=device)
    body, head = decoder_of(model), head_of(model)
    scores = np.zeros((len(prompts), n_answers), dtype=np.float64)
    with model_autocast(model):
        for rows in _length_sorted_batches([len(p) for p in prompt_ids], batch_size):
            ids, mask = left_padded([prompt_ids[r] for r in rows], tokenizer.pad_token_id, device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=longest > 1)
            logp_first = torch.log_softmax(head(out.last_hidden_state[:, -1]).float(), dim=-1)
            total = logp_first[:, first]  # (batch, answers)
            if longest > 1:
                batch = len(rows)
                cache = out.past_key_values
                cache.batch_repeat_interleave(n_answers)
                cont_ids = cont.to(device).repeat(batch, 1)
                full_mask = torch.cat([mask.repeat_interleave(n_answers, 0), cont_mask.to(device).repeat(batch, 1)], 1)
                cont_pos = mask.sum(-1, keepdim=True).repeat_interleave(n_answers, 0) + torch.arange(
                    cont.shape[1], device=device)
                hidden = body(input_ids=cont_ids, attention_mask=full_mask, position_ids=cont_pos,
                              past_key_values=cache, use_cache=True).last_hidden_state
                # Gather only the positions that predict a real answer token, then apply the head there.
                b_index = torch.arange(batch, device=device).repeat_interleave(len(cont_pairs))
                c_index = torch.tensor([c for c, _ in cont_pairs], device=device).repeat(batch)
                j_index = torch.tensor([j for _, j in cont_pairs], device=device).repeat(batch)
                picked = hidden[b_index * n_answers + c_index, j_index]
                logp = torch.log_softmax(head(picked).float(), dim=-1)
                token_lp = logp.gather(1, cont_targets.repeat(batch)[:, None]).squeeze(1)
                total = total.index_put((b_index, c_index), token_lp, accumulate=True)
            scores[rows] = total.double().cpu().numpy()
    if normalize == "mean":
        scores /= np.array([len(a) for a in answer_ids], dtype=np.float64)[None, :]
    return scores


def log_softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Class log-probabilities from per-class log-likelihoods."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from per-class log-likelihoods."""
    return np.exp(log_softmax_rows(scores))


class _AllowOnly:
    """Logits processor that keeps only the given token ids (constrained decoding)."""

    def __init__(self, allowed: Sequence[int], vocab_size: int, device):
        self.mask = torch.full((vocab_size,), float("-inf"), device=device)
        self.mask[torch.tensor(sorted(set(allowed)), device=device)] = 0.0

    def __call__(self, input_ids, scores):
        return scores + self.mask[: scores.shape[-1]].to(scores.dtype)


_ALLOWED_TOKENS: dict = {}


def allowed_token_ids(tokenizer, keep, answer_end: str) -> tuple[int, ...]:
    """Ids of the tokens whose text passes keep(text, answer_end), plus end-of-sequence (cached per vocabulary).

    One scan of the vocabulary for every constrained decoder (numbers, pixels)."""
    key = (tokenizer.name_or_path, len(tokenizer), keep, answer_end)
    if key not in _ALLOWED_TOKENS:
        allowed = [i for i in range(len(tokenizer)) if (text := tokenizer.decode([i])) and keep(text, answer_end)]
        if tokenizer.eos_token_id is not None:
            allowed.append(tokenizer.eos_token_id)
        _ALLOWED_TOKENS[key] = tuple(allowed)
    return _ALLOWED_TOKENS[key]


def is_number_piece(text: str, answer_end: str) -> bool:
    """Text that can appear in a decimal number answer, or a piece of its terminator."""
    return all(ch in "0123456789.-" for ch in text) or bool(answer_end and text in answer_end)


def number_token_ids(tokenizer, answer_end: str) -> tuple[int, ...]:
    """Tokens that can appear in a decimal number answer or its terminator."""
    return allowed_token_ids(tokenizer, is_number_piece, answer_end)


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: Sequence[str], stop: str, max_new_tokens: int = 8,
                     batch_size: int = 32, allowed_token_ids: Sequence[int] | None = None) -> list[str]:
    """Greedy completions (the text after each prompt), stopped at `stop`."""
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    processors = LogitsProcessorList()
    if allowed_token_ids is not None:
        processors.append(_AllowOnly(allowed_token_ids, model.config.vocab_size, device))
    completions: list[str] = [""] * len(prompts)
    with model_autocast(model):
        for rows in _length_sorted_batches([len(p) for p in prompt_ids], batch_size):
            ids, mask = left_padded([prompt_ids[r] for r in rows], tokenizer.pad_token_id, device)
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, stop_strings=[stop] if stop else None,
                                 tokenizer=tokenizer, logits_processor=processors)
            texts = tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
            for r, text in zip(rows, texts):
                completions[r] = text
    return completions
