"""Training step of an LSTM language model, ember vs torch (whose nn.LSTM is one cuDNN call on CUDA) in one
process: the medium model of PyTorch's word_language_model example, written once for either framework.

Embedding 650 -> dropout 0.5 -> 2-layer LSTM, hidden 650 (dropout 0.5 between the layers) -> dropout 0.5 ->
Linear to a vocabulary of 10000 -> log_softmax, NLL loss; batch 20, bptt 35; SGD lr 20 after clip_grad_norm_
0.25; the hidden state is carried from one batch to the next, detached (the example's repackage_hidden).
Runners: torch eager, ember eager, and ember's whole step as one CUDA graph (`ember.cuda.graphed_step`). Each
step takes the next of a few fixed batches. Time per step: GPU time between CUDA events around `--steps`
steps (wall time on the CPU), median of interleaved rounds. float32 products are IEEE float32 in both (TF32 off,
cuDNN's too) unless `--tf32`.

    python benchmarks/lstm_lm.py [--rounds 7] [--steps 10] [--tf32] [--write]
    python benchmarks/lstm_lm.py --device cpu --tiny      # tiny sizes on the CPU (the CI smoke test)
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
import traceback

import numpy as np

from _common import append, header

FULL = dict(vocab=10000, emb=650, hidden=650, layers=2, dropout=0.5, batch=20, bptt=35, lr=20.0, clip=0.25)
TINY = dict(FULL, vocab=50, emb=16, hidden=16, batch=4, bptt=6)
RUNNERS = (("torch", "eager"), ("ember", "eager"), ("ember", "graphed"))
BATCHES = 4


def _lib(framework: str):
    if framework == "torch":
        import torch
        return torch
    import ember
    return ember


def build(lib, cfg: dict):
    """The word_language_model's RNNModel (LSTM, untied) from `lib` (torch or ember), on the CPU."""
    nn, F = lib.nn, lib.nn.functional

    class RNNModel(nn.Module):
        def __init__(self, vocab, emb, hidden, layers, dropout):
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(vocab, emb)
            self.rnn = nn.LSTM(emb, hidden, layers, dropout=dropout)
            self.decoder = nn.Linear(hidden, vocab)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

        def forward(self, ids, hidden):
            out, hidden = self.rnn(self.drop(self.encoder(ids)), hidden)
            logits = self.decoder(self.drop(out))
            return F.log_softmax(logits.view(-1, logits.shape[-1]), dim=1), hidden

    return RNNModel(cfg["vocab"], cfg["emb"], cfg["hidden"], cfg["layers"], cfg["dropout"])


def make_batches(lib, cfg: dict, device: str, n: int = BATCHES) -> list:
    """`n` (ids, targets) pairs of shape (bptt, batch), targets the next tokens: the same numbers for either
    framework (NumPy, seed 0), put on the device once."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        seq = rng.integers(0, cfg["vocab"], (cfg["bptt"] + 1, cfg["batch"]))
        out.append(tuple(lib.from_numpy(np.ascontiguousarray(s)).to(device) for s in (seq[:-1], seq[1:])))
    return out


def init_hidden(lib, cfg: dict, device: str) -> tuple:
    return tuple(lib.zeros(cfg["layers"], cfg["batch"], cfg["hidden"], device=device) for _ in range(2))


def make_step(lib, model, opt, cfg: dict):
    """One training step as the example writes it: `step(ids, targets, h, c) -> (loss, h, c)`, all detached."""
    F = lib.nn.functional

    def step(ids, targets, h, c):
        out, (h, c) = model(ids, (h, c))
        loss = F.nll_loss(out, targets.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
        return loss.detach(), h.detach(), c.detach()
    return step


def twin_losses(cfg: dict, device: str) -> dict:
    """{"torch": losses, "ember": losses} of plain training steps of the same model (ember loads torch's initial
    weights) on the same batches, twice over them: the parity check of the two frameworks' LM step."""
    import torch

    import ember
    torch.manual_seed(0)
    tm, em = build(torch, cfg).to(device), build(ember, cfg).to(device)
    em.load_state_dict({k: ember.from_numpy(v.detach().cpu().numpy().copy()).to(device)
                        for k, v in tm.state_dict().items()})
    losses = {}
    for lib, model in ((torch, tm), (ember, em)):
        step = make_step(lib, model, lib.optim.SGD(model.parameters(), lr=cfg["lr"]), cfg)
        h, c = init_hidden(lib, cfg, device)
        losses[lib.__name__] = []
        for ids, targets in make_batches(lib, cfg, device) * 2:
            loss, h, c = step(ids, targets, h, c)
            losses[lib.__name__].append(float(loss))
    return losses


def make_runner(framework: str, mode: str, cfg: dict, device: str, warmup: int) -> dict:
    """`run()` takes one step on the next batch, carrying the hidden state; `state` holds the last loss."""
    lib = _lib(framework)
    lib.manual_seed(0)
    model = build(lib, cfg).to(device)
    opt = lib.optim.SGD(model.parameters(), lr=cfg["lr"])
    batches = make_batches(lib, cfg, device)
    step = make_step(lib, model, opt, cfg)
    if mode == "graphed":
        step = lib.cuda.graphed_step(step, warmup=warmup)
    h, c = init_hidden(lib, cfg, device)
    state = {"k": 0, "loss": None, "h": h, "c": c}

    def run():
        ids, targets = batches[state["k"] % len(batches)]
        state["k"] += 1
        state["loss"], state["h"], state["c"] = step(ids, targets, state["h"], state["c"])
    for _ in range(warmup + 1):     # a graphed step captures after its warm-up
        run()
    if mode == "graphed" and step.eager_reason is not None:
        raise RuntimeError(f"the step was not captured: {step.eager_reason}")
    return dict(lib=lib, run=run, state=state, keep=(model, opt, batches, step))


def time_ms(r: dict, steps: int, cuda: bool) -> float:
    """ms per step over `steps` steps: GPU time between two CUDA events, or wall time on the CPU."""
    lib, run = r["lib"], r["run"]
    if not cuda:
        t0 = time.perf_counter()
        for _ in range(steps):
            run()
        return (time.perf_counter() - t0) / steps * 1e3
    start, end = lib.cuda.Event(enable_timing=True), lib.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / steps


def _failed(e: BaseException) -> str:
    return "failed: " + " ".join(f"{type(e).__name__}: {e}".split())[:90].replace("|", "/")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (vocab 50, 16 units, batch 4, bptt 6)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is reported")
    p.add_argument("--steps", type=int, default=10, help="steps per round")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 5 on CUDA, 1 on the CPU)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 in float32 products (both frameworks)")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    warmup = max(1, args.warmup if args.warmup is not None else (5 if cuda else 1))
    import torch

    import ember
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.tf32
    ember.backends.cuda.matmul.allow_tf32 = args.tf32
    cfg = TINY if args.tiny else FULL
    names = [r for r in RUNNERS if cuda or r[1] == "eager"]     # CUDA graphs need CUDA
    results, runners = {}, {}
    for key in names:
        try:
            runners[key] = make_runner(*key, cfg, args.device, warmup)
        except Exception as e:  # noqa: BLE001 - report it in the table, and time the others
            results[key] = _failed(e)
            traceback.print_exc()
    times = {k: [] for k in runners}
    for _ in range(args.rounds):    # interleaved: the machine's speed drifts over seconds
        for key, r in runners.items():
            times[key].append(time_ms(r, args.steps, cuda))
    losses = {}
    for key, r in runners.items():
        losses[key] = loss = float(r["state"]["loss"])
        ok = math.isfinite(loss) and loss < 1.5 * math.log(cfg["vocab"])   # still training: near or below log(V)
        results[key] = statistics.median(times[key]) if ok else f"failed: loss {loss} after the timing"
    dev = f"cuda ({ember.cuda.get_device_name()}; torch: {torch.cuda.get_device_name()})" if cuda else args.device
    text = header("LSTM language model training step, ember vs torch" + (" (tiny sizes)" if args.tiny else ""), dev)
    text += "| framework | mode | ms / step | / torch eager |\n|---|---|---:|---:|\n"
    base = results.get(("torch", "eager"))
    for fw, mode in names:
        v = results.get((fw, mode))
        ratio = f"{v / base:.2f}" if isinstance(v, float) and isinstance(base, float) else "-"
        label = "torch (cuDNN LSTM)" if fw == "torch" and cuda else fw
        text += (f"| {label} | {'CUDA graph' if mode == 'graphed' else mode} | "
                 f"{f'{v:.2f}' if isinstance(v, float) else v} | {ratio} |\n")
    how = "GPU ms per step from CUDA events" if cuda else "wall ms per step"
    text += (f"\nword_language_model's LSTM model: vocab {cfg['vocab']}, embedding {cfg['emb']}, {cfg['layers']} "
             f"layers of hidden {cfg['hidden']}, dropout {cfg['dropout']}, batch {cfg['batch']}, bptt {cfg['bptt']}, "
             f"SGD lr {cfg['lr']:g}, clip_grad_norm_ {cfg['clip']}; {how}, median of {args.rounds} interleaved rounds "
             f"of {args.steps} steps; TF32 {'on' if args.tf32 else 'off'}.\n")
    print(text, flush=True)
    if args.write:
        append(text)
    return {"times": results, "losses": losses, "text": text}


if __name__ == "__main__":
    main()
