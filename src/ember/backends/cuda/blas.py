"""Matrix products on CUDA through cuBLAS (nvmath-python's low-level bindings).

Row-major C = A @ B is computed as the column-major product C^T = B^T A^T, so no operand is
copied: a row-major operand is passed as is, a transposed one (unit stride on its rows) with
the transpose flag. Operands with neither layout, and batch dims that don't share one stride,
are made contiguous first. float32 computes in float32 unless `allow_tf32` is set (off by
default, like PyTorch), float16/bfloat16 accumulate in float32.
"""
from __future__ import annotations

import ctypes

from ..._tensor import Tensor
from ...core import dtype as D
from ...dispatch import OPS

__all__ = ["mm", "bmm", "matmul_cuda", "allow_tf32"]

allow_tf32 = False  # ember.backends.cuda.matmul.allow_tf32, as in PyTorch

_OP_N, _OP_T = 0, 1
_DT = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 14}
_COMPUTE_32F, _COMPUTE_32F_TF32, _COMPUTE_64F = 68, 77, 70
_ALGO_DEFAULT = -1

_handles = {}
_alpha32, _beta32 = ctypes.c_float(1.0), ctypes.c_float(0.0)
_alpha64, _beta64 = ctypes.c_double(1.0), ctypes.c_double(0.0)


def _cublas():
    try:
        from nvmath.bindings import cublas
    except ImportError as e:
        raise RuntimeError(f"matrix products on CUDA need nvmath-python (pip install nvmath-python): {e}") from None
    return cublas


def _handle(index, stream):
    cb = _cublas()
    h = _handles.get(index)
    if h is None:
        from .driver import ensure_context
        ensure_context(index)
        h = _handles[index] = [cb.create(), None]
    s = int(stream.handle)
    if h[1] != s:
        cb.set_stream(h[0], s)
        h[1] = s
    return cb, h[0]


def _layout(t):
    """(transposed?, leading dim) of the last two dims, or None if neither row- nor column-major."""
    r, c = t._shape[-2], t._shape[-1]
    sr, sc = t._stride[-2], t._stride[-1]
    if sc == 1 or c == 1:
        ld = sr if r > 1 else max(c, 1)
        if ld >= max(c, 1):
            return False, ld
    if sr == 1 or r == 1:
        ld = sc if c > 1 else max(r, 1)
        if ld >= max(r, 1):
            return True, ld
    return None


def _prep(t):
    lay = _layout(t)
    if lay is None:
        t = t.contiguous()
        lay = _layout(t)
    return t, lay


def _scalars(dt, alpha=1.0, beta=0.0):
    if dt is D.float64:
        return ctypes.c_double(alpha), ctypes.c_double(beta), _COMPUTE_64F
    return ctypes.c_float(alpha), ctypes.c_float(beta), (_COMPUTE_32F_TF32 if allow_tf32 and dt is D.float32
                                                           else _COMPUTE_32F)


def _check(a, b, name):
    if a._dtype is not b._dtype:
        raise RuntimeError(f"{name}: expected both operands to have the same dtype, but got {a._dtype} and {b._dtype}")
    if a._dtype.name not in _DT:
        raise NotImplementedError(f"{name} on CUDA supports float32, float64, float16 and bfloat16, got {a._dtype}")


def _gemm(out, a, b, batch=0, sa=0, sb=0, alpha=1.0, beta=0.0):
    """out (m x n, row-major contiguous rows) = alpha * a (m x k) @ b (k x n) + beta * out."""
    from .stream import current_stream
    m, k = a._shape[-2], a._shape[-1]
    n = b._shape[-1]
    a, (ta, lda) = _prep(a)
    b, (tb, ldb) = _prep(b)
    index = out._storage.device.index or 0
    cb, h = _handle(index, current_stream(index))
    al, be, ct = _scalars(out._dtype, alpha, beta)
    dt = _DT[out._dtype.name]
    ldc = out._stride[-2] if m > 1 else max(n, 1)
    if batch:
        cb.gemm_strided_batched_ex(h, _OP_T if tb else _OP_N, _OP_T if ta else _OP_N, n, m, k,
                                   ctypes.addressof(al), b.data_ptr(), dt, ldb, sb, a.data_ptr(), dt, lda, sa,
                                   ctypes.addressof(be), out.data_ptr(), dt, ldc, out._stride[0] if out.ndim == 3
                                   else m * n, batch, ct, _ALGO_DEFAULT)
    else:
        cb.gemm_ex(h, _OP_T if tb else _OP_N, _OP_T if ta else _OP_N, n, m, k, ctypes.addressof(al),
                   b.data_ptr(), dt, ldb, a.data_ptr(), dt, lda, ctypes.addressof(be), out.data_ptr(), dt, ldc,
                   ct, _ALGO_DEFAULT)
    return out


def _empty(shape, dtype, t):
    from .tensor import empty_cuda
    return empty_cuda(shape, dtype, t._storage.device.index or 0)


def mm(self, mat2):
    _check(self, mat2, "mm")
    if self.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {self.ndim}-D and {mat2.ndim}-D")
    if self._shape[1] != mat2._shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({self._shape[0]}x{self._shape[1]} and "
                           f"{mat2._shape[0]}x{mat2._shape[1]})")
    out = _empty((self._shape[0], mat2._shape[1]), self._dtype, self)
    if self._shape[1] == 0:
        return OPS["zero_"].kernels["cuda"](out)
    if out.numel() == 0:
        return out
    return _gemm(out, self, mat2)


def _batch_stride(t):
    """The stride of dim 0 of a 3-D operand whose matrices are evenly spaced (0 when broadcast)."""
    return t._stride[0] if t._shape[0] > 1 else 0


def bmm(self, mat2):
    _check(self, mat2, "bmm")
    if self.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got {self.ndim}-D and {mat2.ndim}-D")
    bsz, m, k = self._shape
    if mat2._shape[0] != bsz or mat2._shape[1] != k:
        raise RuntimeError(f"bmm: shapes cannot be multiplied ({list(self._shape)} and {list(mat2._shape)})")
    out = _empty((bsz, m, mat2._shape[2]), self._dtype, self)
    if out.numel() == 0:
        return out
    if k == 0:
        return OPS["zero_"].kernels["cuda"](out)
    a, _ = _prep(self)
    b, _ = _prep(mat2)
    return _gemm(out, a, b, batch=bsz, sa=_batch_stride(a), sb=_batch_stride(b))


def matmul_cuda(self, other):
    """torch.matmul's cases: 1-D promotion and broadcast batch dims (flattened to one batch)."""
    from ...core.shape import broadcast_shapes
    _check(self, other, "matmul")
    a, b = self, other
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D")
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = a.unsqueeze(0)
    if vb:
        b = b.unsqueeze(-1)
    if a._shape[-1] != b._shape[-2]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a._shape[-2]}x{a._shape[-1]} and "
                           f"{b._shape[-2]}x{b._shape[-1]})")
    if a.ndim == 2 and b.ndim == 2:
        out = mm(a, b)
    elif b.ndim == 2:  # (..., m, k) @ (k, n): fold the batch into m when rows are evenly strided
        batch = a._shape[:-2]
        a2 = a.reshape(-1, a._shape[-1])
        out = mm(a2, b).reshape(*batch, a._shape[-2], b._shape[-1])
    else:
        batch = broadcast_shapes(a._shape[:-2], b._shape[:-2])
        a3 = a.expand(*batch, *a._shape[-2:]).reshape(-1, *a._shape[-2:])
        b3 = b.expand(*batch, *b._shape[-2:]).reshape(-1, *b._shape[-2:])
        out = bmm(a3, b3).reshape(*batch, a._shape[-2], b._shape[-1])
    if va:
        out = out.squeeze(-2)
    if vb:
        out = out.squeeze(-1)
    return out


def linear_cuda(input, weight, bias=None):
    out = matmul_cuda(input, weight.t())
    if bias is not None:
        out = OPS["add_"].kernels["cuda"](out, bias)
    return out


def _register():
    OPS["mm"].register("cuda")(mm)
    OPS["bmm"].register("cuda")(bmm)
    OPS["matmul"].register("cuda")(matmul_cuda)
    OPS["linear"].register("cuda")(linear_cuda)


_register()
