"""A Vision Transformer on CIFAR-10, from `cifar10-jpeg.tar.gz` (an image-folder layout of JPEGs).

    python -m ember.examples.vit [--data PATH] [--epochs N] [--device cpu|cuda] [--confusion] ...

The data is `cifar10-jpeg.tar.gz` (or the extracted `cifar10-jpeg/` folder), found through `--data` (the
file or its folder) or the `EMBER_DATA` folder; nothing is downloaded. The JPEGs are decoded once into a
uint8 cache, `cifar10-<size>-<mtime>.npz` in `--cache` (default `$EMBER_CACHE`, else ~/.cache/ember); delete
that file to decode again. Random crops (4 pixels of padding) and horizontal flips run on the device as
tensor ops on each batch, then the dataset's mean and std normalise it.

The model: a 4x4 patch embedding (a strided Conv2d), 16 learned CLS tokens, pre-norm Transformer blocks
(fused qkv Linear, `scaled_dot_product_attention`), and a head on the mean of the CLS tokens. AdamW with
warm-up and cosine decay, label smoothing 0.1. Each epoch reports the test accuracy and writes an atomic
checkpoint (`--resume DIR` continues from it); at the end a PNG of the train loss and test accuracy, and with
`--confusion` a confusion matrix. On a CPU the default model and data are smaller, so that a run takes minutes.

Started by a launcher as several ranks (on the CPU: `mpiexec -n N python -m ember.examples.vit ...`), it
trains data-parallel: every rank builds the same model (DistributedDataParallel also copies rank 0's weights)
and trains on its own rows of each step's `--batch-size` images (a multiple of N). Each rank augments the whole
global batch with the shared generator and keeps its rows, so the crops and flips are a single process's; every
slice holds as many images, so DDP's average of the ranks' mean losses' gradients is the whole batch's: each
step is the single-process step, up to float rounding (dropout aside: each rank draws its own masks). Rank 0
decodes the images first (the others then read its cache), and alone evaluates, prints and writes the checkpoint
(of the unwrapped model: the keys of a single-process run, so --resume works either way); the others wait at a
barrier. On CUDA, start the ranks with `python -m ember.distributed.run --nproc-per-node N -m ember.examples.vit
...`: each trains on its own GPU (cuda:LOCAL_RANK), through the 'nccl' backend.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import time

import numpy as np

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.examples._common import (RANK_SEED, Block, add_model_options, add_run_options, amp, check_options,
                                    data_parallel, default_device, find_data, log_step, lr_at, make_step,
                                    mean_over_ranks, parser, plot, progress, restore, resume, say, set_lr,
                                    setup_distributed, shard, size_defaults, teardown, use_cuda_graph, wait_for_rank0,
                                    write_history)

ARCHIVE = "cifar10-jpeg.tar.gz"


class ViT(nn.Module):
    def __init__(self, num_classes: int = 10, image: int = 32, patch: int = 4, d_model: int = 256, nhead: int = 8,
                 num_layers: int = 6, cls_tokens: int = 16, dropout: float = 0.1):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"ViT: d_model {d_model} must be a multiple of nhead {nhead}")
        n = (image // patch) ** 2
        self.patch = nn.Conv2d(3, d_model, patch, stride=patch)
        self.cls = nn.Parameter(ember.zeros(1, cls_tokens, d_model))
        self.pos = nn.Parameter(ember.randn(1, cls_tokens + n, d_model) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(d_model, nhead, dropout, inner_dropout=True) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        self.k = cls_tokens

    def forward(self, x):
        p = self.patch(x).flatten(2).transpose(1, 2)                      # (B, patches, d)
        h = ember.cat([self.cls.expand(x.shape[0], -1, -1), p], dim=1) + self.pos
        h = self.drop(h)
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h[:, :self.k]).mean(1))


# ---- data ------------------------------------------------------------------------------------------

def find_archive(data) -> str:
    """The path of cifar10-jpeg.tar.gz (or of the extracted cifar10-jpeg folder); a clear error else."""
    def paths(base):
        if base.endswith(".tar.gz") or os.path.basename(os.path.normpath(base)) == "cifar10-jpeg":
            return [base]
        return [os.path.join(base, ARCHIVE), os.path.join(base, "cifar10-jpeg")]
    return find_data("vit", data, paths, os.path.exists, "CIFAR-10",
                     f"Pass --data PATH/TO/{ARCHIVE} (or its folder, or the extracted cifar10-jpeg/ folder), or set "
                     f"EMBER_DATA to the folder that holds it; the archive holds "
                     f"cifar10-jpeg/{{train,test}}/<class>/<n>.jpg")


def _members(path):
    """(split, class, jpeg bytes) of every image of the archive or folder."""
    if os.path.isdir(path):
        for split in ("train", "test"):
            for cls in sorted(os.listdir(os.path.join(path, split))):
                d = os.path.join(path, split, cls)
                for f in sorted(os.listdir(d)):
                    with open(os.path.join(d, f), "rb") as fh:
                        yield split, cls, fh.read()
        return
    with tarfile.open(path, "r:gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) >= 4 and parts[-1].endswith(".jpg"):
                yield parts[-3], parts[-2], tar.extractfile(m).read()


def load(path: str, cache_dir: str) -> dict:
    """{"train": (x uint8 (N, 32, 32, 3), y int64), "test": ..., "classes": [...]}, decoded once and cached."""
    from PIL import Image
    st = os.stat(path)
    cache = os.path.join(cache_dir, f"cifar10-{st.st_size}-{int(st.st_mtime)}.npz")
    if os.path.isfile(cache):
        z = np.load(cache)
        classes = [str(c) for c in z["classes"]]
        return {"train": (z["xtr"], z["ytr"]), "test": (z["xte"], z["yte"]), "classes": classes}
    imgs = {"train": [], "test": []}
    labels = {"train": [], "test": []}
    names = {}
    for split, cls, raw in _members(path):
        imgs[split].append(np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.uint8))
        labels[split].append(names.setdefault(cls, len(names)))
    classes = sorted(names)                       # labels by class name, whatever order the archive lists them in
    remap = np.array([classes.index(c) for c in sorted(names, key=names.get)], dtype=np.int64)
    out = {s: (np.stack(imgs[s]), remap[np.array(labels[s], dtype=np.int64)]) for s in ("train", "test")}
    os.makedirs(cache_dir, exist_ok=True)
    tmp = cache + f".tmp{os.getpid()}.npz"
    np.savez(tmp, xtr=out["train"][0], ytr=out["train"][1], xte=out["test"][0], yte=out["test"][1],
             classes=np.array(classes))
    os.replace(tmp, cache)
    print(f"decoded {len(out['train'][1]) + len(out['test'][1]):,} images once; cache {cache} (delete it to decode "
          f"again)")
    return {**out, "classes": classes}


def augment(x, gen):
    """Random 32x32 crops of the 4-pixel zero-padded batch and random horizontal flips, as tensor ops on x's
    device. x: (B, 32, 32, 3) float."""
    b, dev = x.shape[0], x.device
    xp = F.pad(x, (0, 0, 4, 4, 4, 4))
    oy = ember.randint(0, 9, (b,), generator=gen, device=dev)
    ox = ember.randint(0, 9, (b,), generator=gen, device=dev)
    r = ember.arange(32, device=dev)
    flip = ember.rand(b, generator=gen, device=dev) < 0.5
    c = ember.where(flip[:, None], 31 - r[None, :], r[None, :])
    rows = (oy[:, None] + r)[:, :, None]
    cols = (ox[:, None] + c)[:, None, :]
    return xp[ember.arange(b, device=dev)[:, None, None], rows, cols]


def prepare(x_u8, mean, std, device, gen=None):
    """uint8 HWC images -> (augmented when `gen` is given) normalised float NCHW on the device."""
    x = ember.tensor(x_u8, device=device).float() / 255.0
    if gen is not None:
        x = augment(x, gen)
    return ((x - mean) / std).permute(0, 3, 1, 2)


# ---- the job ---------------------------------------------------------------------------------------

def parse(argv):
    p = parser("vit", __doc__)
    p.add_argument("--data", default=None, help=f"{ARCHIVE}, its folder, or the extracted cifar10-jpeg folder "
                                                "(default: the EMBER_DATA folder)")
    p.add_argument("--cache", default=None, help="folder of the decoded-image cache (default $EMBER_CACHE, else "
                                                 "~/.cache/ember)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 30 on CUDA, 2 on the CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="images a step (default 256; 64 on the CPU)")
    p.add_argument("--limit", type=int, default=None, help="train on a random N of the training images (default: "
                                                            "all on CUDA, 5000 on the CPU)")
    model_rows = add_model_options(p, 64, 2, 0.1)
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
    p.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay on matrices (default 0.05)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing (default 0.1)")
    p.add_argument("--confusion", action="store_true", help="also write a confusion-matrix PNG")
    add_run_options(p, "vit")
    args = p.parse_args(argv)
    size_defaults(args, (("epochs", 30, 2), ("batch_size", 256, 64), ("limit", 0, 5000)) + model_rows)
    checks = [("epochs", args.epochs >= 0, ">= 0"), ("batch-size", args.batch_size >= 1, "at least 1"),
              ("d-model", args.d_model >= 1, "at least 1"),
              ("heads", args.heads >= 1 and args.d_model % args.heads == 0, f"a divisor of --d-model {args.d_model}"),
              ("layers", args.layers >= 1, "at least 1"), ("dropout", 0.0 <= args.dropout < 1.0, "in [0, 1)"),
              ("lr", args.lr > 0, "> 0"), ("limit", args.limit >= 0, ">= 0 (0: all)"),
              ("label-smoothing", 0.0 <= args.label_smoothing < 1.0, "in [0, 1)")]
    check_options(p, args, checks)
    return args


def evaluate(model, x, y, mean, std, device, batch_size=500, classes=10):
    """(accuracy, confusion matrix (true, predicted)) on the test images."""
    model.eval()
    conf = np.zeros((classes, classes), dtype=np.int64)
    with ember.no_grad():
        for s in range(0, len(y), batch_size):
            pred = model(prepare(x[s:s + batch_size], mean, std, device)).argmax(-1).cpu().numpy()
            np.add.at(conf, (y[s:s + batch_size], pred), 1)
    model.train()
    return float(np.trace(conf) / max(1, conf.sum())), conf


def main(argv=None) -> dict | None:
    """Trains, evaluates and writes the outputs; returns the result (None on ranks other than 0)."""
    args = parse(argv)
    state = None
    if args.resume:
        args, state = resume("vit", args, argv, ("epochs", "out", "data", "cache", "device", "no_progress",
                                                 "confusion"))
    rank, world, device = setup_distributed("vit", args.device or default_device(), args.batch_size)
    log = say(rank)
    ember.manual_seed(args.seed)
    cache = args.cache or os.environ.get("EMBER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ember")
    archive = find_archive(args.data)
    if rank == 0:
        data = load(archive, cache)
    wait_for_rank0(world)       # the other ranks read the cache rank 0 wrote, rather than decode it again
    if rank != 0:
        data = load(archive, cache)
    xtr, ytr = data["train"]
    xte, yte = data["test"]
    if args.limit:          # a seeded random subset: the archive lists the images class by class
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(ytr))[:args.limit])
        xtr, ytr = xtr[keep], ytr[keep]
    mean = ember.tensor((xtr.reshape(-1, 3).mean(0) / 255.0).astype(np.float32), device=device)
    std = ember.tensor((xtr.reshape(-1, 3).std(0) / 255.0).astype(np.float32), device=device)
    model = ViT(len(data["classes"]), 32, 4, args.d_model, args.heads, args.layers, 16, args.dropout).to(device)
    decay = [q for q in model.parameters() if q.ndim >= 2 and q is not model.cls and q is not model.pos]
    rest = [q for q in model.parameters() if not any(q is d for d in decay)]
    graphed = use_cuda_graph(args, device)
    # graphed: the learning rate and the step count live on the GPU (set_lr fills lr in place)
    opt = ember.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=ember.tensor(args.lr, device=device) if graphed else args.lr, capturable=graphed)
    steps_per_epoch = max(1, len(ytr) // args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = max(1, total // 20)
    history = {"step": [], "loss": [], "epoch": [], "test_acc": []}
    start_epoch = 0
    if state is not None:
        history = restore(state, model, opt)
        start_epoch = int(state["epoch"])
    net = data_parallel(model, world)       # trains; `model` evaluates and is saved
    dev_type, amp_dtype, scaler = amp(args, device)
    n_params = sum(q.numel() for q in model.parameters())
    log(f"ember {ember.__version__}: ViT, {n_params:,} parameters, {len(ytr):,} training and {len(yte):,} test "
        f"images, device {device}, epochs {start_epoch}..{args.epochs}"
        + (", training step as a CUDA graph" if graphed else "")
        + (f", data-parallel over {world} ranks" if world > 1 else ""))
    step_fn = make_step(model, lambda x, y: F.cross_entropy(net(x), y, label_smoothing=args.label_smoothing),
                        opt, scaler, dev_type, amp_dtype, graphed)
    ck = os.path.join(args.out, "checkpoint.safetensors")
    os.makedirs(args.out, exist_ok=True)
    saved_args = json.dumps({k: v for k, v in vars(args).items() if k != "resume"})
    bar = progress((args.epochs - start_epoch) * steps_per_epoch, not args.no_progress and rank == 0)
    t0, seen, acc, conf = time.perf_counter(), 0, None, None
    for epoch in range(start_epoch, args.epochs):
        # the epoch's order, augmentation and dropout depend on (seed, epoch) only, so a resumed run repeats them
        order = np.random.default_rng([args.seed, epoch]).permutation(len(ytr))
        gen = ember.Generator(device=device).manual_seed(args.seed * 100003 + epoch)
        ember.manual_seed(args.seed * 100003 + epoch + 50021 + rank * RANK_SEED)    # dropout: a stream per rank
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            set_lr(opt, args.lr * lr_at(step, total, warmup))
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            x = prepare(xtr[idx], mean, std, device, gen)           # the global batch, augmented as one process does
            loss = step_fn(shard(x, rank, world), shard(ember.tensor(ytr[idx], device=device), rank, world))
            seen += len(idx)
            lv = mean_over_ranks(loss, world)
            if rank == 0:
                log_step(bar, history, step, lv, seen / (time.perf_counter() - t0), "img")
        if rank == 0:
            acc, conf = evaluate(model, xte, yte, mean, std, device, classes=len(data["classes"]))
            history["epoch"].append(epoch + 1)
            history["test_acc"].append(acc)
            (bar.write if bar is not None else print)(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
            ember.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                        "args": saved_args, "history": json.dumps(history)}, ck)
        wait_for_rank0(world)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    if rank != 0:
        teardown(world)         # waits for rank 0's files
        return None
    if acc is None:
        acc, conf = evaluate(model, xte, yte, mean, std, device, classes=len(data["classes"]))
    result = {"epochs": args.epochs, "test_acc": acc, "seconds": elapsed,
              "images_per_s": seen / elapsed if elapsed > 0 and seen else None, "losses": history["loss"],
              "parameters": n_params, "device": device}
    write_history(args.out, history, result)
    plotted = _plot(history, os.path.join(args.out, "curves.png"))
    if args.confusion:
        _plot_confusion(conf, data["classes"], os.path.join(args.out, "confusion.png"))
    print(f"done: test accuracy {acc:.4f} after {args.epochs} epochs, {elapsed:.1f}s; checkpoint {ck}"
          + (f", curves {args.out}/curves.png" if plotted else ""))
    teardown(world)
    return result


def _plot(history, path) -> bool:
    def draw(ax):
        ax.plot(history["step"], history["loss"], lw=1, label="train loss")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy")
        if history["epoch"]:
            ax2 = ax.twinx()
            spe = max(1, len(history["step"]) // max(1, len(history["epoch"])))
            ax2.plot([e * spe for e in history["epoch"]], history["test_acc"], "o-", color="tab:green",
                     label="test accuracy")
            ax2.set_ylabel("test accuracy")
            ax2.set_ylim(0, 1)
        ax.set_title("ember: ViT on CIFAR-10")
    return plot(path, draw)


def _plot_confusion(conf, classes, path) -> bool:
    def draw(ax):
        ax.imshow(conf, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7)
    return plot(path, draw, size=(6, 5))


if __name__ == "__main__":
    main()
