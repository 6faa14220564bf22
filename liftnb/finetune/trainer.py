"""The training loop: AdamW, warmup + linear decay, answer-only loss, callbacks, best-epoch selection with early
stopping, checkpoints."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..models import attention_for
from .config import FitConfig
from .data import Example, collate
from .layer_cache import FrozenLayerCache
from .surgery import answer_logits, decoder_of, prepare_trainable, trainable_state, wants_bf16


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
    best_epoch: int | None = None  # the epoch whose weights the model holds after fit (with validation)
    steps: int = 0  # optimizer steps taken
    stopped_early: bool = False  # validation did not improve for `patience` epochs
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
        self.use_bf16 = wants_bf16(self.config.precision, self.device)
        self.model = prepare_trainable(model, self.config, self.use_bf16)
        self.history = History()
        self.epoch = 0
        self.step = 0
        self.total_steps = 0  # set by fit: epochs raised to min_steps, capped at max_steps
        self.planned_epochs = 0  # set by fit: epochs that total_steps spans (early stopping may end sooner)
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
            score_key: str = "val_score", tiebreak_key: str = "val_tiebreak", resume: bool = False) -> History:
        """Train on the examples; with `validate`, keep the epoch whose `score_key` is highest, ties broken by the
        highest `tiebreak_key` (if validate returns one), and stop after config.resolved_patience() epochs without a
        better one (with patience="auto", only once min_steps are done).

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
        self.total_steps = total = config.total_steps(steps_per_epoch)
        self.planned_epochs = epochs = config.epochs_for(steps_per_epoch)
        warmup = max(1, int(round(config.warmup_ratio * total)))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
        best = {"state": None, "rank": (-math.inf, -math.inf)}
        first_epoch = 1
        if resume:
            first_epoch = self._restore(optimizer, schedule, generator, best)
        started = time.perf_counter()
        self.runner = runner = FrozenLayerCache.build(self, examples) if config.train_layers and config.cache_frozen else None
        self.history.cached_layers = runner.start if runner else 0
        self.history.answer_only_last_layer = bool(runner and runner.last_layer_answer_only)
        for callback in self.callbacks:
            callback.on_train_begin(self)
        completed = trainable_state(self.model)
        self.model.train()
        try:
            for self.epoch in range(first_epoch, epochs + 1):
                if self.history.stopped_early or self.step >= total:
                    break  # a resumed run that had already finished
                metrics = self._train_epoch(examples, step_module, generator, optimizer, schedule, trainable)
                if validate is not None:
                    self.model.eval()
                    metrics.update(validate())
                    self.model.train()
                    rank = (metrics.get(score_key, -math.inf), metrics.get(tiebreak_key, -math.inf))
                    if rank > best["rank"]:  # a tie on both keeps the earlier, shorter-trained epoch
                        best.update(rank=rank, state=trainable_state(self.model))
                        self.history.best_epoch = self.epoch
                    elif config.stops_early(self.epoch, self.history.best_epoch, self.step):
                        self.history.stopped_early = True
                self.history.epochs.append(metrics)
                completed = trainable_state(self.model)
                if config.checkpoint_dir and self.accelerator.is_main_process:
                    self._save_checkpoint(completed, optimizer, schedule, generator, best)
                for callback in self.callbacks:
                    callback.on_epoch_end(self, metrics)
                if self.history.stopped_early:
                    break
        except KeyboardInterrupt:
            self.history.interrupted = True
            self.model.load_state_dict(completed, strict=False)  # the last completed epoch, not half of one
            raise
        finally:
            self.model.eval()
            self.history.seconds += time.perf_counter() - started
        self.history.steps = self.step
        last_epoch = self.history.epochs[-1]["epoch"] if self.history.epochs else None
        if best["state"] is not None and self.history.best_epoch != last_epoch:
            self.model.load_state_dict(best["state"], strict=False)
        for callback in self.callbacks:
            callback.on_train_end(self)
        return self.history

    def _train_epoch(self, examples, step_module, generator, optimizer, schedule, trainable) -> dict:
        config, accelerator = self.config, self.accelerator
        epoch_loss, epoch_batches = 0.0, 0
        for indices in self._batches(examples, generator, config.shuffle):
            if self.step >= self.total_steps:
                break  # the last epoch of a run whose length is set in steps ends part-way
            inputs = collate([examples[i] for i in indices], self.tokenizer.pad_token_id, self.device)
            with accelerator.accumulate(step_module):
                with attention_for(self.model, inputs["input_ids"].shape[1]):
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

