"""The frozen-layer cache: the frozen lower layers run once per example, later epochs run only the top layers."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..models import attention_for
from .data import Example, collate
from .surgery import captured_output, decoder_of, layer_list, only_layers


class FrozenLayerCache:
    """Runs the frozen lower layers once per example and trains on the top layers only."""

    def __init__(self, trainer: Trainer, start: int, hidden: list[torch.Tensor]):
        self.trainer, self.start, self.hidden = trainer, start, hidden
        self.last_layer_answer_only = False  # set by build() where it matches the full model

    @classmethod
    def build(cls, trainer: Trainer, examples: Sequence[Example]) -> "FrozenLayerCache | None":
        model = trainer.model
        if any(p.requires_grad for n, p in model.named_parameters() if "embed" in n or "wte" in n):
            return None
        _, _, layers = layer_list(model)
        start = len(layers) - trainer.config.trained_layer_count(len(layers))
        if start == 0:
            return None
        body = decoder_of(model)
        hidden = []
        size = max(trainer.config.batch_size, 32)
        with (torch.no_grad(), trainer.autocast(), only_layers(model, 0, start),
              captured_output(layers[start - 1]) as captured):
            for begin in range(0, len(examples), size):
                chunk = examples[begin:begin + size]
                inputs = collate(chunk, trainer.tokenizer.pad_token_id, trainer.device)
                with attention_for(model, inputs["input_ids"].shape[1]):
                    body(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                         position_ids=inputs["position_ids"], use_cache=False)
                for row, example in enumerate(chunk):
                    hidden.append(captured["h"][row, :len(example.input_ids)].detach().clone())
        cache = cls(trainer, start, hidden)
        probe = examples[: min(4, len(examples))]
        if not cache._agrees_with_full_model(probe):
            return None
        # The last layer's output matters only where an answer token is predicted: with a Llama-style layer it
        # runs there alone (keys and values still cover every position), ~1/k of the trained compute saved.
        if _is_llama_style(layer_list(model)[2][-1]) and start < len(layers) - 1:
            cache.last_layer_answer_only = True
            if not cache._agrees_with_full_model(probe):
                cache.last_layer_answer_only = False
        return cache

    def _states(self, indices: Sequence[int], width: int) -> torch.Tensor:
        states = torch.zeros((len(indices), width, self.hidden[0].shape[-1]), dtype=self.hidden[0].dtype,
                             device=self.trainer.device)
        for row, index in enumerate(indices):
            states[row, :len(self.hidden[index])] = self.hidden[index]
        return states

    def forward(self, indices: Sequence[int], inputs: dict) -> torch.Tensor:
        """Final-norm hidden states of the whole batch (batch, width, dim), from the cached lower layers."""
        states = self._states(indices, inputs["input_ids"].shape[1])
        with only_layers(self.trainer.model, self.start, None):
            return decoder_of(self.trainer.model)(
                inputs_embeds=states, attention_mask=inputs["attention_mask"],
                position_ids=inputs["position_ids"], use_cache=False).last_hidden_state

    def answer_states(self, indices: Sequence[int], inputs: dict) -> torch.Tensor:
        """Final-norm hidden states at the answer-predicting positions only, (n, dim) in predict_at order."""
        if not self.last_layer_answer_only:
            hidden = self.forward(indices, inputs)
            return hidden.reshape(-1, hidden.shape[-1]).index_select(0, inputs["predict_at"])
        model = self.trainer.model
        body = decoder_of(model)
        _, _, layers = layer_list(model)
        last = layers[-1]
        states = self._states(indices, inputs["input_ids"].shape[1])
        with only_layers(model, self.start, len(layers) - 1), captured_output(layers[-2]) as captured:
            body(inputs_embeds=states, attention_mask=inputs["attention_mask"],
                 position_ids=inputs["position_ids"], use_cache=False)
        hidden = captured["h"]
        width = hidden.shape[1]
        rows, cols = inputs["predict_at"] // width, inputs["predict_at"] % width
        cos, sin = body.rotary_emb(hidden, position_ids=inputs["position_ids"])
        return body.norm(_llama_layer_at(last, hidden, rows, cols, cos, sin, inputs["attention_mask"]))

    def _agrees_with_full_model(self, examples: Sequence[Example]) -> bool:
        """Architectures that transform inputs_embeds (GPT-2's position embeddings) fail this and train uncached."""
        inputs = collate(examples, self.trainer.tokenizer.pad_token_id, self.trainer.device)
        with torch.no_grad(), self.trainer.autocast():
            full = decoder_of(self.trainer.model)(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                position_ids=inputs["position_ids"], use_cache=False).last_hidden_state
            full = full.reshape(-1, full.shape[-1]).index_select(0, inputs["predict_at"])
            cached = self.answer_states(list(range(len(examples))), inputs)
        error = (full.float() - cached.float()).abs().max().item()
        scale = full.float().abs().max().item() + 1e-6
        return error <= 0.02 * scale


def _is_llama_style(layer: nn.Module) -> bool:
    """A pre-norm decoder layer with separate q/k/v/o projections and a gated MLP (Llama, Mistral, Qwen2, SmolLM)."""
    attention = getattr(layer, "self_attn", None)
    return (all(hasattr(layer, n) for n in ("input_layernorm", "post_attention_layernorm", "mlp"))
            and attention is not None and all(hasattr(attention, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj"))
            and getattr(attention, "head_dim", None) is not None and not getattr(attention, "sliding_window", None))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _llama_layer_at(layer, hidden, rows, cols, cos, sin, attention_mask) -> torch.Tensor:
    """A Llama-style decoder layer's output at the positions (rows, cols) only: (n, dim).

    Keys and values are computed at every position; queries, attention output and MLP only where asked. Padding is
    on the right, so the causal mask (key position <= query position) also excludes the padding."""
    attention = layer.self_attn
    batch, width, _ = hidden.shape
    head_dim = attention.head_dim
    normed = layer.input_layernorm(hidden)
    keys = attention.k_proj(normed).view(batch, width, -1, head_dim).transpose(1, 2)
    values = attention.v_proj(normed).view(batch, width, -1, head_dim).transpose(1, 2)
    keys = keys * cos.unsqueeze(1) + _rotate_half(keys) * sin.unsqueeze(1)
    queries = attention.q_proj(normed[rows, cols]).view(len(rows), -1, head_dim)  # (n, heads, head_dim)
    queries = queries * cos[rows, cols].unsqueeze(1) + _rotate_half(queries) * sin[rows, cols].unsqueeze(1)
    groups = queries.shape[1] // keys.shape[1]
    keys = keys[rows].repeat_interleave(groups, dim=1)  # (n, heads, width, head_dim)
    values = values[rows].repeat_interleave(groups, dim=1)
    scores = torch.einsum("nhd,nhtd->nht", queries, keys) * attention.scaling
    allowed = (torch.arange(width, device=hidden.device)[None, :] <= cols[:, None]) & attention_mask[rows].bool()
    scores = scores.masked_fill(~allowed[:, None, :], torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(values.dtype)
    mixed = torch.einsum("nht,nhtd->nhd", weights, values).reshape(len(rows), -1)
    out = hidden[rows, cols] + attention.o_proj(mixed)
    return out + layer.mlp(layer.post_attention_layernorm(out))


