"""The main job's model against its PyTorch twin, checkpoint resume, and a short end-to-end run."""
import math

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from helpers import from_torch, to_torch

import ember
import ember.nn.functional as F
from ember.datasets import ReversalDataset
from ember.examples import reverse
from ember.examples.reverse import ReversalTransformer, lr_at

CFG = dict(d_model=32, nhead=4, num_layers=2, dim_feedforward=64, dropout=0.0)


class TorchTwin(tnn.Module):
    """Same architecture and parameter names as ember's ReversalTransformer."""

    def __init__(self, vocab_size, seq_len, d_model, nhead, num_layers, dim_feedforward, dropout):
        super().__init__()
        self.tok = tnn.Embedding(vocab_size, d_model)
        self.pos = tnn.Embedding(seq_len, d_model)
        self.blocks = tnn.ModuleList([
            tnn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation="gelu",
                                        batch_first=True, norm_first=True) for _ in range(num_layers)])
        self.norm = tnn.LayerNorm(d_model)
        self.head = tnn.Linear(d_model, vocab_size)

    def forward(self, ids):
        t = ids.shape[1]
        h = self.tok(ids) + self.pos(torch.arange(t))
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        for block in self.blocks:
            h = block(h, src_mask=mask, is_causal=True)
        return self.head(self.norm(h))


def _pair(data):
    torch.manual_seed(0)
    twin = TorchTwin(data.vocab_size, data.seq_len, **CFG)
    model = ReversalTransformer(data.vocab_size, data.seq_len, **CFG)
    model.load_state_dict({k: from_torch(v) for k, v in twin.state_dict().items()})
    return model, twin


def _optimizers(model, twin, steps, lr=3e-3, warmup=10):
    opt = ember.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    sched = ember.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, steps, warmup))
    topt = torch.optim.AdamW(twin.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, lambda s: lr_at(s, steps, warmup))
    return opt, sched, topt, tsched


def _ember_step(model, opt, sched, x, y, amp=None):
    with ember.autocast("cpu", dtype=amp, enabled=amp is not None):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
    opt.zero_grad()
    loss.backward()
    ember.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return loss.item(), logits


def _torch_step(twin, opt, sched, x, y, amp=None):
    with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
        logits = twin(x)
        loss = TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
    opt.zero_grad()
    loss.backward()
    tnn.utils.clip_grad_norm_(twin.parameters(), 1.0)
    opt.step()
    sched.step()
    return loss.item(), logits


def test_same_losses_as_torch_twin_for_50_steps_and_same_accuracy_band():
    steps, bs = 200, 32
    data = ReversalDataset(steps * bs, num_symbols=8, min_len=2, max_len=6, seed=0, split="train")
    val = ReversalDataset(256, num_symbols=8, min_len=2, max_len=6, seed=1, split="val")
    model, twin = _pair(data)
    opt, sched, topt, tsched = _optimizers(model, twin, steps)
    losses, tlosses = [], []
    for step in range(steps):
        x, y = data.batch(range(step * bs, (step + 1) * bs))
        losses.append(_ember_step(model, opt, sched, x, y)[0])
        tlosses.append(_torch_step(twin, topt, tsched, to_torch(x), to_torch(y))[0])
        if step == 49:
            np.testing.assert_allclose(losses, tlosses, rtol=1e-4)
    assert losses[-1] < 0.2 * losses[0]
    accs = []
    xv, yv = val.batch(range(len(val)))
    with ember.no_grad(), torch.no_grad():
        accs.append(ember.datasets.sequence_accuracy(model(xv).argmax(-1), yv))
        accs.append(ember.datasets.sequence_accuracy(from_torch(twin(to_torch(xv)).argmax(-1)), yv))
    assert abs(accs[0] - accs[1]) <= 0.1, accs
    assert min(accs) >= 0.5, accs


def test_checkpoint_resume_gives_the_same_next_losses(tmp_path):
    steps, bs = 20, 16
    data = ReversalDataset(steps * bs, num_symbols=6, min_len=2, max_len=5, seed=3)

    def fresh():
        ember.manual_seed(1)
        model = ReversalTransformer(data.vocab_size, data.seq_len, **CFG)
        opt = ember.optim.AdamW(model.parameters(), lr=2e-3)
        sched = ember.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, steps, 5))
        return model, opt, sched

    def run(model, opt, sched, lo, hi):
        out = []
        for step in range(lo, hi):
            x, y = data.batch(range(step * bs, (step + 1) * bs))
            out.append(_ember_step(model, opt, sched, x, y)[0])
        return out

    model, opt, sched = fresh()
    run(model, opt, sched, 0, 10)
    path = tmp_path / "ckpt.safetensors"
    ember.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, path)
    expected = run(model, opt, sched, 10, 20)

    model2, opt2, sched2 = fresh()
    ck = ember.load(path)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    assert run(model2, opt2, sched2, 10, 20) == expected


def test_main_job_runs_end_to_end(tmp_path):
    res = reverse.main(["--steps", "60", "--warmup", "10", "--batch-size", "16", "--d-model", "32", "--ff", "64", "--max-len", "4",
                        "--num-symbols", "6", "--eval-every", "30", "--eval-samples", "64", "--no-progress", "--out", str(tmp_path)])
    assert (tmp_path / "checkpoint.safetensors").exists() and (tmp_path / "history.json").exists()
    assert math.isfinite(res["final_loss"]) and res["final_loss"] < 0.8 * res["first_loss"]
    ck = ember.load(tmp_path / "checkpoint.safetensors")
    assert ck["step"] == 60 and "tok.weight" in ck["model"]


def test_bf16_autocast_lands_in_torch_s_loss_band():
    """The reversal twin, 200 steps under bfloat16 autocast on both sides: the same start, and final losses
    in the same band (the bf16 rounding differs op by op, so the curves part after a few steps)."""
    steps, bs = 200, 32
    data = ReversalDataset(steps * bs, num_symbols=8, min_len=2, max_len=6, seed=0, split="train")
    model, twin = _pair(data)
    opt, sched, topt, tsched = _optimizers(model, twin, steps)
    losses, tlosses = [], []
    for step in range(steps):
        x, y = data.batch(range(step * bs, (step + 1) * bs))
        loss, logits = _ember_step(model, opt, sched, x, y, ember.bfloat16)
        tloss, tlogits = _torch_step(twin, topt, tsched, to_torch(x), to_torch(y), torch.bfloat16)
        losses.append(loss)
        tlosses.append(tloss)
    assert logits.dtype is ember.bfloat16 and tlogits.dtype == torch.bfloat16
    assert abs(losses[0] - tlosses[0]) < 0.02 * tlosses[0]
    e_end, t_end = np.mean(losses[-20:]), np.mean(tlosses[-20:])
    assert e_end < 0.2 * losses[0] and t_end < 0.2 * tlosses[0]
    assert abs(e_end - t_end) < 0.25 * max(e_end, t_end) + 0.02, (e_end, t_end)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_main_job_with_amp(tmp_path, amp):
    res = reverse.main(["--steps", "40", "--warmup", "5", "--batch-size", "16", "--d-model", "32", "--ff", "64",
                        "--max-len", "4", "--num-symbols", "6", "--eval-every", "40", "--eval-samples", "32",
                        "--no-progress", "--amp", amp, "--out", str(tmp_path)])
    assert math.isfinite(res["final_loss"]) and res["final_loss"] < 0.9 * res["first_loss"]
    with pytest.raises(SystemExit):
        reverse.main(["--amp", "fp32", "--out", str(tmp_path)])


@pytest.mark.parametrize("flag,value,allowed", [("--steps", "0", "at least 1"), ("--batch-size", "0", "at least 1"),
                                                ("--steps", "-5", "at least 1"), ("--heads", "3", "a divisor of"),
                                                ("--max-len", "1", "at least --min-len")])
def test_main_job_checks_its_options(flag, value, allowed, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        reverse.main([flag, value, "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} {value}: must be {allowed}" in err and "python -m ember.examples.reverse" in err
    assert not (tmp_path / "checkpoint.safetensors").exists()
