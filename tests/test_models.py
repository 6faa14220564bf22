"""Loading: the embedded model (real), clear errors for models that cannot be loaded."""
import time

import pytest
import torch

from liftnb.models import EMBEDDED_RANDOM, EMBEDDED_SHUFFLED, ModelLoadError, embedded_model_dir, load_lm


def test_embedded_model_loads_fast_from_the_converted_cache():
    folder = embedded_model_dir()
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".convert-")]  # no half-written staging
    started = time.perf_counter()
    model, tokenizer = load_lm(device="cpu")
    assert time.perf_counter() - started < 30  # generous: the point is that no GGUF conversion happens again
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "left"
    assert torch.is_flush_denormal_enabled() if hasattr(torch, "is_flush_denormal_enabled") else True


def test_embedded_model_knows_language():
    model, tokenizer = load_lm(device="cpu")
    ids = tokenizer("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1]:])


def test_random_same_architecture_differs_from_pretrained():
    pretrained, _ = load_lm(device="cpu")
    random_model, _ = load_lm(EMBEDDED_RANDOM, device="cpu")
    assert pretrained.config.num_hidden_layers == random_model.config.num_hidden_layers
    assert not torch.equal(pretrained.get_input_embeddings().weight, random_model.get_input_embeddings().weight)


def test_shuffled_weights_keep_each_tensors_values_but_not_their_order():
    pretrained, _ = load_lm(device="cpu")
    shuffled, _ = load_lm(EMBEDDED_SHUFFLED, device="cpu")
    for (name, before), after in zip(pretrained.named_parameters(), shuffled.parameters()):
        assert torch.equal(before.flatten().sort().values, after.flatten().sort().values), name
    embeddings = pretrained.get_input_embeddings().weight
    assert (embeddings != shuffled.get_input_embeddings().weight).float().mean() > 0.9
    again, _ = load_lm(EMBEDDED_SHUFFLED, device="cpu")
    assert torch.equal(again.get_input_embeddings().weight, shuffled.get_input_embeddings().weight)  # seeded


def test_unloadable_model_names_the_problem_and_the_offline_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="embedded model"):
        load_lm(str(tmp_path / "no-such-model"))


def test_hub_id_offline_fails_fast_with_the_fix(monkeypatch):
    import liftnb.models as models

    monkeypatch.setattr(models, "_hub_reachable", lambda *a, **k: False)
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match="cannot be reached.*embedded model"):
        load_lm("some-org/some-model-that-is-not-cached")
    assert time.perf_counter() - started < 20
