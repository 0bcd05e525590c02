"""Shared test helpers: moving data between ember and the PyTorch reference, and comparing."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

import ember

DTYPES = {
    "bool": (ember.bool, torch.bool), "uint8": (ember.uint8, torch.uint8), "int8": (ember.int8, torch.int8),
    "int16": (ember.int16, torch.int16), "int32": (ember.int32, torch.int32), "int64": (ember.int64, torch.int64),
    "float16": (ember.float16, torch.float16), "bfloat16": (ember.bfloat16, torch.bfloat16),
    "float32": (ember.float32, torch.float32), "float64": (ember.float64, torch.float64),
}
E2T = {e: t for e, t in DTYPES.values()}
T2E = {t: e for e, t in DTYPES.values()}
FLOATS = ("float16", "bfloat16", "float32", "float64")
INTS = ("uint8", "int8", "int16", "int32", "int64")


def to_torch(t: ember.Tensor) -> torch.Tensor:
    """A torch copy of an ember CPU tensor (same dtype, shape and strides)."""
    a = np.asarray(t.numpy(force=True) if t.requires_grad else t.numpy(), order="C")
    if t.dtype is ember.bfloat16:
        out = torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    else:
        out = torch.from_numpy(a.copy())
    return out


def from_torch(x: torch.Tensor) -> ember.Tensor:
    x = x.detach().cpu().contiguous()
    if x.dtype is torch.bfloat16:
        import ml_dtypes
        return ember.from_numpy(x.view(torch.int16).numpy().copy().view(ml_dtypes.bfloat16))
    return ember.from_numpy(x.numpy().copy())


def make_pair(shape, dtype="float32", low=-3.0, high=3.0, seed=0, layout="contiguous"):
    """The same random data as an ember tensor and a torch tensor.

    layout: 'contiguous', 'transposed' (last two dims swapped in memory), 'sliced' (every other
    element along the last dim of a larger buffer) or 'expanded' (a broadcast view of size-1 dim 0).
    """
    rng = np.random.default_rng(seed)
    e_dt, t_dt = DTYPES[dtype]
    shape = tuple(shape)
    if layout == "transposed" and len(shape) >= 2:
        base_shape = shape[:-2] + (shape[-1], shape[-2])
    elif layout == "sliced" and len(shape) >= 1:
        base_shape = shape[:-1] + (shape[-1] * 2,)
    elif layout == "expanded" and len(shape) >= 1:
        base_shape = (1,) + shape[1:]
    else:
        base_shape = shape
    if dtype == "bool":
        a = rng.random(base_shape) > 0.5
    elif dtype in INTS:
        lo = 0 if dtype == "uint8" else int(low)
        a = rng.integers(lo, max(int(high), lo + 1) + 1, size=base_shape).astype(e_dt.np)
    else:
        a = rng.uniform(low, high, size=base_shape).astype(np.float64).astype(e_dt.np)
    e = ember.from_numpy(np.asarray(a, order="C"))
    t = to_torch(e)
    if layout == "transposed" and len(shape) >= 2:
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
    elif layout == "sliced" and len(shape) >= 1:
        e, t = e[..., ::2], t[..., ::2]
    elif layout == "expanded" and len(shape) >= 1:
        e, t = e.expand(*shape), t.expand(*shape)
    assert tuple(e.shape) == tuple(t.shape) == shape
    return e, t


LAYOUTS = ("contiguous", "transposed", "sliced", "expanded")


def default_tol(dtype):
    name = dtype.name if hasattr(dtype, "name") else str(dtype).replace("torch.", "")
    return {"float16": (1e-3, 1e-3), "bfloat16": (1.6e-2, 1e-2), "float32": (1.3e-6, 1e-5),
            "float64": (1e-7, 1e-7)}.get(name, (0, 0))


def assert_same(e, t, rtol=None, atol=None, check_dtype=True, equal_nan=True):
    """ember result `e` equals torch result `t`: same shape, same dtype, close values."""
    if isinstance(t, (tuple, list)):
        assert isinstance(e, (tuple, list)) and len(e) == len(t), f"{type(e)} vs {type(t)}"
        for x, y in zip(e, t):
            assert_same(x, y, rtol, atol, check_dtype, equal_nan)
        return
    if not isinstance(t, torch.Tensor):
        assert not isinstance(e, ember.Tensor), f"ember returned a Tensor, torch a {type(t)}"
        if isinstance(t, float):
            np.testing.assert_allclose(e, t, rtol=rtol or 1e-6, atol=atol or 0)
        else:
            assert e == t
        return
    assert isinstance(e, ember.Tensor), f"expected an ember.Tensor, got {type(e).__name__}"
    assert tuple(e.shape) == tuple(t.shape), f"shape {tuple(e.shape)} != torch {tuple(t.shape)}"
    if check_dtype:
        assert E2T[e.dtype] == t.dtype, f"dtype {e.dtype} != torch {t.dtype}"
    r0, a0 = default_tol(t.dtype)
    rtol = r0 if rtol is None else rtol
    atol = a0 if atol is None else atol
    ea = np.asarray(e.numpy(force=True) if e.requires_grad else e.numpy())
    ta = t.detach().float().numpy() if t.dtype in (torch.bfloat16, torch.float16) else t.detach().numpy()
    if ea.dtype.kind in "f" or ea.dtype.name == "bfloat16":
        ea = ea.astype(np.float64)
        ta = ta.astype(np.float64)
        np.testing.assert_allclose(ea, ta, rtol=rtol, atol=atol, equal_nan=equal_nan)
    else:
        np.testing.assert_array_equal(ea, ta)


@contextlib.contextmanager
def cuda_host_code_on_cpu(*names):
    """The entry points of ops `names` run (meta included) with their CUDA kernels on CPU tensors: the CUDA host
    code and, through Triton's interpreter, its kernels, on a machine without a GPU."""
    ops = ember.dispatch.OPS
    saved = {n: ops[n].kernels["cpu"] for n in names}
    for n in names:
        ops[n].register("cpu")(ops[n].kernels["cuda"])
    try:
        yield
    finally:
        for n, k in saved.items():
            ops[n].register("cpu")(k)


def load_benchmark(name: str):
    """The module benchmarks/<name>.py (its folder goes on sys.path: the scripts import _common from it)."""
    import importlib.util
    import os
    import sys
    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    spec = importlib.util.spec_from_file_location(name, os.path.join(bench, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def made_up_cifar(path, train: int = 12, test: int = 4):
    """Writes a cifar10-jpeg.tar.gz to `path` with `train` and `test` JPEGs a class: each class a colour, plus
    noise (learnable in a few steps). For the example tests where the real archive is absent (CI)."""
    import io
    import tarfile

    from PIL import Image
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", train), ("test", test)):
            for k, cls in enumerate(CIFAR_CLASSES):
                for i in range(n):
                    base = np.array([(k * 25) % 256, (k * 70) % 256, (255 - k * 25) % 256], dtype=np.float64)
                    img = np.clip(base + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format="JPEG", quality=95)
                    info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


def made_up_play(lines: int = 600) -> str:
    """A Shakespeare-shaped text of two speakers, for the GPT example tests where tinyshakespeare.txt is absent."""
    rng = np.random.default_rng(0)
    words = "thou art my lord and i shall speak thee fair good night sweet prince".split()
    return "\n".join(f"{rng.choice(['ROMEO', 'JULIET'])}:\n" + " ".join(rng.choice(words, 12)) + "."
                     for _ in range(lines))
