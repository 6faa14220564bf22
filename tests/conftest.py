"""Shared fixtures: a tiny randomly initialised Llama with the embedded tokenizer (plumbing tests only)."""
import pytest
import torch

from liftnb.models import TINY_RANDOM, load_lm

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def tiny():
    """(model, tokenizer): 2-layer random Llama, fp32, CPU."""
    return load_lm(TINY_RANDOM, device="cpu")
