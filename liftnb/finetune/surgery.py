"""Model surgery for any causal LM: find its body, head and layers; freeze, add LoRA, hold frozen weights in bf16."""
from __future__ import annotations

import contextlib
from typing import Sequence

import torch
from torch import nn

from ..models import bf16_supported
from .config import FitConfig


def decoder_of(model) -> nn.Module:
    """The transformer body (embeddings + layers + final norm) of a causal LM, peft-wrapped or not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(base, base.base_model_prefix, None)
    if body is None:
        raise TypeError(f"Cannot find the transformer body of {type(base).__name__}.")
    return body


def head_of(model) -> nn.Module:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_output_embeddings()


def layer_list(model) -> tuple[nn.Module, str, nn.ModuleList]:
    """(owner, attribute, ModuleList) of the transformer layers, found for any architecture."""
    body = decoder_of(model)
    n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    for name, child in body.named_children():
        if isinstance(child, nn.ModuleList) and (n_layers is None or len(child) == n_layers):
            return body, name, child
    raise TypeError(f"Cannot find the layer list of {type(body).__name__}.")


def linear_module_names(model, layer_indices: Sequence[int]) -> list[str]:
    """Full names of every nn.Linear inside the given layers (LoRA targets for any architecture)."""
    _, attribute, layers = layer_list(model)
    body_prefix = None
    for name, module in model.named_modules():
        if module is layers:
            body_prefix = name
    names = []
    for index in layer_indices:
        for sub, module in layers[index].named_modules():
            if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":  # GPT-2 uses Conv1D
                names.append(f"{body_prefix}.{index}.{sub}")
    return names


def answer_logits(model, hidden: torch.Tensor, predict_at: torch.Tensor | None) -> torch.Tensor:
    """Logits only where an answer token is predicted: the vocabulary head is skipped on prompt positions.

    hidden is (batch, width, dim) with predict_at the flat positions, or (n, dim) already selected (predict_at None)."""
    flat = hidden if predict_at is None else hidden.reshape(-1, hidden.shape[-1]).index_select(0, predict_at)
    return head_of(model)(flat).float()



def wants_bf16(precision: str, device: torch.device) -> bool:
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', not {precision!r}.")
    if precision == "auto":
        return bf16_supported(device)
    return precision == "bf16"


def trainable_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def prepare_trainable(model, config: FitConfig, use_bf16: bool):
    """Freeze what is not trained, add LoRA adapters if asked; frozen weights go to bf16 when use_bf16."""
    _, _, layers = layer_list(model)
    n_layers = len(layers)
    k = config.trained_layer_count(n_layers)
    trained_layers = list(range(n_layers - k, n_layers))
    if config.lora:
        from peft import LoraConfig, get_peft_model

        for p in model.parameters():
            p.requires_grad_(False)
        lora = LoraConfig(r=int(config.lora), lora_alpha=config.lora_alpha or 2 * int(config.lora),
                          lora_dropout=config.lora_dropout, bias="none",
                          target_modules=linear_module_names(model, trained_layers))
        model = get_peft_model(model, lora)
    else:
        trained = {id(p) for i in trained_layers for p in layers[i].parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in trained or config.train_layers is None)
    if use_bf16:
        # Frozen weights never update, so bf16 copies lose nothing and save the per-step cast under autocast.
        for p in model.parameters():
            if not p.requires_grad and p.is_floating_point():
                p.data = p.data.to(torch.bfloat16)
    return model


@contextlib.contextmanager
def captured_output(module: nn.Module):
    """Keeps the hidden states a layer outputs on each forward pass in the yielded dict, under "h"."""
    box = {}

    def keep(module, args, output):
        box["h"] = output[0] if isinstance(output, tuple) else output

    handle = module.register_forward_hook(keep)
    try:
        yield box
    finally:
        handle.remove()


@contextlib.contextmanager
def only_layers(model, start: int, stop: int | None):
    """Temporarily keep only layers[start:stop] in the model (the rest are skipped by its forward)."""
    owner, attribute, layers = layer_list(model)
    setattr(owner, attribute, nn.ModuleList(list(layers)[start:stop]))
    try:
        yield
    finally:
        setattr(owner, attribute, layers)


