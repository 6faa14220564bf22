"""The benchmark's harness: its quick mode end to end on the tiny random model, and its kernel table (no timing
assertions; `make bench` runs it on the embedded model)."""
import json
import os
import signal
import subprocess
import sys


def _run_in_own_group(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    """Run a command; on timeout kill its whole process group, so that no benchmark child is left training (an
    orphaned one once slowed every later test of a CI run 2x)."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def test_bench_quick_runs_and_writes_json(tmp_path):
    # the harness on the tiny random model (its numbers mean nothing): with the embedded model this smoke run took
    # 528 s of a 58-minute CI run in fp32 (2026-12-03), for no assertion about the model; `make bench` runs that
    out = tmp_path / "bench.json"
    process = _run_in_own_group([sys.executable, "-m", "liftnb.bench", "--quick", "--workloads", "iris", "many_class",
                                 "--variants", "reference", "liftnb_default", "--model", "tiny-random",
                                 "--out", str(out)], timeout=1200)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "fit speed-up reference/liftnb_default" in process.stdout
    assert "many_class: scoring / prompt-only forward" in process.stdout
    results = json.loads(out.read_text())
    names = [(v["workload"], v["variant"]) for v in results["variants"]]
    assert names == [("iris", "reference"), ("iris", "liftnb_default"), ("many_class", "liftnb_default")]
    for variant in results["variants"]:
        assert "failed" not in variant, variant
        assert variant["fit_s"] > 0 and variant["train_tokens"] > 0 and variant["peak_rss_mb"] > 0
        assert {"acc_score", "invalid_generate", "score_added_mb", "prompt_forward_s"} <= set(variant)
    many = results["variants"][-1]
    assert many["classes"] == 100 and many["prompt_tokens"] > 256  # the long, many-class regime
    # a fresh process loads the saved fit and scores the same rows: its own peak, apart from training's
    assert many["score_only_rows"] == many["test_rows"] and 0 < many["score_only_peak_mb"]
    assert "a process that loads the fit and scores 4 rows peaks at" in process.stdout
    assert not any("score_only_peak_mb" in v for v in results["variants"][:2])  # Iris: not asked
    assert results["matmul_bf16_gflops"] > 0 and results["matmul_fp32_gflops"] > 0
    assert results["training_precision"] in ("bf16", "fp32")
    assert results["model"] == "tiny-random" and "model: tiny-random" in process.stdout
    assert "regression_invalid_rate" in results


def test_kernel_table_times_both_attention_kernels_at_each_length():
    from liftnb.bench import kernel_table

    table = kernel_table(lengths=(30,), steps=1, rows=2)["kernels"]
    assert [(r["tokens"], r["attention"]) for r in table] == [(30, "eager"), (30, "sdpa")]
    assert all(r["train_step_s"] > 0 and r["forward_tokens_per_s"] > 0 for r in table)


def test_scoring_batch_table_times_each_batch_size_on_short_and_long_prompts():
    from liftnb.bench import scoring_batch_table

    table = scoring_batch_table(workloads=("iris", "many_class", "fmnist7"), rows=3, batches=(1, 2), repeats=1,
                                model_name="tiny-random")["scoring_batches"]
    assert [(r["workload"], r["batch"]) for r in table] == [(w, b) for w in ("iris", "many_class", "fmnist7")
                                                            for b in (1, 2)]
    assert all(r["rows"] == 3 and r["score_s"] > 0 for r in table)
    assert [r["classes"] for r in table] == [3, 3, 100, 100, 10, 10]
    assert table[0]["tokens"] < 100 < table[2]["tokens"]  # short and long prompts


def test_bench_refuses_a_model_with_another_commits_harness():
    process = subprocess.run([sys.executable, "-m", "liftnb.bench", "--model", "tiny-random", "--against", "HEAD"],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2 and "--model runs this tree's library only" in process.stderr
