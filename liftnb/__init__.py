"""liftnb: Language-Interfaced Fine-Tuning (LIFT) in notebooks, on a laptop CPU."""
import os

# transformers (5.25 seen) swaps in "hub kernels" fetched from the Hugging Face hub when a model goes to train() on a
# GPU: offline that fails (an H200 without network, 2026-12-04), and online it would change the arithmetic from
# outside this library. Off unless the user asks for them (USE_HUB_KERNELS=1); on this project's offline CPUs none
# could be fetched, so every CPU result was computed without them.
os.environ.setdefault("USE_HUB_KERNELS", "0")

from .estimators import LIFTClassifier, LIFTRegressor
from .generators import LIFTGenerator
from .intervals import ConformalIntervals
from .finetune import Callback, FitConfig, Trainer
from .models import load_lm
from .preprocessing import StandardisedValues
from .templates import Template, TemplateError

__all__ = ["LIFTClassifier", "LIFTRegressor", "LIFTGenerator", "ConformalIntervals", "StandardisedValues", "Template",
           "TemplateError", "FitConfig", "Trainer", "Callback", "load_lm"]
__version__ = "0.1.0"
