"""A short tour of ember's tensors and ops (the main job until the reversal Transformer lands)."""
from __future__ import annotations

import argparse
import time

import ember


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args(argv)
    ember.manual_seed(args.seed)

    x = ember.randn(4, 3)
    print("x =", x)
    print("x.T @ x =", x.T @ x)
    print("softmax over rows:", x.softmax(dim=-1))
    print("int * float promotes:", (ember.arange(3) * 2.5).dtype, "| float16 + 1.0 stays:",
          (ember.ones(2, dtype=ember.float16) + 1.0).dtype)
    v = x[1:, ::2]
    print("a view shares storage:", v.data_ptr() != x.data_ptr(), v._base is x, "strides", v.stride())
    v.mul_(0)
    print("writing through the view changed x:", x)

    # a least-squares fit by gradient descent with hand-written gradients (autograd comes next)
    n = args.size
    a = ember.randn(n, 8)
    w_true = ember.randn(8, 1)
    b = a @ w_true + 0.01 * ember.randn(n, 1)
    w = ember.zeros(8, 1)
    t0 = time.perf_counter()
    for step in range(200):
        r = a @ w - b
        grad = a.T @ r * (2.0 / n)
        w -= 0.1 * grad
        if step % 50 == 0 or step == 199:
            print(f"step {step:3d}  mse {(r * r).mean().item():.6f}")
    dt = time.perf_counter() - t0
    print(f"|w - w_true| = {(w - w_true).norm().item():.4f}  ({200 / dt:.0f} steps/s)")


if __name__ == "__main__":
    main()
