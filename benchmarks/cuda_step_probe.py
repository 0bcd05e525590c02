"""Probe: eager training-step time with and without the garbage collector, and the number of cached
launch plans before and after (looks for per-step growth). Run on the GPU machine."""
from __future__ import annotations

import gc
import time

import ember
import ember.nn.functional as F
from ember.backends.cuda import compiler
from ember.datasets import ReversalDataset
from ember.examples.reverse import ReversalTransformer


def main():
    data = ReversalDataset(64, 16, 2, 10, seed=0)
    x, y = data.batch(range(64))
    m = ReversalTransformer(data.vocab_size, data.seq_len).to("cuda")
    opt = ember.optim.AdamW(m.parameters(), lr=1e-3)
    xx, yy = x.cuda(), y.cuda()

    def step():
        logits = m(xx)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yy.reshape(-1))
        opt.zero_grad()
        loss.backward()
        ember.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    for _ in range(5):
        step()
    ember.cuda.synchronize()
    for label, off in (("gc on", False), ("gc off", True), ("gc on", False)):
        if off:
            gc.disable()
        n0, c0 = len(compiler._plans), [s["collections"] for s in gc.get_stats()]
        t = time.perf_counter()
        for _ in range(50):
            step()
        ember.cuda.synchronize()
        ms = (time.perf_counter() - t) / 50 * 1e3
        gc.enable()
        print(f"{label}: {ms:.2f} ms/step; plans {n0} -> {len(compiler._plans)}; gc collections "
              f"{c0} -> {[s['collections'] for s in gc.get_stats()]}; objects {len(gc.get_objects())}")


def profile():
    import cProfile
    import pstats
    import sys
    data = ReversalDataset(64, 16, 2, 10, seed=0)
    x, y = data.batch(range(64))
    m = ReversalTransformer(data.vocab_size, data.seq_len).to("cuda")
    opt = ember.optim.AdamW(m.parameters(), lr=1e-3)
    xx, yy = x.cuda(), y.cuda()

    def step():
        logits = m(xx)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yy.reshape(-1))
        opt.zero_grad()
        loss.backward()
        ember.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    for _ in range(5):
        step()
    ember.cuda.synchronize()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(20):
        step()
    ember.cuda.synchronize()
    pr.disable()
    st = pstats.Stats(pr, stream=sys.stdout)
    st.sort_stats("tottime").print_stats(12)
    st.print_callers("compiler.py.*run")


if __name__ == "__main__":
    import sys
    profile() if "--profile" in sys.argv else main()
