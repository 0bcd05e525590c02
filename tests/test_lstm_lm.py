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
    assert set(lm.build(torch, cfg).state_dict()) == set(lm.build(ember, cfg).state_dict())   # the same names
    losses = lm.twin_losses(cfg, "cpu")
    np.testing.assert_allclose(losses["ember"], losses["torch"], rtol=1e-4)
