"""Multi-process training through accelerate: 2 CPU processes (gloo), each on its own shard of the batches."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_two_process_cpu_training_syncs_and_predicts_identically(tmp_path):
    worker = Path(__file__).with_name("_ddp_train.py")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(worker), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert first["world"] == second["world"] == 2 and "MULTI_CPU" in first["distributed_type"]
    # 96 training rows, batch 8, 2 epochs: 24 batches shared out, 12 per process
    assert first["steps"] == second["steps"] == 12
    assert first["losses"] != second["losses"]  # each process trained on different batches ...
    assert first["weights"] == second["weights"]  # ... yet gradients were averaged: identical weights,
    assert all(first["weights"][k] != first["initial"][k] for k in first["weights"])  # moved by the steps
    assert first["proba"] == second["proba"]
