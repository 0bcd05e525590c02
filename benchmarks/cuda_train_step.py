"""Training step time of the reversal Transformer on CUDA: ember vs its PyTorch twin (same
architecture, same batch, AdamW, clipping), one process.

    python benchmarks/cuda_train_step.py [--write]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

from _common import append, header

import ember


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true")
    p.add_argument("--steps", type=int, default=20, help="steps per timing")
    p.add_argument("--rounds", type=int, default=9, help="interleaved rounds; the median is reported")
    args = p.parse_args(argv)
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF

    import ember.nn.functional as F
    from ember.datasets import ReversalDataset
    from ember.examples.reverse import ReversalTransformer

    class Twin(tnn.Module):
        def __init__(self, v, s, d=64, h=4, n=2, ff=256):
            super().__init__()
            self.tok, self.pos = tnn.Embedding(v, d), tnn.Embedding(s, d)
            self.blocks = tnn.ModuleList([tnn.TransformerEncoderLayer(d, h, ff, 0.0, activation="gelu",
                                                                      batch_first=True, norm_first=True)
                                          for _ in range(n)])
            self.norm, self.head = tnn.LayerNorm(d), tnn.Linear(d, v)

        def forward(self, ids):
            t = ids.shape[1]
            h = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))
            mask = torch.ones(t, t, dtype=torch.bool, device=ids.device).triu(1)
            for b in self.blocks:
                h = b(h, src_mask=mask, is_causal=True)
            return self.head(self.norm(h))

    data = ReversalDataset(64, 16, 2, 10, seed=0)
    x, y = data.batch(range(64))
    runners = {}
    for name in ("ember", "torch"):
        for graphed in (False, True):
            if name == "ember":
                m = ReversalTransformer(data.vocab_size, data.seq_len).to("cuda")
                opt = ember.optim.AdamW(m.parameters(), lr=1e-3, capturable=graphed)
                xx, yy = x.cuda(), y.cuda()
                ce, clip, sync, cuda = F.cross_entropy, ember.nn.utils.clip_grad_norm_, ember.cuda.synchronize, \
                    ember.cuda
            else:
                m = Twin(data.vocab_size, data.seq_len).cuda()
                opt = torch.optim.AdamW(m.parameters(), lr=1e-3, capturable=graphed)
                xx, yy = torch.tensor(x.tolist()).cuda(), torch.tensor(y.tolist()).cuda()
                ce, clip, sync, cuda = TF.cross_entropy, tnn.utils.clip_grad_norm_, torch.cuda.synchronize, torch.cuda

            def step(m=m, opt=opt, xx=xx, yy=yy, ce=ce, clip=clip):
                logits = m(xx)
                loss = ce(logits.reshape(-1, logits.shape[-1]), yy.reshape(-1), ignore_index=-100)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                clip(m.parameters(), 1.0)
                opt.step()
                return loss
            side = cuda.Stream()
            side.wait_stream(cuda.current_stream())
            with cuda.stream(side):     # warm-up (compiles, optimizer state) off the default stream
                for _ in range(5):
                    step()
            sync()
            run, loss = step, None
            if graphed:                 # the whole step (forward, backward, clipping, AdamW) as one graph
                g = cuda.CUDAGraph()
                with cuda.graph(g):
                    loss = step()       # the graph's static output: each replay rewrites it
                run = g.replay
            run()
            sync()
            # a graph replays on the addresses it captured: keep the step's model, optimizer and batch
            # alive (as with torch.cuda.CUDAGraph, the graph itself does not)
            runners[name, graphed] = (run, sync, (step, xx, yy, loss))
    # interleaved rounds, medians: the host's speed drifts over seconds on shared machines, and a
    # ratio of two runs minutes apart would measure the drift
    times = {k: [] for k in runners}
    for _ in range(args.rounds):
        for k, (run, sync, _g) in runners.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run()
            sync()
            times[k].append((time.perf_counter() - t0) / args.steps * 1e3)
    res = {k: statistics.median(v) for k, v in times.items()}
    for (name, graphed), (run, _sync, (_step, xx, yy, loss)) in runners.items():
        what = f"{name} ({'graphed' if graphed else 'eager'})"
        if xx.cpu().tolist() != x.tolist() or yy.cpu().tolist() != y.tolist():   # nothing overwrote the batch
            raise RuntimeError(f"{what}: the batch on the device changed during the timing")
        last = float((run() if loss is None else loss).detach())  # still training: a finite, small loss
        if not math.isfinite(last) or last > 3.0:
            raise RuntimeError(f"{what}: loss {last} after the timing (expected finite and below 3.0)")
    text = header("Reversal Transformer training step on CUDA (batch 64, d_model 64, 2 layers)",
                  "cuda (" + ember.cuda.get_device_name() + ")")
    text += "| framework | eager ms / step | CUDA graph ms / step |\n|---|---:|---:|\n"
    for name in ("ember", "torch"):
        text += f"| {name} | {res[name, False]:.2f} | {res[name, True]:.2f} |\n"
    text += f"\nmedian of {args.rounds} interleaved rounds of {args.steps} steps each\n"
    text += (f"\nember/torch eager: {res['ember', False] / res['torch', False]:.2f}; ember graphed / torch eager: "
             f"{res['ember', True] / res['torch', False]:.2f}; ember graphed / torch graphed: "
             f"{res['ember', True] / res['torch', True]:.2f}\n")
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
