"""Benchmark: liftnb's fine-tuning and prediction against the pipeline users would otherwise write, on three
regimes of prompt length, and against the library at another commit.

    python -m liftnb.bench                      # full: every workload (~1 h on 2 cores)
    python -m liftnb.bench --quick              # smoke run (minutes): few rows and steps, 1 repeat
    python -m liftnb.bench --workloads image many_class --against 07f4d0d   # this tree beside an older commit
    python -m liftnb.bench --quick --model tiny-random   # the harness alone (seconds; its numbers mean nothing)

Workloads: iris (3 classes, ~40 tokens a row; the HF Trainer reference and liftnb's variants), image (MNIST pooled
to 14x14, 10 classes, ~480 tokens), many_class (Margin, 64 features, 100 classes, ~576 tokens) and fmnist7
(Fashion-MNIST pooled to 7x7, 200 rows, the settings of 07f4d0d: 6 epochs of batch 8). Every variant runs in its
own subprocess (so peak RSS is its own), one after another (never two at once: two trainings on 2 cores slow each
other 2-4x). With --against, the same harness (this file) runs on the other commit's library in a git worktree,
so both sides are measured in one run. Compare ratios measured in one run, never absolute times across runs.
Prints tables and writes JSON (default bench/out/bench.json).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORKLOAD = {"dataset": "iris", "template": "names", "batch_size": 8}
# name -> what the child process fits; "reference" is HF Trainer, fp32, all layers, answer-only labels.
VARIANTS = {
    "reference": {"kind": "hf_trainer", "epochs": 3, "learning_rate": 5e-5},
    "liftnb_default": {"kind": "liftnb"},  # FitConfig defaults: top 40% of the layers (12 of 30), cached lower layers, bf16, >= 300 steps
    "liftnb_all_layers_bf16": {"kind": "liftnb", "train_layers": None, "epochs": 3, "learning_rate": 5e-5},
    "liftnb_fast": {"kind": "liftnb", "epochs": 4, "learning_rate": 3e-4},  # defaults, 4 epochs at a higher lr
    "liftnb_lora_top12": {"kind": "liftnb", "lora": 16, "learning_rate": 1e-3},
    # the reference's 3 epochs: defaults at a higher lr, full and LoRA
    "liftnb_3ep": {"kind": "liftnb", "epochs": 3, "learning_rate": 4e-4},
    "liftnb_lora_3ep": {"kind": "liftnb", "lora": 16, "epochs": 3, "learning_rate": 2e-3},
}
# The long-prompt regimes: one liftnb fit each at a fixed length (speed, not accuracy, is measured); rows are
# training rows, test the scored rows; quick runs take quick_rows / quick_test and 2 optimizer steps.
WORKLOADS = {
    "iris": {"variants": list(VARIANTS)},
    "image": {"dataset": "mnist", "side": 14, "style": "pixels", "rows": 200, "test": 100, "epochs": 2,
              "quick_rows": 16, "quick_test": 16},
    # every class in the training rows, so scoring covers all 100 answers; quick: 4 scored rows (16 took ~5 min of
    # prompt forwards, scoring and generation in fp32 on 2 cores)
    "many_class": {"dataset": "margin", "style": "no_names", "settings": {"max_precision": 2}, "all_classes": True,
                   "rows": 200, "test": 100, "epochs": 1, "quick_rows": 100, "quick_test": 4},
    # The anchor: Fashion-MNIST 7x7, 200 rows, the estimator's default template, the defaults of 07f4d0d
    # (6 epochs of batch 8).
    "fmnist7": {"dataset": "fmnist", "side": 7, "style": None, "rows": 200, "test": 200, "epochs": 6,
                "quick_rows": 16, "quick_test": 16},
}


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _workload(rows: int | None):
    from . import datasets

    data = datasets.load(WORKLOAD["dataset"])
    part = datasets.split(data, seed=0)
    import pandas as pd

    X_train = pd.concat([part.X_train, part.X_val])  # the 120 non-test rows, as in the anchor
    y_train = pd.concat([part.y_train, part.y_val])
    if rows:
        X_train, y_train = X_train.head(rows), y_train.head(rows)
    return data, X_train, y_train, part.X_test, part.y_test


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM on Linux, as ru_maxrss would start a child at its parent's peak
    (it is kept across fork and exec: a scoring process spawned by a 4.8 GB fitting one reported 4.8 GB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _AddedMemory:
    """Resident memory a block adds at its peak over what was resident before it, sampled every few ms from
    /proc/self/status (Linux; elsewhere None). The process peak is dominated by training's leftovers, and this
    sandbox ignores resets of the kernel's peak counter."""

    def __enter__(self):
        import threading

        self.added_mb, self.peak, self.running = None, None, True
        try:
            self.before = self.resident_mb()
        except OSError:
            return self
        self.peak = self.before
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.resident_mb())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.running = False
        if self.peak is not None:
            self.thread.join()
            self.added_mb = max(0.0, max(self.peak, self.resident_mb()) - self.before)

    @staticmethod
    def resident_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise OSError("VmRSS")


def _fit_reference(spec: dict, X_train, y_train, template, batch_size: int, model_name: str | None = None):
    """The usual pipeline: HF Trainer, fp32, full fine-tuning, padded batches with prompt tokens masked."""
    import torch
    from transformers import Trainer, TrainingArguments

    from .finetune import encode
    from .models import load_lm

    model, tokenizer = load_lm(model_name, device="cpu", attn_implementation="sdpa")  # transformers' default
    codes = np.searchsorted(np.unique(y_train), y_train)
    examples = encode(tokenizer, template.prompts(X_train), [template.answer(c) for c in codes])
    features = [{"input_ids": e.input_ids, "labels": [-100] * e.n_prompt + e.input_ids[e.n_prompt:]}
                for e in examples]

    def collate(batch):
        width = max(len(f["input_ids"]) for f in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, f in enumerate(batch):
            n = len(f["input_ids"])
            ids[row, :n], labels[row, :n], mask[row, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"]), 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    steps = -(-len(features) // batch_size) * spec["epochs"]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch_size, num_train_epochs=spec["epochs"],
            learning_rate=spec["learning_rate"], weight_decay=0.01, warmup_steps=max(1, round(0.06 * steps)),
            lr_scheduler_type="linear",
            logging_strategy="no", save_strategy="no", report_to=[], seed=0, use_cpu=True, disable_tqdm=True,
            dataloader_num_workers=0)
        started = time.perf_counter()
        Trainer(model=model, args=args, train_dataset=features, data_collator=collate).train()
        seconds = time.perf_counter() - started
    model.eval()
    tokens = sum(len(e.input_ids) for e in examples) * spec["epochs"]
    return model, tokenizer, seconds, tokens, {"trained_layers": "all", "cached_layers": 0}


def _surgery():
    """The model-surgery helpers: liftnb.finetune.surgery, or liftnb.finetune itself at older commits (--against)."""
    try:
        from .finetune import surgery
    except ImportError:
        from . import finetune as surgery
    return surgery


def _fit_liftnb(spec: dict, X_train, y_train, template, model_name: str | None = None):
    from .estimators import LIFTClassifier

    layer_list = _surgery().layer_list

    params = {k: v for k, v in spec.items() if k != "kind"}
    clf = LIFTClassifier(model=model_name, template=template, verbose=0, batch_size=WORKLOAD["batch_size"], **params)
    started = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - started
    depth = len(layer_list(clf.model_)[2])
    epochs = len(clf.history_.epochs)  # what was trained: epochs="auto" resolves only at fit time
    config = clf.fit_config()
    if hasattr(config, "trained_layer_count"):
        trained = config.trained_layer_count(depth)
    else:  # older commits (--against): train_layers was a count
        trained = min(depth, clf.train_layers or depth)
    info = {"trained_layers": trained, "cached_layers": clf.history_.cached_layers, "epochs": epochs, "depth": depth}
    spec.setdefault("epochs", epochs)
    return clf, seconds, clf.history_.trained_tokens, info


def _long_workload(name: str, rows: int, test: int):
    """(X_train, y_train, X_test, y_test, template) of a long-prompt workload: first rows of a seeded shuffle."""
    from . import datasets

    spec = WORKLOADS[name]
    if spec["dataset"] == "mnist":
        data = datasets.load_mnist(n=rows + test, crop=None, side=spec["side"])
    else:
        data = datasets.load(spec["dataset"])
        if spec.get("side"):  # square images stored as pixel columns: average blocks down to side x side
            width, side = int(round(np.sqrt(data.X.shape[1]))), spec["side"]
            block = width // side
            pooled = data.X.to_numpy(dtype=np.float32).reshape(-1, side, block, side, block).mean(axis=(2, 4))
            import pandas as pd

            data.X = pd.DataFrame(np.rint(pooled.reshape(len(pooled), -1)).astype(int),
                                  columns=[f"p{i}" for i in range(spec["side"] ** 2)])
    X, y = data.X.reset_index(drop=True), data.y.reset_index(drop=True)
    order = np.random.default_rng(0).permutation(len(y))
    if spec.get("all_classes"):  # one row of each class first, then the rest in the shuffled order
        first = np.unique(y.to_numpy()[order], return_index=True)[1]
        order = np.concatenate([order[np.sort(first)], np.delete(order, first)])
    train, held = order[:rows], order[rows:rows + test]
    template = datasets.template_for(data, style=spec["style"], **spec.get("settings", {})) if spec["style"] else None
    return X.iloc[train], y.iloc[train], X.iloc[held], y.iloc[held], template


def _rows_and_template(workload: str, rows: int | None = None, test_rows: int | None = None):
    """(X_train, y_train, X_test, y_test, template) of any workload: Iris's paper split (rows: its first training
    rows) or a long-prompt workload's (its sizes unless given); a template of None is the estimator's default."""
    if workload == "iris":
        from .datasets import template_for

        data, X_train, y_train, X_test, y_test = _workload(rows)
        if test_rows:
            X_test, y_test = X_test.head(test_rows), y_test.head(test_rows)
        return X_train, y_train, X_test, y_test, template_for(data, style=WORKLOAD["template"])
    sizes = WORKLOADS[workload]
    return _long_workload(workload, rows or sizes["rows"], test_rows or sizes["test"])


def run_variant(name: str, workload: str, rows: int | None, epochs_override: int | None,
                test_rows: int | None = None, max_steps: int | None = None, model_name: str | None = None,
                score_only: bool = False) -> dict:
    """Fit one variant on one workload and measure it (runs inside the child process); with score_only, also the
    memory of a fresh process that loads the saved fit and scores the same rows (score_only_process)."""
    import torch

    import liftnb

    from . import metrics
    from .predict import generate_answers, score_answers

    torch.set_flush_denormal(True)
    spec = dict(VARIANTS[name])
    X_train, y_train, X_test, y_test, template = _rows_and_template(workload, rows, test_rows)
    if workload != "iris":
        spec["epochs"] = WORKLOADS[workload]["epochs"]
    if epochs_override:
        spec["epochs"] = epochs_override
    if max_steps:
        spec["max_steps"] = max_steps
    classes = list(np.unique(y_train))
    if spec["kind"] == "hf_trainer":
        bound = template.bind(X_train, task="classification", classes=classes)
        model, tokenizer, seconds, tokens, info = _fit_reference(spec, X_train, y_train, bound,
                                                                 WORKLOAD["batch_size"], model_name)
    else:
        clf, seconds, tokens, info = _fit_liftnb(spec, X_train, y_train, template, model_name)
        model, tokenizer, bound = clf.model_, clf.tokenizer_, clf.template_
        classes = list(clf.classes_)
    n_params = _n_params(model.get_base_model() if hasattr(model, "get_base_model") else model)
    prompts = bound.prompts(X_test)
    known = np.isin(np.asarray(y_test), classes)  # a test class unseen in a small training sample cannot be right
    truth = np.where(known, np.searchsorted(classes, np.asarray(y_test)), -1)
    answers = bound.class_answers()
    prompt_tokens = float(np.mean([len(p) for p in tokenizer(list(prompts))["input_ids"]]))
    # Predict: label scoring vs generate + parse, on the same model and rows; and the bound: prompts alone.
    resident_mb = _AddedMemory.resident_mb() if Path("/proc/self/status").exists() else None
    # Alternated twice, fastest of each: the first pass after training pays for the allocator's warm-up.
    score_times, forward_times, added = [], [], []
    for _ in range(2):
        started = time.perf_counter()
        _prompt_forward(model, tokenizer, prompts)
        forward_times.append(time.perf_counter() - started)
        with _AddedMemory() as scoring_memory:
            started = time.perf_counter()
            scores = score_answers(model, tokenizer, prompts, answers, batch_size=16)
            score_times.append(time.perf_counter() - started)
        added.append(scoring_memory.added_mb)
    score_seconds, forward_seconds = min(score_times), min(forward_times)
    started = time.perf_counter()
    completions = generate_answers(model, tokenizer, prompts, stop=bound.answer_end, max_new_tokens=6)
    generate_seconds = time.perf_counter() - started
    parsed = [bound.parse(c) for c in completions]
    invalid = np.array([p is None for p in parsed])
    epochs = spec.get("epochs", 6)
    loaded = {}
    if score_only and spec["kind"] == "liftnb":
        with tempfile.TemporaryDirectory() as folder:
            clf.save(Path(folder) / "fitted")
            loaded = _spawn(["--child", "score_only", "--saved", str(Path(folder) / "fitted"), "--workload",
                             workload, "--rows", str(len(X_train)), "--test-rows", str(len(X_test))])
        loaded = {"score_only": loaded} if "failed" in loaded else loaded
    return {
        **loaded,
        "variant": name, "workload": workload, "spec": spec, **info, "rows": len(X_train), "fit_s": seconds,
        "train_tokens": tokens, "tokens_per_s": tokens / seconds, "examples_per_s": len(X_train) * epochs / seconds,
        "peak_rss_mb": _peak_rss_mb(), "n_params": n_params, "classes": len(answers),
        "prompt_tokens": prompt_tokens, "reference_gflop": 6 * n_params * tokens / 1e9,
        "trained_gflop": _trained_gflop(model, info, tokens, epochs),
        "acc_score": metrics.accuracy(truth, scores.argmax(1)),
        "acc_generate": float(np.mean([p == t for p, t in zip(parsed, truth)])),
        "invalid_generate": float(invalid.mean()), "test_rows": len(prompts),
        "score_s": score_seconds, "generate_s": generate_seconds, "prompt_forward_s": forward_seconds,
        "score_added_mb": None if None in added else max(added), "resident_before_score_mb": resident_mb,
        "library": str(Path(liftnb.__file__).resolve().parent.parent),
    }


def _trained_gflop(model, info: dict, tokens: int, epochs: int) -> float | None:
    """The work training needs: forward + backward (6 flops a parameter a token) of the trained layers, plus one
    forward (2) of the frozen lower layers when they were computed once, plus the forward of the layers in between
    every epoch when they were not. Embeddings and the LM head are left out."""
    try:
        layers = _surgery().layer_list(model)[2]
    except Exception:  # noqa: BLE001 - an architecture the helper does not know
        return None
    per_layer = sum(p.numel() for p in layers[0].parameters())
    depth, trained = len(layers), info["trained_layers"] if isinstance(info["trained_layers"], int) else len(layers)
    frozen = depth - trained
    frozen_passes = 1 if info.get("cached_layers") else epochs
    return (6 * per_layer * trained * tokens + 2 * per_layer * frozen * tokens / epochs * frozen_passes) / 1e9


def _prompt_forward(model, tokenizer, prompts, batch_size: int = 16):
    """Prompt-only forward passes, in scoring's batches and with its attention kernel (the bound for scoring)."""
    import torch

    from .predict import model_autocast

    decoder_of = _surgery().decoder_of
    try:
        from .models import attention_for
    except ImportError:  # an older library (--against) has a single kernel
        def attention_for(model, width):
            return contextlib.nullcontext()
    device = next(model.parameters()).device
    order = np.argsort([len(p) for p in tokenizer(list(prompts))["input_ids"]], kind="stable")
    with torch.no_grad(), model_autocast(model):
        for start in range(0, len(order), batch_size):
            batch = tokenizer([prompts[r] for r in order[start:start + batch_size]], return_tensors="pt",
                              padding=True)  # liftnb's tokenizers pad on the left, as scoring does
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            with attention_for(model, ids.shape[1]):
                hidden = decoder_of(model)(input_ids=ids, attention_mask=mask,
                                           position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).last_hidden_state
            model.get_output_embeddings()(hidden[:, -1])


def matmul_rate(sizes=(1024, 2048, 3072), repeats: int = 7, slow_s: float = 1.0) -> dict:
    """Dense matmul GFLOP/s of this machine, fp32 and bf16: the best size's median of repeats after warm-up (single
    timings of one size swung 2x between runs). A size whose warm-up matmul took over `slow_s` ends that dtype's
    sizes: bf16 without native kernels (an AVX2-only CPU) runs at ~1 GFLOP/s, and its 3072 size alone took 11 min."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        per_size = {}
        for size in sizes:
            a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
            started = time.perf_counter()
            for _ in range(2):
                torch.matmul(a, b)
            slow = (time.perf_counter() - started) / 2 > slow_s
            times = []
            for _ in range(1 if slow else repeats):
                started = time.perf_counter()
                torch.matmul(a, b)
                times.append(time.perf_counter() - started)
            per_size[size] = 2 * size ** 3 / statistics.median(times) / 1e9
            if slow:
                break
        out[f"matmul_{name}_gflops"] = max(per_size.values())
        out[f"matmul_{name}_by_size"] = per_size
    return out


def kernel_table(lengths=(40, 150, 300, 600), steps: int = 4, rows: int = 8, model_name: str | None = None) -> dict:
    """Eager against SDPA attention by prompt length: seconds per default training step of `rows` prompts (top
    layers trained over the layer cache; the first step left out as warm-up) and prompt-forward tokens/s. The
    measurement behind models.LONG_SEQUENCE_TOKENS."""
    from .finetune import Callback, FitConfig, Trainer, encode
    from .models import load_lm

    class StepClock(Callback):
        def on_train_begin(self, trainer):
            self.marks = []

        def on_step_end(self, trainer, loss):
            self.marks.append(time.perf_counter())

    rng = np.random.default_rng(0)
    table = []
    for length in lengths:
        for kernel in ("eager", "sdpa"):
            model, tokenizer = load_lm(model_name, device="cpu", attn_implementation=kernel)
            prompts = []
            for _ in range(rows * (steps + 1)):
                values, prompt = [], ""
                while len(tokenizer(prompt)["input_ids"]) < length:
                    values.append(int(rng.integers(0, 256)))
                    prompt = "Given that " + ", ".join(f"x{i} is {v}" for i, v in enumerate(values)) + ". Class?###"
                prompts.append(prompt)
            clock = StepClock()
            examples = encode(tokenizer, prompts, [f"{i % 10}@@@" for i in range(len(prompts))])
            Trainer(model, tokenizer, FitConfig(epochs=1, batch_size=rows, shuffle=False), [clock]).fit(examples)
            step_s = statistics.median(np.diff(clock.marks))
            started = time.perf_counter()
            _prompt_forward(model, tokenizer, prompts[:16])
            tokens = sum(len(p) for p in tokenizer(prompts[:16])["input_ids"])
            table.append({"tokens": length, "attention": kernel, "train_step_s": float(step_s),
                          "forward_tokens_per_s": tokens / (time.perf_counter() - started)})
            del model
    return {"kernels": table}


def scoring_batch_table(workloads=("iris", "image", "many_class"), rows: int = 32, batches=(8, 16, 32),
                        repeats: int = 2, model_name: str | None = None) -> dict:
    """Label scoring's seconds by batch size (rows a batch) on workloads' test rows (Iris has 30), the untrained
    model, fastest of `repeats` passes after a warm-up: the measurement a scoring batch counted in tokens would be
    chosen by (the estimators score max(8, 4 x batch_size) rows a batch, 32 at the defaults, whatever the length)."""
    import torch

    from .models import load_lm
    from .predict import score_answers

    from .templates import Template

    torch.set_flush_denormal(True)
    model, tokenizer = load_lm(model_name, device="cpu")
    table = []
    for workload in workloads:
        X_train, y_train, X_test, _, template = _rows_and_template(workload, test_rows=rows)
        bound = (template or Template()).bind(X_train, task="classification", classes=list(np.unique(y_train)))
        prompts, answers = bound.prompts(X_test), bound.class_answers()
        tokens = float(np.mean([len(p) for p in tokenizer(list(prompts))["input_ids"]]))
        score_answers(model, tokenizer, prompts[:min(batches)], answers, batch_size=min(batches))  # warm-up
        seconds = {batch: [] for batch in batches}
        for _ in range(repeats):  # alternated, so drift of the machine falls on every size alike
            for batch in batches:
                started = time.perf_counter()
                score_answers(model, tokenizer, prompts, answers, batch_size=batch)
                seconds[batch].append(time.perf_counter() - started)
        table += [{"workload": workload, "tokens": tokens, "classes": len(answers), "rows": len(prompts),
                   "batch": batch, "score_s": min(times)} for batch, times in seconds.items()]
    return {"scoring_batches": table}


def regression_decoding(rows: int, epochs: int, model_name: str | None = None) -> dict:
    """Rows/s and invalid rate of number decoding after a short LIFT regression fit."""
    from . import datasets, metrics
    from .estimators import LIFTRegressor

    data = datasets.load("linear", n=rows + 50, p=1)
    X_train, y_train = data.X.head(rows), data.y.head(rows)
    X_test, y_test = data.X.tail(50), data.y.tail(50)
    reg = LIFTRegressor(model=model_name, epochs=epochs, verbose=0).fit(X_train, y_train)
    started = time.perf_counter()
    predicted = reg.predict(X_test)
    seconds = time.perf_counter() - started
    return {"regression_rows_per_s": len(X_test) / seconds, "regression_invalid_rate": reg.invalid_rate_,
            "regression_rae": metrics.rae(y_test, predicted, filter_outliers=True), "regression_fit_s":
            reg.history_.seconds}


def score_only_process(saved: str, workload: str, rows: int, test_rows: int) -> dict:
    """What a user's process needs to score: load a saved fit and predict_proba a long workload's test rows (the
    process peak of the fitting child holds training's leftovers)."""
    import torch

    from .estimators import LIFTClassifier

    torch.set_flush_denormal(True)
    X_test = _rows_and_template(workload, rows, test_rows)[2]
    clf = LIFTClassifier.load(saved, device="cpu")
    loaded_mb = _peak_rss_mb()
    started = time.perf_counter()
    clf.predict_proba(X_test)
    return {"score_only_s": time.perf_counter() - started, "score_only_loaded_peak_mb": loaded_mb,
            "score_only_peak_mb": _peak_rss_mb(), "score_only_rows": len(X_test)}


def _child(args) -> None:
    if args.child == "matmul":
        import torch

        from .models import bf16_supported

        # the default precision="auto" trains in bf16 only where it is native, so that is the peak training can reach
        result = {**matmul_rate(), "training_precision": "bf16" if bf16_supported(torch.device("cpu")) else "fp32"}
    elif args.child == "kernels":
        result = kernel_table(model_name=args.model)
    elif args.child == "scoring_batches":
        result = scoring_batch_table(model_name=args.model, rows=args.test_rows or 32)
    elif args.child == "score_only":
        result = score_only_process(args.saved, args.workload, args.rows, args.test_rows)
    elif args.child == "regression":
        result = regression_decoding(args.regression_rows, args.regression_epochs, args.model)
    else:
        result = run_variant(args.child, args.workload, args.rows, args.epochs, args.test_rows, args.max_steps,
                             args.model, args.score_only)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(argv: list[str], tree: Path | None = None) -> dict:
    """Run one child; with tree, in that checkout (its library). A failed child is a result, not an abort."""
    process = subprocess.run([sys.executable, "-m", "liftnb.bench", *argv], capture_output=True, text=True,
                             cwd=tree, env={**os.environ, "TOKENIZERS_PARALLELISM": "false",
                                            "LIFTNB_DATA": str(Path(__file__).resolve().parent.parent / "data")})
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    if process.returncode < 0:
        why = f"killed by signal {-process.returncode}" + (" (out of memory?)" if process.returncode == -9 else "")
    else:
        why = f"exit {process.returncode}: {(process.stderr.strip().splitlines() or [''])[-1][:300]}"
    return {"failed": why, "argv": argv}


@contextlib.contextmanager
def _checkout(commit: str):
    """A temporary git worktree of commit whose bench.py is this one (the harness), so both sides run the same
    measurement code over their own library."""
    root = Path(__file__).resolve().parent.parent
    folder = Path(tempfile.mkdtemp(prefix="liftnb-bench-"))
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(folder / "tree"), commit],
                   check=True, capture_output=True)
    try:
        shutil.copy(Path(__file__), folder / "tree" / "liftnb" / "bench.py")
        yield folder / "tree"
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(folder / "tree")],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _median_runs(runs: list[dict]) -> dict:
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return runs[0]
    merged = dict(ok[0])
    for key, value in ok[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = statistics.median(r[key] for r in ok)
    merged["repeats"] = len(ok)
    return merged


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: few rows, 1 epoch each, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="Iris variants to run")
    parser.add_argument("--against", default=None, help="a git commit whose library runs the same liftnb "
                        "variants beside this tree's (e.g. 07f4d0d, the start of the speed issue)")
    parser.add_argument("--no-regression", action="store_true", help="skip the regression decoding run")
    parser.add_argument("--kernels", action="store_true", help="also time eager against SDPA attention by prompt "
                        "length (a few minutes)")
    parser.add_argument("--scoring-batches", action="store_true", help="also time label scoring by batch size on "
                        "the iris, image and many_class test rows (minutes)")
    parser.add_argument("--model", default=None, help="a model id or folder instead of the embedded SmolLM2 (e.g. "
                        "tiny-random: the harness alone, in seconds); this tree only, not with --against")
    parser.add_argument("--out", default="bench/out/bench.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workload", default="iris", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--test-rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--score-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--saved", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--regression-rows", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--regression-epochs", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return {}
    if args.model and args.against:
        parser.error("--model runs this tree's library only; leave out --against (another commit's harness may "
                     "not take --model)")
    model = ["--model", args.model] if args.model else []
    repeats = args.repeats or (1 if args.quick else 3)
    commit = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent.parent), "rev-parse", "--short",
                             "HEAD"], capture_output=True, text=True).stdout.strip() or None
    results = {"quick": args.quick, "repeats": repeats, "machine": {"cpus": os.cpu_count()},
               "commit": commit, "against": args.against, "model": args.model or "embedded SmolLM2-135M-Instruct"}
    results.update(_spawn(["--child", "matmul"]))
    with (_checkout(args.against) if args.against else contextlib.nullcontext()) as other:
        rows = []
        for workload in args.workloads:
            spec = WORKLOADS[workload]
            if workload == "iris":
                names, sizing = args.variants, (["--rows", "48", "--epochs", "1"] if args.quick else [])
                times = repeats
            else:
                names = ["liftnb_default"]
                # quick: 2 optimizer steps, enough to exercise the long regime's training and scoring (13 steps of
                # many_class took over 7 min on an AVX2-only CPU)
                sizing = ["--rows", str(spec["quick_rows"]), "--test-rows", str(spec["quick_test"]), "--epochs",
                          "1", "--max-steps", "2"] if args.quick else []
                times = 1  # minutes each: one run, ratios within it
            for name in names:
                sides = [("this", None)] + ([(args.against, other)] if other and name != "reference" else [])
                for label, tree in sides:
                    # this tree only: another commit's library may not save or load a fit
                    loading = ["--score-only"] if workload != "iris" and tree is None else []
                    runs = [_spawn(["--child", name, "--workload", workload, *sizing, *model, *loading], tree)
                            for _ in range(times)]
                    row = {**_median_runs(runs), "variant": name, "workload": workload, "code": label}
                    rows.append(row)
                    print(f"  {workload} {name} [{label}]: " + (row["failed"] if "failed" in row else
                          f"fit {row['fit_s']:.1f} s, score {row['score_s']:.1f} s, acc {row['acc_score']:.3f}"),
                          flush=True)
    results["variants"] = rows
    if args.kernels:
        results.update(_spawn(["--child", "kernels", *model]))
    if args.scoring_batches:
        results.update(_spawn(["--child", "scoring_batches", *(["--test-rows", "4"] if args.quick else []), *model]))
    if not args.no_regression:
        regression = ["--regression-rows", "48", "--regression-epochs", "1"] if args.quick else []
        results.update(_spawn(["--child", "regression", *regression, *model]))
    report(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")
    return results


def report(results: dict) -> None:
    """Print the tables and the ratios against the targets of the performance issues."""
    import pandas as pd

    precision = results.get("training_precision", "bf16")
    peak = results.get(f"matmul_{precision}_gflops")
    print(f"model: {results.get('model', 'embedded SmolLM2-135M-Instruct')}")
    measured = [r for r in results["variants"] if "failed" not in r]
    table = pd.DataFrame([{
        "workload": r["workload"], "variant": r["variant"], "code": r["code"], "tokens": r["prompt_tokens"],
        "classes": r["classes"], "fit_s": r["fit_s"], "tokens/s": r["tokens_per_s"],
        "train_GFLOP/s": (r["trained_gflop"] or float("nan")) / r["fit_s"], "score_s": r["score_s"],
        "score/fwd": r["score_s"] / r["prompt_forward_s"], "score_rows/s": r["test_rows"] / r["score_s"],
        "gen_rows/s": r["test_rows"] / r["generate_s"], "score_added_MB": r["score_added_mb"],
        "peak_rss_MB": r["peak_rss_mb"], "score_only_peak_MB": r.get("score_only_peak_mb"),
        "acc_score": r["acc_score"], "invalid": r["invalid_generate"],
    } for r in measured])
    with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 250):
        print(table.to_string(index=False))
    for r in results["variants"]:
        if "failed" in r:
            print(f"{r['workload']} {r['variant']} [{r['code']}]: failed: {r['failed']}")
    print(f"\nmatmul peak (best of sizes {list(results.get('matmul_bf16_by_size', {}))}): fp32 "
          f"{results['matmul_fp32_gflops']:.0f} GFLOP/s, bf16 {results['matmul_bf16_gflops']:.0f} GFLOP/s; training "
          f"runs in {precision} here")
    print("train_GFLOP/s counts the trained layers (6 flops/param/token) plus the frozen layers' forward (2)")
    rows = {(r["workload"], r["variant"], r["code"]): r for r in measured}
    reference, ours = rows.get(("iris", "reference", "this")), rows.get(("iris", "liftnb_default", "this"))
    if reference and ours:
        print(f"iris: fit speed-up reference/liftnb_default: {reference['fit_s'] / ours['fit_s']:.2f}x; accuracy "
              f"{ours['acc_score']:.3f} vs {reference['acc_score']:.3f}; label scoring vs generate: "
              f"{ours['generate_s'] / ours['score_s']:.2f}x faster")
    for workload in [w for w in WORKLOADS if w != "iris"]:
        this = rows.get((workload, "liftnb_default", "this"))
        if not this:
            continue
        if "score_only_peak_mb" in this:
            loaded = (f"a process that loads the fit and scores {this['score_only_rows']} rows peaks at "
                      f"{this['score_only_peak_mb']:.0f} MB (target < 4096 on many_class)")
        else:
            loaded = f"loading the fit to score: {this.get('score_only', {}).get('failed', 'not measured')}"
        line = (f"{workload}: scoring / prompt-only forward {this['score_s'] / this['prompt_forward_s']:.2f} "
                f"(target <= 1.3); scoring added {this['score_added_mb'] or float('nan'):.0f} MB to the fitting "
                f"process (its peak {this['peak_rss_mb']:.0f} MB); {loaded}; training "
                f"{(this['trained_gflop'] or 0) / this['fit_s'] / peak:.0%} of the {precision} matmul peak (target >= 50%)")
        other = rows.get((workload, "liftnb_default", results.get("against")))
        if other:
            mine, theirs = this["fit_s"] + this["score_s"], other["fit_s"] + other["score_s"]
            line += (f"; fit+score {theirs:.0f} s at {results['against']} vs {mine:.0f} s here: "
                     f"{theirs / mine:.2f}x (fmnist7 target >= 3x)")
        print(line)
    if results.get("kernels"):
        kernels = pd.DataFrame(results["kernels"]).pivot(index="tokens", columns="attention")
        with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 200):
            print("\nattention kernels by prompt length (training step of 8 rows, s; prompt forward, tokens/s):")
            print(kernels.to_string())
    if results.get("scoring_batches"):
        batches = pd.DataFrame(results["scoring_batches"]).pivot(index=["workload", "tokens", "classes", "rows"],
                                                                 columns="batch", values="score_s")
        with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 200):
            print("\nlabel scoring by batch size (rows a batch; seconds for all rows, the untrained model):")
            print(batches.to_string())
    if "regression_rows_per_s" in results:
        print(f"regression decoding: {results['regression_rows_per_s']:.1f} rows/s, invalid rate "
              f"{results['regression_invalid_rate']:.3f}, RAE {results['regression_rae']:.3f}")


if __name__ == "__main__":
    main()
