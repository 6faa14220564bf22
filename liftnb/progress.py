"""Training progress: a live figure in a notebook (left as a static figure when done), text lines elsewhere."""
from __future__ import annotations

import html
import time

from .finetune import Callback


def in_notebook() -> bool:
    """True inside a live Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class _Timing(Callback):
    """Counts steps and estimates the time left."""

    def on_train_begin(self, trainer):
        self.started = time.perf_counter()
        self.total = trainer.total_steps
        self.step_loss: list[float] = []
        self.epochs: list[dict] = []

    def on_step_end(self, trainer, loss):
        self.step_loss.append(loss)

    def on_epoch_end(self, trainer, metrics):
        self.epochs.append(dict(metrics))

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self) -> float:
        done = len(self.step_loss)
        return self.elapsed() / done * (self.total - done) if done else float("nan")


class TextProgress(_Timing):
    """One plain line per epoch with elapsed time and ETA (outside a live notebook, e.g. CI logs)."""

    def on_epoch_end(self, trainer, metrics):
        super().on_epoch_end(trainer, metrics)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "epoch" and isinstance(v, (int, float)))
        print(f"epoch {trainer.epoch}/{trainer.planned_epochs}: {shown} [{_clock(self.elapsed())} elapsed, "
              f"~{_clock(self.eta())} left]", flush=True)


class LiveProgress(_Timing):
    """A progress bar with ETA and a live figure of the training loss per step and the validation score per epoch,
    redrawn in place through display_id handles (the bar at most every `every` seconds, the figure at most
    `figure_share` of the time); the last draw stays in the saved notebook as a static figure."""

    def __init__(self, every: float = 2.0, figure_share: float = 0.05):
        self.every = every
        # a figure took ~1 s to draw on a slow CPU, where every-2-s redraws took a third of a fit's time
        self.figure_share = figure_share
        self.figure = None
        self._bar = self._plot = None
        self._last_draw = self._last_figure = 0.0
        self._figure_seconds = 0.0

    def on_train_begin(self, trainer):
        from IPython.display import HTML, display

        super().on_train_begin(trainer)
        self._bar = display(HTML(self._bar_html()), display_id=True)
        self._plot = display(HTML(""), display_id=True)

    def on_step_end(self, trainer, loss):
        super().on_step_end(trainer, loss)
        if time.perf_counter() - self._last_draw >= self.every:
            self.draw()

    def on_epoch_end(self, trainer, metrics):
        super().on_epoch_end(trainer, metrics)
        self.draw()

    def on_train_end(self, trainer):
        self.draw(figure=True)

    def _bar_html(self) -> str:
        done = len(getattr(self, "step_loss", []))
        eta = self.eta() if done else float("nan")
        left = "" if eta != eta else f", ~{_clock(eta)} left"
        last = f", loss {self.step_loss[-1]:.4f}" if done else ""
        text = html.escape(f"step {done}/{self.total} [{_clock(self.elapsed())} elapsed{left}{last}]")
        return f"<progress value='{done}' max='{self.total}' style='width:40%'></progress> <code>{text}</code>"

    def build_figure(self):
        """The figure of what has been seen so far: loss per step; validation metrics per epoch."""
        import matplotlib.pyplot as plt

        if self.figure is None:
            self.figure, (self.loss_axis, self.epoch_axis) = plt.subplots(1, 2, figsize=(10, 3.2))
            self.score_axis = self.epoch_axis.twinx()  # validation scores live on [0, 1], losses do not
            plt.close(self.figure)  # drawn through the display handle only, not again at cell end
        for axis in (self.loss_axis, self.epoch_axis, self.score_axis):
            axis.clear()
        self.loss_axis.plot(range(1, len(self.step_loss) + 1), self.step_loss, label="train loss (step)")
        self.loss_axis.set(xlabel="step", ylabel="cross-entropy on answer tokens", title="training loss")
        epochs = [m["epoch"] for m in self.epochs]
        keys = sorted({k for m in self.epochs for k in m} - {"epoch"})
        colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        for key in keys:
            axis = self.score_axis if key.startswith("val_") and "loss" not in key else self.epoch_axis
            axis.plot(epochs, [m.get(key) for m in self.epochs], marker="o", label=key, color=next(colours))
        self.epoch_axis.set(xlabel="epoch", ylabel="loss", title="per epoch")
        self.score_axis.set(ylabel="validation score")
        self.score_axis.yaxis.set_label_position("right")
        if self.epochs:
            handles = self.epoch_axis.get_lines() + self.score_axis.get_lines()
            self.epoch_axis.legend(handles, [h.get_label() for h in handles], loc="center right", fontsize="small")
        self.figure.tight_layout()
        return self.figure

    def draw(self, figure: bool = False):
        """Refresh the bar; redraw the figure too when asked or when its share of the time allows."""
        from IPython.display import HTML

        now = self._last_draw = time.perf_counter()
        if self._bar is not None:
            self._bar.update(HTML(self._bar_html()))
        due = now - self._last_figure >= max(self.every, self._figure_seconds / self.figure_share)
        if self._plot is not None and (figure or due):
            self._plot.update(self.build_figure())
            self._last_figure = time.perf_counter()
            self._figure_seconds = self._last_figure - now


def default_progress() -> Callback:
    """LiveProgress inside a live notebook, TextProgress elsewhere."""
    return LiveProgress() if in_notebook() else TextProgress()
