"""Training progress display: live in a notebook, plain text lines elsewhere."""
from __future__ import annotations

from .finetune import Callback, PrintProgress


def in_notebook() -> bool:
    """True inside a live Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def default_progress() -> Callback:
    """The display `fit` uses when verbose: text lines (the live notebook figure comes with the widgets)."""
    return PrintProgress()
