"""The kernel suite at the sizes VibeTensor published (bf16): ember against torch eager and torch.compile.

    python benchmarks/kernel_suite.py [--cases layer_norm rms_norm ...] [--no-compile] [--write]

Each case is timed as GPU time per call: the call is captured ten times into a CUDA graph (ember's graph for
ember, torch's for torch and torch.compile), the graph is replayed, and CUDA events time the replays, so the
host's launch cost is out of the figure and only the kernels remain. A framework that cannot capture a case is
timed eagerly instead (marked "eager"). Memory-bound cases give their bandwidth (the bytes a fused kernel must
move, over the time) as a share of the device's measured copy bandwidth (ember's copy of 256 MiB).

Cases (bf16 unless said):
- layer_norm / rms_norm: 4096 x 4096, weight (and bias), forward;
- rope: x of 4 x 32 x 4096 x 128, cos/sin of 4096 x 64, half rotation, forward;
- cross_entropy: logits of (4 * 2048) x 32000, class targets, mean, forward and forward + backward;
- adamw: 64 float32 parameters of 1M each, foreach step (7 x 4 bytes an element moved);
- attention: B4 h16 T2048 d64 causal forward + backward, and the seed workloads' ViT (B256 h8 T80 d32,
  not causal) and GPT (B64 h8 T128 d32, causal) shapes; q, k, v as heads of one fused projection.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from _common import append, gpu_ms, header

CASES = ("layer_norm", "rms_norm", "rope", "cross_entropy", "adamw", "attention")
REPS = 10       # calls captured per graph


def _timer(lib):
    """ms per call of fn, from a CUDA graph of REPS calls (or eagerly when capture fails): (ms, how)."""
    cuda = lib.cuda

    def time_ms(fn):
        side = cuda.Stream()
        side.wait_stream(cuda.current_stream())
        with cuda.stream(side):         # warm-up: compiles, workspaces, autotuning
            for _ in range(3):
                fn()
        cuda.synchronize()
        try:
            g = cuda.CUDAGraph()
            with cuda.graph(g):
                for _ in range(REPS):
                    fn()
            return gpu_ms(g.replay, 10, lib) / REPS, "graph"
        except Exception:       # noqa: BLE001 - some callables cannot be captured; time them eagerly
            cuda.synchronize()
            return gpu_ms(fn, 50, lib), "eager"
    return time_ms


def _cases(lib, names, dev="cuda"):
    """{case: [(label, fn, bytes moved or None)]} for the framework module `lib` (torch or ember)."""
    F, bf = lib.nn.functional, lib.bfloat16
    lib.manual_seed(0)
    out = {}
    if "layer_norm" in names or "rms_norm" in names:
        x = lib.randn(4096, 4096, device=dev, dtype=bf)
        w, b = lib.randn(4096, device=dev, dtype=bf), lib.randn(4096, device=dev, dtype=bf)
        nb = 2 * x.numel() * 2
        out["layer_norm"] = [("4096x4096 fwd", lambda: F.layer_norm(x, (4096,), w, b), nb)]
        if hasattr(F, "rms_norm"):
            out["rms_norm"] = [("4096x4096 fwd", lambda: F.rms_norm(x, (4096,), w, 1e-6), nb)]
    if "rope" in names:
        xr = lib.randn(4, 32, 4096, 128, device=dev, dtype=bf)
        pos = lib.arange(4096, device=dev, dtype=lib.float32)[:, None]
        inv = 10000.0 ** (-lib.arange(0, 128, 2, device=dev, dtype=lib.float32) / 128)
        cos, sin = (pos * inv).cos().to(bf), (pos * inv).sin().to(bf)
        if hasattr(F, "rotary_embedding"):
            fn = lambda: F.rotary_embedding(xr, cos, sin)  # noqa: E731
        else:                       # torch has no RoPE op: the usual composite (ember: until its op exists)
            def fn():
                x1, x2 = xr[..., :64], xr[..., 64:]
                return lib.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)
        out["rope"] = [("4x32x4096x128 fwd", fn, 2 * xr.numel() * 2)]
    if "cross_entropy" in names:
        logits = lib.randn(4 * 2048, 32000, device=dev, dtype=bf).requires_grad_()
        y = lib.randint(0, 32000, (4 * 2048,), device=dev)
        nb = logits.numel() * 2

        def fwd_bwd():
            (g,) = lib.autograd.grad(F.cross_entropy(logits, y), (logits,))
            return g
        out["cross_entropy"] = [("8192x32000 fwd", lambda: F.cross_entropy(logits, y), nb),
                                ("8192x32000 fwd+bwd", fwd_bwd, 3 * nb)]
    if "adamw" in names:
        ps = [lib.randn(1 << 20, device=dev).requires_grad_() for _ in range(64)]
        for p in ps:
            p.grad = lib.randn(1 << 20, device=dev)
        opt = lib.optim.AdamW(ps, lr=1e-3, foreach=True, capturable=True)
        out["adamw"] = [("64 x 1M float32 step", opt.step, 7 * 4 * 64 << 20)]
    if "attention" in names:
        rows = []
        for label, (B, H, T, E, causal) in (("B4 h16 T2048 d64 causal", (4, 16, 2048, 64, True)),
                                            ("ViT B256 h8 T80 d32", (256, 8, 80, 32, False)),
                                            ("GPT B64 h8 T128 d32 causal", (64, 8, 128, 32, True))):
            qkv = lib.randn(B, T, 3, H, E, device=dev, dtype=bf).requires_grad_()
            go = lib.randn(B, H, T, E, device=dev, dtype=bf)

            def fb(qkv=qkv, go=go, causal=causal, B=B, T=T, H=H, E=E):
                q, k, v = qkv.permute(2, 0, 3, 1, 4)
                o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                (g,) = lib.autograd.grad(o, (qkv,), go)
                return g
            rows.append((label + " fwd+bwd", fb, None))
        out["attention"] = rows
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    a = p.parse_args(argv)
    import torch

    import ember
    x = ember.empty(64 << 20, device="cuda")
    y = ember.empty(64 << 20, device="cuda")
    copy_ms, _ = _timer(ember)(lambda: y.copy_(x))
    copy_bw = 2 * x.numel() * 4 / copy_ms / 1e6        # GB/s, read + write
    e_cases, t_cases = _cases(ember, a.cases), _cases(torch, a.cases)
    rows = []
    for case in a.cases:
        for (label, fe, nb), (_, ft, _) in zip(e_cases.get(case, []), t_cases.get(case, [])):
            r = {"case": case, "label": label}
            for key, lib, fn in (("ember", ember, fe), ("torch", torch, ft)):
                try:
                    r[key] = _timer(lib)(fn)
                except Exception as e:      # noqa: BLE001 - reported in the table
                    r[key] = (None, f"failed: {type(e).__name__}: {str(e)[:80]}")
                    traceback.print_exc()
            if not a.no_compile:
                try:
                    r["compile"] = _timer(torch)(torch.compile(ft))
                except Exception as e:      # noqa: BLE001
                    r["compile"] = (None, f"failed: {type(e).__name__}: {str(e)[:60]}")
            r["bytes"] = nb
            rows.append(r)
            print(r, file=sys.stderr, flush=True)
    text = header("Kernel suite at VibeTensor's sizes (bf16): GPU ms per call, ember vs torch eager and "
                  "torch.compile", f"cuda ({ember.cuda.get_device_name()})")
    text += (f"Copy bandwidth (ember, 256 MiB): {copy_bw:,.0f} GB/s. Speed-up = torch ms / ember ms; GB/s = the "
             f"bytes a fused kernel must move over ember's time.\n\n")
    text += ("| case | size | ember ms | torch ms | torch.compile ms | speed-up vs torch | vs torch.compile | "
             "ember GB/s (share of copy) |\n|---|---|---:|---:|---:|---:|---:|---:|\n")

    def cell(v):
        ms, how = v
        return how if ms is None else f"{ms:.4f}" + (" (eager)" if how == "eager" else "")

    def ratio(num, den):
        return f"{num / den:.2f}x" if num and den else ""
    for r in rows:
        comp = r.get("compile", (None, "not run"))
        e, t, c = r["ember"][0], r["torch"][0], comp[0]
        bw = f"{r['bytes'] / e / 1e6:,.0f} ({r['bytes'] / e / 1e6 / copy_bw:.0%})" if r["bytes"] and e else ""
        text += (f"| {r['case']} | {r['label']} | {cell(r['ember'])} | {cell(r['torch'])} | {cell(comp)} | "
                 f"{ratio(t, e)} | {ratio(c, e)} | {bw} |\n")
    print(text)
    if a.write:
        append(text)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
