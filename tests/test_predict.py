"""Label scoring over the shared KV cache must equal brute-force scoring of every full sequence."""
import numpy as np
import pytest
import torch

from liftnb.predict import generate_answers, number_token_ids, score_answers, softmax_rows

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
