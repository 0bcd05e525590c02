"""The example jobs end to end (issue 16): `ember.examples.vit` (CIFAR-10) and `ember.examples.gpt` (Tiny
Shakespeare) trained through their public entry point `main(argv)`, each beside a torch twin of the same
training, with the figures the issue asks for: ViT test accuracy after 10 and 30 epochs, GPT validation loss
after 2,000 and 5,000 steps (or at the epochs / steps run when fewer are asked), wall time, images/s or
tokens/s, ms per step, and a GPT sample from each.

The twin is written as PyTorch users write it (nn.Linear, nn.LayerNorm, F.scaled_dot_product_attention,
F.cross_entropy, AdamW(foreach=True), eager, `torch.autocast` under `--amp bf16`), and trains what the example
trains: the options come from the example's own parser (`vit.parse` / `gpt.parse` on the same argv, so its CPU
and CUDA defaults apply to both), the data from its own functions (`vit.load`, the GPT's tokenizer and
`gpt.batch` windows), the same architecture and weight-decay groups, warm-up + cosine (`lr_at`), label
smoothing, gradient clipping at 1.0, batch size, steps, evaluation and samples, and by default the same initial
weights (the example's model built from the same seed, copied in). Augmentation crops and flips and dropout
masks come from each framework's own generator, so the two runs differ by those draws and float rounding.

On CUDA the example runs as it does by default, its whole training step as one CUDA graph; the twin runs
eager. float32 products are IEEE float32 in both (TF32 off, cuDNN's too) unless `--amp bf16`.

ms / step: the median over the 50-step windows between the runs' log lines (the example prints its cumulative
throughput every 50 steps, from which the time of each such step follows; the twin records the same steps),
leaving out the first 50 steps (compilation, the graph's warm-up and capture) and every window that holds an
evaluation. Runs too short for such a window fall back to wall time / steps (evaluations included), for both
frameworks alike. Wall time: the training loop, from its first step to its last evaluation, with the
evaluations, samples and per-epoch / per-evaluation checkpoints both frameworks write.

    python benchmarks/example_runs.py [--examples vit gpt] [--frameworks ember torch] [--amp off|bf16]
                                      [--vit-epochs N] [--gpt-steps N] [--budget-s S] [--json PATH] [--write]
    # the issue's figures on one GPU, one call each (the examples' CUDA defaults: ViT 30 epochs, GPT 5,000 steps)
    python benchmarks/example_runs.py --examples vit --budget-s 510
    python benchmarks/example_runs.py --examples gpt --budget-s 510
    # tiny models on the CPU (tests/test_example_runs.py runs these on a few hundred images)
    python benchmarks/example_runs.py --device cpu --vit-epochs 1 --vit-limit 512 --gpt-steps 160 \\
        --vit-args "--d-model 32 --heads 2 --layers 1 --batch-size 32" \\
        --gpt-args "--tokenizer char --d-model 32 --heads 2 --layers 1 --block-size 32 --batch-size 8 --eval-every 80"

A budget (`--budget-s`, or SIGTERM from `timeout`) stops the run in progress where it is and starts no other:
the table then holds what was measured, the cut run's checkpoints reached so far (the example's from its last
checkpoint file) marked as cut short.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

from _common import ROOT, append, header

EXAMPLES = ("vit", "gpt")
FRAMEWORKS = ("ember", "torch")
# issue 16's checkpoints: ViT test accuracy after these epochs, GPT validation loss after these steps
VIT_EPOCHS = (10, 30)
GPT_STEPS = (2000, 5000)
VIT_ACC_TARGET, VIT_WITHIN = 0.75, 30        # >= 75% test accuracy within 30 epochs
VIT_ACC_SLACK, GPT_LOSS_SLACK = 0.005, 0.02  # ember >= twin - 0.5 points; ember <= twin + 0.02
LOG_EVERY = 50                               # the examples print a log line every 50 steps (with --no-progress)
# options this script sets for both frameworks; --vit-args / --gpt-args may not give them
OWN = ("--device", "--amp", "--seed", "--out", "--no-progress", "--resume", "--epochs", "--steps", "--limit")


def _say(*a) -> None:
    print("[example_runs]", *a, flush=True)


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    msg = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    return (msg[:90] + "...") if len(msg) > 93 else msg


class OutOfTime(KeyboardInterrupt):
    """--budget-s ran out. A KeyboardInterrupt, so that nothing on the way (the examples catch some Exceptions)
    swallows it: like Ctrl-C, it stops the run in progress, and the figures measured so far are printed."""


@contextlib.contextmanager
def budget(seconds: float):
    """SIGALRM after `seconds` (0: none) raises OutOfTime wherever the process is."""
    if not seconds:
        yield
        return

    def ring(signum, frame):
        raise OutOfTime(f"--budget-s {seconds:g} ran out")
    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def held(sig):
    """`sig` is held back (delivered, if it came, on leaving)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {sig})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})


# ---- the examples' options ------------------------------------------------------------------------------

def _module(example: str):
    import importlib
    return importlib.import_module(f"ember.examples.{example}")


def default_data():
    """--data's default: $EMBER_DATA (the examples' own rule), else shared/data in or beside the checkout."""
    if os.environ.get("EMBER_DATA"):
        return None
    for d in (os.path.join(ROOT, "shared", "data"), os.path.join(ROOT, "..", "shared", "data")):
        if os.path.isdir(d):
            return os.path.normpath(d)
    return None


def example_argv(example: str, args, out: str) -> list:
    """The argv of one example run (the same for both frameworks but for --out): the caller's extra options
    first, then the ones this script owns."""
    extra = shlex.split(getattr(args, f"{example}_args") or "")
    own = ["--device", args.device, "--amp", args.amp, "--seed", str(args.seed), "--out", out, "--no-progress"]
    if args.data and "--data" not in extra:
        own += ["--data", args.data]
    if example == "vit":
        own += [] if args.vit_epochs is None else ["--epochs", str(args.vit_epochs)]
        own += [] if args.vit_limit is None else ["--limit", str(args.vit_limit)]
    else:
        own += [] if args.gpt_steps is None else ["--steps", str(args.gpt_steps)]
    return extra + own


# ---- what a run leaves: one record per (example, framework) -----------------------------------------------

def new_record(example: str, framework: str, opts) -> dict:
    """A run's record, filled as the run goes (a run cut short keeps what it reached). history: the example's
    own (ViT: step, loss, epoch, test_acc; GPT: step, loss, eval_step, eval_loss, samples); marks: {step:
    seconds since the loop started, at the end of that step} for the logged steps; evals: the steps after which
    an evaluation ran."""
    per_step = opts.batch_size * (opts.block_size if example == "gpt" else 1)
    return {"example": example, "framework": framework, "status": "not run", "device": opts.device,
            "mode": None, "planned": opts.epochs if example == "vit" else opts.steps, "per_step": per_step,
            "history": None, "marks": {}, "evals": [], "seconds": None, "sample": None, "notes": []}


class Tee:
    """stdout that also keeps what was written (the example's log lines are read back from it)."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, s):
        self.parts.append(s)
        return self.stream.write(s)

    def flush(self):
        self.stream.flush()

    def text(self) -> str:
        return "".join(self.parts)


LOG_LINE = re.compile(r"^step\s+(\d+)\s+loss\s+\S+\s+([\d,]+(?:\.\d+)?) (?:img|tok)/s\s*$", re.M)


def marks_from_log(text: str, per_step: int) -> dict:
    """{step: seconds since the loop started} from the example's log lines `step N  loss L  R img/s`: R is the
    cumulative rate, (N + 1) * per_step items over the seconds since the loop started."""
    out = {}
    for m in LOG_LINE.finditer(text):
        step, rate = int(m.group(1)), float(m.group(2).replace(",", ""))
        if rate > 0:
            out[step] = (step + 1) * per_step / rate
    return out


def ms_per_step(marks: dict, evals) -> float | None:
    """Median ms per step over the windows between consecutive marks from step LOG_EVERY on, leaving out those
    that hold an evaluation (one after step e falls in the window (a, b] of marks a, b when a <= e < b)."""
    pts = sorted(s for s in marks if s >= LOG_EVERY)
    per = [(marks[b] - marks[a]) / (b - a) * 1e3 for a, b in zip(pts, pts[1:])
           if not any(a <= e < b for e in evals)]
    return statistics.median(per) if per else None


def vit_evals(history: dict) -> list:
    """The steps after which the ViT evaluated: the last of each epoch."""
    if not history or not history["epoch"]:
        return []
    spe = len(history["step"]) // len(history["epoch"])
    return [e * spe - 1 for e in history["epoch"]]


# ---- ember: the example itself ----------------------------------------------------------------------------

def run_ember(example: str, argv: list, opts, rec: dict) -> None:
    """`ember.examples.<example>.main(argv)`; the record from what it returns, its history.json, and its log
    lines. Cut short, the history comes from its last checkpoint (written each epoch / evaluation)."""
    from ember.examples._common import use_cuda_graph
    mod = _module(example)
    for f in ("checkpoint.safetensors", "history.json"):      # an earlier run's, in a reused --out
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(opts.out, f))
    rec["mode"] = "CUDA graph" if use_cuda_graph(opts, opts.device) else "eager"
    tee = Tee(sys.stdout)
    result = None
    try:
        with contextlib.redirect_stdout(tee), warnings.catch_warnings(record=True) as caught:
            try:
                result = mod.main(argv)
            finally:
                for w in caught:
                    _say(f"ember {example}: {w.category.__name__}: {w.message}")
                    if "graphed_step" in str(w.message):     # the capture was abandoned: the step ran eagerly
                        rec["mode"] = "eager (capture abandoned)"
                        rec["notes"].append(f"ember: {w.message}")
    finally:
        with held(signal.SIGALRM):      # the budget's alarm waits until the record is whole
            rec["marks"] = marks_from_log(tee.text(), rec["per_step"])
            if result is not None:
                with open(os.path.join(opts.out, "history.json")) as f:
                    rec["history"] = json.load(f)["history"]
                rec["seconds"], rec["sample"], rec["device"] = result["seconds"], result.get("sample"), result["device"]
            else:
                _history_from_checkpoint(opts.out, rec)
            h = rec["history"]
            if h:
                rec["evals"] = vit_evals(h) if example == "vit" else [s - 1 for s in h["eval_step"]]


def _history_from_checkpoint(out: str, rec: dict) -> None:
    import ember
    ck = os.path.join(out, "checkpoint.safetensors")
    if os.path.isfile(ck):
        try:
            rec["history"] = json.loads(ember.load(ck)["history"])
        except Exception as e:  # noqa: BLE001 - a checkpoint cut while written: nothing reached, say so
            rec["notes"].append(f"ember: its last checkpoint did not load ({_short(e)})")


# ---- the torch twin -------------------------------------------------------------------------------------

def torch_classes():
    """The examples' models written with torch, with the examples' parameter names (so that ember's initial
    weights load into them)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        """ember.examples._common.Block: pre-norm, fused qkv, SDPA (attention dropout), GELU MLP ending in
        dropout (`inner_dropout`: after the GELU too)."""

        def __init__(self, d, h, dropout, causal=False, inner_dropout=False):
            super().__init__()
            self.h, self.dropout, self.causal = h, dropout, causal
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            inner = [nn.Dropout(dropout)] if inner_dropout else []
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), *inner, nn.Linear(4 * d, d), nn.Dropout(dropout))

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                               dropout_p=self.dropout if self.training else 0.0)
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, c))
            return x + self.mlp(self.ln2(x))

    class ViT(nn.Module):
        def __init__(self, classes, image, patch, d, h, layers, cls_tokens, dropout):
            super().__init__()
            self.patch = nn.Conv2d(3, d, patch, stride=patch)
            self.cls = nn.Parameter(torch.zeros(1, cls_tokens, d))
            self.pos = nn.Parameter(torch.randn(1, cls_tokens + (image // patch) ** 2, d) * 0.02)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList([Block(d, h, dropout, inner_dropout=True) for _ in range(layers)])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, classes)
            self.k = cls_tokens

        def forward(self, x):
            p = self.patch(x).flatten(2).transpose(1, 2)
            h = self.drop(torch.cat([self.cls.expand(x.shape[0], -1, -1), p], dim=1) + self.pos)
            for b in self.blocks:
                h = b(h)
            return self.head(self.norm(h[:, :self.k]).mean(1))

    class GPT(nn.Module):
        def __init__(self, vocab, block_size, d, h, layers, dropout):
            super().__init__()
            self.block_size = block_size
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(block_size, d)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList([Block(d, h, dropout, causal=True) for _ in range(layers)])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)
            self.head.weight = self.tok.weight
            for w in (self.tok.weight, self.pos.weight):
                nn.init.normal_(w, std=0.02)

        def forward(self, ids):
            h = self.drop(self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device)))
            for b in self.blocks:
                h = b(h)
            return self.head(self.norm(h))

    return ViT, GPT


def ember_init(build, seed: int) -> dict:
    """The example's initial weights as torch tensors: its model built as its main builds it (ember's global
    generator seeded with --seed, nothing drawn before), on the CPU."""
    import torch

    import ember
    ember.manual_seed(seed)
    return {k: torch.from_numpy(v.detach().numpy().copy()) for k, v in build().state_dict().items()}


@contextlib.contextmanager
def ieee_float32():
    """torch's float32 products in IEEE float32 (TF32 off, cuDNN's convolutions too), restored after."""
    import torch
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _optimizer(torch, decay, rest, opts, **kw):
    return torch.optim.AdamW([{"params": decay, "weight_decay": opts.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=opts.lr, foreach=True, **kw)


def _train_step(torch, model, opt, loss_fn, x, y, dev_type, amp):
    """One step as torch users write it: forward and loss (under autocast with --amp bf16), backward, clip the
    gradients' norm to 1.0, AdamW."""
    with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=amp):
        loss = loss_fn(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def _log(rec, step, loss, t, unit) -> None:
    rec["history"]["step"].append(step)
    rec["history"]["loss"].append(loss)
    if step % LOG_EVERY == 0:
        rec["marks"][step] = t
        print(f"step {step:6d}  loss {loss:.4f}  {(step + 1) * rec['per_step'] / t:,.0f} {unit}/s  [torch]",
              flush=True)


def torch_vit(opts, rec: dict, init: str) -> None:
    """vit.main's training in torch: the same images (vit.load, the same --limit subset and per-epoch order),
    crops of the 4-pixel zero-padded batch and flips on the device, the training set's mean / std, AdamW
    decaying the weight matrices (not cls / pos), warm-up + cosine per step, label smoothing, clipping; the test
    accuracy and a checkpoint after each epoch."""
    import torch
    import torch.nn.functional as F

    from ember.examples import vit
    from ember.examples._common import lr_at
    dev, dev_type, amp = torch.device(opts.device), opts.device.split(":")[0], opts.amp == "bf16"
    cache = opts.cache or os.environ.get("EMBER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ember")
    data = vit.load(vit.find_archive(opts.data), cache)
    (xtr, ytr), (xte, yte), classes = data["train"], data["test"], len(data["classes"])
    if opts.limit:
        keep = np.sort(np.random.default_rng(opts.seed).permutation(len(ytr))[:opts.limit])
        xtr, ytr = xtr[keep], ytr[keep]
    mean = torch.tensor(xtr.reshape(-1, 3).mean(0) / 255.0, dtype=torch.float32, device=dev)
    std = torch.tensor(xtr.reshape(-1, 3).std(0) / 255.0, dtype=torch.float32, device=dev)

    def augment(x, gen):
        b = x.shape[0]
        xp = F.pad(x, (0, 0, 4, 4, 4, 4))
        oy = torch.randint(0, 9, (b,), generator=gen, device=dev)
        ox = torch.randint(0, 9, (b,), generator=gen, device=dev)
        r = torch.arange(32, device=dev)
        flip = torch.rand(b, generator=gen, device=dev) < 0.5
        c = torch.where(flip[:, None], 31 - r[None, :], r[None, :])
        rows, cols = (oy[:, None] + r)[:, :, None], (ox[:, None] + c)[:, None, :]
        return xp[torch.arange(b, device=dev)[:, None, None], rows, cols]

    def prepare(x_u8, gen=None):
        x = torch.from_numpy(x_u8).to(dev).float() / 255.0
        if gen is not None:
            x = augment(x, gen)
        return ((x - mean) / std).permute(0, 3, 1, 2)

    def evaluate():
        model.eval()
        right = 0
        with torch.no_grad():
            for s in range(0, len(yte), 500):
                pred = model(prepare(xte[s:s + 500])).argmax(-1).cpu().numpy()
                right += int((pred == yte[s:s + 500]).sum())
        model.train()
        return right / max(1, len(yte))

    ViT, _ = torch_classes()
    torch.manual_seed(opts.seed)
    model = ViT(classes, 32, 4, opts.d_model, opts.heads, opts.layers, 16, opts.dropout)
    if init == "ember":
        model.load_state_dict(ember_init(lambda: vit.ViT(classes, 32, 4, opts.d_model, opts.heads, opts.layers, 16,
                                                         opts.dropout), opts.seed))
    model.to(dev)
    decay = [q for q in model.parameters() if q.ndim >= 2 and q is not model.cls and q is not model.pos]
    rest = [q for q in model.parameters() if not any(q is d for d in decay)]
    opt = _optimizer(torch, decay, rest, opts)
    spe = max(1, len(ytr) // opts.batch_size)
    total = opts.epochs * spe
    warmup = max(1, total // 20)
    rec["history"] = {"step": [], "loss": [], "epoch": [], "test_acc": []}
    rec["mode"] = "eager"
    ck = os.path.join(opts.out, "checkpoint.pt")
    os.makedirs(opts.out, exist_ok=True)
    _say(f"torch vit: {sum(q.numel() for q in model.parameters()):,} parameters, {len(ytr):,} training images, "
         f"device {opts.device}, {opts.epochs} epochs, eager")
    t0 = time.perf_counter()
    for epoch in range(opts.epochs):
        order = np.random.default_rng([opts.seed, epoch]).permutation(len(ytr))     # the example's order
        gen = torch.Generator(device=dev).manual_seed(opts.seed * 100003 + epoch)
        torch.manual_seed(opts.seed * 100003 + epoch + 50021)                       # dropout
        for i in range(spe):
            step = epoch * spe + i
            for g in opt.param_groups:
                g["lr"] = opts.lr * lr_at(step, total, warmup)
            idx = order[i * opts.batch_size:(i + 1) * opts.batch_size]
            loss = _train_step(torch, model, opt,
                               lambda out, y: F.cross_entropy(out, y, label_smoothing=opts.label_smoothing),
                               prepare(xtr[idx], gen), torch.from_numpy(ytr[idx]).to(dev), dev_type, amp)
            _log(rec, step, loss.item(), time.perf_counter() - t0, "img")
        acc = evaluate()
        rec["history"]["epoch"].append(epoch + 1)
        rec["history"]["test_acc"].append(acc)
        rec["evals"].append(step)
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}  [torch]", flush=True)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1}, ck)
    rec["seconds"] = time.perf_counter() - t0
    rec["device"] = str(dev)


def torch_gpt(opts, rec: dict, init: str, tokenizer_dir: str | None) -> None:
    """gpt.main's training in torch: the same token ids (the example's tokenizer: the one its run saved, else one
    trained the same way), the same `gpt.batch` windows per step, AdamW (betas 0.9, 0.95) decaying the matrices,
    warm-up + cosine, clipping; every --eval-every steps the validation loss on the same windows, a sample
    (temperature, top-k) and a checkpoint."""
    import torch
    import torch.nn.functional as F

    from ember.examples import gpt
    from ember.examples._common import lr_at
    dev, dev_type, amp = torch.device(opts.device), opts.device.split(":")[0], opts.amp == "bf16"
    text = open(gpt.find_text(opts.data), encoding="utf-8").read()
    cut = int(len(text) * 0.9)
    if tokenizer_dir is not None:
        tok = gpt.load_tokenizer(tokenizer_dir, opts.tokenizer)
    else:
        tok = gpt.make_tokenizer(opts.tokenizer, text[:cut], opts.vocab_size)
    train_ids, val_ids = tok.encode_array(text[:cut]), tok.encode_array(text[cut:])

    def windows(ids, seed, step):
        x, y = gpt.batch(ids, opts.batch_size, opts.block_size, seed, step)
        return torch.from_numpy(x.numpy()).to(dev), torch.from_numpy(y.numpy()).to(dev)

    def evaluate():
        model.eval()
        with torch.no_grad():
            ls = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                  for x, y in (windows(val_ids, opts.seed + 1, i) for i in range(opts.eval_batches))]
        model.train()
        return float(np.mean(ls))

    def generate(seed):
        model.eval()
        x = torch.tensor([tok.encode(opts.sample) or [0]], device=dev)
        g = torch.Generator(device=dev).manual_seed(seed)
        with torch.no_grad():
            for _ in range(opts.sample_len):
                logits = model(x[:, -opts.block_size:])[:, -1] / max(opts.temperature, 1e-6)
                if opts.top_k:
                    kth = logits.topk(min(opts.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                x = torch.cat([x, torch.multinomial(logits.softmax(-1), 1, generator=g)], dim=1)
        model.train()
        return tok.decode(x[0].tolist())

    _, GPT = torch_classes()
    torch.manual_seed(opts.seed)
    model = GPT(tok.vocab_size, opts.block_size, opts.d_model, opts.heads, opts.layers, opts.dropout)
    if init == "ember":
        model.load_state_dict(ember_init(lambda: gpt.GPT(tok.vocab_size, opts.block_size, opts.d_model, opts.heads,
                                                         opts.layers, opts.dropout), opts.seed))
    model.to(dev)
    decay = [q for q in model.parameters() if q.ndim >= 2]
    rest = [q for q in model.parameters() if q.ndim < 2]
    opt = _optimizer(torch, decay, rest, opts, betas=(0.9, 0.95))
    total = opts.steps
    warmup = opts.warmup if opts.warmup is not None else max(1, total // 20)
    eval_every = opts.eval_every or max(1, total // 10)
    rec["history"] = {"step": [], "loss": [], "eval_step": [], "eval_loss": [], "samples": []}
    rec["mode"] = "eager"
    ck = os.path.join(opts.out, "checkpoint.pt")
    os.makedirs(opts.out, exist_ok=True)
    _say(f"torch gpt: {sum(q.numel() for q in model.parameters()):,} parameters, {tok.vocab_size} tokens, "
         f"device {opts.device}, {total} steps, eager")
    t0 = time.perf_counter()
    for step in range(total):
        for g in opt.param_groups:
            g["lr"] = opts.lr * lr_at(step, total, warmup)
        x, y = windows(train_ids, opts.seed, step)
        loss = _train_step(torch, model, opt, lambda out, t: F.cross_entropy(out.flatten(0, 1), t.flatten()),
                           x, y, dev_type, amp)
        _log(rec, step, loss.item(), time.perf_counter() - t0, "tok")
        if (step + 1) % eval_every == 0 or step == total - 1:
            vl = evaluate()
            s = generate(step)
            h = rec["history"]
            h["eval_step"].append(step + 1)
            h["eval_loss"].append(vl)
            h["samples"].append(s)
            rec["evals"].append(step)
            print(f"eval @ {step + 1}: val loss {vl:.4f}  [torch]\n{s}\n", flush=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step + 1}, ck)
    rec["seconds"] = time.perf_counter() - t0
    rec["sample"] = generate(total)
    rec["device"] = str(dev)


def run_torch(example: str, opts, rec: dict, init: str, tokenizer_dir) -> None:
    with ieee_float32():
        if example == "vit":
            torch_vit(opts, rec, init)
        else:
            torch_gpt(opts, rec, init, tokenizer_dir)


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        import ember
        for lib in (ember, torch):
            try:
                lib.cuda.synchronize()
                lib.cuda.empty_cache()
            except Exception as e:  # noqa: BLE001 - a broken context shows in the next run's failure
                _say(f"cleanup ({lib.__name__}): {_short(e)}")


# ---- the report -----------------------------------------------------------------------------------------

def metric_at(rec: dict) -> dict:
    """{epoch: test accuracy} (ViT) or {step: validation loss} (GPT) of a run."""
    h = rec["history"]
    if not h:
        return {}
    if rec["example"] == "vit":
        return dict(zip(h["epoch"], h["test_acc"]))
    return dict(zip(h["eval_step"], h["eval_loss"]))


def checkpoints(example: str, planned: int, evaluated) -> list:
    """The issue's checkpoints within the planned run (GPT: where it evaluates), and its last."""
    issue = VIT_EPOCHS if example == "vit" else GPT_STEPS
    return sorted({c for c in issue if c <= planned and (example == "vit" or c in evaluated)} | {planned})


def timing(recs: list) -> dict:
    """{framework: (ms per step, how)} with one estimator for all runs of an example: the 50-step windows where
    every run has some, else wall time / steps (evaluations included)."""
    windows = {r["framework"]: ms_per_step(r["marks"], r["evals"]) for r in recs}
    if all(v is not None for v in windows.values()):
        return {fw: (v, "windows") for fw, v in windows.items()}
    out = {}
    for r in recs:
        steps = len(r["history"]["step"]) if r["history"] else 0
        ok = r["seconds"] is not None and steps
        out[r["framework"]] = (r["seconds"] / steps * 1e3 if ok else None, "wall")
    return out


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _loss(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _layers(opts) -> str:
    return f"{opts.layers} layer" + "s" * (opts.layers != 1)


def _num(v, fmt) -> str:
    return "-" if v is None else format(v, fmt)


def example_report(example: str, recs: list, opts) -> tuple:
    """(markdown, targets) of one example: the table, its notes, the GPT samples, and the issue's targets,
    each 'met' / 'missed' from measured figures only."""
    vit = example == "vit"
    done = [r for r in recs if r["history"]]
    cps = checkpoints(example, opts.epochs if vit else opts.steps,
                      set().union(*(metric_at(r) for r in done)) if done else set())
    ms = timing(done)
    unit = "images/s" if vit else "tokens/s"
    what = "test acc" if vit else "val loss"
    fmt = _pct if vit else _loss
    text = (f"| framework | device | {'epochs' if vit else 'steps'} | " + " | ".join(f"{what} @ {c}" for c in cps)
            + f" | wall s | {unit} | ms / step | first loss |\n|---|---|---:|" + "---:|" * (len(cps) + 4) + "\n")
    for r in recs:
        cells = [f"{r['framework']} ({r['mode'] or '-'})", r["device"]]
        if r["status"].startswith(("failed", "not run")):
            text += "| " + " | ".join(cells + [r["status"].replace("|", "/")] + ["-"] * (len(cps) + 4)) + " |\n"
            continue
        h, m = r["history"], metric_at(r)
        reached = (len(h["epoch"]) if vit else len(h["step"])) if h else 0
        last = f", last {what} {fmt(m[max(m)])} @ {max(m)}" if m and max(m) not in cps else ""
        cells.append(f"{reached}" + ("" if r["status"] == "ok" else f" of {r['planned']} (cut short{last})"))
        cells += [fmt(m.get(c)) for c in cps]
        t = ms.get(r["framework"], (None, ""))[0]
        cells += [_num(r["seconds"], ".1f"), _num(r["per_step"] / t * 1e3 if t else None, ",.0f"), _num(t, ".2f"),
                  _loss(h["loss"][0] if h and h["loss"] else None)]
        text += "| " + " | ".join(cells) + " |\n"
    how = {v[1] for v in ms.values()}
    text += ("\n" + ("ms / step: median over 50-step windows (from step 50 on, windows without an evaluation)"
                     if how == {"windows"} else "ms / step: wall time / steps (too few steps for 50-step windows: "
                                                "evaluations included)")
             + f"; {unit} = {'images' if vit else 'tokens'} a step / ms per step; wall s: the training loop with "
               "its evaluations, samples and checkpoints. ember runs the example as it is (on CUDA its default: the "
               "whole training step, forward to AdamW, captured once as a CUDA graph and replayed); the torch twin "
               "runs eager.")
    if vit:
        text += (f" {opts.batch_size} images a step, d {opts.d_model}, {opts.heads} heads, {_layers(opts)}, "
                 f"dropout {opts.dropout:g}, lr {opts.lr:g}, weight decay {opts.weight_decay:g}, label smoothing "
                 f"{opts.label_smoothing:g}" + (f", --limit {opts.limit} training images" if opts.limit else "")
                 + ".")
    else:
        text += (f" {opts.tokenizer} tokenizer" + (f" ({opts.vocab_size})" if opts.tokenizer == "bpe" else "")
                 + f", batch {opts.batch_size} x T {opts.block_size}, d {opts.d_model}, {opts.heads} heads, "
                   f"{_layers(opts)}, dropout {opts.dropout:g}, lr {opts.lr:g}, weight decay "
                   f"{opts.weight_decay:g}; validation: {opts.eval_batches} batches.")
    for r in recs:
        text += "".join(f" {n}" for n in r["notes"])
    text += "\n"
    if not vit:
        samples = [r for r in recs if r["sample"] or (r["history"] and r["history"]["samples"])]
        if samples:
            text += (f"\nSamples after the last step (first 200 characters; prompt {opts.sample!r}, "
                     f"{opts.sample_len} tokens, temperature {opts.temperature:g}, top-k {opts.top_k}):\n")
            for r in samples:
                if r["status"] == "ok":
                    text += f"\n{r['framework']}:\n\n```text\n{r['sample'][:200]}\n```\n"
                else:       # cut short: the sample of its last evaluation
                    h = r["history"]
                    text += (f"\n{r['framework']} (cut short: at its last evaluation, step {h['eval_step'][-1]}):"
                             f"\n\n```text\n{h['samples'][-1][:200]}\n```\n")
    targets = vit_targets(recs, cps) if vit else gpt_targets(recs, cps)
    targets.append(time_target(ms))
    text += "\nTargets (issue 16):\n" + "".join(f"- {t}\n" for t in targets)
    return text, targets


def _pair(recs):
    by = {r["framework"]: r for r in recs}
    return by.get("ember"), by.get("torch")


def vit_targets(recs, cps) -> list:
    e, t = _pair(recs)
    me, mt = (metric_at(e) if e else {}), (metric_at(t) if t else {})
    both = [c for c in cps if c in me and c in mt]
    if both:
        ok = all(me[c] >= mt[c] - VIT_ACC_SLACK for c in both)
        first = ("met" if ok else "missed") + " (" + "; ".join(
            f"epoch {c}: {_pct(me[c])} vs {_pct(mt[c])}" for c in both) + ")"
    else:
        first = "not measured (no epoch with both frameworks' accuracy)"
    out = [f"ViT test accuracy >= the torch twin's - {100 * VIT_ACC_SLACK:g} points at the same epoch: {first}"]
    within = {c: a for c, a in me.items() if c <= VIT_WITHIN}
    if not within:
        second = "not measured (no ember accuracy)"
    elif any(a >= VIT_ACC_TARGET for a in within.values()):
        c = min(c for c, a in within.items() if a >= VIT_ACC_TARGET)
        second = f"met ({_pct(within[c])} at epoch {c})"
    elif max(within) >= VIT_WITHIN:
        second = f"missed (best {_pct(max(within.values()))} in {VIT_WITHIN} epochs)"
    else:
        second = (f"not measured (ran {max(within)} of {VIT_WITHIN} epochs; best so far "
                  f"{_pct(max(within.values()))})")
    out.append(f"ViT test accuracy >= {100 * VIT_ACC_TARGET:g}% within {VIT_WITHIN} epochs (ember): {second}")
    return out


def gpt_targets(recs, cps) -> list:
    e, t = _pair(recs)
    me, mt = (metric_at(e) if e else {}), (metric_at(t) if t else {})
    both = [c for c in cps if c in me and c in mt]
    if both:
        ok = all(me[c] <= mt[c] + GPT_LOSS_SLACK for c in both)
        res = ("met" if ok else "missed") + " (" + "; ".join(
            f"step {c}: {me[c]:.4f} vs {mt[c]:.4f}" for c in both) + ")"
    else:
        res = "not measured (no step with both frameworks' validation loss)"
    return [f"GPT validation loss <= the torch twin's + {GPT_LOSS_SLACK:g} at the same step: {res}"]


def time_target(ms: dict) -> str:
    e, t = ms.get("ember", (None, ""))[0], ms.get("torch", (None, ""))[0]
    if e is None or t is None:
        return "time per step <= the twin's: not measured"
    return f"time per step <= the twin's: {'met' if e <= t else 'missed'} ({e:.2f} vs {t:.2f} ms, {e / t:.2f}x)"


# ---- main -----------------------------------------------------------------------------------------------

def parse(argv):
    import ember
    from ember.examples._common import default_device
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", nargs="+", choices=EXAMPLES, default=list(EXAMPLES),
                   help="which examples to run (default: vit gpt)")
    p.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS),
                   help="ember (the example itself) and / or torch (its twin), in this order (default: ember torch)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when ember sees a GPU, else cpu)")
    p.add_argument("--amp", choices=("off", "bf16"), default="off",
                   help="off: float32 (TF32 off); bf16: forward and loss under bf16 autocast, both (default off)")
    p.add_argument("--seed", type=int, default=0, help="the examples' --seed, the twin's too (default 0)")
    p.add_argument("--vit-epochs", type=int, default=None,
                   help="ViT epochs (default: the example's, 30 on CUDA and 2 on the CPU)")
    p.add_argument("--vit-limit", type=int, default=None,
                   help="train the ViT on a random N of the training images (default: the example's, all on CUDA "
                        "and 5000 on the CPU; 0: all)")
    p.add_argument("--gpt-steps", type=int, default=None,
                   help="GPT steps (default: the example's, 5000 on CUDA and 300 on the CPU)")
    p.add_argument("--vit-args", default="", metavar="ARGS",
                   help="more options of ember.examples.vit, one string, for both frameworks (e.g. \"--d-model 32 "
                        "--batch-size 64\"; default none)")
    p.add_argument("--gpt-args", default="", metavar="ARGS",
                   help="more options of ember.examples.gpt, one string, for both frameworks (e.g. \"--tokenizer "
                        "char --eval-every 1000\"; default none)")
    p.add_argument("--data", default=default_data(),
                   help="the folder of cifar10-jpeg.tar.gz and tinyshakespeare.txt (default: $EMBER_DATA, else "
                        "shared/data in or beside the checkout)")
    p.add_argument("--twin-init", choices=("ember", "torch"), default="ember",
                   help="the twin's initial weights: ember's (the example's model from the same seed, copied) or "
                        "torch's own init (default ember)")
    p.add_argument("--budget-s", type=float, default=0.0, metavar="S",
                   help="S seconds after the first run starts, stop wherever the runs are and report what was "
                        "measured (default 0: no limit)")
    p.add_argument("--out", default=None, help="folder of the runs' outputs, one folder a run (default: a temporary "
                                               "folder, removed at the end)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the records (histories, timings) as JSON "
                                                                "(default: not written)")
    p.add_argument("--write", action="store_true", help="append the report to BENCHMARKS.md (default: not)")
    args = p.parse_args(argv)
    args.device = args.device or default_device()
    if args.device.startswith("cuda") and not ember.cuda.is_available():
        p.error(f"--device {args.device}: ember sees no CUDA device here; use --device cpu")
    for name in ("vit_args", "gpt_args"):
        given = [a.split("=")[0] for a in shlex.split(getattr(args, name)) if a.startswith("--")]
        bad = [a for a in given if a in OWN]
        if bad:
            p.error(f"--{name.replace('_', '-')}: {', '.join(bad)} is set by this script's own options")
    return args


def device_name(device: str) -> str:
    if not device.startswith("cuda"):
        return device
    import torch

    import ember
    return f"cuda ({ember.cuda.get_device_name()}; torch: {torch.cuda.get_device_name()})"


def main(argv=None) -> dict:
    args = parse(argv)
    import ember
    if args.device.startswith("cuda"):
        ember.backends.cuda.matmul.allow_tf32 = False      # ember's default, said here as torch's is set
    out = args.out or tempfile.mkdtemp(prefix="example_runs-")
    records, opts_of, interrupted = {}, {}, None
    for ex in args.examples:        # every example's options first: a bad one stops the script before any run
        opts_of[ex] = {fw: _module(ex).parse(example_argv(ex, args, os.path.join(out, f"{ex}-{fw}")))
                       for fw in FRAMEWORKS}
    try:
        with budget(args.budget_s):
            for ex in args.examples:
                for fw in args.frameworks:
                    opts = opts_of[ex][fw]
                    rec = records[ex, fw] = new_record(ex, fw, opts)
                    rec["status"] = "running"
                    _say(f"{ex} {fw}: start")
                    try:
                        if fw == "ember":
                            run_ember(ex, example_argv(ex, args, opts.out), opts, rec)
                        else:
                            # the GPT twin takes the tokenizer the example's run saved (the same ids for sure)
                            ran = records.get((ex, "ember"), {}).get("status") == "ok"
                            run_torch(ex, opts, rec, args.twin_init, opts_of[ex]["ember"].out if ran else None)
                        rec["status"] = "ok"
                        _say(f"{ex} {fw}: done in {rec['seconds']:.1f} s")
                    except KeyboardInterrupt:
                        rec["status"] = "cut"
                        raise
                    except (Exception, SystemExit) as e:  # noqa: BLE001 - report it and go on to the other runs
                        rec["status"] = "failed: " + _short(e)
                        _say(f"FAILED {ex} {fw}: {_short(e)}")
                        print(traceback.format_exc(limit=-8), file=sys.stderr, flush=True)
                    _free(args.device)
    except KeyboardInterrupt as e:      # the budget, Ctrl-C or SIGTERM: report what was measured
        interrupted = str(e) or type(e).__name__
        _say(f"interrupted ({interrupted}): the report holds the figures measured before")
    title = "Example jobs end to end, ember vs a torch twin (issue 16)"
    title += " (interrupted: incomplete)" if interrupted else ""
    text = header(title, device_name(args.device))
    given = argv if argv is not None else sys.argv[1:]
    text += (f"`python benchmarks/example_runs.py {' '.join(shlex.quote(a) for a in given)}`: --amp {args.amp}"
             + (" (float32 products in IEEE float32: TF32 off in both, cuDNN's too)" if args.amp == "off" else "")
             + f"; ember {ember.__version__}; the twin: torch eager, AdamW(foreach=True), initial weights "
             + ("copied from the example's model" if args.twin_init == "ember" else "torch's own") + ".\n")
    targets = {}
    for ex in args.examples:
        recs = [records.get((ex, fw)) or new_record(ex, fw, opts_of[ex][fw]) for fw in args.frameworks]
        name = "ViT on CIFAR-10" if ex == "vit" else "GPT on Tiny Shakespeare"
        body, targets[ex] = example_report(ex, recs, opts_of[ex]["ember"])
        text += f"\n#### {name} (`ember.examples.{ex}`)\n\n" + body
    print("\n" + text, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"text": text, "interrupted": interrupted,
                       "records": [dict(r, marks={str(k): v for k, v in r["marks"].items()})
                                   for r in records.values()]}, f)
    if args.write:
        append(text)
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return {"records": records, "text": text, "targets": targets, "interrupted": interrupted,
            "options": opts_of}


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)     # `timeout` sends SIGTERM: still print the partial report
    main()
