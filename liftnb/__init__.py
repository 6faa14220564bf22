"""liftnb: Language-Interfaced Fine-Tuning (LIFT) in notebooks, on a laptop CPU."""
from .estimators import LIFTClassifier, LIFTRegressor
from .generators import LIFTGenerator
from .intervals import ConformalIntervals
from .finetune import Callback, FitConfig, Trainer
from .models import load_lm
from .templates import Template, TemplateError

__all__ = ["LIFTClassifier", "LIFTRegressor", "LIFTGenerator", "ConformalIntervals", "Template", "TemplateError",
           "FitConfig", "Trainer", "Callback", "load_lm"]
__version__ = "0.1.0"
