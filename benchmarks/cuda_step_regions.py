"""The reversal model's eager training step on CUDA: host time per region (forward, zero_grad + backward,
clip_grad_norm_, optimizer step) and per backward node type (GPU machine):

    python benchmarks/cuda_step_regions.py

Figures in BENCHMARKS.md ("where the eager step's time goes"). The node timers add a little time."""
import collections
import time

import ember
import ember.nn.functional as F
from ember.autograd import engine as En
from ember.datasets import ReversalDataset
from ember.examples.reverse import ReversalTransformer

data = ReversalDataset(64, 16, 2, 10, seed=0)
x, y = data.batch(range(64))
m = ReversalTransformer(data.vocab_size, data.seq_len).to("cuda")
opt = ember.optim.AdamW(m.parameters(), lr=1e-3)
xx, yy = x.cuda(), y.cuda()
pc = time.perf_counter
R = collections.Counter()

def step():
    t0 = pc()
    logits = m(xx)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yy.reshape(-1))
    t1 = pc()
    opt.zero_grad()
    loss.backward()
    t2 = pc()
    ember.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    t3 = pc()
    opt.step()
    t4 = pc()
    R["forward"] += t1 - t0
    R["zero_grad+backward"] += t2 - t1
    R["clip"] += t3 - t2
    R["opt.step"] += t4 - t3

for _ in range(10):
    step()
ember.cuda.synchronize()
R.clear()
n = 100
t0 = pc()
for _ in range(n):
    step()
ember.cuda.synchronize()
print(f"step {(pc() - t0) / n * 1e3:.2f} ms")
for k, v in R.items():
    print(f"  {k:20s} {v / n * 1e3:.3f} ms")
# backward per node type
T, N = collections.Counter(), collections.Counter()
orig = En._apply
def ap(node, grads):
    t = pc()
    try:
        return orig(node, grads)
    finally:
        T[type(node).__name__] += pc() - t
        N[type(node).__name__] += 1
En._apply = ap
R.clear()
for _ in range(n):
    step()
ember.cuda.synchronize()
tot = sum(T.values())
print(f"backward {R['zero_grad+backward'] / n * 1e3:.3f} ms, inside node applies {tot / n * 1e3:.3f} ms")
for k in sorted(T, key=lambda k: -T[k])[:25]:
    print(f"  {k:34s} {N[k] / n:5.1f}/step {T[k] / n * 1e3:6.3f} ms {T[k] / N[k] * 1e6:7.1f} us each")
