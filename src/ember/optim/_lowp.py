"""torch's CPU arithmetic on float16/bfloat16 tensors, for the single-tensor optimizer steps.

torch's CPU kernels compute each op on 16-bit floats in float32 and round its result to the tensor's
dtype once, as ember's do; they differ from ember's CPU ops (and among themselves) in how they take a
Python scalar and in where the vectorised float32 code fuses a multiply-add (torch 2.13, measured on
AVX-512; see tests/test_optim_bf16.py):
- `add`/`sub`'s alpha, and a scalar added, is rounded to the tensor's dtype first (the product
  alpha * other of two 16-bit floats is exact in float32, so the fused multiply-add changes nothing);
- `Tensor.mul_`/`div_` by a scalar and `lerp_`'s weight keep the scalar in float32, but
  `torch._foreach_mul_` (the foreach optimizers, CPU slow path) rounds it to the tensor's dtype;
- `lerp_` is fma(w, end - self, self) (fma(w - 1, end - self, end) for |w| >= 0.5), `addcmul_` is
  fma(value * t1, t2, self) and `addcdiv_` (value * t1) / t2 + self, each step in float32.
The float32 steps are replayed here with ember ops on float32 copies (an fma in float64: a product of
two float32 values is exact there) and the result is copied back (rounded to nearest even).
Not replayed: torch's scalar loop for the last numel % (2 x vector width) elements of a tensor (64 for
bfloat16 on AVX-512), which rounds alpha * other to the dtype before `add` adds it.
"""
from __future__ import annotations

from .._tensor import Tensor
from ..core.dtype import bfloat16, float16, float32
from ..ops.creation import tensor

_LOW = (float16, bfloat16)


def low_cpu(t) -> bool:
    """A float16/bfloat16 tensor on the CPU: its steps follow torch's CPU arithmetic (this module)."""
    return t._dtype in _LOW and t._storage.device.type == "cpu"


def rounded(x: float, dtype) -> float:
    """The Python number x as torch's CPU kernels take it into a tensor of `dtype`: float32, then dtype."""
    return tensor(float(x), dtype=float32).to(dtype).item()


def _f32(x: float) -> float:
    return tensor(float(x), dtype=float32).item()


def _fma(a, b, c):
    """a * b + c rounded once to float32 (a, b: float32 tensors or a float32-exact number; c a tensor)."""
    prod = a.double().mul_(b.double()) if isinstance(a, Tensor) else b.double().mul_(a)
    return prod.add_(c.double()).float()


def add(t, other, alpha):
    """t + alpha * other (a new tensor)."""
    return t.add(other, alpha=rounded(alpha, t._dtype))


def add_(t, other, alpha=1):
    return t.add_(other, alpha=rounded(alpha, t._dtype))


def add_scalar_(t, value):
    return t.add_(rounded(value, t._dtype))


def mul_(t, value, foreach=False):
    """t *= value: value in float32 (`Tensor.mul_`), or rounded to t's dtype (`torch._foreach_mul_`)."""
    if foreach:
        return t.mul_(rounded(value, t._dtype))
    return t.copy_(t.float().mul_(value))


def div_(t, value):
    return t.copy_(t.float().div_(value))


def lerp_(t, end, weight):
    s, e = t.float(), end.float()
    d = e.sub(s)
    w = _f32(weight)
    if abs(w) < 0.5:
        return t.copy_(_fma(w, d, s))
    return t.copy_(_fma(_f32(w - 1.0), d, e))


def addcmul_(t, t1, t2, value):
    return t.copy_(_fma(t1.float().mul_(value), t2.float(), t.float()))


def addcdiv_(t, t1, t2, value):
    return t.copy_(t1.float().mul_(value).div_(t2.float()).add_(t.float()))
