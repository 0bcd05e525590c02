"""Tile sweep of ember's fused attention kernels against torch's SDPA, on the seed workloads' shapes.

    python benchmarks/attention_sweep.py [--shapes vit_bf16 gpt_f32 ...] [--risky]

For each shape (q, k, v as the heads of one fused qkv projection, `.view(B, L, 3, H, E).permute(2, 0, 3, 1, 4)`,
as the seed workloads write them) and each candidate `attention.Config`, it checks ember's output and grads
against torch's (dropout off) and times the forward and the backward kernels (CUDA events, GPU ms per call),
beside torch's `F.scaled_dot_product_attention` forward and backward on the same inputs (torch picks its
kernel: cuDNN, flash or memory-efficient). Configs whose 16-bit head dims are not padded to 64 (`--risky`)
each run in a child process: Triton 3.6 has miscompiled 32-wide 16-bit tiles on Hopper (see `_config`), and
an illegal address would poison the process's CUDA context.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

# name: (B, H, L, E, causal, dropout_p, dtype)
SHAPES = {
    "vit_bf16": (256, 8, 80, 32, False, 0.1, "bfloat16"),
    "vit_f32": (256, 8, 80, 32, False, 0.1, "float32"),
    "gpt_bf16": (64, 8, 128, 32, True, 0.0, "bfloat16"),
    "gpt_f32": (64, 8, 128, 32, True, 0.0, "float32"),
    "rev_bf16": (64, 4, 64, 32, True, 0.0, "bfloat16"),
    "rev_f32": (64, 4, 64, 32, True, 0.0, "float32"),
}
# (fwd_m, fwd_n, small, large, warps, stages); the head dims are padded as `_config` does unless risky
SAFE16 = [(128, 64, 32, 64, 4, None), (64, 64, 32, 64, 4, None), (64, 32, 32, 64, 4, None),
          (32, 32, 16, 32, 4, None), (32, 16, 16, 32, 2, None), (16, 16, 16, 16, 1, None), (64, 64, 16, 64, 4, 2)]
F32 = [(32, 32, 32, 32, 4, None), (64, 32, 32, 64, 4, None), (32, 16, 16, 32, 4, None), (16, 16, 16, 16, 2, None),
       (16, 32, 16, 32, 2, None), (64, 64, 32, 64, 8, None), (32, 32, 16, 32, 2, None)]
RISKY16 = [(32, 32, 16, 32, 4, None), (16, 16, 16, 16, 1, None)]


def _inputs(shape, seed=0):
    B, H, L, E, causal, p, dt = shape
    rng = np.random.default_rng(seed)
    qkv = rng.standard_normal((B, L, 3, H, E), dtype=np.float32)
    go = rng.standard_normal((B, H, L, E), dtype=np.float32)
    return qkv, go


def child(name, configs, risky):
    import torch
    import torch.nn.functional as TF

    import ember
    from ember.backends.cuda import attention as A
    from _common import gpu_ms

    B, H, L, E, causal, p, dt = shape = SHAPES[name]
    dev = "cuda"
    if os.environ.get("ATTN_SWEEP_DRY") == "1":     # a check of this script on the CPU: Triton's interpreter, batch 1
        import time
        B, dev, shape = 1, "cpu", (1,) + shape[1:]
        dt = "float16" if dt == "bfloat16" else dt      # the interpreter's tl.dot has no bfloat16
        torch.Tensor.cuda = lambda t: t

        def gpu_ms(fn, reps):
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
    qkv, go = _inputs(shape)
    edt, tdt = getattr(ember, dt), getattr(torch, dt)
    eqkv = ember.tensor(qkv).to(dev).to(edt)
    ego = ember.tensor(go).to(dev).to(edt)
    tqkv = torch.from_numpy(qkv).cuda().to(tdt).requires_grad_()
    tgo = torch.from_numpy(go).cuda().to(tdt)
    eq, ek, ev = eqkv.view(B, L, 3, H, E).permute(2, 0, 3, 1, 4)
    tq, tk, tv = tqkv.permute(2, 0, 3, 1, 4)
    scale = E ** -0.5

    # torch: forward, and backward through autograd.grad on the same inputs
    t_out = TF.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    ref = [t_out.detach().float().cpu().numpy(), *(g.float().cpu().numpy() for g in
                                          torch.autograd.grad(t_out, (tq, tk, tv), tgo))]
    tfwd = lambda: TF.scaled_dot_product_attention(tq, tk, tv, is_causal=causal, dropout_p=p)
    out_d = tfwd()
    tbwd = lambda: torch.autograd.grad(out_d, (tq, tk, tv), tgo, retain_graph=True)

    def tms(fn):
        return gpu_ms(fn, 1) if dev == "cpu" else gpu_ms(fn, 30, torch)

    res = {"shape": name, "torch_fwd": tms(tfwd), "torch_bwd": tms(tbwd), "rows": []}
    print(json.dumps({"torch": res}), flush=True)
    tol = 3e-2 if dt != "float32" else 2e-4
    for cfg in configs:
        fm, fn_, sm, lg, w, st = cfg
        pad = 16 if dt == "float32" or risky else 64
        d = max(pad, 1 << (E - 1).bit_length())
        A._config = lambda *a, c=A.Config(fm, fn_, sm, lg, w, d, d, st): c
        row = {"cfg": list(cfg) + [d]}
        try:
            o, lse = A.fused_attention(eq, ek, ev, None, causal, scale)
            g = A.fused_attention_backward(ego, eq, ek, ev, None, o, lse, causal, scale, True, True, True)
            got = [o.float().cpu().numpy(), *(x.float().cpu().numpy() for x in g)]
            row["err"] = max(float(np.abs(a - b).max() / (np.abs(b).max() + 1e-6)) for a, b in zip(got, ref))
            row["ok"] = row["err"] < tol
            if p > 0:
                fwd = lambda: A.fused_attention_dropout(eq, ek, ev, None, causal, scale, p)
                o2, lse2, rng = fwd()
                bwd = lambda: A.fused_attention_dropout_backward(ego, eq, ek, ev, None, o2, lse2, rng, causal, scale,
                                                                 p, True, True, True)
            else:
                fwd = lambda: A.fused_attention(eq, ek, ev, None, causal, scale)
                bwd = lambda: A.fused_attention_backward(ego, eq, ek, ev, None, o, lse, causal, scale, True, True,
                                                         True)
            row["fwd"], row["bwd"] = gpu_ms(fwd, 30), gpu_ms(bwd, 30)
        except Exception as e:      # a config Triton cannot compile (shared memory, layouts): recorded, skipped
            row["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        print(json.dumps({"row": row}), flush=True)
        res["rows"].append(row)
    print(json.dumps({"done": res}), flush=True)


def _run_child(name, configs, risky, timeout):
    """(result, error): the child's rows and torch's times, also those printed before it failed or timed out."""
    cmd = [sys.executable, __file__, "--child", name, "--configs", json.dumps(configs)] + (["--risky"] if risky else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, err = r.stdout, (r.stderr.strip().splitlines() or ["no output"])[-1][:300] if r.returncode else None
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = f"timeout after {timeout} s"
    res = {"rows": []}
    for ln in out.splitlines():
        if ln.startswith('{"torch"'):
            res.update(json.loads(ln)["torch"])
        elif ln.startswith('{"row"'):
            res["rows"].append(json.loads(ln)["row"])
    return res, err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=["vit_bf16", "gpt_f32", "vit_f32", "gpt_bf16"], choices=list(SHAPES))
    ap.add_argument("--risky", action="store_true", help="also 16-bit configs with unpadded head dims, one per child")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--configs", help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=int, default=240)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child, [tuple(c) for c in json.loads(a.configs)], a.risky)
    for name in a.shapes:
        f32 = SHAPES[name][-1] == "float32"
        res, err = _run_child(name, F32 if f32 else SAFE16, False, a.timeout)
        rows = list(res["rows"])
        if err:
            print(f"{name}: child failed: {err}")
        if a.risky and not f32:
            for cfg in RISKY16:
                r2, e2 = _run_child(name, [cfg], True, 90)
                rows += [dict(x, risky=True) for x in r2["rows"]]
                if e2:
                    print(f"{name} risky {cfg}: child failed: {e2}")
        if "torch_fwd" not in res:
            continue
        print(f"\n### {name} {SHAPES[name]}: torch fwd {res['torch_fwd']:.4f} ms, bwd {res['torch_bwd']:.4f} ms")
        print("| fwd_m, fwd_n, small, large, warps, stages, d | ok (err) | fwd ms | bwd ms | fwd/torch | bwd/torch |")
        print("|---|---|---:|---:|---:|---:|")
        for r in rows:
            tag = " risky" if r.get("risky") else ""
            if "error" in r:
                print(f"| {r['cfg']}{tag} | {r['error'][:80]} | | | | |")
            elif "fwd" in r:
                print(f"| {r['cfg']}{tag} | {r['ok']} ({r['err']:.1e}) | {r['fwd']:.4f} | {r['bwd']:.4f} | "
                      f"{r['fwd'] / res['torch_fwd']:.2f} | {r['bwd'] / res['torch_bwd']:.2f} |")
            else:
                print(f"| {r['cfg']}{tag} | {r.get('ok')} ({r.get('err')}) | | | | |")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
