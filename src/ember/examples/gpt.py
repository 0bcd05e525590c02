"""A GPT on Tiny Shakespeare: next-token prediction with a byte-level BPE (or character) tokenizer.

    python -m ember.examples.gpt [--data PATH] [--tokenizer bpe|char] [--steps N] [--device cpu|cuda] ...
    python -m ember.examples.gpt --resume runs/gpt          # continue from the checkpoint there
    python -m ember.examples.gpt --resume runs/gpt --steps 0 --sample "ROMEO:"   # only sample

The text is `tinyshakespeare.txt`, found through `--data` (the file or its folder) or the `EMBER_DATA`
folder; nothing is downloaded. The first 90% trains (and trains the tokenizer, saved beside the
checkpoint), the rest is validation. Each step draws `--batch-size` windows of `--block-size` tokens
from a generator seeded by (seed, step), so a resumed run sees the same batches it would have seen.
AdamW decays the weight matrices only, with warm-up and cosine decay and gradient clipping at 1.0.
Every `--eval-every` steps it reports the validation loss and prints a sample (temperature, top-k).
At the end it writes `checkpoint.safetensors`, `tokenizer.json`/`chars.json`, `history.json` and a
loss-curve PNG to `--out`. On a CPU the default model is smaller, so that a run takes minutes.

Started by a launcher as several ranks (on the CPU: `mpiexec -n N python -m ember.examples.gpt ...`), it
trains data-parallel: every rank builds the same model (DistributedDataParallel also copies rank 0's weights)
and trains on its own rows of each step's `--batch-size` windows (a multiple of N), the windows a single
process would draw. Every slice holds as many tokens, so DDP's average of the ranks' mean losses' gradients is
the whole batch's: each step is the single-process step, up to float rounding (dropout aside: each rank draws
its own masks). Rank 0 alone trains the tokenizer (the others load it), evaluates, samples, prints and writes
the checkpoint (of the unwrapped model: the keys of a single-process run, so --resume works either way); the
others wait at a barrier. On CUDA, start the ranks with `python -m ember.distributed.run --nproc-per-node N -m
ember.examples.gpt ...`: each trains on its own GPU (cuda:LOCAL_RANK), through the 'nccl' backend.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.datasets.text import BPETokenizer, CharTokenizer
from ember.examples._common import (Block, add_model_options, add_run_options, amp, check_options, data_parallel,
                                    default_device, find_data, log_step, lr_at, make_step, mean_over_ranks, parser,
                                    plot, progress, restore, resume, say, seed_rank, set_lr, setup_distributed, shard,
                                    size_defaults, teardown, use_cuda_graph, wait_for_rank0, write_history)

FILE = "tinyshakespeare.txt"


class GPT(nn.Module):
    """A decoder-only Transformer as PyTorch users write it: token and position embeddings, pre-norm
    blocks with a fused qkv projection and `scaled_dot_product_attention(is_causal=True)`, a GELU MLP,
    a final LayerNorm and a head tied to the token embedding."""

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 256, nhead: int = 8, num_layers: int = 6,
                 dropout: float = 0.0):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"GPT: d_model {d_model} must be a multiple of nhead {nhead}")
        self.block_size, self.nhead = block_size, nhead
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(block_size, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(d_model, nhead, dropout, causal=True) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok.weight
        for w in (self.tok.weight, self.pos.weight):        # GPT-2's init: small embeddings (the head is tied)
            nn.init.normal_(w, std=0.02)

    def forward(self, ids):
        t = ids.shape[1]
        h = self.drop(self.tok(ids) + self.pos(ember.arange(t, device=ids.device)))
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))


# ---- data ------------------------------------------------------------------------------------------

def find_text(data) -> str:
    """The path of tinyshakespeare.txt from --data (a file or a folder) or EMBER_DATA; a clear error else."""
    return find_data("gpt", data, lambda base: [base] if base.endswith(".txt") else [os.path.join(base, FILE)],
                     os.path.isfile, "Tiny Shakespeare",
                     f"Pass --data PATH/TO/{FILE} (or its folder), or set EMBER_DATA to the folder that holds it; "
                     f"the file is the 1 MB tinyshakespeare.txt of karpathy/char-rnn")


def make_tokenizer(kind: str, text: str, vocab_size: int):
    if kind == "char":
        return CharTokenizer(text)
    return BPETokenizer.train_from_iterator([text[i:i + 65536] for i in range(0, len(text), 65536)], vocab_size)


def save_tokenizer(tok, out: str) -> str:
    if isinstance(tok, CharTokenizer):
        path = os.path.join(out, "chars.json")
        tok.save(path)
    else:
        path = os.path.join(out, "tokenizer.json")
        tok.tokenizer.save(path)
    return path


def load_tokenizer(out: str, kind: str | None = None):
    """The tokenizer saved in folder `out`: `kind` "char" or "bpe", or (None) characters where chars.json is."""
    if kind == "char" or (kind is None and os.path.isfile(os.path.join(out, "chars.json"))):
        return CharTokenizer.load(os.path.join(out, "chars.json"))
    from ember.datasets.text import _tokenizers
    return BPETokenizer(_tokenizers().Tokenizer.from_file(os.path.join(out, "tokenizer.json")))


def batch(ids: np.ndarray, size: int, block: int, seed: int, step: int):
    """`size` windows of `block` + 1 tokens at positions drawn from a generator seeded by (seed, step)."""
    g = np.random.default_rng([seed, step])
    start = g.integers(0, len(ids) - block - 1, size)
    w = np.stack([ids[s:s + block + 1] for s in start])
    return ember.tensor(w[:, :-1]), ember.tensor(w[:, 1:])


# ---- sampling --------------------------------------------------------------------------------------

def generate(model, tok, prompt: str, n: int, device, temperature: float = 0.8, top_k: int = 40,
             seed: int = 0) -> str:
    """`n` tokens after `prompt`, drawn with `temperature` from the `top_k` most likely (0: all)."""
    model.eval()
    ids = tok.encode(prompt) or [0]
    gen = ember.Generator(device=device).manual_seed(seed)
    x = ember.tensor([ids], device=device)
    with ember.no_grad():
        for _ in range(n):
            logits = model(x[:, -model.block_size:])[:, -1] / max(temperature, 1e-6)
            if top_k:
                kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = ember.multinomial(logits.softmax(-1), 1, generator=gen)
            x = ember.cat([x, nxt], dim=1)
    model.train()
    return tok.decode(x[0].tolist())


# ---- the job ---------------------------------------------------------------------------------------

def parse(argv):
    p = parser("gpt", __doc__)
    p.add_argument("--data", default=None, help=f"{FILE} or its folder (default: the EMBER_DATA folder)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--tokenizer", choices=("bpe", "char"), default="bpe", help="byte-level BPE or characters")
    p.add_argument("--vocab-size", type=int, default=4096, help="BPE vocabulary size (default 4096)")
    p.add_argument("--steps", type=int, default=None,
                   help="total training steps, a resumed run's included (default 5000 on CUDA, 300 on the CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences a step (default 64; 16 on the CPU)")
    p.add_argument("--block-size", type=int, default=None, help="context length T (default 128; 64 on the CPU)")
    model_rows = add_model_options(p, 128, 4, 0.0)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay on matrices (default 0.1)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 5%% of the steps)")
    p.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default: steps / 10)")
    p.add_argument("--eval-batches", type=int, default=8, help="validation batches per evaluation (default 8)")
    p.add_argument("--sample", default="ROMEO:", help="prompt of the samples (default 'ROMEO:')")
    p.add_argument("--sample-len", type=int, default=100, help="tokens a sample (default 100)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    p.add_argument("--top-k", type=int, default=40, help="sample from the k most likely tokens (0: all; default 40)")
    add_run_options(p, "gpt")
    args = p.parse_args(argv)
    size_defaults(args, (("steps", 5000, 300), ("batch_size", 64, 16), ("block_size", 128, 64)) + model_rows)
    checks = [("steps", args.steps >= 0, "a count >= 0"), ("batch-size", args.batch_size >= 1, "at least 1"),
              ("block-size", args.block_size >= 2, "at least 2"), ("d-model", args.d_model >= 1, "at least 1"),
              ("heads", args.heads >= 1 and args.d_model % args.heads == 0, f"a divisor of --d-model {args.d_model}"),
              ("layers", args.layers >= 1, "at least 1"), ("vocab-size", args.vocab_size >= 260, "at least 260"),
              ("dropout", 0.0 <= args.dropout < 1.0, "in [0, 1)"), ("lr", args.lr > 0, "> 0"),
              ("eval-batches", args.eval_batches >= 1, "at least 1"), ("temperature", args.temperature > 0, "> 0"),
              ("top-k", args.top_k >= 0, ">= 0"), ("sample-len", args.sample_len >= 0, ">= 0")]
    check_options(p, args, checks)
    return args


def main(argv=None) -> dict | None:
    """Trains, evaluates, samples and writes the outputs; returns the result (None on ranks other than 0)."""
    args = parse(argv)
    state = None
    if args.resume:     # the run's own options from its checkpoint; --steps (the total) and --out may change
        args, state = resume("gpt", args, argv, ("steps", "out", "sample", "sample_len", "no_progress", "data",
                                                 "device", "eval_every"))
    rank, world, device = setup_distributed("gpt", args.device or default_device(), args.batch_size)
    log = say(rank)
    ember.manual_seed(args.seed)
    with open(find_text(args.data), encoding="utf-8") as f:
        text = f.read()
    cut = int(len(text) * 0.9)
    os.makedirs(args.out, exist_ok=True)
    if rank == 0:
        tok = load_tokenizer(args.resume) if state is not None else make_tokenizer(args.tokenizer, text[:cut],
                                                                                   args.vocab_size)
        tok_path = save_tokenizer(tok, args.out)
    wait_for_rank0(world)       # the other ranks take rank 0's tokenizer, so that every rank has the same ids
    if rank != 0:
        tok = load_tokenizer(args.out, args.tokenizer)
    train_ids, val_ids = tok.encode_array(text[:cut]), tok.encode_array(text[cut:])
    if min(len(train_ids), len(val_ids)) <= args.block_size + 1:
        raise SystemExit(f"gpt: the text is too short for --block-size {args.block_size}: {len(train_ids)} training "
                         f"and {len(val_ids)} validation tokens")
    model = GPT(tok.vocab_size, args.block_size, args.d_model, args.heads, args.layers, args.dropout).to(device)
    decay = [q for q in model.parameters() if q.ndim >= 2]
    no_decay = [q for q in model.parameters() if q.ndim < 2]
    graphed = use_cuda_graph(args, device)
    # graphed: the learning rate and the step count live on the GPU (set_lr fills lr in place)
    lr0 = ember.tensor(args.lr, device=device) if graphed else args.lr
    opt = ember.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr0, betas=(0.9, 0.95),
                            capturable=graphed)
    start, history = 0, {"step": [], "loss": [], "eval_step": [], "eval_loss": [], "samples": []}
    if state is not None:
        history = restore(state, model, opt)
        start = int(state["step"])
    net = data_parallel(model, world)       # trains; `model` evaluates, samples and is saved
    seed_rank(args.seed, rank, world)
    total = args.steps
    warmup = args.warmup if args.warmup is not None else max(1, total // 20)
    dev_type, amp_dtype, scaler = amp(args, device)
    n_params = sum(q.numel() for q in model.parameters())
    log(f"ember {ember.__version__}: GPT, {n_params:,} parameters, {args.tokenizer} tokenizer of "
        f"{tok.vocab_size} tokens, {len(train_ids):,} training tokens, device {device}, steps {start}..{total}"
        + (", training step as a CUDA graph" if graphed else "")
        + (f", data-parallel over {world} ranks" if world > 1 else ""))
    step_fn = make_step(model, lambda x, y: F.cross_entropy(net(x).flatten(0, 1), y.flatten()), opt, scaler,
                        dev_type, amp_dtype, graphed)
    ck = os.path.join(args.out, "checkpoint.safetensors")
    saved_args = json.dumps({k: v for k, v in vars(args).items() if k != "resume"})

    def checkpoint(step):
        ember.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "args": saved_args,
                    "history": json.dumps(history)}, ck)

    def evaluate():
        model.eval()
        with ember.no_grad():
            ls = [F.cross_entropy(model(x.to(device)).flatten(0, 1), y.to(device).flatten()).item()
                  for x, y in (batch(val_ids, args.batch_size, args.block_size, args.seed + 1, i)
                               for i in range(args.eval_batches))]
        model.train()
        return float(np.mean(ls))

    eval_every = args.eval_every or max(1, total // 10)
    bar = progress(total - start, not args.no_progress and rank == 0)
    t0, tokens = time.perf_counter(), 0
    for step in range(start, total):
        set_lr(opt, args.lr * lr_at(step, total, warmup))
        x, y = batch(train_ids, args.batch_size, args.block_size, args.seed, step)     # the global batch
        loss = step_fn(shard(x, rank, world).to(device), shard(y, rank, world).to(device))
        tokens += x.numel()
        lv = mean_over_ranks(loss, world)
        if rank == 0:
            log_step(bar, history, step, lv, tokens / (time.perf_counter() - t0), "tok")
        if (step + 1) % eval_every == 0 or step == total - 1:
            if rank == 0:
                vl = evaluate()
                history["eval_step"].append(step + 1)
                history["eval_loss"].append(vl)
                s = generate(model, tok, args.sample, args.sample_len, device, args.temperature, args.top_k, step)
                history["samples"].append(s)
                (bar.write if bar is not None else print)(f"eval @ {step + 1}: val loss {vl:.4f}\n{s}\n")
                checkpoint(step + 1)       # atomic: an interrupted run resumes from its last evaluation
            wait_for_rank0(world)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    end = max(start, total)
    if rank != 0:
        teardown(world)         # waits for rank 0's sample and files
        return None
    if end == start:            # nothing trained (--steps at or below the resumed step): sample now
        checkpoint(end)
        sample = generate(model, tok, args.sample, args.sample_len, device, args.temperature, args.top_k, end)
    else:                       # the last step evaluated and sampled
        sample = history["samples"][-1]
    result = {"steps": end, "final_loss": history["loss"][-1] if history["loss"] else None,
              "val_loss": history["eval_loss"][-1] if history["eval_loss"] else None, "seconds": elapsed,
              "tokens_per_s": tokens / elapsed if elapsed > 0 and tokens else None, "sample": sample,
              "device": device, "parameters": n_params, "tokenizer": tok_path, "losses": history["loss"]}
    write_history(args.out, history, result)
    plotted = _plot(history, os.path.join(args.out, "loss.png"))
    print(f"done: {end} steps in {elapsed:.1f}s; checkpoint {ck}" + (f", curve {args.out}/loss.png" if plotted else "")
          + f"\n{sample}")
    teardown(world)
    return result


def _plot(history, path) -> bool:
    def draw(ax):
        ax.plot(history["step"], history["loss"], lw=1, label="train loss")
        if history["eval_step"]:
            ax.plot(history["eval_step"], history["eval_loss"], "o-", label="val loss")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy")
        ax.set_title("ember: GPT on Tiny Shakespeare")
        ax.legend()
    return plot(path, draw)


if __name__ == "__main__":
    main()
