"""benchmarks/seed_workloads.py on the CPU in tiny sizes: every workload gives a figure for both frameworks, and
ember's training steps follow torch's from the same weights on the same batch (the same model code)."""
import math

import numpy as np
import pytest
import torch

import ember
from helpers import load_benchmark



@pytest.fixture(scope="module")
def sw():
    return load_benchmark("seed_workloads")


def test_tiny_cpu_run_gives_every_figure(sw, capsys):
    res = sw.main(["--device", "cpu", "--tiny", "--rounds", "1", "--steps", "1"])
    out = capsys.readouterr().out
    times = res["times"]
    for name in sw.WORKLOADS:
        for dtype in sw.DTYPES:
            for fw in sw.FRAMEWORKS:
                t = times.get((name, dtype, fw, "eager"))
                assert isinstance(t, float) and t > 0, (name, dtype, fw, t)
                assert math.isfinite(res["losses"][name, dtype, fw, "eager"])
            row = next(ln for ln in out.splitlines() if ln.startswith(f"| {name} | {dtype} |"))
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert all(float(c) > 0 for c in cells[2:5]), row        # ember, torch, ratio: numbers
            assert cells[5:] == ["-", "-", "-"], row                   # no CUDA graphs on the CPU
    assert "failed" not in out
    assert not any(k[3] == "graphed" for k in times)


@pytest.mark.parametrize("name", ["reversal", "vit", "gpt"])
def test_ember_steps_follow_torch(sw, name):
    cfg = dict(sw.TINY[name], dropout=0.0)
    torch.manual_seed(0)
    tm = sw.build(torch, name, cfg)
    em = sw.build(ember, name, cfg)
    sd = tm.state_dict()
    assert set(sd) == set(em.state_dict())                           # the same code: the same names
    with ember.no_grad():
        for n, p in em.named_parameters():
            p.copy_(ember.from_numpy(sd[n].detach().numpy().copy()))
    losses = {}
    for lib, model in ((torch, tm), (ember, em)):
        opt = sw.make_optimizer(lib, model, cfg)
        x, y = sw.make_batch(lib, name, cfg, "cpu")
        step = sw.make_step(lib, model, opt, x, y, "cpu", amp=False)
        losses[lib.__name__] = [float(step().detach()) for _ in range(3)]
    np.testing.assert_allclose(losses["ember"], losses["torch"], rtol=1e-4)
    assert losses["torch"][2] < losses["torch"][0]                   # it trains


def test_a_failing_runner_gets_a_failed_cell_and_the_others_run(sw, monkeypatch, capsys):
    real = sw.make_optimizer

    def make_optimizer(lib, model, cfg, capturable=False):
        if lib is ember and cfg["opt"] == "adamw":
            raise NotImplementedError("no kernel for\nthis | op")
        return real(lib, model, cfg, capturable)
    monkeypatch.setattr(sw, "make_optimizer", make_optimizer)
    res = sw.main(["--device", "cpu", "--tiny", "--rounds", "1", "--steps", "1", "--workloads", "reversal", "vit",
                   "--dtypes", "float32"])
    out = capsys.readouterr().out
    times = res["times"]
    assert times["vit", "float32", "ember", "eager"] == "failed: NotImplementedError: no kernel for this / op"
    assert "FAILED vit float32 ember eager: NotImplementedError" in out
    assert isinstance(times["vit", "float32", "torch", "eager"], float)
    assert all(isinstance(times["reversal", "float32", fw, "eager"], float) for fw in sw.FRAMEWORKS)
    row = next(ln for ln in out.splitlines() if ln.startswith("| vit | float32 |"))
    assert row.split("|")[3:6] == [" failed: NotImplementedError: no kernel for this / op ", row.split("|")[4], " - "]
