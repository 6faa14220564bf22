"""Loading: the embedded model (real), clear errors for models that cannot be loaded."""
import numpy as np
import pytest
import torch

import liftnb.models as models
from liftnb.models import EMBEDDED_RANDOM, EMBEDDED_SHUFFLED, TINY_RANDOM, ModelLoadError, embedded_model_dir, load_lm


def test_embedded_model_loads_from_the_converted_cache_without_converting_again(monkeypatch):
    folder = embedded_model_dir()
    weights = folder / "model.safetensors"
    assert weights.exists() and (folder / "config.json").exists()
    staging = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}-")]
    assert not staging  # atomic_folder's staging folders: none half-written left behind
    written = weights.stat().st_mtime_ns
    with monkeypatch.context() as patch:
        patch.setattr(models, "_gguf_dir", lambda: pytest.fail("the GGUF was looked up for a second conversion"))
        patch.setattr(models, "atomic_folder", lambda target: pytest.fail(f"{target} was written again"))
        load_lm(TINY_RANDOM, device="cpu")  # goes through embedded_model_dir for the tokenizer and config
        model, tokenizer = load_lm(device="cpu")
    assert weights.stat().st_mtime_ns == written
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "left"


def test_load_lm_flushes_denormals():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    try:
        small = torch.full((1,), 1e-30, dtype=torch.float32)
        assert (small * 1e-10).item() != 0.0  # 1e-40 is a float32 denormal
        load_lm(TINY_RANDOM, device="cpu")
        assert (small * 1e-10).item() == 0.0
    finally:
        torch.set_flush_denormal(True)


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
        # numpy's AVX-512 sort: the same check as torch's sort in a seventh of the time (20 -> 3 s for 135M values)
        assert np.array_equal(np.sort(before.detach().numpy().ravel()), np.sort(after.detach().numpy().ravel())), name
    embeddings = pretrained.get_input_embeddings().weight
    assert (embeddings != shuffled.get_input_embeddings().weight).float().mean() > 0.9
    again, _ = load_lm(EMBEDDED_SHUFFLED, device="cpu")
    assert torch.equal(again.get_input_embeddings().weight, shuffled.get_input_embeddings().weight)  # seeded


def test_unloadable_model_names_the_problem_and_the_offline_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_hub_reachable", lambda *a, **k: False)
    with pytest.raises(ModelLoadError) as caught:
        load_lm(str(tmp_path / "no-such-model"))
    message = str(caught.value)
    assert "no-such-model" in message and "load_lm()" in message and "embedded model" in message


def test_hub_id_offline_fails_fast_with_the_fix(monkeypatch):
    import transformers

    probes, tokenizer_tries = [], []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # liftnb then tries the cache, then the hub if reachable
    monkeypatch.setattr(models, "_hub_reachable", lambda *a, **k: probes.append(a) or False)
    from_pretrained = transformers.AutoTokenizer.from_pretrained

    def tokenizer_spy(*args, **kwargs):
        tokenizer_tries.append(kwargs.get("local_files_only"))
        return from_pretrained(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer_spy)
    with pytest.raises(ModelLoadError, match="cannot be reached.*embedded model"):
        load_lm("some-org/some-model-that-is-not-cached")
    assert len(probes) == 1  # one quick probe, no retries against the hub
    assert tokenizer_tries == [True]  # only the local cache was tried


def test_the_embedded_tokenizer_is_the_one_results_were_computed_with():
    import transformers

    _, tokenizer = load_lm(TINY_RANDOM)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|im_end|>"
    assert tokenizer("Given that x is 1.5###")["input_ids"][0] != tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert embedded_model_dir().name.endswith(f"-transformers-{transformers.__version__}")


class _OldTokenizer:
    """How transformers 5.0 read the GGUF: <|im_start|> as the end token, put before every text."""

    eos_token = "<|im_start|>"

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": ([1] if add_special_tokens else []) + [33]}


def test_an_embedded_tokenizer_read_differently_names_the_transformers_to_install():
    with pytest.raises(ModelLoadError, match=r"end token '<\|im_start\|>', special tokens added to prompts: True\); "
                                             r"liftnb needs transformers>=5.18: pip install -U 'transformers>=5.18'"):
        models._check_embedded_tokenizer(_OldTokenizer())


@pytest.mark.parametrize("preset, expected", [(None, "0"), ("1", "1")])
def test_hub_kernels_are_off_unless_the_user_turns_them_on(preset, expected):
    # on a GPU, transformers fetches them from the hub at model.train(): offline (an H200, 2026-12-04) every fit failed
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "USE_HUB_KERNELS"}
    if preset is not None:
        env["USE_HUB_KERNELS"] = preset
    shown = subprocess.run([sys.executable, "-c", "import os, liftnb; print(os.environ['USE_HUB_KERNELS'])"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert shown == expected
