"""Fine-tuning a causal LM on prompt -> answer text: loss on the answer tokens only, full or LoRA.

config (FitConfig) · data (tokenized examples, batches) · surgery (layers, freezing, LoRA, bf16) ·
layer_cache (frozen lower layers computed once) · trainer (the loop, callbacks, checkpoints) ·
text (from prompts and answers to a ready Trainer)."""
from .config import FitConfig
from .data import Example, collate, encode
from .text import TextTraining, prepare_text_training
from .trainer import Callback, History, Trainer

__all__ = ["FitConfig", "Example", "encode", "collate", "Callback", "History", "Trainer", "TextTraining",
           "prepare_text_training"]
