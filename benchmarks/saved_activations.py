"""Activation memory held for backward: the bytes the autograd graph keeps alive after one forward of the seed
workloads (the models of `seed_workloads.py`, written once for either framework), ember against torch in one
process. With parameters, gradients and optimizer states, this is what sets a training step's peak memory, and it
can be measured on the CPU.

Each framework's graph is walked from the loss: ember's nodes through what they saved (`saved`, `results`, a
custom Function's saved tensors), torch's through its nodes' `_saved_*` attributes. Each storage is counted once
(q, k and v sliced from one qkv projection count as that projection), parameters (and their casts' sources) not at
all. Dropout is as configured (the ViT's 0.1), so masks count.

    python benchmarks/saved_activations.py [--device cpu|cuda] [--batch 8] [--workloads reversal vit gpt]
                                           [--dtypes float32 bf16] [--write]
"""
from __future__ import annotations

import argparse
import contextlib
import sys

import seed_workloads as sw
from _common import append, header

MIB = float(1 << 20)


def _ember_saved(loss, params) -> dict:
    """node name -> bytes of the storages ember's graph holds for backward (each storage once, params excluded)."""
    from ember._tensor import Tensor
    skip = {id(p._storage) for p in params}
    counted, per, seen = set(), {}, set()
    stack = [loss.grad_fn]

    def add(node, v):
        if isinstance(v, (list, tuple)):
            for x in v:
                add(node, x)
            return
        t = getattr(v, "tensor", v)         # a SavedTensor holds its tensor
        if isinstance(t, Tensor):
            key = id(t._storage)
            if key not in skip and key not in counted:
                counted.add(key)
                per[node.name()] = per.get(node.name(), 0) + t._storage.nbytes
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for attr in ("saved", "results"):
            add(node, getattr(node, attr, None) or ())
        ctx = getattr(node, "ctx", None)
        if ctx is not None:
            add(node, list(getattr(ctx, "_saved", None) or ()))
        stack.extend(e[0] for e in node.next_functions if e is not None)
    return per


def _torch_saved(loss, params) -> dict:
    import torch
    skip = {p.untyped_storage().data_ptr() for p in params}
    counted, per, seen = set(), {}, set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                v = getattr(node, attr)
            except RuntimeError:            # freed, or not a tensor-valued field
                continue
            for t in (v if isinstance(v, (list, tuple)) else (v,)):
                if isinstance(t, torch.Tensor):
                    s = t.untyped_storage()
                    key = s.data_ptr()
                    if key not in skip and key not in counted:
                        counted.add(key)
                        per[node.name()] = per.get(node.name(), 0) + s.nbytes()
        stack.extend(e[0] for e in node.next_functions if e[0] is not None)
    return per


def measure(framework: str, name: str, cfg: dict, device: str, dtype: str) -> dict:
    lib = sw._lib(framework)
    lib.manual_seed(0)
    model = sw.build(lib, name, cfg).to(device)
    model.train()
    x, y = sw.make_batch(lib, name, cfg, device)
    amp = lib.autocast(device.split(":")[0], dtype=lib.bfloat16) if dtype == "bf16" else contextlib.nullcontext()
    with amp:
        out = model(x)
        loss = lib.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    params = list(model.parameters())
    return (_torch_saved if framework == "torch" else _ember_saved)(loss, params)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8, help="batch size of every workload (the bytes scale with it)")
    p.add_argument("--workloads", nargs="+", default=list(sw.WORKLOADS), choices=sw.WORKLOADS)
    p.add_argument("--dtypes", nargs="+", default=list(sw.DTYPES), choices=sw.DTYPES)
    p.add_argument("--top", type=int, default=4, help="node types listed per framework and row")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.batch < 1:
        raise SystemExit(f"saved_activations: --batch must be at least 1, got {args.batch}")
    rows = []
    for name in args.workloads:
        cfg = dict(sw.FULL[name], batch=args.batch)
        for dtype in args.dtypes:
            got = {fw: measure(fw, name, cfg, args.device, dtype) for fw in ("ember", "torch")}
            e, t = sum(got["ember"].values()), sum(got["torch"].values())
            tops = {fw: ", ".join(f"{k} {v / MIB:.1f}" for k, v in sorted(got[fw].items(), key=lambda kv: -kv[1])
                                  [:args.top]) for fw in got}
            rows.append(f"| {name} | {dtype} | {e / MIB:.2f} | {t / MIB:.2f} | {e / t:.3f} | {tops['ember']} | "
                        f"{tops['torch']} |")
            print(rows[-1], file=sys.stderr, flush=True)
    text = header(f"Activation memory held for backward, batch {args.batch} (`benchmarks/saved_activations.py`)",
                  args.device)
    text += ("| workload | dtype | ember MiB | torch MiB | ember/torch | ember's largest (MiB) | torch's largest (MiB) |\n"
             "|---|---|---:|---:|---:|---|---|\n" + "\n".join(rows) + "\n\n"
             "Bytes of the storages each framework's autograd graph holds after one forward (each storage once, "
             "parameters excluded); bf16: forward under autocast(dtype=bfloat16). Sizes as in the seed-workload table.\n")
    print(text)
    if args.write:
        append(text)


if __name__ == "__main__":
    main()
