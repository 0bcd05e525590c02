"""The main job: train a small causal Transformer to reverse sequences.

    python -m ember.examples.reverse [--device cpu|cuda] [--steps N] [--seed S] [--d-model D] ...

Each sample is `<BOS> a1..an <SEP> an..a1 <EOS>`; the loss is next-token cross-entropy on the
positions after `<SEP>`. Evaluation reports exact-sequence accuracy on held-out sequences: a
sequence counts only if every token after `<SEP>` is predicted right (with the true prefix,
which for exact matches is the same as greedy decoding). At the end it writes a checkpoint
(`ember.save`, safetensors) and, if matplotlib is installed, a loss-curve PNG.

Started by a launcher as several ranks (on the CPU: `mpiexec -n N python -m ember.examples.reverse ...`), it
trains data-parallel: every rank builds the same model (DistributedDataParallel also copies rank 0's weights)
and trains on its own slice of each global batch of `--batch-size` sequences (a multiple of N). A rank's loss
is the sum over its slice's targets divided by the global batch's target count, times N: DDP averages the
ranks' gradients, so each step is the single-process step on the whole batch, up to float rounding (the
slices hold different numbers of targets, so the mean of the ranks' own means would not be). Rank 0 alone
evaluates, prints and writes the checkpoint (of the unwrapped model: the keys of a single-process run), the
history and the plot. On CUDA, start the ranks with `python -m ember.distributed.run --nproc-per-node N -m
ember.examples.reverse ...`: each trains on its own GPU (cuda:LOCAL_RANK), through the 'nccl' backend.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.datasets import ReversalDataset, sequence_accuracy
from ember.examples._common import check_options, lr_at, update, use_cuda_graph  # noqa: F401  (lr_at: public)
from ember.examples._common import default_device  # noqa: F401  (public here too)
from ember.examples._common import (data_parallel, mean_over_ranks, say, seed_rank, setup_distributed, shard, teardown,
                                    wait_for_rank0)


class ReversalTransformer(nn.Module):
    """A decoder-only Transformer: token + learned position embeddings, pre-norm causal blocks."""

    def __init__(self, vocab_size: int, seq_len: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int = 256, dropout: float = 0.0):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids):
        t = ids.shape[1]
        h = self.tok(ids) + self.pos(ember.arange(t, device=ids.device))
        mask = ember.ones(t, t, dtype=ember.bool, device=ids.device).triu(1)  # True = may not attend
        for block in self.blocks:
            h = block(h, src_mask=mask, is_causal=True)
        return self.head(self.norm(h))


def evaluate(model, data, device, batch_size=256) -> tuple:
    model.eval()
    losses, accs, n = 0.0, 0.0, 0
    with ember.no_grad():
        for start in range(0, len(data), batch_size):
            idx = list(range(start, min(start + batch_size, len(data))))
            x, y = data.batch(idx)
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
            losses += loss.item() * len(idx)
            accs += sequence_accuracy(logits.argmax(-1), y) * len(idx)
            n += len(idx)
    model.train()
    return losses / n, accs / n


def save_plot(history: dict, path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["step"], history["loss"], label="train loss", lw=1)
    if history["eval_step"]:
        ax.plot(history["eval_step"], history["eval_loss"], "o-", label="val loss")
        ax2 = ax.twinx()
        ax2.plot(history["eval_step"], history["eval_acc"], "s--", color="tab:green", label="val exact acc")
        ax2.set_ylabel("exact-sequence accuracy")
        ax2.set_ylim(0, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.set_title("ember: sequence reversal")
    handles, labels = ax.get_legend_handles_labels()
    if history["eval_step"]:
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> dict | None:
    """Trains, evaluates and writes the outputs; returns the result (None on ranks other than 0)."""
    p = argparse.ArgumentParser(prog="python -m ember.examples.reverse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    hyper = {"steps": (800, "training steps"), "seed": (0, "seed of the weights and the data"),
             "batch-size": (64, "sequences a step"), "lr": (3e-3, "peak learning rate"),
             "weight-decay": (0.01, "AdamW weight decay of the matrices"), "warmup": (100, "warm-up steps"),
             "d-model": (64, "model width"), "heads": (4, "attention heads (a divisor of --d-model)"),
             "layers": (2, "blocks"), "ff": (256, "feed-forward width"), "dropout": (0.0, "dropout"),
             "num-symbols": (16, "distinct symbols in a sequence"), "min-len": (2, "shortest sequence"),
             "max-len": (10, "longest sequence"), "eval-every": (200, "steps between evaluations"),
             "eval-samples": (1024, "held-out sequences an evaluation")}
    for name, (default, what) in hyper.items():     # each option parses as its default's type (int or float)
        p.add_argument(f"--{name}", type=type(default), default=default, help=f"{what} (default {default})")
    p.add_argument("--out", default="runs/reverse", help="directory for the checkpoint and the loss curve")
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of a progress bar")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="on CUDA, capture the whole training step (forward, backward, clipping, AdamW) in a CUDA "
                        "graph and replay it (default: on for CUDA)")
    p.add_argument("--amp", choices=("bf16", "fp16", "off"), default="off",
                   help="mixed precision: the forward pass under autocast in bfloat16 or float16 (float16 with a "
                        "GradScaler); off by default until the faster setting is measured")
    args = p.parse_args(argv)
    checks = [("steps", args.steps >= 1, "at least 1"), ("batch-size", args.batch_size >= 1, "at least 1"),
              ("lr", args.lr > 0, "> 0"), ("weight-decay", args.weight_decay >= 0, ">= 0"),
              ("warmup", args.warmup >= 0, ">= 0"), ("d-model", args.d_model >= 1, "at least 1"),
              ("heads", args.heads >= 1 and args.d_model % args.heads == 0, f"a divisor of --d-model {args.d_model}"),
              ("layers", args.layers >= 1, "at least 1"), ("ff", args.ff >= 1, "at least 1"),
              ("dropout", 0.0 <= args.dropout < 1.0, "in [0, 1)"),
              ("num-symbols", args.num_symbols >= 1, "at least 1"),
              ("min-len", args.min_len >= 1, "at least 1"),
              ("max-len", args.max_len >= args.min_len, f"at least --min-len {args.min_len}"),
              ("eval-every", args.eval_every >= 1, "at least 1"),
              ("eval-samples", args.eval_samples >= 1, "at least 1")]
    check_options(p, args, checks)

    rank, world, device = setup_distributed("reverse", args.device or default_device(), args.batch_size)
    log = say(rank)
    ember.manual_seed(args.seed)
    train = ReversalDataset(args.steps * args.batch_size, args.num_symbols, args.min_len, args.max_len,
                            seed=args.seed, split="train")
    val = ReversalDataset(args.eval_samples, args.num_symbols, args.min_len, args.max_len,
                          seed=args.seed + 1, split="val")
    model = ReversalTransformer(train.vocab_size, train.seq_len, args.d_model, args.heads, args.layers, args.ff,
                                args.dropout).to(device)
    net = data_parallel(model, world)       # trains; `model` evaluates and is saved
    seed_rank(args.seed, rank, world)
    n_params = sum(q.numel() for q in model.parameters())
    decay = [q for q in model.parameters() if q.ndim >= 2]
    no_decay = [q for q in model.parameters() if q.ndim < 2]
    graphed = use_cuda_graph(args, device)
    amp_dtype = {"bf16": ember.bfloat16, "fp16": ember.float16}.get(args.amp)
    scaler = ember.amp.GradScaler(device.split(":")[0], enabled=args.amp == "fp16")
    # graphed: the step count and the learning rate live on the GPU (the scheduler fills lr in place)
    lr = ember.tensor(args.lr, device=device) if graphed else args.lr
    opt = ember.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98),
                            capturable=graphed)
    sched = ember.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, args.steps, args.warmup))
    log(f"ember {ember.__version__}: reversal Transformer, {n_params:,} parameters, device {device}, "
        f"{args.steps} steps of batch {args.batch_size}" + (", training step as a CUDA graph" if graphed else "")
        + (f", autocast {args.amp}" if amp_dtype is not None else "")
        + (f", data-parallel over {world} ranks" if world > 1 else ""))

    def train_step(x, y, weight=None):
        with ember.autocast(device.split(":")[0], dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = net(x)
            logits, y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
            if weight is None:      # one process: the mean over the batch's targets
                loss = F.cross_entropy(logits, y, ignore_index=-100)
            else:                   # a rank's slice: its share of the global batch's mean, times world (see above)
                loss = F.cross_entropy(logits, y, ignore_index=-100, reduction="sum") * weight
        update(loss, opt, scaler, model.parameters())
        return loss
    step_fn = train_step
    if graphed:
        step_fn = ember.cuda.graphed_step(train_step, warmup=3)

    history = {"step": [], "loss": [], "eval_step": [], "eval_loss": [], "eval_acc": []}
    bar = None
    if not args.no_progress and rank == 0:
        try:
            from tqdm import tqdm
            bar = tqdm(total=args.steps, unit="step", dynamic_ncols=True)
        except ImportError:
            bar = None
    t0 = time.perf_counter()
    tokens = 0
    for step in range(args.steps):
        idx = range(step * args.batch_size, (step + 1) * args.batch_size)
        x, y = train.batch(idx)
        tokens += x.numel()
        if world == 1:
            loss = step_fn(x.to(device), y.to(device))
        else:
            weight = world / (y != -100).sum().item()
            loss = step_fn(shard(x, rank, world).to(device), shard(y, rank, world).to(device), weight)
        sched.step()
        if step % 10 == 0 or step == args.steps - 1:
            lv = mean_over_ranks(loss, world)
            history["step"].append(step)
            history["loss"].append(lv)
            rate = tokens / (time.perf_counter() - t0)
            if bar is not None:
                bar.set_postfix(loss=f"{lv:.4f}", tok_s=f"{rate:,.0f}")
            elif step % 100 == 0:
                log(f"step {step:5d}  loss {lv:.4f}  {rate:,.0f} tokens/s", flush=True)
        if bar is not None:
            bar.update(1)
        if (step + 1) % args.eval_every == 0 or step == args.steps - 1:
            if rank == 0:
                vl, va = evaluate(model, val, device)
                history["eval_step"].append(step + 1)
                history["eval_loss"].append(vl)
                history["eval_acc"].append(va)
                msg = f"eval @ {step + 1}: val loss {vl:.4f}, exact-sequence accuracy {va:.3f}"
                (bar.write if bar is not None else print)(msg)
            wait_for_rank0(world)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    if rank != 0:
        teardown(world)         # waits for rank 0's evaluation and files
        return None

    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, "checkpoint.safetensors")
    ember.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": args.steps,
                "args": vars(args)}, ckpt)
    result = {"first_loss": history["loss"][0], "final_loss": history["loss"][-1], "val_loss": history["eval_loss"][-1],
              "val_exact_acc": history["eval_acc"][-1], "seconds": elapsed, "device": device,
              "parameters": n_params, "steps": args.steps}
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump({"history": history, "result": result}, f)
    plotted = save_plot(history, os.path.join(args.out, "loss.png"))
    print(f"done in {elapsed:.1f}s: final train loss {result['final_loss']:.4f}, val exact-sequence accuracy "
          f"{result['val_exact_acc']:.3f}; checkpoint {ckpt}" + (f", curve {args.out}/loss.png" if plotted else ""))
    teardown(world)
    return result


if __name__ == "__main__":
    main()
