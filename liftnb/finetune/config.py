"""FitConfig: every setting of one LIFT fine-tuning run, with commented defaults."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


AUTO_EPOCHS = 12  # what epochs="auto" starts from: larger sets were still improving after 6 (sweep: epochs12)
AUTO_MIN_STEPS = 300  # what epochs="auto" raises the length to, chosen by the defaults sweep (liftnb.paper.sweep)
AUTO_PATIENCE = 3  # patience="auto" with epochs="auto": stop 3 epochs after the best, once AUTO_MIN_STEPS are done;
# replayed on 43 committed validation curves it kept every run's best validation score and cut 12-16% of fit time


@dataclass
class FitConfig:
    """Hyperparameters of one LIFT fine-tuning run."""

    epochs: int | str = "auto"  # passes over the training rows; "auto": 12, more when min_steps asks for more
    min_steps: int | None = None  # at least this many optimizer steps (a small data set gets more epochs); None: 300
    # with epochs="auto", 0 with a number of epochs (an explicit epochs=k trains exactly k epochs, as before)
    max_steps: int | None = None  # never more than this many optimizer steps (None: no cap)
    patience: int | str | None = "auto"  # with validation: stop after this many epochs without a better one (None:
    # never); "auto": AUTO_PATIENCE once min_steps are done with epochs="auto", never with an explicit epochs=k
    batch_size: int = 8
    learning_rate: float | None = None  # None: 1e-3 LoRA, 2e-4 top layers only, 5e-5 all layers
    weight_decay: float = 0.01  # as in the paper
    warmup_ratio: float = 0.06  # fraction of steps with linearly rising lr, then linear decay to 0
    lora: int | None = None  # LoRA rank; None: full fine-tuning of the trained layers
    lora_alpha: float | None = None  # None: 2 * rank
    lora_dropout: float = 0.0
    train_layers: int | float | None = 0.4  # the top fraction of the model's depth is trained (a float in (0, 1]),
    # or the top k layers (an int); None: all, embeddings included. 0.4 is the top 12 of SmolLM2's 30, which on Iris
    # (lr 2e-4, 6 epochs) reached 1.0 on two seeds where the top 6 was unstable; a 6-layer model trains its top 2.
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

    def trained_layer_count(self, depth: int) -> int:
        """How many of a `depth`-layer model's top layers are trained."""
        layers = self.train_layers
        if layers is None:
            return depth
        if isinstance(layers, numbers.Integral) and not isinstance(layers, bool):
            if not 1 <= int(layers) <= depth:
                raise ValueError(f"train_layers must be between 1 and {depth} for this model, not {int(layers)} "
                                 f"(a fraction such as 0.4 trains the top 40% of any model).")
            return int(layers)
        if isinstance(layers, numbers.Real) and not isinstance(layers, bool):
            if not 0 < layers <= 1:
                raise ValueError(f"train_layers={layers} is a float, so a fraction of the model's depth, and must be "
                                 f"in (0, 1]; pass an int for a number of layers.")
            return max(1, round(layers * depth))
        raise ValueError(f"train_layers must be a number of layers (int), a fraction of the depth (float) or None, "
                         f"not {layers!r}.")

    def resolved_epochs(self) -> int:
        """The number of epochs asked for: AUTO_EPOCHS for "auto" (min_steps may raise the length further)."""
        if self.epochs == "auto":
            return AUTO_EPOCHS
        return _count(self.epochs, "epochs", '"auto" or ')

    def resolved_min_steps(self) -> int:
        """The fewest optimizer steps: min_steps, or by default AUTO_MIN_STEPS with epochs="auto" and 0 otherwise."""
        if self.min_steps is None:
            return AUTO_MIN_STEPS if self.epochs == "auto" else 0
        return _count(self.min_steps, "min_steps", "None or ")

    def resolved_patience(self) -> int | None:
        """Epochs without a better validation score that end the run; None: never stop early."""
        if self.patience == "auto":
            return AUTO_PATIENCE if self.epochs == "auto" else None
        if self.patience is None:
            return None
        if isinstance(self.patience, bool) or not isinstance(self.patience, numbers.Integral) or self.patience < 1:
            raise ValueError(f"patience must be \"auto\", None or a whole number >= 1, not {self.patience!r}.")
        return int(self.patience)

    def patience_from_step(self) -> int:
        """Optimizer steps before which patience never stops a run: the min_steps floor for patience="auto"."""
        return self.resolved_min_steps() if self.patience == "auto" else 0

    def stops_early(self, epoch: int, best_epoch: int | None, step: int) -> bool:
        """Whether a run whose best validation epoch is `best_epoch` stops after `epoch`, `step` optimizer steps in."""
        patience = self.resolved_patience()
        return bool(patience) and epoch - (best_epoch or 0) >= patience and step >= self.patience_from_step()

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the whole run: epochs, raised to min_steps, capped at max_steps."""
        epochs, min_steps = self.resolved_epochs(), self.resolved_min_steps()
        if self.max_steps is not None and int(self.max_steps) < 1:
            raise ValueError(f"max_steps must be >= 1 or None, not {self.max_steps}.")
        self.resolved_patience()  # a bad patience is an error before any training
        total = max(epochs * steps_per_epoch, min_steps)
        if self.max_steps is not None:
            total = min(total, int(self.max_steps))
        if total < 1:
            raise ValueError("Nothing to train: epochs=0 and min_steps=0.")
        return total

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs the run starts (the last one may stop part-way at total_steps)."""
        return math.ceil(self.total_steps(steps_per_epoch) / steps_per_epoch)


def _count(value, name: str, alternatives: str) -> int:
    """`value` as a whole number >= 0, or a clear error naming the setting and what else it accepts."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be {alternatives}a whole number >= 0, not {value!r}.")
    return int(value)
