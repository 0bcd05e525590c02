"""The reversal model's eager training step on CUDA: time per step inside each CUDA driver call and
cublasLtMatmul (perf_counter wrappers); what is left is ember's Python (GPU machine):

    python benchmarks/cuda_step_driver_calls.py

Figures in BENCHMARKS.md ("where the eager step's time goes")."""
import collections
import time

import ember
import ember.nn.functional as F
from ember.backends.cuda import linalg as blas
from ember.backends.cuda.driver import driver
from ember.datasets import ReversalDataset
from ember.examples.reverse import ReversalTransformer

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

for _ in range(10):
    step()
ember.cuda.synchronize()
T = collections.Counter()
N = collections.Counter()
pc = time.perf_counter

def timed(name, fn):
    def w(*a, **k):
        t0 = pc()
        try:
            return fn(*a, **k)
        finally:
            T[name] += pc() - t0
            N[name] += 1
    return w

d = driver()
for name in dir(d):
    if name.startswith("cu") and callable(getattr(d, name)):
        setattr(d, name, timed(name, getattr(d, name)))
for p in list(ember.backends.cuda.compiler._plans.values()) + list(ember.backends.cuda.elementwise._plans.values()) + \
        list(ember.backends.cuda.reduction._plans.values()):
    if hasattr(p, "_launch"):
        p._launch = timed("cuLaunchKernel (plan)", p._launch)
lt = blas._lt()
class W:
    def __getattr__(self, n):
        return getattr(lt, n)
W.matmul = staticmethod(timed("cublasLtMatmul", lt.matmul))
blas._lt = lambda: W()
step(); ember.cuda.synchronize()
T.clear(); N.clear()
steps = 100
t0 = pc()
for _ in range(steps):
    step()
ember.cuda.synchronize()
total = (pc() - t0) / steps * 1e3
print(f"step {total:.2f} ms (wrapped)")
inside = 0.0
for k in sorted(T, key=lambda k: -T[k]):
    ms = T[k] / steps * 1e3
    inside += ms
    print(f"  {k:28s} {N[k] / steps:6.1f} calls  {ms:6.3f} ms  {T[k] / N[k] * 1e6:7.2f} us/call")
print(f"outside those calls (Python + wrappers): {total - inside:.2f} ms")
