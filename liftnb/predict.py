"""Prediction from a fine-tuned LM: label scoring over a shared KV cache, greedy and sampled generation."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .finetune.surgery import captured_output, decoder_of, head_of, layer_list, only_layers
from .models import attention_for


def model_autocast(model):
    """bf16 autocast when the model holds bf16 weights (as after bf16 training), else nothing."""
    parameter = next(model.parameters())
    if any(p.dtype == torch.bfloat16 for p in model.parameters()):
        return torch.autocast(parameter.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def contiguous_head_input(model):
    """Hand the output head a contiguous input while the block runs. Generation's first step feeds it only the last
    position, a strided view, and on CPU a bf16 matmul on such a view is ~1000x slower than on a copy (SmolLM2's
    49k-token head, 128 rows: 11.9 s against 0.01 s on 2 cores), which made that step most of generate's time."""
    handle = head_of(model).register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))
    try:
        yield
    finally:
        handle.remove()


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


class AnswerTrie:
    """The class answers' tokens as a prefix tree: each prefix an answer continues from is one input node.

    Scoring feeds the nodes after the prompt in one pass under a tree mask (a node sees the prompt and its own
    ancestors), so answers that share a prefix share its compute and no copy of the prompt's cache is made per
    answer. An edge is (node, next token); an answer's score is its first token's log-prob after the prompt plus
    the log-probs of its edges."""

    def __init__(self, answer_ids: Sequence[Sequence[int]]):
        self.n_answers = len(answer_ids)
        self.first_ids = [a[0] for a in answer_ids]
        self.lengths = [len(a) for a in answer_ids]
        nodes: dict[tuple, int] = {}
        edges: dict[tuple, int] = {}
        answer_edges: list[list[int]] = []
        for answer in answer_ids:
            path = []
            for depth in range(1, len(answer)):
                prefix = tuple(answer[:depth])
                node = nodes.setdefault(prefix, len(nodes))
                path.append(edges.setdefault((node, answer[depth]), len(edges)))
            answer_edges.append(path)
        self.node_ids = [prefix[-1] for prefix in nodes]
        self.node_depths = [len(prefix) for prefix in nodes]
        # sees[i, j]: node j is node i or one of its ancestors (a prefix of it)
        self.sees = torch.zeros((len(nodes), len(nodes)), dtype=torch.bool)
        for prefix, i in nodes.items():
            for depth in range(1, len(prefix) + 1):
                self.sees[i, nodes[prefix[:depth]]] = True
        self.edge_nodes = [node for node, _ in edges]
        self.edge_targets = [token for _, token in edges]
        # membership[e, c]: edge e lies on answer c's path
        self.membership = torch.zeros((len(edges), self.n_answers), dtype=torch.float32)
        for c, path in enumerate(answer_edges):
            self.membership[path, c] = 1.0

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    def to(self, device) -> dict:
        """The tensors one scoring pass needs, on the device."""
        return {"first_ids": torch.tensor(self.first_ids, device=device),
                "node_ids": torch.tensor(self.node_ids, dtype=torch.long, device=device),
                "node_offsets": torch.tensor(self.node_depths, dtype=torch.long, device=device) - 1,
                "edge_nodes": torch.tensor(self.edge_nodes, dtype=torch.long, device=device),
                "edge_targets": torch.tensor(self.edge_targets, dtype=torch.long, device=device),
                "sees": self.sees.to(device), "membership": self.membership.to(device)}


def _as_attention_mask(model, allowed: torch.Tensor) -> torch.Tensor:
    """A boolean 4-D mask (True: may attend) in the form the model's current attention kernel takes."""
    if getattr(model.config, "_attn_implementation", "eager") == "sdpa":
        return allowed
    # eager (and most others) add the mask to the scores
    return torch.zeros(allowed.shape, dtype=torch.float32, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(torch.float32).min)


def _tree_mask(model, prompt_mask: torch.Tensor, sees: torch.Tensor) -> torch.Tensor:
    """A 4-D attention mask (batch, 1, nodes, prompt + nodes) for the attention kernel the model uses."""
    batch, nodes = prompt_mask.shape[0], sees.shape[0]
    allowed = torch.cat([prompt_mask.bool()[:, None, :].expand(batch, nodes, -1),
                         sees[None].expand(batch, -1, -1)], dim=2)[:, None]
    return _as_attention_mask(model, allowed)


def _prompt_and_tree_allowed(prompt_mask: torch.Tensor, sees: torch.Tensor) -> torch.Tensor:
    """Who may attend to whom in one sequence of a left-padded prompt followed by the trie's nodes, (batch, 1, L, L):
    the prompt causally, each node the prompt and its ancestors, every position itself (so a padding row never has
    nothing to attend to, which would make NaNs under SDPA)."""
    batch, width = prompt_mask.shape
    nodes = sees.shape[0]
    keys = prompt_mask.bool()
    causal = torch.ones((width, width), dtype=torch.bool, device=keys.device).tril()
    top = causal[None] & keys[:, None, :]
    top = torch.cat([top, torch.zeros((batch, width, nodes), dtype=torch.bool, device=keys.device)], dim=2)
    bottom = torch.cat([keys[:, None, :].expand(batch, nodes, width), sees[None].expand(batch, -1, -1)], dim=2)
    allowed = torch.cat([top, bottom], dim=1)
    return (allowed | torch.eye(width + nodes, dtype=torch.bool, device=keys.device)[None])[:, None]


def _log_probs_of(head, hidden: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor,
                  chunk_rows: int) -> torch.Tensor:
    """log p(targets[i] | hidden[rows[i]]) for every i, each hidden row through the head once (many answers share
    one state), the vocabulary's logits held for chunk_rows states at a time. hidden: (states, dim)."""
    out = torch.empty(len(targets), dtype=torch.float32, device=hidden.device)
    for begin in range(0, hidden.shape[0], chunk_rows):
        stop = min(begin + chunk_rows, hidden.shape[0])
        picked = ((rows >= begin) & (rows < stop)).nonzero().squeeze(1)
        if len(picked):
            logp = torch.log_softmax(head(hidden[begin:stop]).float(), dim=-1)
            out[picked] = logp[rows[picked] - begin, targets[picked]]
    return out


def _answer_scores(head, last: torch.Tensor, nodes: torch.Tensor | None, trie: dict, chunk_rows: int) -> torch.Tensor:
    """Scores (batch, answers) from the final hidden states at each prompt's last position (batch, dim) and at the
    trie's nodes (batch, nodes, dim; None without nodes): first token after the prompt, then the edges' tokens."""
    batch, first = last.shape[0], trie["first_ids"]
    rows = torch.arange(batch, device=last.device)
    total = _log_probs_of(head, last, rows.repeat_interleave(len(first)), first.repeat(batch),
                          chunk_rows).view(batch, len(first))
    if nodes is None:
        return total
    edges = trie["edge_nodes"]
    states = (rows[:, None] * nodes.shape[1] + edges[None, :]).reshape(-1)  # the node state each edge continues from
    edge_lp = _log_probs_of(head, nodes.reshape(-1, nodes.shape[-1]), states, trie["edge_targets"].repeat(batch),
                            chunk_rows).view(batch, len(edges))
    return total + edge_lp @ trie["membership"]


def _score_batch(model, ids: torch.Tensor, mask: torch.Tensor, trie: dict, chunk_rows: int) -> torch.Tensor:
    """Scores (batch, answers) of one left-padded prompt batch: the prompt once, then the trie's nodes once."""
    body, head = decoder_of(model), head_of(model)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    n_nodes = len(trie["node_ids"])
    out = body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=n_nodes > 0)
    if n_nodes == 0:
        return _answer_scores(head, out.last_hidden_state[:, -1], None, trie, chunk_rows)
    node_positions = mask.sum(-1, keepdim=True) + trie["node_offsets"][None, :]
    cache = "cache" if "cache" in out else "past_key_values"  # transformers 5 renamed it; 4.56 knows the old name
    hidden = body(input_ids=trie["node_ids"][None].expand(ids.shape[0], -1), position_ids=node_positions,
                  attention_mask=_tree_mask(model, mask, trie["sees"]), use_cache=True,
                  **{cache: out[cache]}).last_hidden_state  # (batch, nodes, dim)
    return _answer_scores(head, out.last_hidden_state[:, -1], hidden, trie, chunk_rows)


class FrozenPrefixScorer:
    """Label scoring of fixed prompts (a validation set) on a model whose layers[:start] are frozen: their states
    for every prompt and answer-trie node are computed once; each call runs only layers[start:], the trained ones.
    Scores equal `score_answers` on the same model (one sequence of prompt + nodes under the same tree mask)."""

    @torch.no_grad()
    def __init__(self, model, tokenizer, prompts: Sequence[str], answers: Sequence[str], start: int,
                 batch_size: int = 32, chunk_rows: int = 1024):
        self.model, self.start, self.chunk_rows, self.n_rows = model, start, chunk_rows, len(prompts)
        device = next(model.parameters()).device
        answer_ids = tokenizer(list(answers), add_special_tokens=False)["input_ids"]
        prompt_ids = tokenizer(list(prompts))["input_ids"]
        self.trie = AnswerTrie(answer_ids)
        self.on_device = trie = self.trie.to(device)
        layers = layer_list(model)[2]
        self.batches = []  # (rows, states at layer start, boolean mask, positions, prompt width)
        with model_autocast(model), only_layers(model, 0, start), captured_output(layers[start - 1]) as captured:
            for rows in _length_sorted_batches([len(p) for p in prompt_ids], batch_size):
                ids, mask = left_padded([prompt_ids[r] for r in rows], tokenizer.pad_token_id, device)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                nodes = trie["node_ids"][None].expand(len(rows), -1)
                positions = torch.cat([positions, mask.sum(-1, keepdim=True) + trie["node_offsets"][None]], 1)
                allowed = _prompt_and_tree_allowed(mask, trie["sees"])
                with attention_for(model, allowed.shape[-1]):
                    decoder_of(model)(input_ids=torch.cat([ids, nodes], 1), position_ids=positions,
                                      attention_mask=_as_attention_mask(model, allowed), use_cache=False)
                self.batches.append((rows, captured["h"].detach().clone(), allowed, positions, ids.shape[1]))

    @torch.no_grad()
    def __call__(self) -> np.ndarray:
        """Scores (rows, answers) from the model's current trained layers, as `score_answers` defines them."""
        model, trie = self.model, self.on_device
        body, head = decoder_of(model), head_of(model)
        scores = np.zeros((self.n_rows, self.trie.n_answers), dtype=np.float64)
        with model_autocast(model), only_layers(model, self.start, None):
            for rows, states, allowed, positions, width in self.batches:
                with attention_for(model, allowed.shape[-1]):
                    hidden = body(inputs_embeds=states, position_ids=positions, use_cache=False,
                                  attention_mask=_as_attention_mask(model, allowed)).last_hidden_state
                nodes = hidden[:, width:] if self.trie.n_nodes else None
                total = _answer_scores(head, hidden[:, width - 1], nodes, trie, self.chunk_rows)
                scores[rows] = total.double().cpu().numpy()
        return scores


@torch.no_grad()
def score_answers(model, tokenizer, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 32,
                  normalize: str | None = None, chunk_rows: int = 1024) -> np.ndarray:
    """Log-likelihood of every answer after every prompt, shape (rows, answers).

    The prompt runs once; the answers continue from its KV cache as one prefix tree (`AnswerTrie`), so shared
    prefixes run once and memory does not grow with copies of the prompt per answer. Scores are the sum of the
    answer's token log-probs (normalize=None, the default: answers end with the terminator, so the sum is the
    probability of the whole completion and class names that share a prefix are told apart); "mean" divides by
    the answer's token count. The vocabulary's logits are held for chunk_rows positions at a time.
    """
    if normalize not in (None, "mean"):
        raise ValueError(f"normalize must be None or 'mean', not {normalize!r}.")
    device = next(model.parameters()).device
    answer_ids = tokenizer(list(answers), add_special_tokens=False)["input_ids"]
    if any(len(a) == 0 for a in answer_ids):
        raise ValueError("An answer tokenizes to nothing; every class needs a non-empty answer text.")
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    trie = AnswerTrie(answer_ids)
    on_device = trie.to(device)
    scores = np.zeros((len(prompts), trie.n_answers), dtype=np.float64)
    with model_autocast(model):
        for rows in _length_sorted_batches([len(p) for p in prompt_ids], batch_size):
            ids, mask = left_padded([prompt_ids[r] for r in rows], tokenizer.pad_token_id, device)
            with attention_for(model, ids.shape[1] + trie.n_nodes):
                scores[rows] = _score_batch(model, ids, mask, on_device, chunk_rows).double().cpu().numpy()
    if normalize == "mean":
        scores /= np.array(trie.lengths, dtype=np.float64)[None, :]
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


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding: temperature, top-k and top-p (nucleus) applied after any token constraint, n completions
    per prompt, a seed (the same seed, prompts and batch size give the same completions)."""

    temperature: float = 1.0  # < 1 sharpens the model's distribution, > 1 flattens it
    top_k: int | None = None  # keep only the k most likely tokens (None: all)
    top_p: float | None = None  # keep the fewest tokens whose probability reaches p (None: all)
    n: int = 1  # completions per prompt
    seed: int = 0

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, not {self.temperature!r}; greedy decoding is sampling=None.")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, not {self.top_k!r}.")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] or None, not {self.top_p!r}.")
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be a positive integer, not {self.n!r}.")

    def generate_kwargs(self) -> dict:
        """model.generate's settings; top_k=0 and top_p=1 switch off the defaults some versions set (top_k=50)."""
        return {"do_sample": True, "temperature": float(self.temperature), "top_k": self.top_k or 0,
                "top_p": 1.0 if self.top_p is None else float(self.top_p), "num_return_sequences": self.n}


def _complete(model, tokenizer, prompts: Sequence[str], stop: str, max_new_tokens: int, batch_size: int,
              allowed_token_ids: Sequence[int] | None, sampling: Sampling | None) -> list[list[str]]:
    """Completions (the text after each prompt, stopped at `stop`): greedy, or sampling.n sampled ones per prompt."""
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    processors = LogitsProcessorList()
    if allowed_token_ids is not None:  # before temperature/top-k/top-p: those then see allowed tokens only
        processors.append(_AllowOnly(allowed_token_ids, model.config.vocab_size, device))
    n = sampling.n if sampling else 1
    settings = sampling.generate_kwargs() if sampling else {"do_sample": False}
    completions: list[list[str]] = [[] for _ in prompts]
    rows_per_batch = max(1, batch_size // n)  # n sequences per prompt: the batch's sequences stay batch_size
    with model_autocast(model), contiguous_head_input(model), \
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for number, rows in enumerate(_length_sorted_batches([len(p) for p in prompt_ids], rows_per_batch)):
            if sampling:
                torch.manual_seed(sampling.seed * 1_000_003 + number)  # per batch: reproducible, rows independent
            ids, mask = left_padded([prompt_ids[r] for r in rows], tokenizer.pad_token_id, device)
            with attention_for(model, ids.shape[1] + max_new_tokens):
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                     pad_token_id=tokenizer.pad_token_id, stop_strings=[stop] if stop else None,
                                     tokenizer=tokenizer, logits_processor=processors, **settings)
            texts = tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
            for position, r in enumerate(rows):  # generate returns a prompt's n sequences next to each other
                completions[r] = texts[position * n:(position + 1) * n]
    return completions


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: Sequence[str], stop: str, max_new_tokens: int = 8,
                     batch_size: int = 32, allowed_token_ids: Sequence[int] | None = None) -> list[str]:
    """Greedy completions (the text after each prompt), stopped at `stop`."""
    return [texts[0] for texts in _complete(model, tokenizer, prompts, stop, max_new_tokens, batch_size,
                                            allowed_token_ids, None)]


@torch.no_grad()
def sample_answers(model, tokenizer, prompts: Sequence[str], stop: str, sampling: Sampling = Sampling(),
                   max_new_tokens: int = 8, batch_size: int = 32,
                   allowed_token_ids: Sequence[int] | None = None) -> list[list[str]]:
    """sampling.n sampled completions per prompt (a list of n texts for each), stopped at `stop`."""
    return _complete(model, tokenizer, prompts, stop, max_new_tokens, batch_size, allowed_token_ids, sampling)
