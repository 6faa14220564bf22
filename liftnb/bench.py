"""Benchmark: liftnb's fine-tuning and prediction against the pipeline users would otherwise write.

    python -m liftnb.bench            # full: Iris 120 rows, every variant, 3 repeats (~25 min on 2 cores)
    python -m liftnb.bench --quick    # smoke run (< 5 min): fewer rows and epochs, 1 repeat

Every variant runs in its own subprocess (so peak RSS is its own), one after another (never two at once: two
trainings on 2 cores slow each other 2-4x). Compare ratios measured in one run, never absolute times across runs.
Prints a table and writes JSON (default bench/out/bench.json).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fit_reference(spec: dict, X_train, y_train, template, batch_size: int):
    """The usual pipeline: HF Trainer, fp32, full fine-tuning, padded batches with prompt tokens masked."""
    import torch
    from transformers import Trainer, TrainingArguments

    from .finetune import encode
    from .models import load_lm

    model, tokenizer = load_lm(device="cpu", attn_implementation="sdpa")  # transformers' default, as users get it
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


def _fit_liftnb(spec: dict, X_train, y_train, template):
    from .estimators import LIFTClassifier
    from .finetune.surgery import layer_list

    params = {k: v for k, v in spec.items() if k != "kind"}
    clf = LIFTClassifier(template=template, verbose=0, batch_size=WORKLOAD["batch_size"], **params)
    started = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - started
    depth = len(layer_list(clf.model_)[2])
    epochs = len(clf.history_.epochs)  # what was trained: epochs="auto" resolves only at fit time
    info = {"trained_layers": clf.fit_config().trained_layer_count(depth), "cached_layers": clf.history_.cached_layers,
            "epochs": epochs}
    spec.setdefault("epochs", epochs)
    return clf, seconds, clf.history_.trained_tokens, info


def run_variant(name: str, rows: int | None, epochs_override: int | None) -> dict:
    """Fit one variant and measure it (runs inside the child process)."""
    import torch

    from . import metrics
    from .datasets import template_for
    from .predict import generate_answers, score_answers

    torch.set_flush_denormal(True)
    spec = dict(VARIANTS[name])
    if epochs_override:
        spec["epochs"] = epochs_override
    data, X_train, y_train, X_test, y_test = _workload(rows)
    template = template_for(data, style=WORKLOAD["template"])
    bound = template.bind(X_train, task="classification", classes=list(np.unique(y_train)))
    if spec["kind"] == "hf_trainer":
        model, tokenizer, seconds, tokens, info = _fit_reference(spec, X_train, y_train, bound,
                                                                 WORKLOAD["batch_size"])
    else:
        clf, seconds, tokens, info = _fit_liftnb(spec, X_train, y_train, template)
        model, tokenizer, bound = clf.model_, clf.tokenizer_, clf.template_
    n_params = _n_params(model.get_base_model() if hasattr(model, "get_base_model") else model)
    prompts = bound.prompts(X_test)
    truth = np.searchsorted(np.unique(y_train), np.asarray(y_test))
    answers = bound.class_answers()
    # Predict: label scoring vs generate + parse, on the same model and rows; and the bound: prompts alone.
    started = time.perf_counter()
    scores = score_answers(model, tokenizer, prompts, answers)
    score_seconds = time.perf_counter() - started
    started = time.perf_counter()
    completions = generate_answers(model, tokenizer, prompts, stop=bound.answer_end, max_new_tokens=6)
    generate_seconds = time.perf_counter() - started
    parsed = [bound.parse(c) for c in completions]
    invalid = np.array([p is None for p in parsed])
    started = time.perf_counter()
    _prompt_forward(model, tokenizer, prompts)
    forward_seconds = time.perf_counter() - started
    return {
        "variant": name, "spec": spec, **info, "rows": len(X_train), "fit_s": seconds, "train_tokens": tokens,
        "tokens_per_s": tokens / seconds, "examples_per_s": len(X_train) * spec.get("epochs", 6) / seconds,
        "peak_rss_mb": _peak_rss_mb(), "n_params": n_params,
        "reference_gflop": 6 * n_params * tokens / 1e9,
        "acc_score": metrics.accuracy(truth, scores.argmax(1)),
        "acc_generate": float(np.mean([p == t for p, t in zip(parsed, truth)])),
        "invalid_generate": float(invalid.mean()), "test_rows": len(prompts),
        "score_s": score_seconds, "generate_s": generate_seconds, "prompt_forward_s": forward_seconds,
    }


def _prompt_forward(model, tokenizer, prompts):
    """One batched forward pass over the prompts alone (the bound for label scoring)."""
    import torch

    from .finetune.surgery import decoder_of
    from .predict import left_padded, model_autocast

    device = next(model.parameters()).device
    ids, mask = left_padded(tokenizer(list(prompts))["input_ids"], tokenizer.pad_token_id, device)
    with torch.no_grad(), model_autocast(model):
        hidden = decoder_of(model)(input_ids=ids, attention_mask=mask,
                                   position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).last_hidden_state
        model.get_output_embeddings()(hidden[:, -1])


def matmul_rate(size: int = 2048, repeats: int = 5) -> dict:
    """Dense matmul GFLOP/s of this machine, fp32 and bf16 (median of repeats)."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        torch.matmul(a, b)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - started)
        out[f"matmul_{name}_gflops"] = 2 * size ** 3 / statistics.median(times) / 1e9
    return out


def regression_decoding(rows: int, epochs: int) -> dict:
    """Rows/s and invalid rate of number decoding after a short LIFT regression fit."""
    from . import datasets, metrics
    from .estimators import LIFTRegressor

    data = datasets.load("linear", n=rows + 50, p=1)
    X_train, y_train = data.X.head(rows), data.y.head(rows)
    X_test, y_test = data.X.tail(50), data.y.tail(50)
    reg = LIFTRegressor(epochs=epochs, verbose=0).fit(X_train, y_train)
    started = time.perf_counter()
    predicted = reg.predict(X_test)
    seconds = time.perf_counter() - started
    return {"regression_rows_per_s": len(X_test) / seconds, "regression_invalid_rate": reg.invalid_rate_,
            "regression_rae": metrics.rae(y_test, predicted, filter_outliers=True), "regression_fit_s":
            reg.history_.seconds}


def _child(args) -> None:
    if args.child == "matmul":
        result = matmul_rate()
    elif args.child == "regression":
        result = regression_decoding(args.regression_rows, args.regression_epochs)
    else:
        result = run_variant(args.child, args.rows, args.epochs)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(argv: list[str]) -> dict:
    process = subprocess.run([sys.executable, "-m", "liftnb.bench", *argv], capture_output=True, text=True,
                             env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"benchmark child {argv} failed:\n{process.stdout[-2000:]}\n{process.stderr[-4000:]}")


def _median_runs(runs: list[dict]) -> dict:
    merged = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = statistics.median(r[key] for r in runs)
    merged["repeats"] = len(runs)
    return merged


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 48 rows, 1 epoch each, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--out", default="bench/out/bench.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--regression-rows", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--regression-epochs", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return {}
    repeats = args.repeats or (1 if args.quick else 3)
    sizing = ["--rows", "48", "--epochs", "1"] if args.quick else []
    regression = ["--regression-rows", "48", "--regression-epochs", "1"] if args.quick else []
    results = {"quick": args.quick, "repeats": repeats, "machine": {"cpus": os.cpu_count()}}
    results.update(_spawn(["--child", "matmul"]))
    rows = []
    for name in args.variants:
        runs = [_spawn(["--child", name, *sizing]) for _ in range(repeats)]
        rows.append(_median_runs(runs))
        print(f"  {name}: fit {rows[-1]['fit_s']:.1f} s, acc {rows[-1]['acc_score']:.3f}", flush=True)
    results["variants"] = rows
    results.update(_spawn(["--child", "regression", *regression]))
    report(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")
    return results


def report(results: dict) -> None:
    """Print the table and the ratios against the targets of the performance issue."""
    import pandas as pd

    rows = {r["variant"]: r for r in results["variants"]}
    reference = rows.get("reference")
    table = pd.DataFrame([{
        "variant": name, "fit_s": r["fit_s"], "tokens/s": r["tokens_per_s"], "examples/s": r["examples_per_s"],
        "peak_rss_MB": r["peak_rss_mb"], "eff_GFLOP/s": (reference or r)["reference_gflop"] / r["fit_s"],
        "acc_score": r["acc_score"], "acc_generate": r["acc_generate"], "invalid": r["invalid_generate"],
        "score_s": r["score_s"], "generate_s": r["generate_s"], "prompt_fwd_s": r["prompt_forward_s"],
    } for name, r in rows.items()]).set_index("variant")
    with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 200):
        print(table.to_string())
    print(f"\nmatmul 2048^3: fp32 {results['matmul_fp32_gflops']:.0f} GFLOP/s, "
          f"bf16 {results['matmul_bf16_gflops']:.0f} GFLOP/s")
    print("eff_GFLOP/s = 6 * params * (the reference's trained tokens) / this variant's fit seconds")
    if reference and "liftnb_default" in rows:
        ours = rows["liftnb_default"]
        speedup = reference["fit_s"] / ours["fit_s"]
        effective = reference["reference_gflop"] / ours["fit_s"]
        print(f"fit speed-up reference/liftnb_default: {speedup:.2f}x (target >= 5x); accuracy "
              f"{ours['acc_score']:.3f} vs {reference['acc_score']:.3f} (target: within 0.01)")
        print(f"effective training rate: {effective:.0f} GFLOP/s = "
              f"{effective / results['matmul_bf16_gflops']:.0%} of bf16 matmul peak (target >= 60%)")
        print(f"label scoring vs generate: {ours['generate_s'] / ours['score_s']:.2f}x faster (target >= 1); "
              f"scoring / prompt-only forward: {ours['score_s'] / ours['prompt_forward_s']:.2f} (target <= 1.3)")
    print(f"regression decoding: {results['regression_rows_per_s']:.1f} rows/s, invalid rate "
          f"{results['regression_invalid_rate']:.3f}, RAE {results['regression_rae']:.3f}")


if __name__ == "__main__":
    main()
