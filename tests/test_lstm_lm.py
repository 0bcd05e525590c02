"""benchmarks/lstm_lm.py on the CPU in tiny sizes: both frameworks give a figure, and ember's training steps (LSTM,
NLL loss, clipping, SGD, the hidden state carried) follow torch's from the same weights on the same batches."""
import math

import numpy as np
import pytest
import torch

import ember
from helpers import load_benchmark



@pytest.fixture(scope="module")
def lm():
    return load_benchmark("lstm_lm")


def test_tiny_cpu_run_gives_every_figure(lm, capsys):
    res = lm.main(["--device", "cpu", "--tiny", "--rounds", "1", "--steps", "1"])
    out = capsys.readouterr().out
    assert set(res["times"]) == {("torch", "eager"), ("ember", "eager")}     # no CUDA graphs on the CPU
    for fw in ("torch", "ember"):
        assert isinstance(res["times"][fw, "eager"], float) and res["times"][fw, "eager"] > 0
        assert math.isfinite(res["losses"][fw, "eager"])
        row = next(ln for ln in out.splitlines() if ln.startswith(f"| {fw} | eager |"))
        assert all(float(c) > 0 for c in row.strip("|").split("|")[2:4]), row
    assert "failed" not in out


def test_ember_steps_follow_torch(lm):
    cfg = dict(lm.TINY, dropout=0.0)
    torch.manual_seed(0)
    tm, em = lm.build(torch, cfg), lm.build(ember, cfg)
    sd = tm.state_dict()
    assert set(sd) == set(em.state_dict())                           # the same code: the same names
    em.load_state_dict({k: ember.from_numpy(v.numpy().copy()) for k, v in sd.items()})
    losses = {}
    for lib, model in ((torch, tm), (ember, em)):
        step = lm.make_step(lib, model, lib.optim.SGD(model.parameters(), lr=cfg["lr"]), cfg)
        h, c = lm.init_hidden(lib, cfg, "cpu")
        losses[lib.__name__] = []
        for ids, targets in lm.make_batches(lib, cfg, "cpu") * 2:
            loss, h, c = step(ids, targets, h, c)
            losses[lib.__name__].append(float(loss))
    np.testing.assert_allclose(losses["ember"], losses["torch"], rtol=1e-4)
