"""Host time of forward + backward of a small MLP on tiny inputs: ember vs PyTorch, one process.

    python benchmarks/autograd_mlp.py [--write]

The MLP is the one of tests/test_autograd.py: two linear layers written with raw ops, tanh,
cross-entropy as log_softmax + gather; batch 32, 10 -> 16 -> 4, float32. The time per step is
all framework overhead at this size (dispatch, autograd recording, the engine).
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import append, header, time_us

import ember


def make_step(m, dtype):
    rng = np.random.default_rng(0)
    n, d, h, c = 32, 10, 16, 4
    X = m.tensor(rng.standard_normal((n, d)).astype(dtype))
    Y = m.tensor(rng.integers(0, c, n))
    ps = [m.tensor((rng.standard_normal(s) * 0.3).astype(dtype), requires_grad=True)
          for s in ((d, h), (h,), (h, c), (c,))]

    def step():
        w1, b1, w2, b2 = ps
        logits = (X @ w1 + b1).tanh() @ w2 + b2
        loss = -logits.log_softmax(dim=1).gather(1, Y.unsqueeze(1)).mean()
        for p in ps:
            p.grad = None
        loss.backward()
        return loss
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    res = {m.__name__: time_us(make_step(m, np.float32), inner=300) for m in (ember, torch)}
    r = res["ember"] / res["torch"]
    text = header("Forward + backward of a tiny MLP (autograd overhead)", "cpu")
    text += ("| case | ember µs | torch µs | ember/torch |\n|---|---:|---:|---:|\n"
             f"| MLP 32x10-16-4, fwd+bwd | {res['ember']:.1f} | {res['torch']:.1f} | {r:.2f} |\n")
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
