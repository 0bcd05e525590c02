"""Training-step time of three seed workloads, ember vs torch in one process: the same model code (written once,
as PyTorch users write it, for either framework), the same batch, eager and as a whole-step CUDA graph, in
float32 and under bf16 autocast.

- reversal: vocab 36, T 64, d_model 128, 4 heads, 2 layers, batch 64, causal, SGD (lr 0.1, momentum 0.9)
- vit: CIFAR-10-shaped 32x32x3 images, 4x4 patches (a strided Conv2d), 16 CLS tokens, d 256, 8 heads,
  6 layers, dropout 0.1, batch 256, AdamW; the head reads the mean of the CLS tokens (10 classes)
- gpt: vocab 4096, T 128, d 256, 8 heads, 6 layers, batch 64, causal, tied head, AdamW

Each block: pre-norm LayerNorm, a fused qkv Linear, `F.scaled_dot_product_attention`, an output projection,
a GELU MLP, residuals; the loss is `F.cross_entropy`. A runner that fails (an op missing, a capture refused)
is reported on its own line and as "failed: ..." in its cell; the others still run.

    python benchmarks/seed_workloads.py [--workloads reversal vit gpt] [--dtypes float32 bf16] [--no-graph]
                                        [--frameworks ember torch] [--rounds 5] [--steps 10] [--write]
    python benchmarks/seed_workloads.py --device cpu --tiny      # tiny sizes on the CPU (the CI smoke test)
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import math
import signal
import statistics
import sys
import time
import traceback
import types

import numpy as np

from _common import append, header

WORKLOADS = ("reversal", "vit", "gpt")
DTYPES = ("float32", "bf16")
FRAMEWORKS = ("ember", "torch")

FULL = {
    "reversal": dict(vocab=36, seq=64, d=128, heads=4, layers=2, batch=64, dropout=0.0, causal=True, tie=False,
                     opt="sgd"),
    "vit": dict(image=32, patch=4, cls_tokens=16, classes=10, d=256, heads=8, layers=6, batch=256, dropout=0.1,
                opt="adamw"),
    "gpt": dict(vocab=4096, seq=128, d=256, heads=8, layers=6, batch=64, dropout=0.0, causal=True, tie=True,
                opt="adamw"),
}
TINY = {
    "reversal": dict(FULL["reversal"], seq=16, d=32, heads=2, layers=1, batch=4),
    "vit": dict(FULL["vit"], image=16, cls_tokens=2, d=32, heads=2, layers=1, batch=4),
    "gpt": dict(FULL["gpt"], vocab=64, seq=16, d=32, heads=2, layers=1, batch=4),
}


def _say(*a) -> None:
    print("[seed_workloads]", *a, flush=True)


# ---- the models: written once, for `lib` = torch or ember ---------------------------------------------------

_CLASSES: dict = {}


def model_classes(lib):
    """The model classes for the framework module `lib` (torch or ember), from one source."""
    if lib.__name__ in _CLASSES:
        return _CLASSES[lib.__name__]
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self, d, heads, dropout, causal):
            super().__init__()
            self.heads, self.dropout, self.causal = heads, dropout, causal
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.drop = nn.Dropout(dropout)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                               dropout_p=self.dropout if self.training else 0.0)
            x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, c)))
            return x + self.mlp(self.ln2(x))

    class LM(nn.Module):
        """A decoder-only Transformer: token + position embeddings, blocks, final LayerNorm, vocabulary head."""

        def __init__(self, vocab, seq, d, heads, layers, dropout, causal, tie):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList([Block(d, heads, dropout, causal) for _ in range(layers)])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)
            if tie:
                self.head.weight = self.tok.weight
            for w in (self.tok.weight, self.pos.weight):
                nn.init.normal_(w, std=0.02)

        def forward(self, ids):
            t = ids.shape[1]
            h = self.drop(self.tok(ids) + self.pos(lib.arange(t, device=ids.device)))
            for block in self.blocks:
                h = block(h)
            return self.head(self.norm(h))

    class ViT(nn.Module):
        """Patch embedding (a strided Conv2d), learned CLS tokens and positions, blocks, head on the CLS mean."""

        def __init__(self, image, patch, cls_tokens, classes, d, heads, layers, dropout):
            super().__init__()
            n = (image // patch) ** 2
            self.k = cls_tokens
            self.patch = nn.Conv2d(3, d, patch, stride=patch)
            self.cls = nn.Parameter(lib.zeros(1, cls_tokens, d))
            self.pos = nn.Parameter(lib.randn(1, cls_tokens + n, d) * 0.02)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList([Block(d, heads, dropout, False) for _ in range(layers)])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, classes)

        def forward(self, x):
            p = self.patch(x).flatten(2).transpose(1, 2)                      # (B, patches, d)
            h = self.drop(lib.cat([self.cls.expand(x.shape[0], -1, -1), p], dim=1) + self.pos)
            for block in self.blocks:
                h = block(h)
            return self.head(self.norm(h[:, :self.k]).mean(1))

    ns = _CLASSES[lib.__name__] = types.SimpleNamespace(Block=Block, LM=LM, ViT=ViT)
    return ns


def build(lib, name: str, cfg: dict):
    """The workload's model (on the CPU, from `lib`'s global RNG)."""
    C = model_classes(lib)
    if name == "vit":
        return C.ViT(cfg["image"], cfg["patch"], cfg["cls_tokens"], cfg["classes"], cfg["d"], cfg["heads"],
                     cfg["layers"], cfg["dropout"])
    return C.LM(cfg["vocab"], cfg["seq"], cfg["d"], cfg["heads"], cfg["layers"], cfg["dropout"], cfg["causal"],
                cfg["tie"])


def make_optimizer(lib, model, cfg: dict, capturable: bool = False):
    if cfg["opt"] == "sgd":
        return lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=True)
    return lib.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, foreach=True, capturable=capturable)


def make_batch(lib, name: str, cfg: dict, device: str):
    """The synthetic batch (inputs, targets): the same numbers for either framework (NumPy, seed 0), put on
    the device once."""
    rng = np.random.default_rng(0)
    b = cfg["batch"]
    if name == "vit":
        x = rng.standard_normal((b, 3, cfg["image"], cfg["image"]), dtype=np.float32)
        y = rng.integers(0, cfg["classes"], b)
    else:
        x = rng.integers(0, cfg["vocab"], (b, cfg["seq"]))
        y = np.ascontiguousarray(x[:, ::-1]) if name == "reversal" else rng.integers(0, cfg["vocab"], x.shape)
    return lib.from_numpy(x).to(device), lib.from_numpy(y.astype(np.int64)).to(device)


def make_step(lib, model, opt, x, y, device_type: str, amp: bool):
    """The training step, as users write it: forward and loss (under bf16 autocast when `amp`), backward, step."""
    F = lib.nn.functional

    def step():
        with lib.autocast(device_type, dtype=lib.bfloat16) if amp else contextlib.nullcontext():
            out = model(x)
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


# ---- runners ------------------------------------------------------------------------------------------------

def _lib(framework: str):
    if framework == "torch":
        import torch
        return torch
    import ember
    return ember


def make_runner(framework: str, name: str, cfg: dict, device: str, dtype: str, graphed: bool, warmup: int):
    """A dict: `run` (one step: the eager step or the graph's replay), `sync`, `loss` (the graph's static loss,
    or None: the eager step returns its loss) and `keep` (what must stay alive while the graph replays)."""
    lib = _lib(framework)
    lib.manual_seed(0)
    model = build(lib, name, cfg).to(device)
    opt = make_optimizer(lib, model, cfg, capturable=graphed)
    x, y = make_batch(lib, name, cfg, device)
    step = make_step(lib, model, opt, x, y, device.split(":")[0], dtype == "bf16")
    return warm_runner(lib, step, device, warmup, graphed, (model, opt, x, y))


def warm_runner(lib, step, device: str, warmup: int, graphed: bool, keep: tuple) -> dict:
    """`make_runner`'s dict for `step` after `warmup` steps (on CUDA off the default stream, then, when `graphed`,
    the whole step captured in one CUDA graph); `keep` (model, optimizer, batch) stays alive with it."""
    if not device.startswith("cuda"):
        for _ in range(warmup):
            step()
        return dict(run=step, sync=lambda: None, loss=None, keep=keep)
    cuda = lib.cuda
    side = cuda.Stream()
    side.wait_stream(cuda.current_stream())
    with cuda.stream(side):             # warm-up (compiles, optimizer state) off the default stream
        for _ in range(warmup):
            step()
    cuda.synchronize()
    run, loss, g = step, None, None
    if graphed:                         # the whole step (forward, backward, optimizer) as one graph
        g = cuda.CUDAGraph()
        with cuda.graph(g):
            loss = step()               # the graph's static output: each replay rewrites it
        run = g.replay
    run()
    cuda.synchronize()
    # a graph replays on the addresses it captured: keep the model, optimizer and batch alive
    return dict(run=run, sync=cuda.synchronize, loss=loss, keep=keep + (step, g))


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    msg = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    return (msg[:90] + "...") if len(msg) > 93 else msg


def _fail(results: dict, key: tuple, what: str, e: BaseException) -> None:
    results[key] = "failed: " + _short(e).replace("|", "/")
    _say(f"FAILED {what}: {type(e).__name__}: {e}")
    print(traceback.format_exc(limit=-8), file=sys.stderr, flush=True)


def _free(device: str, frameworks) -> None:
    gc.collect()
    if device.startswith("cuda"):
        for fw in frameworks:
            try:
                _lib(fw).cuda.synchronize()
                _lib(fw).cuda.empty_cache()
            except Exception as e:  # noqa: BLE001 - a broken context shows in the next runner's failure
                _say(f"cleanup ({fw}): {_short(e)}")


def run_group(name, cfg, dtype, args, results, losses) -> None:
    """Build, warm up and time (interleaved rounds, median) the runners of one workload and dtype."""
    modes = ["eager"] + ([] if args.no_graph else ["graphed"])
    runners = {}
    for mode in modes:
        for fw in args.frameworks:
            key, what = (name, dtype, fw, mode), f"{name} {dtype} {fw} {mode}"
            try:
                t0 = time.perf_counter()
                runners[key] = make_runner(fw, name, cfg, args.device, dtype, mode == "graphed", args.warmup)
                _say(f"ready: {what} ({time.perf_counter() - t0:.1f} s to build and warm up)")
            except Exception as e:  # noqa: BLE001 - report it and go on: the run must give every figure it can
                _fail(results, key, what, e)
    # interleaved rounds, medians: the host's speed drifts over seconds, and two runs minutes apart would
    # measure the drift
    times = {k: [] for k in runners}
    stopped = None
    try:
        for _ in range(args.rounds):
            for key in list(runners):
                r = runners[key]
                try:
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        r["run"]()
                    r["sync"]()
                    times[key].append((time.perf_counter() - t0) / args.steps * 1e3)
                except Exception as e:  # noqa: BLE001
                    _fail(results, key, " ".join(key) + " (timing)", e)
                    del runners[key]
    except KeyboardInterrupt as e:      # keep the rounds done so far, then stop
        stopped = e
    for key, r in runners.items():
        if not times[key]:
            continue
        try:
            last = float((r["run"]() if r["loss"] is None else r["loss"]).detach().float())
            r["sync"]()
        except Exception as e:  # noqa: BLE001
            _fail(results, key, " ".join(key) + " (reading the loss)", e)
            continue
        losses[key] = last
        ms = statistics.median(times[key])
        if math.isfinite(last):
            results[key] = ms
            _say(f"{' '.join(key)}: {ms:.2f} ms/step, loss {last:.4f}")
        else:
            results[key] = f"failed: loss {last} after the timing ({ms:.2f} ms/step)"
            _say(f"FAILED {' '.join(key)}: loss {last} after the timing")
    runners.clear()
    if stopped is not None:
        raise stopped
    _free(args.device, args.frameworks)


def _peak_mib(framework: str, run) -> float:
    """The device memory peak (MiB allocated: model, optimizer state, batch and the step's activations) of one
    eager step after the warm-up, from the framework's own allocator statistics."""
    cuda = _lib(framework).cuda
    cuda.synchronize()
    cuda.reset_peak_memory_stats()
    run()
    cuda.synchronize()
    return cuda.max_memory_allocated() / 2 ** 20


def _kernels_of(framework: str, run) -> dict:
    """{kernel name: (count, GPU µs)} of one eager step, from the framework's own profiler (ember's through
    CUPTI, torch's through Kineto); memcpys and memsets count as kernels here. ember's Triton kernels are
    named with the op (or autograd node) that launched them: `ew_kernel [add]`."""
    lib = _lib(framework)
    acts = [lib.profiler.ProfilerActivity.CPU, lib.profiler.ProfilerActivity.CUDA]
    with lib.profiler.profile(activities=acts) as prof:
        run()
        lib.cuda.synchronize()
    out = {}
    if framework == "ember":
        for ev in prof.events():
            for name, start, end in ev.kernels:
                if not name.startswith(("_Z", "void ", "sm", "nvjet", "cutlass", "Memcpy", "Memset")):
                    name = f"{name} [{ev.name}]"     # ember's own (Triton) kernels: by the op that launched them
                c, t = out.get(name, (0, 0.0))
                out[name] = (c + 1, t + (end - start) / 1000.0)
        return out
    for e in prof.key_averages():
        # kernels, memcpys and memsets; not the GPU spans of user annotations ("Optimizer.step#AdamW.step").
        # Kernel names hold '#' too ("{lambda()#1}": casts, GELU, ...): an annotation is a '#' name without spaces
        if e.device_type == lib.autograd.DeviceType.CUDA and not getattr(e, "is_user_annotation", False) \
                and not ("#" in e.key and " " not in e.key):
            out[e.key] = (e.count, e.self_device_time_total)
    return out


def kernel_report(name, dtype, args) -> str:
    """The GPU kernels of one eager training step of each framework: count, total GPU time, the largest ones; and
    the step's memory peak (each framework's runner alone in the process, the timing runners freed)."""
    text = f"\n#### Kernels of one eager step: {name}, {dtype}\n\n"
    for fw in args.frameworks:
        try:
            r = make_runner(fw, name, FULL[name] if not args.tiny else TINY[name], args.device, dtype, False,
                            args.warmup)
            peak = _peak_mib(fw, r["run"])
            k = _kernels_of(fw, r["run"])
        except Exception as e:  # noqa: BLE001
            text += f"{fw}: failed: {_short(e)}\n\n"
            continue
        total = sum(t for _, t in k.values())
        text += (f"{fw}: {sum(c for c, _ in k.values())} kernels, {total / 1000:.2f} ms of GPU time, "
                 f"peak {peak:.0f} MiB allocated\n\n"
                 "| kernel | count | GPU ms | share |\n|---|---:|---:|---:|\n")
        for kn, (c, t) in sorted(k.items(), key=lambda kv: -kv[1][1])[:args.kernels]:
            short = kn if len(kn) <= 70 else kn[:67] + "..."
            text += f"| `{short.replace('|', '/')}` | {c} | {t / 1000:.3f} | {t / total:.0%} |\n"
        text += "\n"
        del r
        _free(args.device, [fw])
    return text


def describe(name: str, cfg: dict) -> str:
    if name == "vit":
        size = (f"{cfg['image']}x{cfg['image']}x3 images, patch {cfg['patch']}, {cfg['cls_tokens']} CLS tokens, "
                f"{cfg['classes']} classes")
    else:
        size = f"vocab {cfg['vocab']}, T {cfg['seq']}" + (", tied head" if cfg["tie"] else "")
    opt = "SGD (lr 0.1, momentum 0.9)" if cfg["opt"] == "sgd" else "AdamW"
    layers = f"{cfg['layers']} layer" + "s" * (cfg["layers"] > 1)
    return (f"{size}, d {cfg['d']}, {cfg['heads']} heads, {layers}, batch {cfg['batch']}, "
            f"dropout {cfg['dropout']}, {opt}")


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else v


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) else "-"


def table(results: dict, workloads, dtypes) -> str:
    text = ("| workload | dtype | ember eager ms | torch eager ms | ember/torch eager | ember graphed ms | "
            "torch graphed ms | ember/torch graphed |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
    for name in workloads:
        for dtype in dtypes:
            cells = [name, dtype]
            for mode in ("eager", "graphed"):
                e, t = results.get((name, dtype, "ember", mode)), results.get((name, dtype, "torch", mode))
                cells += [_cell(e), _cell(t), _ratio(e, t)]
            text += "| " + " | ".join(cells) + " |\n"
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES),
                   help="bf16: the forward and loss under autocast(dtype=bfloat16)")
    p.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    p.add_argument("--no-graph", action="store_true", help="skip the CUDA-graph runners")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (d 32, 2 heads, 1 layer, batch 4, T 16)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    p.add_argument("--steps", type=int, default=10, help="steps per round")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 5 on CUDA, 1 on the CPU)")
    p.add_argument("--kernels", type=int, default=0, metavar="N",
                   help="also list the N largest GPU kernels of one eager step per framework, and the step's "
                        "memory peak (CUDA)")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args(argv)
    if not args.device.startswith("cuda"):
        args.no_graph = True            # CUDA graphs need CUDA
    if args.warmup is None:
        args.warmup = 5 if args.device.startswith("cuda") else 1
    args.warmup = max(1, args.warmup)   # optimizer state exists before a capture (SGD's first step differs)
    import torch

    import ember
    if args.device.startswith("cuda"):
        dev_name = f"cuda ({ember.cuda.get_device_name()}; torch: {torch.cuda.get_device_name()})"
    else:
        dev_name = args.device
    sizes = TINY if args.tiny else FULL
    results, losses = {}, {}
    interrupted = False
    try:
        for name in args.workloads:
            for dtype in args.dtypes:
                run_group(name, sizes[name], dtype, args, results, losses)
    except KeyboardInterrupt:           # Ctrl-C, or SIGTERM from a time limit: print what was measured
        interrupted = True
        _say("interrupted: the table below holds the figures measured before")
    title = "Seed workloads: training step, ember vs torch" + (" (tiny sizes)" if args.tiny else "")
    title += " (interrupted: incomplete)" if interrupted else ""
    text = header(title, dev_name)
    text += table(results, args.workloads, args.dtypes)
    text += (f"\nms per training step (forward, cross-entropy, backward, optimizer step), median of {args.rounds} "
             f"interleaved rounds of {args.steps} steps; graphed: the whole step captured in one CUDA graph and "
             f"replayed; float32: full-precision matmuls (TF32 off, both frameworks' default); bf16: forward and loss "
             f"under autocast(dtype=bfloat16). Sizes: "
             + "; ".join(f"{n}: {describe(n, sizes[n])}" for n in args.workloads) + ".\n")
    if args.kernels and args.device.startswith("cuda") and not interrupted:
        for name in args.workloads:
            for dtype in args.dtypes:
                text += kernel_report(name, dtype, args)
    print(text, flush=True)
    if args.write:
        append(text)
    return {"times": results, "losses": losses, "text": text, "interrupted": interrupted}


def _sigterm(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)     # `timeout` sends SIGTERM: still print the partial table
    main()
