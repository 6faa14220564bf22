"""LIFT as a generator: given the top half of an image (and its digit), write the bottom half's pixels."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from .. import datasets
from ..finetune import FitConfig, encode, prepare_text_training
from ..generators import answer_loss
from ..predict import Sampling, allowed_token_ids, generate_answers, sample_answers
from .runs import cached_piece

MODULE = "paper/half_image.py"

_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class HalfImage:
    """How an image becomes "top half -> bottom half" text.

    Pixels are quantised to levels 0-9 and written one character each without separators: the tokenizer splits
    digits one by one, so a half of n pixels costs n tokens (with spaces it would cost 2n)."""

    side: int  # the image is side x side
    max_value: float  # the largest raw pixel value (16 for scikit-learn digits, 255 for MNIST)
    with_label: bool = True  # tell the model which digit it is drawing
    prompt_end: str = "###"
    answer_end: str = "@@@"

    @property
    def half(self) -> int:
        """Pixels in the top half (rows 0 .. side//2 - 1); the bottom half is the rest."""
        return (self.side // 2) * self.side

    def quantise(self, images: np.ndarray) -> np.ndarray:
        """Raw pixel values -> integer levels 0-9, shape (n, side * side)."""
        flat = np.asarray(images, dtype=float).reshape(len(images), -1)
        if flat.shape[1] != self.side * self.side:
            raise ValueError(f"Images have {flat.shape[1]} pixels; a {self.side}x{self.side} image has "
                             f"{self.side * self.side}.")
        return np.clip(np.rint(flat / self.max_value * 9), 0, 9).astype(int)

    def prompt(self, top: np.ndarray, label=None) -> str:
        what = f"an image of the digit {label}" if self.with_label and label is not None else "an image"
        return f"The top half of {what} has pixels {''.join(map(str, top))}. Its bottom half?{self.prompt_end}"

    def prompts(self, levels: np.ndarray, labels=None) -> list[str]:
        """The prompt of every image (levels from quantise), with its label where given."""
        labels = [None] * len(levels) if labels is None else list(labels)
        return [self.prompt(row[:self.half], label) for row, label in zip(levels, labels)]

    def answer(self, bottom: np.ndarray) -> str:
        return "".join(map(str, bottom)) + self.answer_end

    def parse(self, completion: str) -> tuple[np.ndarray, str]:
        """(bottom-half levels, status). status "ok"; "short"/"long" (wrong pixel count: padded with 0s or cut);
        "empty" (no digits: all 0s). A malformed answer is repaired, never dropped, and counted by its status."""
        text = completion.split(self.answer_end)[0]
        levels = [int(c) for c in _DIGIT.findall(text)]
        wanted = self.side * self.side - self.half
        if not levels:
            return np.zeros(wanted, dtype=int), "empty"
        status = "ok" if len(levels) == wanted else ("short" if len(levels) < wanted else "long")
        levels = (levels + [0] * wanted)[:wanted]
        return np.array(levels, dtype=int), status


def is_pixel_piece(text: str, answer_end: str) -> bool:
    """Text made only of digits, or only of the terminator's characters: what a pixel answer may contain."""
    return set(text) <= set("0123456789") or set(text) <= set(answer_end)


class HalfImageGenerator:
    """Fine-tunes a causal LM on top -> bottom halves and completes new images (greedy or sampled, digits only)."""

    def __init__(self, task: HalfImage, model=None, config: FitConfig | None = None, verbose: int = 0):
        self.task, self.model, self.config, self.verbose = task, model, config or FitConfig(), verbose

    def fit(self, images: np.ndarray, labels=None, val_images=None, val_labels=None) -> "HalfImageGenerator":
        """Fine-tune on the images; with validation images, keep the epoch whose validation loss (the mean negative
        log-likelihood of a true bottom-half token) is lowest, and stop early as the config's patience says."""
        prompts, answers = self._texts(images, labels)
        training = prepare_text_training(self.model, prompts, answers, self.config, verbose=self.verbose)
        self.tokenizer_, self.model_ = training.tokenizer, training.trainer.model
        self.tokens_per_row_ = training.tokens_per_row
        validate = None
        if val_images is not None:
            val_examples = encode(self.tokenizer_, *self._texts(val_images, val_labels))

            def validate() -> dict:
                loss = answer_loss(self.model_, val_examples, self.tokenizer_.pad_token_id)
                return {"val_score": -loss, "val_loss": loss}
        self.history_ = training.trainer.fit(training.examples, validate=validate)
        return self

    def _texts(self, images: np.ndarray, labels=None) -> tuple[list[str], list[str]]:
        levels = self.task.quantise(images)
        return self.task.prompts(levels, labels), [self.task.answer(row[self.task.half:]) for row in levels]

    def complete(self, images: np.ndarray, labels=None, sampling: Sampling | None = None):
        """Greedy: (completed images as levels 0-9 (n, side*side), status per image, raw completion per image).
        With `sampling`: sampling.n completions per image, (n, samples, side*side) and a list per image."""
        levels = self.task.quantise(images)
        prompts = self.task.prompts(levels, labels)
        wanted = self.task.side * self.task.side - self.task.half
        allowed = allowed_token_ids(self.tokenizer_, is_pixel_piece, self.task.answer_end)
        if sampling is None:
            texts = [[t] for t in generate_answers(self.model_, self.tokenizer_, prompts, stop=self.task.answer_end,
                                                   max_new_tokens=wanted + 4, batch_size=16, allowed_token_ids=allowed)]
        else:
            texts = sample_answers(self.model_, self.tokenizer_, prompts, self.task.answer_end, sampling,
                                   max_new_tokens=wanted + 4, batch_size=32, allowed_token_ids=allowed)
        parsed = [[self.task.parse(t) for t in row] for row in texts]
        completed = np.stack([[np.concatenate([levels[i, :self.task.half], bottom]) for bottom, _ in row]
                              for i, row in enumerate(parsed)])
        status = [[state for _, state in row] for row in parsed]
        if sampling is None:
            return completed[:, 0], [s[0] for s in status], [t[0] for t in texts]
        return completed, status, texts


# ----- baselines and measures -----------------------------------------------------------------------------------
def class_mean_bottoms(train_levels: np.ndarray, train_labels, labels, half: int) -> np.ndarray:
    """Each image's bottom half guessed as the mean bottom half of its class in training."""
    train_labels, labels = np.asarray(train_labels), np.asarray(labels)
    means = {c: train_levels[train_labels == c, half:].mean(axis=0) for c in np.unique(train_labels)}
    return np.stack([means[c] for c in labels])


def nearest_neighbour_bottoms(train_levels: np.ndarray, levels: np.ndarray, half: int) -> np.ndarray:
    """Each image's bottom half copied from the training image whose top half is closest (Euclidean)."""
    distances = ((levels[:, None, :half] - train_levels[None, :, :half]) ** 2).sum(-1)
    return train_levels[distances.argmin(1), half:].astype(float)


def mean_pairwise_mse(groups, half: int) -> float:
    """Mean squared bottom-half pixel difference between two members of the same group, averaged over the groups
    that have two or more (a group: a 2-D array of images as levels, e.g. one image's samples or one class)."""
    spreads = []
    for group in groups:
        bottoms = np.asarray(group, float)[:, half:]
        if len(bottoms) > 1:
            squared = ((bottoms[:, None] - bottoms[None]) ** 2).mean(-1)
            spreads.append(squared[np.triu_indices(len(bottoms), 1)].mean())
    return float(np.mean(spreads))


def bottom_mse(truth: np.ndarray, guess: np.ndarray, half: int) -> float:
    """Mean squared error over the bottom-half pixels, in levels 0-9."""
    return float(((np.asarray(truth, float)[:, half:] - np.asarray(guess, float)[:, -(truth.shape[1] - half):]) ** 2)
                 .mean())


# ----- the experiment of notebook 08 ------------------------------------------------------------------------------
class ImageSet(NamedTuple):
    """One data set of notebook 08: what is loaded, how many images each part gets, how long the fit trains."""

    options: dict  # datasets.load options of the subsample that the validation and test images come from
    n_train: int  # training images from the subsample
    n_val: int
    n_test: int
    epochs: int | str
    extra_train: int = 0  # more training images from the rest of the data set (none a copy of a subsample image)

    @property
    def train_images(self) -> int:
        return self.n_train + self.extra_train


def image_sets(profile: str) -> dict[str, ImageSet]:
    """name -> ImageSet: scikit-learn digits, MNIST downscaled."""
    # quick (CI): digits alone, 3 epochs (its training loss was still falling: CI time). MNIST at 10x10 (centre-cropped
    # to its 20x20 digit box and averaged down; 240 images) came out degenerate under greedy decoding (reader 30% vs
    # 33% for a blank bottom) at 150 s of CI time, and showed nothing that the full profile's MNIST piece does not.
    # full: trained as long as the validation loss improves (epochs="auto": 12 epochs, at least 300 steps, stopping
    # 3 epochs after the best), the best validation epoch kept. MNIST trains on 3,000 images: the 1,500 of its
    # 1,700-image subsample (54 minutes on AMX, 2026-12-06) and 1,500 more drawn from the rest of MNIST, with the
    # same validation and test images, the training size this CPU affords in about an hour and a half.
    sets = {"digits": ImageSet({"name": "digits"}, 300, 40, 40, 3)}
    if profile == "full":
        sets = {"digits": ImageSet({"name": "digits"}, 1300, 100, 100, "auto"),
                "mnist14": ImageSet({"name": "mnist", "n": 1700, "crop": None, "side": 14}, 1500, 100, 100, "auto",
                                    extra_train=1500)}
    return sets


def split_images(labels, image_set: ImageSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training, validation, test) indices into the subsample: a stratified test part, then validation."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    train, test = train_test_split(np.arange(len(labels)), train_size=image_set.n_train + image_set.n_val,
                                   test_size=image_set.n_test, stratify=labels, random_state=0)
    train, val = train_test_split(train, test_size=image_set.n_val, stratify=labels[train], random_state=0)
    return train, val, test


# Sampled completions per image: greedy decoding writes the most likely pixel at each step, which on MNIST was a
# blank bottom.
SAMPLES = {"quick": 3, "full": 5}
# Sampling temperatures tried on the validation images; the one whose completions the reader recognises most often
# is used on the test images (1 is the fine-tuned model's own distribution, as the paper's GPT-J decoded; lower
# sharpens it towards the likelier strokes; greedy decoding, its limit, wrote blank bottoms). A tie keeps the higher
# temperature.
TEMPERATURES = (0.25, 0.5, 0.75, 1.0)


def choose_temperature(generator, images: np.ndarray, labels, reader, samples: int,
                       temperatures=TEMPERATURES) -> tuple[float, dict]:
    """(the temperature whose sampled completions of these validation images the reader recognises most often,
    {temperature: that accuracy}); ties go to the higher temperature."""
    labels = np.asarray(labels)
    accuracy = {}
    for temperature in temperatures:
        completed, _, _ = generator.complete(images, labels, Sampling(temperature=temperature, n=samples, seed=0))
        flat = completed.reshape(-1, completed.shape[-1])
        accuracy[float(temperature)] = float(reader.score(flat, np.repeat(labels, samples)))
    best = max(accuracy.items(), key=lambda item: (item[1], item[0]))[0]
    return best, accuracy


def whole_set(options: dict) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the whole data set a subsample comes from (MNIST: all 70,000 images)."""
    return _images({**options, "n": None} if options["name"] == "mnist" else options)[:2]


def unseen(levels: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Which rows of `levels` are not, pixel for pixel, one of the images in `seen` (a copy counts as seen)."""
    seen_rows = {row.tobytes() for row in np.asarray(seen, dtype=levels.dtype)}
    return np.array([row.tobytes() not in seen_rows for row in levels], dtype=bool)


def reader_pool(levels: np.ndarray, labels, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(levels, labels) of every image of the whole data set that is not one of the held-out images: what the reader
    learns from, so that it never sees a validation or test image."""
    keep = unseen(levels, held_out)
    return levels[keep], np.asarray(labels)[keep]


def extra_training_images(levels: np.ndarray, labels, subsample: np.ndarray, n: int) -> np.ndarray:
    """Indices of n images of the whole data set, stratified by digit, none of them a copy of a subsample image (so
    never a validation or test image)."""
    from sklearn.model_selection import train_test_split

    if n == 0:
        return np.array([], dtype=int)
    candidates = np.flatnonzero(unseen(levels, subsample))
    return np.sort(train_test_split(candidates, train_size=n, stratify=np.asarray(labels)[candidates],
                                    random_state=0)[0])


def fit_reader(levels: np.ndarray, labels):
    """The reader: a one-hidden-layer MLP trained on real whole images, none of them a validation or test image."""
    from sklearn.neural_network import MLPClassifier

    # Chosen by accuracy on the real validation images (MNIST 14x14, 100 images): this MLP on the 69,800-image pool
    # 98%, 3 nearest neighbours 97%, logistic regression on the pool 93%, logistic regression on the 1,500 training
    # images (the reader up to 2026-12-05) 88%. A reader that misreads real digits misreads completions as well.
    return MLPClassifier((256,), max_iter=200, early_stopping=True, random_state=0).fit(levels, labels)


def _images(options: dict):
    options = dict(options)
    data = datasets.load(options.pop("name"), **options)
    side = int(round(np.sqrt(data.X.shape[1])))
    max_value = 16.0 if data.name == "digits" else 255.0
    return data.X.to_numpy(float), data.y.to_numpy(), side, max_value


def half_image_run(name: str, profile: str = "quick", cache=None, log=print) -> dict:
    """Fine-tune on top -> bottom halves, complete held-out images (greedy, and SAMPLES sampled completions each at
    the temperature chosen on the validation images), and measure against two baselines."""
    image_set = image_sets(profile)[name]
    options = image_set.options

    def compute() -> dict:
        images, labels, side, max_value = _images(options)
        task = HalfImage(side=side, max_value=max_value)
        train, val, test = split_images(labels, image_set)
        levels = task.quantise(images)
        whole_images, whole_labels = whole_set(options)
        whole_levels = task.quantise(whole_images)
        extra = extra_training_images(whole_levels, whole_labels, levels, image_set.extra_train)
        train_images = np.concatenate([images[train], whole_images[extra]])
        train_labels = np.concatenate([labels[train], whole_labels[extra]])
        train_levels = task.quantise(train_images)
        generator = HalfImageGenerator(task, config=FitConfig(epochs=image_set.epochs)).fit(
            train_images, train_labels, images[val], labels[val])
        completed, status, completions = generator.complete(images[test], labels[test])
        half = task.half
        class_means = class_mean_bottoms(train_levels, train_labels, labels[test], half)
        guesses = {"lift": completed,
                   "class_mean": np.hstack([levels[test, :half], class_means]),
                   "nearest_neighbour": np.hstack([levels[test, :half],
                                                   nearest_neighbour_bottoms(train_levels, levels[test], half)]),
                   "blank_bottom": np.hstack([levels[test, :half], np.zeros((len(test), levels.shape[1] - half))])}
        samples = SAMPLES[profile]
        pool_levels, pool_labels = reader_pool(whole_levels, whole_labels, levels[np.concatenate([val, test])])
        reader = fit_reader(pool_levels, pool_labels)
        temperature, on_validation = choose_temperature(generator, images[val], labels[val], reader, samples)
        sampled, sampled_status, sampled_texts = generator.complete(
            images[test], labels[test], Sampling(temperature=temperature, n=samples, seed=0))
        history = generator.history_
        metrics = {"train_images": len(train_images), "extra_train_images": len(extra), "val_images": len(val),
                   "test_images": len(test), "side": side,
                   "epochs_run": len(history.epochs), "best_epoch": history.best_epoch, "steps": history.steps,
                   "tokens_per_row": generator.tokens_per_row_, "fit_seconds": generator.history_.seconds,
                   "samples_per_image": samples, "temperature": temperature,
                   **{f"val_reader_accuracy_sampled_t{round(100 * t):03d}": a for t, a in on_validation.items()},
                   "malformed_rate": float(np.mean([s != "ok" for s in status])),
                   "malformed_rate_sampled": float(np.mean([s != "ok" for row in sampled_status for s in row])),
                   "reader_images": len(pool_labels),
                   "reader_accuracy_val_original": float(reader.score(levels[val], labels[val])),
                   "reader_accuracy_original": float(reader.score(levels[test], labels[test]))}
        for method, guess in guesses.items():
            if method != "blank_bottom":
                metrics[f"mse_{method}"] = bottom_mse(levels[test], guess, half)
            metrics[f"reader_accuracy_{method}"] = float(reader.score(np.rint(guess), labels[test]))
        flat = sampled.reshape(-1, sampled.shape[-1])
        metrics["mse_lift_sampled"] = bottom_mse(np.repeat(levels[test], samples, axis=0), flat, half)
        metrics["reader_accuracy_lift_sampled"] = float(reader.score(flat, np.repeat(labels[test], samples)))
        # diversity: how far apart one image's samples are, beside how far apart real images of one digit are
        metrics["spread_lift_samples"] = mean_pairwise_mse(sampled, half)
        metrics["spread_same_digit"] = mean_pairwise_mse([levels[test][labels[test] == c]
                                                          for c in np.unique(labels[test])], half)
        return {"metrics": metrics, "status": status, "completions": completions[:12], "labels": labels[test].tolist(),
                "original": levels[test].tolist(), **{m: np.asarray(g).tolist() for m, g in guesses.items()},
                "lift_samples": sampled.tolist(), "sampled_status": sampled_status,
                "sampled_completions": sampled_texts[:4],
                "train_loss_per_epoch": [e["train_loss"] for e in history.epochs],
                "val_loss_per_epoch": [e["val_loss"] for e in history.epochs]}

    return cached_piece("half_image", profile, name, half_image_key(name, profile), compute, MODULE, cache=cache,
                        log=log)


def half_image_key(name: str, profile: str) -> dict:
    """What determines an image set's piece besides the code, library versions and model (runs.piece_key)."""
    image_set = image_sets(profile)[name]
    return {"experiment": "half_image", "set": image_set.options, "n_train": image_set.n_train,
            "n_val": image_set.n_val, "n_test": image_set.n_test, "extra_train": image_set.extra_train,
            "fit_config": asdict(FitConfig(epochs=image_set.epochs)),
            "samples": asdict(Sampling(n=SAMPLES[profile], seed=0)), "temperatures": TEMPERATURES}


def completion_grid(run: dict, title: str, shown: int = 10):
    """The figure of a run's test images: original, top half given, LIFT's greedy and sampled completions and the
    two baselines, one column an image, the given half above a red line."""
    import matplotlib.pyplot as plt

    side = int(run["metrics"]["side"])
    shown = min(shown, len(run["labels"]))
    samples = np.asarray(run["lift_samples"])
    rows = {"original": run["original"], "top half given": run["blank_bottom"], "LIFT greedy": run["lift"],
            **{f"LIFT sample {k + 1}": samples[:, k] for k in range(samples.shape[1])},
            "class mean": run["class_mean"], "nearest neighbour": run["nearest_neighbour"]}
    fig, axes = plt.subplots(len(rows), shown, figsize=(shown * 0.9, len(rows) * 0.95), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(shown):
            ax = axes[r, c]
            ax.imshow(np.asarray(images[c], dtype=float).reshape(side, side), cmap="gray_r", vmin=0, vmax=9)
            ax.axhline(side / 2 - 0.5, color="C3", lw=0.6)
            ax.set_xticks([]); ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            if r == 0:
                ax.set_title(str(run["labels"][c]), fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig
