"""The results cache: keyed by content, atomic, damaged entries recomputed."""
import numpy as np
import pandas as pd

import pytest

from liftnb.cache import ResultsCache, accelerator, bf16_kernels, environment, fingerprint


def test_fingerprint_follows_content_not_identity():
    a = pd.DataFrame({"x": [1.0, 2.0]})
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.assign(x=[1.0, 2.5]))
    assert fingerprint(a) != fingerprint(a.rename(columns={"x": "y"}))
    assert fingerprint({"lr": 1e-3, "seed": 0}) == fingerprint({"seed": 0, "lr": 1e-3})
    assert fingerprint({"lr": 1e-3}) != fingerprint({"lr": 2e-3})


def test_get_or_compute_reuses_and_recomputes_damaged(tmp_path):
    cache = ResultsCache(tmp_path)
    calls = []
    key = {"data": pd.Series(np.arange(5)), "seed": 0}

    def compute():
        calls.append(1)
        return {"accuracy": 0.9}

    assert cache.get_or_compute(key, compute) == ({"accuracy": 0.9}, False)
    assert cache.get_or_compute(key, compute) == ({"accuracy": 0.9}, True)
    assert len(calls) == 1
    assert not list(tmp_path.glob(".tmp-*"))  # no temporary files left behind
    cache.path(key).write_text("{ half a fi")
    assert cache.get_or_compute(key, compute) == ({"accuracy": 0.9}, False)
    assert len(calls) == 2


def test_compare_table_is_reused_from_the_cache(tmp_path, monkeypatch):
    import liftnb.compare as experiments
    from liftnb import datasets

    calls = []

    def fake_compare(data, seed=0, **kwargs):
        calls.append(seed)
        table = pd.DataFrame({"method": ["lift_score", "majority"], "accuracy": [0.9 + seed, 0.3]})
        return table.set_index("method"), None

    monkeypatch.setattr(experiments, "compare", fake_compare)
    data = datasets.load("iris")
    cache = ResultsCache(tmp_path)
    first = experiments.compare_table(data, seed=1, cache=cache, epochs=2)
    again = experiments.compare_table(data, seed=1, cache=cache, epochs=2)
    other = experiments.compare_table(data, seed=1, cache=cache, epochs=3)
    pd.testing.assert_frame_equal(first, again)
    assert calls == [1, 1]  # the second call came from disk; a different hyperparameter recomputed
    assert first.loc["lift_score", "accuracy"] == 1.9 and other.index.name == "method"


AMX_CPU = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}


@pytest.mark.parametrize("flags, cap, kernels", [
    (AMX_CPU, "", "avx512_core_amx"),
    (AMX_CPU, "ALL", "avx512_core_amx"),
    (AMX_CPU, "avx512_core_bf16", "avx512_core_bf16"),  # the cap that reproduces rows computed before AMX machines
    (AMX_CPU, "AVX2", "avx2"),
    (AMX_CPU - {"amx_bf16", "amx_tile"}, "", "avx512_core_bf16"),
    (AMX_CPU - {"amx_bf16", "amx_tile"}, "AVX10_1_512_AMX", "avx512_core_bf16"),  # a cap above the CPU changes nothing
    ({"avx2", "avx512f"}, "", "avx512_core"),
    ({"sse4_2"}, "", "older"),
    (AMX_CPU, "SSE41", "older"),  # a cap below AVX2: oneDNN's bf16 products leave the AVX2 kernels too
])
def test_bf16_kernels_are_the_cpus_best_lowered_by_the_onednn_cap(flags, cap, kernels):
    assert bf16_kernels(flags, cap) == kernels


def test_the_cpu_kernels_are_part_of_every_results_key(monkeypatch, tmp_path):
    # AMX and AVX512-BF16 kernels gave the same Pollution fit 50% and 75%: a result must not cross between them.
    import liftnb.cache
    from liftnb import LIFTClassifier, datasets
    from liftnb.compare import result_key
    from liftnb.models import TINY_RANDOM
    from liftnb.paper.runs import piece_key

    kernels = environment()["cpu_kernels"]
    gpu = accelerator()
    assert kernels.split(" / ")[0] == (f"{gpu}, cpu {bf16_kernels()}" if gpu else bf16_kernels())

    def keys() -> tuple[dict, dict]:  # a table run's key (notebooks 02-07) and a piece's (notebooks 08-12)
        return (result_key(datasets.load("iris"), 0, LIFTClassifier(model=TINY_RANDOM)),
                piece_key({"seed": 0}, "a piece", "paper/own_data.py"))

    cache = ResultsCache(tmp_path)
    before = keys()
    assert [key["environment"]["cpu_kernels"] for key in before] == [kernels, kernels]
    other = "avx2" if bf16_kernels() != "avx2" else "avx512_core_amx"
    monkeypatch.setattr(liftnb.cache, "bf16_kernels", lambda *args, **kwargs: other)
    environment.cache_clear()
    try:
        after = keys()
    finally:
        environment.cache_clear()  # the next caller reads this machine's kernels again
    assert [key["environment"]["cpu_kernels"].split(" / ")[0].endswith(other) for key in after] == [True, True]
    assert all(cache.path(old) != cache.path(new) for old, new in zip(before, after))


def test_the_older_name_of_the_onednn_cap_caps_too(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    assert bf16_kernels(AMX_CPU) == "avx2"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # the current name wins
    assert bf16_kernels(AMX_CPU) == "avx512_core_bf16"


def test_a_visible_gpu_leads_the_kernels_entry(monkeypatch):
    # device="auto" trains on the GPU where there is one: its rows must not read as computed on the CPU's kernels
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    assert accelerator() == "cuda NVIDIA H200 (sm_90, CUDA 13.0)"
    try:  # transformers' hub kernels change a GPU's arithmetic: turned on by the user, they are in the entry
        for setting, entry in (("1", "cuda NVIDIA H200 (sm_90, CUDA 13.0), hub kernels, cpu "),
                               ("0", "cuda NVIDIA H200 (sm_90, CUDA 13.0), cpu ")):
            monkeypatch.setenv("USE_HUB_KERNELS", setting)
            environment.cache_clear()
            assert environment()["cpu_kernels"].startswith(entry)
    finally:
        environment.cache_clear()  # the next caller reads this machine as it is
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert accelerator() is None


def test_a_fingerprint_ignores_the_empty_fields_python_versions_add(tmp_path, monkeypatch):
    # Python 3.12 added FunctionDef.type_params (empty here) and 3.13 drops empty fields from ast.dump: with ast.dump
    # the same learner hashed 87b51fb8e3edcf4b on 3.10-3.11, fae90a2a95357c2b on 3.12 and 40a8de8ec9dcf366 on 3.13,
    # so a user on 3.12 saw every committed row as stale
    import ast

    from liftnb.cache import _canonical, source_fingerprint

    tree = ast.parse("def f(x):\n    return x\n")
    plain = _canonical(tree)
    # what 3.12 parses: one more field, empty; ast.dump would show it, the fingerprint's text must not
    monkeypatch.setattr(ast.FunctionDef, "_fields", (*ast.FunctionDef._fields, "type_params"), raising=False)
    tree.body[0].type_params = []
    assert "type_params=[]" in ast.dump(tree) and _canonical(tree) == plain
    module = tmp_path / "m.py"
    module.write_text("def f(x):\n    return x\n")
    plain = source_fingerprint("m.py", root=tmp_path)
    module.write_text('def f(x):\n    """Doc."""\n    return x  # why\n')
    assert source_fingerprint("m.py", root=tmp_path) == plain
    module.write_text("def f(x):\n    return None\n")
    assert source_fingerprint("m.py", root=tmp_path) != plain


def test_prune_removes_rejected_results_with_their_folders_and_keeps_the_rest(tmp_path):
    cache = ResultsCache(tmp_path)
    old, new = {"code": "old", "data": 1}, {"code": "new", "data": 1}
    for key in (old, new):
        cache.put(key, {"accuracy": 0.5})
        (cache.partial(key) / "fit").mkdir(parents=True)
        (tmp_path / "estimators" / cache.path(key).stem).mkdir(parents=True, exist_ok=True)
    (tmp_path / "damaged.json").write_text("{not json")
    (tmp_path / ".tmp-writing.json").write_text("{")  # another process's write in progress: never touched
    assert sorted(key.get("code", "?") for _, key in cache.entries()) == ["?", "new", "old"]
    is_current = lambda key: key.get("code") == "new"  # noqa: E731
    listed = cache.prune(is_current, dry_run=True)
    assert {p.name for p in listed} == {cache.path(old).name, cache.path(old).stem, "damaged.json"}
    assert all(p.exists() for p in listed)  # a dry run removes nothing
    assert cache.prune(is_current) == listed and not any(p.exists() for p in listed)
    assert cache.get(new) == {"accuracy": 0.5} and cache.get(old) is None
    assert cache.partial(new).exists() and (tmp_path / "estimators" / cache.path(new).stem).exists()
    assert (tmp_path / ".tmp-writing.json").exists()


def test_unfinished_work_records_its_key_and_prune_judges_it_by_that(tmp_path):
    cache = ResultsCache(tmp_path)
    old, new = {"code": "old", "data": [1, 2]}, {"code": "new", "data": [1, 2]}
    for key in (old, new):
        folder = cache.open_partial(key)
        assert folder == cache.partial(key) and cache.partial_key(folder) == {"code": key["code"], "data": "[1, 2]"}
        (folder / "fit").mkdir()
    assert cache.open_partial(new) == cache.partial(new)  # opening it again keeps what is there
    assert (cache.partial(new) / "fit").exists()
    (tmp_path / "partial" / "before-keys").mkdir()  # written before keys were recorded: nothing to judge it by
    (tmp_path / "partial" / "damaged").mkdir()
    (tmp_path / "partial" / "damaged" / "key.json").write_text("{not json")
    assert cache.partial_key(tmp_path / "partial" / "before-keys") is None
    assert cache.partial_key(tmp_path / "partial" / "damaged") is None
    is_current = lambda key: key.get("code") == "new"  # noqa: E731
    assert cache.prune(is_current, dry_run=True) == [cache.partial(old)] and cache.partial(old).exists()
    assert cache.prune(is_current) == [cache.partial(old)] and not cache.partial(old).exists()
    assert sorted(p.name for p in (tmp_path / "partial").iterdir()) == sorted(
        ["before-keys", "damaged", cache.partial(new).name])
