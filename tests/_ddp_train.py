"""Worker for test_distributed: trains a tiny LIFT classifier in each of 2 CPU processes (gloo) via accelerate."""
import json
import sys

import numpy as np
import torch

from liftnb import LIFTClassifier, datasets
from liftnb.models import TINY_RANDOM, load_lm

torch.set_num_threads(1)
out = sys.argv[1]
data = datasets.load("iris")
part = datasets.split(data, seed=0)
clf = LIFTClassifier(model=TINY_RANDOM, epochs=2, batch_size=8, learning_rate=1e-2, precision="fp32", train_layers=1,
                     verbose=0)
clf.fit(part.X_train, part.y_train)
from accelerate import PartialState  # noqa: E402

state = PartialState()
weights = {k: v.detach().double().sum().item() for k, v in clf.model_.named_parameters() if v.requires_grad}
untrained = dict(load_lm(TINY_RANDOM, device="cpu")[0].named_parameters())  # the weights fit started from
initial = {k: untrained[k].detach().double().sum().item() for k in weights}
result = {"rank": state.process_index, "world": state.num_processes, "steps": len(clf.history_.step_loss),
          "losses": clf.history_.step_loss,
          "proba": clf.predict_proba(part.X_test).round(6).tolist(), "weights": weights, "initial": initial,
          "distributed_type": str(state.distributed_type)}
with open(f"{out}/rank{state.process_index}.json", "w") as handle:
    json.dump(result, handle)
