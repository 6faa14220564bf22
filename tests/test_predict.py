"""Label scoring over the shared KV cache must equal brute-force scoring of every full sequence."""
import numpy as np
import pytest
import torch

from liftnb.models import LONG_SEQUENCE_TOKENS, TINY_RANDOM, attention_for, load_lm
from liftnb.predict import (AnswerTrie, FrozenPrefixScorer, Sampling, generate_answers, number_token_ids, sample_answers, score_answers,
                            softmax_rows)

PROMPTS = ["When we have x1=1, What is this type?###", "Given that sepal length is 5.1, petal width is 0.2, "
           "What is the category?###", "When we have x1=-3.25, x2=7, What is this type?###"]


def brute_force(model, tokenizer, prompts, answers):
    out = np.zeros((len(prompts), len(answers)))
    for i, prompt in enumerate(prompts):
        p = tokenizer(prompt)["input_ids"]
        for j, answer in enumerate(answers):
            a = tokenizer(answer, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([p + a])
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            out[i, j] = sum(logp[len(p) - 1 + k, t].item() for k, t in enumerate(a))
    return out


@pytest.mark.parametrize("answers", [
    ["0@@@", "1@@@", "2@@@"],  # one token + terminator
    ["1@@@", "10@@@", "100@@@"],  # shared prefixes: the terminator tells them apart
    ["setosa@@@", "versicolor@@@", "virginica@@@", "set@@@"],  # multi-token names of different lengths
    ["7", "seven"],  # no terminator, single- and multi-token
])
def test_scores_equal_brute_force(tiny, answers):
    model, tokenizer = tiny
    fast = score_answers(model, tokenizer, PROMPTS, answers, batch_size=2)
    assert fast.shape == (len(PROMPTS), len(answers))
    np.testing.assert_allclose(fast, brute_force(model, tokenizer, PROMPTS, answers), rtol=1e-4, atol=1e-4)


def test_one_hundred_multi_token_classes_equal_brute_force(tiny):
    """Many classes with shared prefixes ("class 1", "class 10", ...): the trie scores all in one pass per batch."""
    model, tokenizer = tiny
    answers = [f"class {i}@@@" for i in range(100)]
    fast = score_answers(model, tokenizer, PROMPTS, answers, batch_size=2, chunk_rows=37)
    np.testing.assert_allclose(fast, brute_force(model, tokenizer, PROMPTS, answers), rtol=1e-4, atol=1e-4)


def test_the_trie_runs_each_shared_prefix_once(tiny):
    _, tokenizer = tiny
    answers = ["class 1@@@", "class 10@@@", "class 2@@@"]
    ids = tokenizer(answers, add_special_tokens=False)["input_ids"]
    trie = AnswerTrie(ids)
    prefixes = {tuple(a[:d]) for a in ids for d in range(1, len(a))}
    assert trie.n_nodes == len(prefixes) < sum(len(a) - 1 for a in ids)
    assert trie.membership.sum(0).tolist() == [len(a) - 1 for a in ids]  # each answer's path has all its edges
    # a node sees exactly its own prefixes
    assert trie.sees.sum(1).tolist() == trie.node_depths


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_scores_equal_brute_force_with_either_attention_kernel_and_long_prompts(kernel):
    """Prompts longer than LONG_SEQUENCE_TOKENS: a model that load_lm gave eager switches to SDPA inside scoring."""
    model, tokenizer = load_lm(TINY_RANDOM, device="cpu", attn_implementation=None if kernel == "eager" else kernel)
    long_prompt = "Given that " + ", ".join(f"p{i} is {i % 7}" for i in range(80)) + ", What is the digit?###"
    assert len(tokenizer(long_prompt)["input_ids"]) > LONG_SEQUENCE_TOKENS
    prompts = [long_prompt, PROMPTS[1]]
    answers = ["setosa@@@", "set@@@", "7@@@"]
    fast = score_answers(model, tokenizer, prompts, answers, batch_size=2)
    np.testing.assert_allclose(fast, brute_force(model, tokenizer, prompts, answers), rtol=1e-4, atol=1e-4)
    assert model.config._attn_implementation == kernel  # restored after scoring


def test_generation_on_long_prompts_is_the_same_under_the_switched_kernel():
    switched, tokenizer = load_lm(TINY_RANDOM, device="cpu")
    fixed, _ = load_lm(TINY_RANDOM, device="cpu", attn_implementation="eager")
    prompts = ["Given that " + ", ".join(f"p{i} is {i % 5}" for i in range(90)) + ", What is it?###", PROMPTS[0]]
    assert generate_answers(switched, tokenizer, prompts, stop="@@@", max_new_tokens=4) == \
        generate_answers(fixed, tokenizer, prompts, stop="@@@", max_new_tokens=4)


def test_attention_switches_by_length_only_where_load_lm_chose_the_kernel():
    chosen, _ = load_lm(TINY_RANDOM, device="cpu")
    with attention_for(chosen, LONG_SEQUENCE_TOKENS - 1):
        assert chosen.config._attn_implementation == "eager"
    with attention_for(chosen, LONG_SEQUENCE_TOKENS):
        assert chosen.config._attn_implementation == "sdpa"
    assert chosen.config._attn_implementation == "eager"
    asked, _ = load_lm(TINY_RANDOM, device="cpu", attn_implementation="eager")
    with attention_for(asked, 10 * LONG_SEQUENCE_TOKENS):
        assert asked.config._attn_implementation == "eager"  # the user's choice stands


def test_mean_normalisation_divides_by_token_count(tiny):
    model, tokenizer = tiny
    answers = ["setosa@@@", "1@@@"]
    total = score_answers(model, tokenizer, PROMPTS, answers)
    mean = score_answers(model, tokenizer, PROMPTS, answers, normalize="mean")
    lengths = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    np.testing.assert_allclose(mean, total / np.array(lengths))
    with pytest.raises(ValueError, match="normalize"):
        score_answers(model, tokenizer, PROMPTS, answers, normalize="max")


def test_probabilities_are_a_softmax_over_classes():
    scores = np.log(np.array([[0.2, 0.1, 0.1], [0.5, 0.25, 0.25]]))
    probs = softmax_rows(scores)
    np.testing.assert_allclose(probs.sum(1), 1)
    np.testing.assert_allclose(probs[0], [0.5, 0.25, 0.25])


def test_generation_returns_only_the_completion_and_respects_allowed_tokens(tiny):
    model, tokenizer = tiny
    allowed = number_token_ids(tokenizer, "@@@")
    texts = generate_answers(model, tokenizer, PROMPTS, stop="@@@", max_new_tokens=5, allowed_token_ids=allowed)
    assert len(texts) == len(PROMPTS)
    for text in texts:
        assert "What is" not in text
        assert set(text) <= set("0123456789.-@")


# ----- sampled decoding -------------------------------------------------------------------------------------------
def test_sampling_returns_n_completions_per_prompt_reproducibly_by_seed(tiny):
    model, tokenizer = tiny
    first = sample_answers(model, tokenizer, PROMPTS, stop="@@@", sampling=Sampling(n=4, seed=1), max_new_tokens=6)
    again = sample_answers(model, tokenizer, PROMPTS, stop="@@@", sampling=Sampling(n=4, seed=1), max_new_tokens=6)
    other = sample_answers(model, tokenizer, PROMPTS, stop="@@@", sampling=Sampling(n=4, seed=2), max_new_tokens=6)
    assert [len(texts) for texts in first] == [4] * len(PROMPTS)
    assert first == again
    assert first != other
    assert len({text for texts in first for text in texts}) > len(PROMPTS)  # samples differ, not one answer n times


def test_sampling_leaves_the_callers_random_state_alone(tiny):
    model, tokenizer = tiny
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    sample_answers(model, tokenizer, PROMPTS, stop="@@@", sampling=Sampling(n=2), max_new_tokens=3)
    assert torch.equal(torch.rand(3), expected)


def test_top_k_one_is_greedy_decoding(tiny):
    model, tokenizer = tiny
    greedy = generate_answers(model, tokenizer, PROMPTS, stop="@@@", max_new_tokens=6)
    sampled = sample_answers(model, tokenizer, PROMPTS, stop="@@@", sampling=Sampling(top_k=1, n=3, temperature=2.0),
                             max_new_tokens=6)
    assert sampled == [[text] * 3 for text in greedy]


@pytest.mark.parametrize("sampling", [Sampling(n=3), Sampling(n=3, temperature=5.0, top_p=0.9),
                                      Sampling(n=3, top_k=2)])
def test_sampling_respects_allowed_tokens(tiny, sampling):
    """The constraint applies before temperature, top-k and top-p, so even a flat distribution keeps to it."""
    model, tokenizer = tiny
    allowed = number_token_ids(tokenizer, "@@@")
    texts = sample_answers(model, tokenizer, PROMPTS, stop="@@@", sampling=sampling, max_new_tokens=5,
                           allowed_token_ids=allowed, batch_size=4)
    for text in (t for row in texts for t in row):
        assert set(text) <= set("0123456789.-@")


def test_the_batch_holds_n_sequences_per_prompt_within_batch_size(tiny):
    model, tokenizer = tiny
    small = sample_answers(model, tokenizer, PROMPTS, stop="@@@", sampling=Sampling(n=3), max_new_tokens=4,
                           batch_size=1)  # one prompt a batch even though n > batch_size
    assert [len(texts) for texts in small] == [3] * len(PROMPTS)


@pytest.mark.parametrize("settings", [{"temperature": 0}, {"temperature": -1.0}, {"top_k": 0}, {"top_k": 1.5},
                                      {"top_p": 0.0}, {"top_p": 1.5}, {"n": 0}])
def test_bad_sampling_settings_are_named(settings):
    with pytest.raises(ValueError, match=next(iter(settings))):
        Sampling(**settings)


# ----- validation scoring from cached frozen layers ---------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
@pytest.mark.parametrize("answers", [["0@@@", "1@@@", "2@@@"], ["10@@@", "11@@@", "2@@@", "123@@@"]])
def test_the_frozen_prefix_scorer_equals_score_answers_and_follows_the_trained_layers(kernel, answers):
    model, tokenizer = load_lm(TINY_RANDOM, device="cpu", attn_implementation=kernel)
    prompts = PROMPTS + ["x" * 40 + " What is this type?###"]
    scorer = FrozenPrefixScorer(model, tokenizer, prompts, answers, start=1, batch_size=2)
    np.testing.assert_allclose(scorer(), score_answers(model, tokenizer, prompts, answers), atol=1e-4, rtol=1e-5)
    with torch.no_grad():  # "training" moves the top layer: the scorer reads the new weights, not a copy
        for parameter in model.model.layers[1].parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    np.testing.assert_allclose(scorer(), score_answers(model, tokenizer, prompts, answers), atol=1e-4, rtol=1e-5)


def test_generation_hands_the_head_a_contiguous_input_and_leaves_no_hook(tiny):
    # the first generation step feeds the head a strided view of the last position: on CPU a bf16 matmul on such a
    # view ran ~1000x slower than on a copy, so generation makes it contiguous (same numbers)
    from liftnb.finetune.surgery import head_of

    model, tokenizer = tiny
    head, seen = head_of(model), []
    spy = head.register_forward_hook(lambda module, args, output: seen.append(args[0].is_contiguous()))
    try:
        generate_answers(model, tokenizer, ["x1=0.5, x2=1.25", "x1=3"], stop="@@@", max_new_tokens=2)
    finally:
        spy.remove()
    assert seen and all(seen), seen
    assert not head._forward_pre_hooks
