"""Conversions of a sample's arguments, shared by the four suites.

  torch_args(op, sample, device)  ember CPU args -> torch args on `device` (same shapes, strides, offsets)
  cuda_args(op, sample)           ember CPU args -> ember CUDA args (same layout)
  kernel_args(op, sample)         the positional list the generated entry point passes to the kernel and meta
  copy_sample(sample)             the sample with same-layout copies of its tensors (a second, independent run)
  to_host(x)                      a result (ember or torch, nested in tuples/lists) on the CPU

A tensor keeps its layout across every conversion: the whole storage it views is copied, then
viewed again with the same sizes, strides and storage offset, so a transposed, sliced or expanded
sample stays transposed, sliced or expanded on the other side.
"""
from __future__ import annotations

import inspect

import numpy as np
import torch
from helpers import E2T

import ember
from ember.core.device import CPU, canonical
from ember.core.shape import as_shape

__all__ = ["torch_args", "cuda_args", "kernel_args", "to_host", "is_factory", "mutated_positions", "copy_sample",
           "torch_tensor", "cuda_tensor", "cpu_copy", "schema_signature"]


# ---- binding a sample to the op's schema -------------------------------------------------------

_SIGNATURES: dict = {}


def schema_signature(op) -> inspect.Signature:
    """The generated entry point's signature, built from the schema as `registry._params` writes it
    (`op.fn` may be a Python wrapper with a looser signature, e.g. einsum's `*args`)."""
    sig = _SIGNATURES.get(op.name)
    if sig is None:
        P = inspect.Parameter
        params, star = [], False
        for a in op.schema.args:
            if a.variadic:
                params.append(P(a.name, P.VAR_POSITIONAL))
                star = True
                continue
            kind = P.KEYWORD_ONLY if (a.kwonly or star) else P.POSITIONAL_OR_KEYWORD
            params.append(P(a.name, kind, default=a.default if a.has_default else P.empty))
        sig = _SIGNATURES[op.name] = inspect.Signature(params)
    return sig


def _bind(op, args, kwargs):
    """The sample bound to the schema's signature, defaults filled."""
    try:
        bound = schema_signature(op).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{op.name}: the sample's arguments do not fit the schema {op.schema} ({exc}); write "
                        f"samples in the schema's form") from None
    bound.apply_defaults()
    return bound


def is_factory(op) -> bool:
    """An op with a `device` argument and no tensor argument: the entry point resolves `device`."""
    return not op.schema.tensor_args and any(a.name == "device" for a in op.schema.args)


def kernel_args(op, sample) -> list:
    """The positional arguments the entry point hands to the kernel (and the meta), as `_generate`
    builds them: every schema argument in schema order, defaults filled, `requires_grad` dropped,
    a variadic `int[]...` as a tuple of ints, a factory's `device` resolved to an ember device."""
    bound = _bind(op, sample.args, sample.kwargs)
    factory = is_factory(op)
    out = []
    for a in op.schema.args:
        if a.name == "requires_grad":
            continue
        v = bound.arguments[a.name]
        if a.variadic:
            v = as_shape(v, a.name)
        elif factory and a.name == "device":
            v = CPU if v is None else canonical(v)
        out.append(v)
    return out


def mutated_positions(op) -> list:
    """(index into `kernel_args`, name) of each argument the op writes (`Tensor(a!)`)."""
    names = [a.name for a in op.schema.args if a.name != "requires_grad"]
    return [(names.index(a.name), a.name) for a in op.schema.mutated]


# ---- ember -> torch ------------------------------------------------------------------------------

def _storage_bytes(t: ember.Tensor) -> np.ndarray:
    st = t.untyped_storage()
    return st.data.reshape(-1).view(np.uint8)[: st.nbytes]


def torch_tensor(t: ember.Tensor, device="cpu") -> torch.Tensor:
    """A torch copy of an ember CPU tensor with the same sizes, strides and storage offset."""
    dt = E2T[t.dtype]
    if t.numel() == 0:   # an empty view may point past its storage's end
        out = torch.empty_strided(tuple(t.shape), t.stride(), dtype=dt, device=device)
    else:
        raw = _storage_bytes(t)
        n = raw.size // t.element_size()
        base = torch.from_numpy(raw[: n * t.element_size()].copy()).view(dt).to(device)
        out = base.as_strided(tuple(t.shape), t.stride(), t.storage_offset())
    return out.detach().requires_grad_(t.requires_grad)


def _to_torch(x, device, memo):
    if isinstance(x, ember.Tensor):
        t = memo.get(id(x))
        if t is None:
            t = memo[id(x)] = torch_tensor(x, device)
        return t
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return type(x)(_to_torch(v, device, memo) for v in x)
    if isinstance(x, ember.dtype):
        return E2T[x]
    if isinstance(x, ember.device):
        return torch.device(str(x))
    if isinstance(x, ember.memory_format):
        return getattr(torch, x.name)
    if isinstance(x, ember.Generator):   # same seed; the streams differ anyway (OpInfo.values=False)
        return torch.Generator(device=device).manual_seed(x.initial_seed())
    return x


def torch_args(op, sample, device="cpu", memo=None):
    """(args, kwargs) for the torch reference, on `device` ('cpu' or 'cuda'). On CUDA a factory op's
    `device` becomes 'cuda'. `memo` (id of an ember tensor -> its torch copy) is filled: an ember tensor
    passed twice becomes one torch tensor, and a test finds the torch copy of a mutated argument."""
    memo = {} if memo is None else memo
    args, kwargs = sample.args, sample.kwargs
    if device != "cpu" and is_factory(op):
        args, kwargs = _with_device(op, args, kwargs, device)
    return _to_torch(tuple(args), device, memo), {k: _to_torch(v, device, memo) for k, v in kwargs.items()}


# ---- ember CPU -> ember CUDA -----------------------------------------------------------------------

def cuda_tensor(t: ember.Tensor) -> ember.Tensor:
    """An ember CUDA copy of an ember CPU tensor with the same sizes, strides and storage offset."""
    with ember.no_grad():
        if t.numel() == 0:
            out = ember.empty_strided(tuple(t.shape), t.stride(), dtype=t.dtype, device="cuda")
        else:
            n = t.untyped_storage().nbytes // t.element_size()
            base = ember.as_strided(t.detach(), (n,), (1,), 0).to("cuda")
            out = ember.as_strided(base, tuple(t.shape), t.stride(), t.storage_offset())
    return out.detach().requires_grad_(t.requires_grad) if t.requires_grad else out


def _to_cuda(x):
    if isinstance(x, ember.Tensor):
        return cuda_tensor(x)
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return type(x)(_to_cuda(v) for v in x)
    if isinstance(x, ember.Generator):
        return ember.Generator("cuda").manual_seed(x.initial_seed())
    return x


def _with_device(op, args, kwargs, device):
    bound = schema_signature(op).bind(*args, **kwargs)   # no defaults filled: torch gets the sample's own form
    bound.arguments["device"] = device
    return bound.args, bound.kwargs


def cuda_args(op, sample):
    """(args, kwargs) as ember CUDA values: tensors moved with their layout, generators made CUDA ones,
    a factory op's `device` set to 'cuda'."""
    args, kwargs = sample.args, sample.kwargs
    if is_factory(op):
        args, kwargs = _with_device(op, args, kwargs, "cuda")
    return _to_cuda(tuple(args)), {k: _to_cuda(v) for k, v in kwargs.items()}


# ---- copies on the CPU ----------------------------------------------------------------------------

def cpu_copy(t: ember.Tensor) -> ember.Tensor:
    """A copy of an ember CPU tensor with the same sizes, strides and storage offset (own storage)."""
    with ember.no_grad():
        if t.numel() == 0:
            out = ember.empty_strided(tuple(t.shape), t.stride(), dtype=t.dtype)
        else:
            n = t.untyped_storage().nbytes // t.element_size()
            base = ember.as_strided(t.detach(), (n,), (1,), 0).clone()
            out = ember.as_strided(base, tuple(t.shape), t.stride(), t.storage_offset())
    return out.detach().requires_grad_(t.requires_grad) if t.requires_grad else out


def copy_sample(sample):
    """The sample with every tensor replaced by a same-layout copy (tensors passed twice stay one)."""
    memo = {}

    def cp(x):
        if isinstance(x, ember.Tensor):
            if id(x) not in memo:
                memo[id(x)] = cpu_copy(x)
            return memo[id(x)]
        if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
            return type(x)(cp(v) for v in x)
        return x
    return type(sample)(**{**sample.__dict__, "args": cp(tuple(sample.args)),
                           "kwargs": {k: cp(v) for k, v in sample.kwargs.items()}})


# ---- results -------------------------------------------------------------------------------------

def to_host(x):
    """A result on the CPU: ember and torch tensors (nested in tuples/lists) moved, anything else as is."""
    if isinstance(x, (ember.Tensor, torch.Tensor)):
        return x.detach().cpu()
    if isinstance(x, (list, tuple)):
        return [to_host(v) for v in x]
    return x
