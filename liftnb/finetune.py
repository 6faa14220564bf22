"""Fine-tuning a causal LM on prompt -> answer text: loss on the answer tokens only, full or LoRA."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from .models import bf16_supported


@dataclass
class FitConfig:
    """Hyperparameters of one LIFT fine-tuning run."""

    epochs: int = 6
    batch_size: int = 8
    learning_rate: float | None = None  # None: 1e-3 LoRA, 2e-4 top layers only, 5e-5 all layers
    weight_decay: float = 0.01  # as in the paper
    warmup_ratio: float = 0.06  # fraction of steps with linearly rising lr, then linear decay to 0
    lora: int | None = None  # LoRA rank; None: full fine-tuning of the trained layers
    lora_alpha: float | None = None  # None: 2 * rank
    lora_dropout: float = 0.0
    train_layers: int | None = 12  # train only the top k transformer layers (None: all, embeddings included);
    # on Iris the top 12 of SmolLM2's 30 (lr 2e-4, 6 epochs) reached 1.0 on two seeds where the top 6 was unstable
    cache_frozen: bool = True  # with train_layers, compute the frozen lower layers once and reuse them
    precision: str = "auto"  # "bf16": frozen weights in bf16 + autocast; "fp32"; "auto": bf16 where native
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1  # optimizer step every k batches (larger effective batch on a small GPU)
    checkpoint_dir: str | None = None  # write a resumable checkpoint here after every epoch
    seed: int = 0
    shuffle: bool = True

    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        if self.lora:
            return 1e-3
        return 5e-5 if self.train_layers is None else 2e-4


# ----- data ---------------------------------------------------------------------------------------------------
@dataclass
class Example:
    """One tokenized training example: prompt ids followed by answer ids."""

    input_ids: list[int]
    n_prompt: int


def encode(tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> list[Example]:
    """Tokenize prompt and answer separately so the answer's tokens are the same at training and scoring."""
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    answer_ids = tokenizer(list(answers), add_special_tokens=False)["input_ids"]
    return [Example(p + a, len(p)) for p, a in zip(prompt_ids, answer_ids)]


def collate(examples: Sequence[Example], pad_id: int, device) -> dict:
    """Right-padded batch with the flat indices of positions that predict an answer token."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    predict_at, targets = [], []
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        for position in range(example.n_prompt, n):
            predict_at.append(row * width + position - 1)
            targets.append(example.input_ids[position])
    return {
        "input_ids": ids.to(device), "attention_mask": mask.to(device),
        "position_ids": (mask.cumsum(-1) - 1).clamp(min=0).to(device),
        "predict_at": torch.tensor(predict_at, device=device), "targets": torch.tensor(targets, device=device),
    }


# ----- model surgery ------------------------------------------------------------------------------------------
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


# ----- training -----------------------------------------------------------------------------------------------
class _AnswerLoss(nn.Module):
    """One training step's forward (answer-only loss) as a module, so accelerate can wrap it (DDP) as a whole."""

    def __init__(self, trainer: "Trainer"):
        super().__init__()
        self.model = trainer.model
        self.__dict__["trainer"] = trainer  # not a submodule

    def forward(self, indices: list[int], inputs: dict) -> torch.Tensor:
        trainer = self.trainer
        with trainer.autocast():
            if trainer.runner is not None:
                logits = answer_logits(self.model, trainer.runner.answer_states(indices, inputs), None)
            else:
                hidden = decoder_of(self.model)(
                    input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                    position_ids=inputs["position_ids"], use_cache=False).last_hidden_state
                logits = answer_logits(self.model, hidden, inputs["predict_at"])
        return nn.functional.cross_entropy(logits, inputs["targets"])


class Callback:
    """Hooks called by `Trainer.fit`; override what you need."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_step_end(self, trainer: "Trainer", loss: float) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", metrics: dict) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...


@dataclass
class History:
    """What happened during fit: per-step losses and per-epoch metrics."""

    step_loss: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    trained_tokens: int = 0  # tokens passed through the model in training (prompt + answer), all epochs
    cached_layers: int = 0  # frozen lower layers computed once instead of every epoch
    answer_only_last_layer: bool = False  # the last layer ran at answer-predicting positions only
    interrupted: bool = False  # a KeyboardInterrupt stopped fit; the model holds the last completed epoch


class Trainer:
    """A short LIFT training loop: AdamW, warmup + linear decay, answer-only loss, optional layer cache.

    It prepares the model in place (freezes layers, adds LoRA adapters, holds frozen weights in bf16): pass a
    fresh copy if you need the original afterwards; `trainer.model` is the model that was trained."""

    def __init__(self, model, tokenizer, config: FitConfig | None = None, callbacks: Sequence[Callback] = ()):
        self.config = config or FitConfig()
        self.tokenizer = tokenizer
        self.callbacks = list(callbacks)
        self.device = next(model.parameters()).device
        self.use_bf16 = _wants_bf16(self.config.precision, self.device)
        self.model = prepare_trainable(model, self.config, self.use_bf16)
        self.history = History()
        self.epoch = 0
        self.step = 0
        self.total_steps = 0
        self.runner = None  # the frozen-layer cache, when used
        self.accelerator = None  # set by fit

    def autocast(self):
        if self.use_bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _batches(self, examples: Sequence[Example], generator: torch.Generator, shuffle: bool):
        """This process's batches of one epoch: every process draws the same order and takes every n-th batch
        (wrapping around so all processes take the same number of steps, as DDP needs)."""
        order = torch.randperm(len(examples), generator=generator).tolist() if shuffle else list(range(len(examples)))
        size = self.config.batch_size
        batches = [order[start:start + size] for start in range(0, len(order), size)]
        world, rank = self._world()
        per_process = math.ceil(len(batches) / world)
        return [batches[i % len(batches)] for i in range(rank, per_process * world, world)]

    def _world(self) -> tuple[int, int]:
        if self.accelerator is None:
            return 1, 0
        return self.accelerator.num_processes, self.accelerator.process_index

    def fit(self, examples: Sequence[Example], validate: Callable[[], dict] | None = None,
            score_key: str = "val_score", resume: bool = False) -> History:
        """Train on the examples; with `validate`, keep the epoch whose `score_key` is highest.

        With config.checkpoint_dir, a checkpoint is written after every epoch and `resume=True` continues from it
        to the same result as an uninterrupted run. A KeyboardInterrupt leaves the weights of the last completed
        epoch in the model (history.interrupted is set) and re-raises.
        """
        config = self.config
        if not examples:
            raise ValueError("No training examples.")
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError("Nothing to train: no parameter requires a gradient.")
        if config.gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps must be >= 1, not {config.gradient_accumulation_steps}.")
        # accelerate runs the same loop on one CPU, one GPU or several processes (DDP); no distribution code here.
        from accelerate import Accelerator

        self.accelerator = Accelerator(cpu=self.device.type == "cpu",
                                       gradient_accumulation_steps=config.gradient_accumulation_steps)
        # The fused kernel does the whole update in one pass; the default loop was ~30% of step time on CPU.
        optimizer = torch.optim.AdamW(trainable, lr=config.resolved_learning_rate(),
                                      weight_decay=config.weight_decay, fused=True)
        step_module, optimizer = self.accelerator.prepare(_AnswerLoss(self), optimizer)
        self.device = self.accelerator.device
        world, _ = self._world()
        batches_per_epoch = math.ceil(math.ceil(len(examples) / config.batch_size) / world)
        steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
        total = steps_per_epoch * config.epochs
        self.total_steps = total
        warmup = max(1, int(round(config.warmup_ratio * total)))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
        best = {"state": None, "score": -math.inf}
        first_epoch = 1
        if resume:
            first_epoch = self._restore(optimizer, schedule, generator, best)
        started = time.perf_counter()
        self.runner = runner = _LayerCache.build(self, examples) if config.train_layers and config.cache_frozen else None
        self.history.cached_layers = runner.start if runner else 0
        self.history.answer_only_last_layer = bool(runner and runner.last_layer_answer_only)
        for callback in self.callbacks:
            callback.on_train_begin(self)
        completed = _trainable_state(self.model)
        self.model.train()
        try:
            for self.epoch in range(first_epoch, config.epochs + 1):
                metrics = self._train_epoch(examples, step_module, generator, optimizer, schedule, trainable)
                if validate is not None:
                    self.model.eval()
                    metrics.update(validate())
                    self.model.train()
                    if metrics.get(score_key, -math.inf) > best["score"]:
                        best.update(score=metrics[score_key], state=_trainable_state(self.model))
                        self.history.best_epoch = self.epoch
                self.history.epochs.append(metrics)
                completed = _trainable_state(self.model)
                if config.checkpoint_dir and self.accelerator.is_main_process:
                    self._save_checkpoint(completed, optimizer, schedule, generator, best)
                for callback in self.callbacks:
                    callback.on_epoch_end(self, metrics)
        except KeyboardInterrupt:
            self.history.interrupted = True
            self.model.load_state_dict(completed, strict=False)  # the last completed epoch, not half of one
            raise
        finally:
            self.model.eval()
            self.history.seconds += time.perf_counter() - started
        if best["state"] is not None and self.history.best_epoch != config.epochs:
            self.model.load_state_dict(best["state"], strict=False)
        for callback in self.callbacks:
            callback.on_train_end(self)
        return self.history

    def _train_epoch(self, examples, step_module, generator, optimizer, schedule, trainable) -> dict:
        config, accelerator = self.config, self.accelerator
        epoch_loss, epoch_batches = 0.0, 0
        for indices in self._batches(examples, generator, config.shuffle):
            inputs = collate([examples[i] for i in indices], self.tokenizer.pad_token_id, self.device)
            with accelerator.accumulate(step_module):
                loss = step_module(indices, inputs)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"Training loss became {loss.item()} at epoch {self.epoch}, step {self.step}: "
                        f"lower the learning rate (now {config.resolved_learning_rate()}) or use precision='fp32'.")
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()  # skipped by accelerate between accumulation boundaries
                if accelerator.sync_gradients:
                    schedule.step()
                    self.step += 1
                optimizer.zero_grad(set_to_none=True)
            self.history.trained_tokens += int(inputs["attention_mask"].sum())
            self.history.step_loss.append(loss.item())
            epoch_loss += loss.item()
            epoch_batches += 1
            for callback in self.callbacks:
                callback.on_step_end(self, loss.item())
        return {"epoch": self.epoch, "train_loss": epoch_loss / max(1, epoch_batches)}

    def checkpoint_path(self):
        from pathlib import Path

        return Path(self.config.checkpoint_dir) / "checkpoint.pt"

    def _save_checkpoint(self, weights: dict, optimizer, schedule, generator, best) -> None:
        """Everything needed to continue exactly after this epoch, written atomically."""
        import os

        path = self.checkpoint_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        torch.save({"epoch": self.epoch, "step": self.step, "model": weights,
                    "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                    "generator": generator.get_state(), "rng": torch.get_rng_state(), "best": best,
                    "history": self.history, "config": self.config}, temporary)
        os.replace(temporary, path)

    def _restore(self, optimizer, schedule, generator, best) -> int:
        """Load the checkpoint (if any); returns the first epoch still to run."""
        if not self.config.checkpoint_dir or not self.checkpoint_path().exists():
            raise FileNotFoundError("resume=True needs a checkpoint: set checkpoint_dir and fit once first "
                                    f"(looked for {self.checkpoint_path() if self.config.checkpoint_dir else 'none'}).")
        saved = torch.load(self.checkpoint_path(), weights_only=False)
        if saved["config"] != self.config:
            raise ValueError("The checkpoint was written with a different FitConfig; resume needs the same one.")
        self.model.load_state_dict(saved["model"], strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["rng"])
        best.update(saved["best"])
        self.history, self.step = saved["history"], saved["step"]
        self.history.interrupted = False
        return saved["epoch"] + 1


def _wants_bf16(precision: str, device: torch.device) -> bool:
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', not {precision!r}.")
    if precision == "auto":
        return bf16_supported(device)
    return precision == "bf16"


def _trainable_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def prepare_trainable(model, config: FitConfig, use_bf16: bool):
    """Freeze what is not trained, add LoRA adapters if asked; frozen weights go to bf16 when use_bf16."""
    _, _, layers = layer_list(model)
    n_layers = len(layers)
    k = n_layers if config.train_layers is None else int(config.train_layers)
    if not 1 <= k <= n_layers:
        raise ValueError(f"train_layers must be between 1 and {n_layers} for this model, not {k}.")
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
def _only_layers(model, start: int, stop: int | None):
    """Temporarily keep only layers[start:stop] in the model (the rest are skipped by its forward)."""
    owner, attribute, layers = layer_list(model)
    setattr(owner, attribute, nn.ModuleList(list(layers)[start:stop]))
    try:
        yield
    finally:
        setattr(owner, attribute, layers)


class _LayerCache:
    """Runs the frozen lower layers once per example and trains on the top layers only."""

    def __init__(self, trainer: Trainer, start: int, hidden: list[torch.Tensor]):
        self.trainer, self.start, self.hidden = trainer, start, hidden
        self.last_layer_answer_only = False  # set by build() where it matches the full model

    @classmethod
    def build(cls, trainer: Trainer, examples: Sequence[Example]) -> "_LayerCache | None":
        model = trainer.model
        if any(p.requires_grad for n, p in model.named_parameters() if "embed" in n or "wte" in n):
            return None
        _, _, layers = layer_list(model)
        start = len(layers) - int(trainer.config.train_layers)
        if start == 0:
            return None
        body = decoder_of(model)
        captured = {}
        hook = layers[start - 1].register_forward_hook(
            lambda module, args, output: captured.__setitem__("h", output[0] if isinstance(output, tuple) else output))
        hidden = []
        size = max(trainer.config.batch_size, 32)
        try:
            with torch.no_grad(), trainer.autocast(), _only_layers(model, 0, start):
                for begin in range(0, len(examples), size):
                    chunk = examples[begin:begin + size]
                    inputs = collate(chunk, trainer.tokenizer.pad_token_id, trainer.device)
                    body(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                         position_ids=inputs["position_ids"], use_cache=False)
                    for row, example in enumerate(chunk):
                        hidden.append(captured["h"][row, :len(example.input_ids)].detach().clone())
        finally:
            hook.remove()
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
        with _only_layers(self.trainer.model, self.start, None):
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
        captured = {}
        hook = layers[-2].register_forward_hook(
            lambda module, args, output: captured.__setitem__("h", output[0] if isinstance(output, tuple) else output))
        states = self._states(indices, inputs["input_ids"].shape[1])
        try:
            with _only_layers(model, self.start, len(layers) - 1):
                body(inputs_embeds=states, attention_mask=inputs["attention_mask"],
                     position_ids=inputs["position_ids"], use_cache=False)
        finally:
            hook.remove()
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

