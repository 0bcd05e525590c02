"""CPU kernels for linear algebra, on np.matmul / np.einsum / np.tensordot.

Operands go to NumPy as their strided views (np.matmul hands transposed layouts to BLAS
without a copy); only float16/bfloat16 are widened to float32 (PyTorch's opmath) and the
result is cast back once. The argument checks are the ops' metas (`ops/linalg.py`), which the
dispatcher runs before these kernels.
"""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import numel
from ...ops import linalg as rules
from ._common import F32, arr, compute_np, impl, operand, wrap


def _np_of(t: Tensor):
    """The operand as NumPy in its compute dtype (a zero-copy view unless float16/bfloat16). Written out
    rather than `operand(t, compute_np(t._dtype))`: it runs twice per matrix product."""
    a = t._np
    if a is None:
        a = t._array
    dt = t._dtype
    return a.astype(F32) if dt is D.float16 or dt is D.bfloat16 else a


# ---- matmul and friends --------------------------------------------------------------------

@impl("matmul")
@impl("mm")
@impl("bmm")
@impl("mv")
def _product(self, other):
    """np.matmul of the operands: NumPy's broadcasting and 1-D rules are torch's."""
    return wrap(np.matmul(_np_of(self), _np_of(other)), self._dtype)


@impl("dot")
@impl("vdot")
def _dot(self, other):
    return wrap(np.dot(_np_of(self), _np_of(other)), self._dtype)


@impl("outer")
def _outer(self, vec2):
    dt = D.promote_types(self._dtype, vec2._dtype)   # a broadcast multiply's dtype, as the meta says
    cnp = compute_np(dt)
    return wrap(np.multiply.outer(operand(self, cnp), operand(vec2, cnp)), dt)


# ---- beta * self + alpha * product -------------------------------------------------------------

def _add_product(name, a, b):
    """The product of addmm/addmv/baddbmm (a @ b) or addbmm (sum_i a[i] @ b[i]) as a fresh array."""
    if name == "addbmm":
        # sum_b batch1[b] @ batch2[b] is one matmul over the concatenated inner dimension (b*m).
        nb, n, m = a._shape
        return np.matmul(_np_of(a).transpose(1, 0, 2).reshape(n, nb * m), _np_of(b).reshape(nb * m, b._shape[2]))
    return np.matmul(_np_of(a), _np_of(b))


def _scaled_add(self, prod, beta, alpha):
    """beta * self + alpha * prod into prod (self broadcasts to prod's shape: the meta checked it).
    beta == 0 ignores self, as PyTorch does (NaN/inf in self do not propagate)."""
    cnp = prod.dtype
    if alpha != 1:
        np.multiply(prod, operand(alpha, cnp), out=prod)
    if beta != 0:
        s = _np_of(self)
        np.add(prod, s if beta == 1 else s * operand(beta, cnp), out=prod)
    return prod


def _register_add(name):
    @impl(name)
    def out_of_place(self, a, b, beta=1, alpha=1):
        return wrap(_scaled_add(self, _add_product(name, a, b), beta, alpha), self._dtype)

    @impl(name + "_")
    def in_place(self, a, b, beta=1, alpha=1):
        np.copyto(arr(self), _scaled_add(self, _add_product(name, a, b), beta, alpha), casting="unsafe")
        return self


for _name in ("addmm", "addmv", "addbmm", "baddbmm"):
    _register_add(_name)


# ---- linear ----------------------------------------------------------------------------------

@impl("linear")
def _linear(input, weight, bias=None):
    w = _np_of(weight)
    x = _np_of(input)
    if x.ndim > 2 and w.ndim == 2:
        # one GEMM over every leading row (NumPy's matmul of a 3-D array by a matrix loops over the batch: one
        # small GEMM per entry, at half the speed at a transformer's sizes); reshape copies only if it must
        lead = x.shape[:-1]
        r = np.matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(lead + (w.shape[0],))
    else:
        r = np.matmul(x, w.T if w.ndim == 2 else w)
    if bias is not None:
        b = _np_of(bias)
        if type(r) is np.ndarray:
            np.add(r, b, out=r)  # `out` fixes the shape: the bias only expands
        else:
            r = np.asarray(r) + b
    return wrap(r, input._dtype)


@impl("linear_backward")
def _linear_backward(self, grad_output, weight, need_input, need_weight, need_bias):
    (n, k), rows = weight._shape, numel(self._shape[:-1])
    dt = self._dtype
    g = _np_of(grad_output).reshape(rows, n)
    gi = wrap(np.matmul(g, _np_of(weight)).reshape(self._shape), dt) if need_input else None
    gw = wrap(np.matmul(g.T, _np_of(self).reshape(rows, k)), dt) if need_weight else None
    gb = wrap(np.add.reduce(g, axis=0), dt) if need_bias else None
    return gi, gw, gb


# ---- einsum and tensordot ------------------------------------------------------------------------

@impl("einsum")
def _einsum(equation, tensors):
    specs, out_spec, dt, _ = rules.einsum_specs(equation, tensors)
    cnp = compute_np(dt)
    arrays = [operand(t, cnp) for t in tensors]
    big = len(arrays) > 1 and sum(a.size for a in arrays) > 4096
    return wrap(np.einsum(",".join(specs) + "->" + out_spec, *arrays, optimize=big), dt)


@impl("tensordot")
def _tensordot(a, b, dims=2):
    da, db = rules.tensordot_dims(a, b, dims)
    x, y = _np_of(a), _np_of(b)
    for i, j in zip(da, db):
        if a._shape[i] != b._shape[j]:  # a size-1 contracted dim broadcasts: sum the other side over it
            if a._shape[i] == 1:
                y = y.sum(axis=j, keepdims=True, dtype=y.dtype)
            else:
                x = x.sum(axis=i, keepdims=True, dtype=x.dtype)
    return wrap(np.tensordot(x, y, axes=(da, db)), a._dtype)
