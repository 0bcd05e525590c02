"""Compiling Triton kernels ahead of launch (`triton.compile`, no torch), cached in memory per
(kernel, signature, constants, device capability), with Triton's on-disk cache behind it.

`run(fn, grid, args, constexprs, device)` either compiles (once) and launches through a cached
launch plan on the current stream (`make_plan`: compiled here, the plan built by launch.py,
which never compiles), or, under `TRITON_INTERPRET=1` with CPU tensors (the CI tests), runs the
same kernel in Triton's interpreter on zero-copy torch views of ember's buffers.

A kernel argument is a (name, value, Triton type) tuple; `pointer_arg` makes a tensor's. These
helpers (and `next_power_of_2`, for block sizes) live here, the layer that maps ember dtypes to
Triton types: launch.py below only packs C values, and every op module already imports this one.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import time
from enum import IntEnum

import numpy as np

from ..._tensor import Tensor
from ...core.dtype import ALL_DTYPES
from .device import get_device_capability
from .launch import Plan, plan_for
from .opcodes import FINGERPRINT

__all__ = ["run", "compile_kernel", "make_plan", "stats", "SIG", "LazyKernels", "pointer_arg", "pointer_type",
           "next_power_of_2"]

# ember dtype name -> Triton pointer element type
SIG = {"float32": "fp32", "float64": "fp64", "float16": "fp16", "bfloat16": "bf16", "int64": "i64",
       "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "i1"}
_POINTER = {d: "*" + SIG[d.name] for d in ALL_DTYPES}


def pointer_type(dtype) -> str:
    """The Triton type of a pointer to `dtype` elements, as in a kernel's signature ("*fp32")."""
    return _POINTER[dtype]


def pointer_arg(name: str, t: Tensor) -> tuple:
    """The kernel argument `(name, t, "*<t's element type>")` that `run` takes for tensor `t`."""
    return (name, t, _POINTER[t._dtype])


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1): Triton's block sizes must be powers of two."""
    return 1 << max(0, n - 1).bit_length()


class LazyKernels:
    """`K = LazyKernels("loss")` at a backend module's top; `K.nll_fwd_kernel` imports
    `kernels/loss.py` (and so Triton) on first use only, then reads its attributes directly."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        mod = importlib.import_module(f"{__package__}.kernels.{self._name}")
        self.__dict__.update(vars(mod))
        return getattr(mod, attr)


_cache = {}
stats = {"compiled": 0, "compile_seconds": 0.0, "variants": []}


def _capability(index):
    major, minor = get_device_capability(index)
    return major * 10 + minor


_Source = None


def _source_type():
    """Triton's ASTSource, its cache key salted with `opcodes.FINGERPRINT`: a kernel names its op codes
    (`opcodes.Unary.EXP`), so its source, which Triton's on-disk cache keys on, does not change when a
    code is renumbered; the salt does."""
    global _Source
    if _Source is None:
        from triton.compiler import ASTSource

        class _Source(ASTSource):
            def hash(self):
                return hashlib.sha256((super().hash() + FINGERPRINT).encode()).hexdigest()
    return _Source


def compile_kernel(fn, signature: dict, constexprs: dict, index: int, num_warps: int = 4, num_stages=None,
                   aligned: tuple = ()):
    """num_stages: software-pipelining depth of the kernel's loops (None: Triton's default). aligned: names of
    the pointer and integer parameters whose values are multiples of 16 (bytes for pointers), compiled in as
    Triton's own launcher does (`tt.divisibility`): loads and stores through them can then be vectorized."""
    key = (fn, tuple(signature.items()), tuple(sorted(constexprs.items())), index, num_warps, num_stages, aligned)
    c = _cache.get(key)
    if c is None:
        import triton
        from triton.backends.compiler import GPUTarget
        t0 = time.perf_counter()
        consts = {k: int(v) if isinstance(v, IntEnum) else v for k, v in constexprs.items()}   # codes as ints
        attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in aligned}
        c = triton.compile(_source_type()(fn=fn, signature=signature, constexprs=consts, attrs=attrs),
                           target=GPUTarget("cuda", _capability(index), 32), options={"num_warps": num_warps,
                                    **({} if num_stages is None else {"num_stages": num_stages})})
        dt = time.perf_counter() - t0
        stats["compiled"] += 1
        stats["compile_seconds"] += dt
        stats["variants"].append((fn.__name__, dict(constexprs), round(dt, 3)))
        _cache[key] = c
    return c


def make_plan(fn, signature: dict, constexprs: dict, index: int, num_warps: int = 4, num_stages=None,
              aligned: tuple = ()) -> Plan:
    """Compiles `fn` for (signature, constexprs) on device `index` and builds its launch plan.
    signature: {param name: Triton type} in parameter order; aligned: see `compile_kernel`."""
    return plan_for(compile_kernel(fn, signature, constexprs, index, num_warps, num_stages, aligned),
                    signature.values(), index)


def _interpreting(args) -> bool:
    if os.environ.get("TRITON_INTERPRET") != "1":
        return False
    return any(isinstance(v, Tensor) and v._storage.device.type == "cpu" for _, v, _ in args)


def _torch_view(t):
    """A torch CPU tensor over an ember CPU tensor's storage from its offset on (zero copy)."""
    import torch    # the interpreter's tensors (tests only: ember itself never imports torch)
    raw = t._storage.data.reshape(-1).view(np.uint8)
    if t._dtype.name == "bfloat16":
        return torch.from_numpy(raw.view(np.int16)[t._offset:]).view(torch.bfloat16)
    return torch.from_numpy(raw.view(t._dtype.np)[t._offset:])


_plans = {}
# divisibility-by-16 specialization of `run`'s launches (EMBER_TRITON_ALIGN=0 turns it off, for A/B timings)
ALIGN = os.environ.get("EMBER_TRITON_ALIGN", "1") != "0"
# integer arguments that change from call to call (the Philox draw's seed, counter and capture flag,
# `random._philox`): never specialized, or a CUDA-graph capture would meet variants its warm-up never compiled
_PER_CALL = frozenset(("seed", "offset", "graph"))
_eligible = {}      # (kernel, argument types) -> the positions that may be specialized (computed once)


def run(fn, grid, args, constexprs: dict, index: int = 0, num_warps: int = 4, num_stages=None) -> None:
    """args: a list of (name, value, Triton type) in the kernel's parameter order; tensors for '*'
    types. Compiled variants launch through a cached `launch.Plan` (only the values change)."""
    vals = [v.data_ptr() if ty[0] == "*" else v for _, v, ty in args]
    types = tuple([a[2] for a in args])
    div = ()
    if ALIGN:   # the pointers (and integers) that are multiples of 16: a variant per pattern, as Triton's launcher
        elig = _eligible.get((fn, types))
        if elig is None:
            elig = _eligible[(fn, types)] = tuple(k for k, (name, _, ty) in enumerate(args)
                                                  if ty[0] in "*iu" and name not in _PER_CALL)
        div = tuple([k for k in elig if not vals[k] & 15])
    key = (fn, index, num_warps, num_stages, tuple(constexprs.items()), types, div)
    plan = _plans.get(key)
    if plan is None:
        if _interpreting(args):
            kw = {name: (_torch_view(v) if ty.startswith("*") else v) for name, v, ty in args}
            if "INTERP" in constexprs:      # kernels whose runtime-bound loops are `while` loops there
                constexprs = dict(constexprs, INTERP=1)
            fn[grid](**kw, **constexprs)
            return
        plan = _plans[key] = make_plan(fn, {name: ty for name, _, ty in args}, constexprs, index, num_warps,
                                       num_stages, tuple(args[k][0] for k in div))
    for c, x in zip(plan.vals, vals):
        c.value = x
    plan(*grid)
