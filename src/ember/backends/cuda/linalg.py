"""Matrix products on CUDA through cuBLASLt (nvmath-python's low-level bindings), and the ops
built on them: mm, bmm, matmul, linear, addmm, addbmm, baddbmm, addmv (and in-place forms), mv,
dot, vdot; outer (a broadcast multiply), einsum and tensordot (permute/reshape/bmm composites).

One routine runs every product. Row-major C = A @ B is computed as the column-major product
C^T = B^T A^T, so no operand is copied: a row-major operand is passed as is, a transposed one
(unit stride on its rows) with the transpose flag; only operands with neither layout are made
contiguous. Batched products use one strided-batched call (batch count and batch offset on the
matrix layouts; offset 0 for a broadcast operand). The cuBLASLt descriptors, layouts and the
heuristic's algorithm are built once per (device, dtype, compute type, transposes, shapes,
leading dims, batch strides, pointer alignments, epilogue) and cached. Each device and stream
that runs a product gets one 32 MiB workspace from ember's caching allocator, kept for reuse
and shared with cuBLAS (so a CUDA graph should warm up on its capture stream first). Work runs
on the current stream. addbmm copies batch1 once (its batches become one long inner dim).

addmm/linear with a 1-D bias of the output's width (beta == 1, contiguous, 16-byte aligned,
all of m, n, k > 1) use cuBLASLt's BIAS epilogue: in the column-major view the bias is one value
per row of C^T, i.e. per column of C. Other biases, betas and broadcasts are copied into the
output first and enter the product as its C operand (beta * C).

float32 computes in float32 unless `allow_tf32` is set (`ember.backends.cuda.matmul.allow_tf32`,
off by default as in PyTorch); float16/bfloat16 accumulate in float32 (split-K reductions too);
float64 in float64. Integer and bool matrix products are not implemented on CUDA (as in
PyTorch); einsum and tensordot on integers run as broadcast multiply + sum.

Fallback: set `EMBER_CUBLASLT=0` (or `use_cublaslt = False` here) to run every product through
plain cuBLAS (`cublasGemmEx` / `cublasGemmStridedBatchedEx`); the bias is then added through
beta * C. cuBLASLt products whose heuristic finds no algorithm, or that cuBLASLt refuses at
launch, take this path too (recorded as None in `_lt_plans`).
"""
from __future__ import annotations

import ctypes
import os
import sys
from collections import namedtuple

import numpy as np

from ...core import dtype as D
from ...core.layout import contiguous_format
from ...core.shape import broadcast_shapes, numel
from ...dispatch import OPS
from ...ops import linalg as rules
from .driver import ensure_context
from .memory import new_tensor
from .reduction import _ck as _reduction_ck, _reduce
from .stream import current_stream

__all__ = ["mm", "bmm", "matmul_cuda", "linear_cuda", "einsum_cuda", "tensordot_cuda", "plan_gemm", "Gemm",
           "allow_tf32", "use_cublaslt", "matmul"]

allow_tf32 = False  # ember.backends.cuda.matmul.allow_tf32, as in PyTorch
use_cublaslt = os.environ.get("EMBER_CUBLASLT", "1") != "0"
WORKSPACE_BYTES = 32 << 20

_OP_N, _OP_T = 0, 1
_DT = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 14}   # cudaDataType
_R32F, _R64F = 0, 1
_COMPUTE_32F, _COMPUTE_32F_TF32, _COMPUTE_64F = 68, 77, 70
_ALGO_DEFAULT = -1
_LOWP = (D.float16, D.bfloat16)


class _MatmulFlags:
    """`ember.backends.cuda.matmul`: the flags of torch.backends.cuda.matmul that ember has."""

    @property
    def allow_tf32(self) -> bool:
        return allow_tf32

    @allow_tf32.setter
    def allow_tf32(self, value) -> None:
        global allow_tf32
        allow_tf32 = bool(value)


matmul = _MatmulFlags()
sys.modules[__package__].matmul = matmul  # reachable as ember.backends.cuda.matmul


# ---- layout planning (host only) -------------------------------------------------------------------

Gemm = namedtuple("Gemm", "ta tb m n k lda ldb ldc batch sa sb sc")
Gemm.__doc__ = """One column-major product D = op(A) @ op(B) (+ beta * C), D of m x n with leading dim ldc.

A is the row-major product's right operand, B its left one (C^T = B^T A^T); ta/tb: A/B stored
transposed (op = T). Stored A is m x k (k x m when ta), B is k x n (n x k when tb). batch > 1:
matrix i of A/B/D starts sa/sb/sc elements after matrix 0 (sa/sb 0 for a broadcast operand)."""


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


def _batch_stride(t):
    return t._stride[0] if t._shape[0] > 1 else 0


def plan_gemm(out, a, b):
    """The column-major product that writes a @ b into `out` (2-D, or 3-D batched with a and b 3-D).

    `out` must be row-major (see `_writable`). Returns (Gemm, a, b) with a/b made contiguous
    only when they are neither row- nor column-major."""
    a, (ta, lda) = _prep(a)
    b, (tb, ldb) = _prep(b)
    m, k = a._shape[-2], a._shape[-1]
    n = b._shape[-1]
    ldc = _layout(out)[1]
    if out.ndim == 3 and out._shape[0] > 1:
        return Gemm(tb, ta, n, m, k, ldb, lda, ldc, out._shape[0], _batch_stride(b), _batch_stride(a),
                    out._stride[0]), a, b
    return Gemm(tb, ta, n, m, k, ldb, lda, ldc, 1, 0, 0, 0), a, b


def _writable(out):
    """Can a product be written straight into `out`: rows of unit stride, matrices not overlapping."""
    lay = _layout(out)
    if lay is None or lay[0]:
        return False
    if out.ndim == 2 or out._shape[0] == 1:
        return True
    r, c = out._shape[-2:]
    return out._stride[0] >= (r - 1) * lay[1] + c


def _alignment(ptr, stride_bytes=0):
    """The largest power of two up to 256 dividing the address of every matrix of an operand."""
    v = ptr | stride_bytes | 256
    return v & -v


# ---- the device calls ------------------------------------------------------------------------------

def _compute(dt):
    if dt is D.float64:
        return _COMPUTE_64F
    return _COMPUTE_32F_TF32 if allow_tf32 and dt is D.float32 else _COMPUTE_32F


def _scalars(dt, alpha, beta):
    c = ctypes.c_double if dt is D.float64 else ctypes.c_float
    return c(alpha), c(beta)


_bindings = {}     # "cublas" / "cublasLt" -> nvmath's binding module, imported on first use


def _binding(name):
    mod = _bindings.get(name)
    if mod is None:
        try:
            import importlib
            mod = _bindings[name] = importlib.import_module(f"nvmath.bindings.{name}")
        except ImportError as e:
            raise RuntimeError(f"matrix products on CUDA need nvmath-python (pip install nvmath-python): {e}") from None
    return mod


def _cublas():
    return _binding("cublas")


def _lt():
    return _binding("cublasLt")


_handles = {}      # device -> [cuBLAS handle, stream it is set to]
_lt_handles = {}   # device -> cuBLASLt handle
_workspaces = {}   # (device, stream handle) -> CudaBuffer of WORKSPACE_BYTES
_lt_plans = {}     # key (see _lt_matmul) -> _LtPlan, or None where cuBLASLt can't do the product
_LT_PLANS_MAX = 4096
_MISSING = object()


def _workspace(index, stream):
    """The workspace of cuBLASLt (and cuBLAS) on this device and stream, allocated on first use."""
    key = (index, stream.ptr)
    ws = _workspaces.get(key)
    if ws is None:
        from .memory import alloc_buffer
        ws = _workspaces[key] = alloc_buffer(WORKSPACE_BYTES, index, stream)
    return ws.ptr


def _cublas_context(index):
    cb = _cublas()
    ensure_context(index)
    h = _handles.get(index)
    if h is None:
        h = _handles[index] = [cb.create(), None]
    stream = current_stream(index)
    s = stream.ptr
    if h[1] != s:
        cb.set_stream(h[0], s)
        cb.set_workspace(h[0], _workspace(index, stream), WORKSPACE_BYTES)  # set_stream dropped the last one
        h[1] = s
    return cb, h[0]


def _lt_context(index):
    """(cuBLASLt handle, current stream handle, workspace pointer) for device `index`."""
    ensure_context(index)
    stream = current_stream(index)
    h = _lt_handles.get(index)
    if h is None:
        h = _lt_handles[index] = _lt().create()
    return h, stream.ptr, _workspace(index, stream)


def _cublas_gemm(g, out, a, b, alpha, beta):
    cb, h = _cublas_context(out._storage.device.index or 0)
    dt = out._dtype
    al, be = _scalars(dt, alpha, beta)
    code, ct = _DT[dt.name], _compute(dt)
    opa, opb = _OP_T if g.ta else _OP_N, _OP_T if g.tb else _OP_N
    if g.batch > 1:
        cb.gemm_strided_batched_ex(h, opa, opb, g.m, g.n, g.k, ctypes.addressof(al), b.data_ptr(), code, g.lda, g.sa,
                                   a.data_ptr(), code, g.ldb, g.sb, ctypes.addressof(be), out.data_ptr(), code,
                                   g.ldc, g.sc, g.batch, ct, _ALGO_DEFAULT)
    else:
        cb.gemm_ex(h, opa, opb, g.m, g.n, g.k, ctypes.addressof(al), b.data_ptr(), code, g.lda, a.data_ptr(), code,
                   g.ldb, ctypes.addressof(be), out.data_ptr(), code, g.ldc, ct, _ALGO_DEFAULT)


def _set(setter, dtype_of, obj, attr, value):
    v = np.ctypeslib.as_ctypes_type(dtype_of(attr))(value)
    setter(obj, attr, ctypes.addressof(v), ctypes.sizeof(v))


class _LtPlan:
    __slots__ = ("desc", "layouts", "result", "algo", "bias_ct", "lt")

    def set_bias(self, ptr):
        lt = self.lt
        v = self.bias_ct(ptr)
        lt.matmul_desc_set_attribute(self.desc, lt.MatmulDescAttribute.BIAS_POINTER, ctypes.addressof(v),
                                     ctypes.sizeof(v))

    def destroy(self):
        for lay in self.layouts:
            self.lt.matrix_layout_destroy(lay)
        self.lt.matmul_desc_destroy(self.desc)


def _lt_plan(lt, h, key, bias_ptr):
    """Descriptors, layouts and the heuristic's best algorithm for `key`; None if there is none."""
    _, dt, ct, g, align_a, align_b, align_d, align_bias, epilogue = key
    A, L, P = lt.MatmulDescAttribute, lt.MatrixLayoutAttribute, lt.MatmulPreferenceAttribute
    code = _DT[dt.name]
    plan = _LtPlan()
    plan.lt, plan.layouts = lt, []
    plan.desc = lt.matmul_desc_create(ct, _R64F if dt is D.float64 else _R32F)
    plan.bias_ct = np.ctypeslib.as_ctypes_type(lt.get_matmul_desc_attribute_dtype(A.BIAS_POINTER))
    plan.result = np.zeros(1, dtype=lt.matmul_heuristic_result_dtype)
    plan.algo = plan.result.ctypes.data + plan.result.dtype.fields["algo"][1]
    count = np.zeros(1, dtype=np.int32)
    try:
        dset = (lt.matmul_desc_set_attribute, lt.get_matmul_desc_attribute_dtype, plan.desc)
        _set(*dset, A.TRANSA, _OP_T if g.ta else _OP_N)
        _set(*dset, A.TRANSB, _OP_T if g.tb else _OP_N)
        if align_bias is not None:
            _set(*dset, A.EPILOGUE, getattr(lt.Epilogue, epilogue))
            _set(*dset, A.BIAS_POINTER, bias_ptr)
        for rows, cols, ld, stride in (((g.k, g.m) if g.ta else (g.m, g.k)) + (g.lda, g.sa),
                                       ((g.n, g.k) if g.tb else (g.k, g.n)) + (g.ldb, g.sb),
                                       (g.m, g.n, g.ldc, g.sc)):
            lay = lt.matrix_layout_create(code, rows, cols, ld)
            plan.layouts.append(lay)
            if g.batch > 1:
                lset = (lt.matrix_layout_set_attribute, lt.get_matrix_layout_attribute_dtype, lay)
                _set(*lset, L.BATCH_COUNT, g.batch)
                _set(*lset, L.STRIDED_BATCH_OFFSET, stride)
        pref = lt.matmul_preference_create()
        try:
            pset = (lt.matmul_preference_set_attribute, lt.get_matmul_preference_attribute_dtype, pref)
            _set(*pset, P.MAX_WORKSPACE_BYTES, WORKSPACE_BYTES)
            _set(*pset, P.MIN_ALIGNMENT_A_BYTES, align_a)
            _set(*pset, P.MIN_ALIGNMENT_B_BYTES, align_b)
            _set(*pset, P.MIN_ALIGNMENT_C_BYTES, align_d)
            _set(*pset, P.MIN_ALIGNMENT_D_BYTES, align_d)
            if dt in _LOWP:  # split-K partial sums in float32, never in the output's half precision
                _set(*pset, P.REDUCTION_SCHEME_MASK, lt.ReductionScheme.COMPUTE_TYPE)
            la, lb, ld = plan.layouts
            lt.matmul_algo_get_heuristic(h, plan.desc, la, lb, ld, ld, pref, 1, plan.result.ctypes.data,
                                         count.ctypes.data)
        finally:
            lt.matmul_preference_destroy(pref)
    except lt.cuBLASLtError:
        count[0] = 0
    if not count[0]:
        plan.destroy()
        return None
    return plan


def _lt_matmul(g, out, a, b, alpha, beta, bias, epilogue="BIAS"):
    """Runs the product through cuBLASLt; False when cuBLASLt can't (the caller uses cuBLAS then).
    With `bias`: the BIAS epilogue adds it (one value per column of out), or BGRADB writes into it the sums
    of cuBLASLt's B operand (our `a`) over the product's inner dim."""
    lt = _lt()
    dt = out._dtype
    index = out._storage.device.index or 0
    h, stream, ws = _lt_context(index)
    isz = dt.itemsize if g.batch > 1 else 0
    pa, pb, pd = b.data_ptr(), a.data_ptr(), out.data_ptr()  # cuBLASLt's A is the right operand
    pbias = bias.data_ptr() if bias is not None else 0
    key = (index, dt, _compute(dt), g, _alignment(pa, g.sa * isz), _alignment(pb, g.sb * isz),
           _alignment(pd, g.sc * isz), None if bias is None else _alignment(pbias), epilogue)
    plan = _lt_plans.get(key, _MISSING)
    if plan is _MISSING:
        if len(_lt_plans) >= _LT_PLANS_MAX:
            for p in _lt_plans.values():
                if p is not None:
                    p.destroy()
            _lt_plans.clear()
        plan = _lt_plans[key] = _lt_plan(lt, h, key, pbias)
    if plan is None:
        return False
    if bias is not None:
        plan.set_bias(pbias)
    al, be = _scalars(dt, alpha, beta)
    la, lb, ld = plan.layouts
    try:
        lt.matmul(h, plan.desc, ctypes.addressof(al), pa, la, pb, lb, ctypes.addressof(be), pd, ld, pd, ld,
                  plan.algo, ws, WORKSPACE_BYTES, stream)
    except lt.cuBLASLtError:
        plan.destroy()
        _lt_plans[key] = None
        return False
    return True


def _gemm_bias_grad(out, a, b, bias_grad) -> bool:
    """out = a @ b with a = g^T (n x rows, a transposed view) and, in the same cuBLASLt call (the BGRADB
    epilogue), bias_grad = the row sums of a (the column sums of g): linear's weight and bias grads. False
    when cuBLASLt takes no such product (nothing is written then)."""
    if not (use_cublaslt and fuse_bias_grad) or out.ndim != 2 or out._shape[0] != bias_grad._shape[0] or \
            bias_grad.data_ptr() % 16 or not all(1 < d < _BIAS_MAX for d in (*out._shape, a._shape[-1])):
        return False
    g, a, b = plan_gemm(out, a, b)
    return g.batch == 1 and _lt_matmul(g, out, a, b, 1.0, 0.0, bias_grad, "BGRADB")


def _run_gemm(out, a, b, alpha=1.0, beta=0.0, bias=None):
    """out = alpha * a @ b + beta * out (+ bias per column of out); out writable, k > 0."""
    g, a, b = plan_gemm(out, a, b)
    if use_cublaslt and _lt_matmul(g, out, a, b, alpha, beta, bias):
        return
    if bias is not None:
        OPS["copy_"].fn(out, bias)
        beta = 1.0
    _cublas_gemm(g, out, a, b, alpha, beta)


_BIAS_MAX = 65535 * 32  # PyTorch's bound on each of m, n, k for the fused-bias path
# linear_backward's bias grad from the weight-grad GEMM's BGRADB epilogue (tests/test_cuda_linalg.py's epilogue test
# turns it on for itself; it passed on an H100 on 2026-12-07); False takes the bias grad as a separate column sum
fuse_bias_grad = True


def _fusable_bias(bias, out, a):
    """Can `bias` go through cuBLASLt's BIAS epilogue for out (m x n) = a @ b + bias."""
    if not use_cublaslt or out.ndim != 2 or bias.ndim != 1 or bias._dtype is not out._dtype:
        return False
    (m, n), k = out._shape, a._shape[-1]
    return (bias._shape[0] == n and (bias._stride[0] == 1) and bias.data_ptr() % 16 == 0
            and 1 < m < _BIAS_MAX and 1 < n < _BIAS_MAX and 1 < k < _BIAS_MAX)


def _addprod(out, self, a, b, beta=0, alpha=1):
    """out = beta * self + alpha * (a @ b); `out` writable (2-D or 3-D), `self` None, `out` itself
    or a tensor that broadcasts to it. beta == 0 ignores self (its NaNs too), as PyTorch does."""
    if out.numel() == 0:
        return out
    if self is None or beta == 0:
        self, beta = None, 0
    fuse = self is not None and beta == 1 and self is not out and _fusable_bias(self, out, a)
    if self is not None and self is not out and not fuse:
        OPS["copy_"].fn(out, self)
    if a._shape[-1] == 0:
        if self is None:
            OPS["zero_"].fn(out)
        elif fuse:
            OPS["copy_"].fn(out, self)
        elif beta != 1:
            OPS["mul_"].fn(out, beta)
        return out
    if fuse:
        _run_gemm(out, a, b, float(alpha), 0.0, self)
    else:
        _run_gemm(out, a, b, float(alpha), float(beta) if self is not None else 0.0)
    return out


# ---- mm, bmm, matmul, linear -----------------------------------------------------------------------

def _float_only(name, dt):
    if dt.name not in _DT:
        raise NotImplementedError(f"{name} on CUDA supports float32, float64, float16 and bfloat16, got {dt}")


def _product(a, b, shape):
    out = new_tensor(shape, a._dtype, a._storage.device)
    return _addprod(out, None, a, b)


def mm(self, mat2):
    _float_only("mm", self._dtype)
    return _product(self, mat2, (self._shape[0], mat2._shape[1]))


def bmm(self, mat2):
    _float_only("bmm", self._dtype)
    return _product(self, mat2, (self._shape[0], self._shape[1], mat2._shape[2]))


def matmul_cuda(self, other):
    """torch.matmul's cases: 1-D promotion and broadcast batch dims (flattened to one batch)."""
    _float_only("matmul", self._dtype)
    a = self.unsqueeze(0) if self.ndim == 1 else self
    b = other.unsqueeze(-1) if other.ndim == 1 else other
    m, k, n = a._shape[-2], a._shape[-1], b._shape[-1]
    if b.ndim == 2:  # (..., m, k) @ (k, n): the batch folds into m
        rows = numel(a._shape[:-1])
        out = _product(a.reshape(rows, k), b, (rows, n))
        batch = a._shape[:-2]
    else:
        batch = broadcast_shapes(a._shape[:-2], b._shape[:-2])
        nb = numel(batch)
        a3 = a.expand(*batch, m, k).reshape(nb, m, k)
        b3 = b.expand(*batch, k, n).reshape(nb, k, n)
        out = _product(a3, b3, (nb, m, n))
    # the 1-D operands' dims go again, as in torch.matmul
    return out.reshape(batch + (m,) * (self.ndim > 1) + (n,) * (other.ndim > 1))


def linear_cuda(input, weight, bias=None):
    dt = input._dtype
    _float_only("linear", dt)
    si, sw = input._shape, weight._shape
    out = new_tensor(si[:-1] + sw[:-1], dt, input._storage.device)
    x = input if len(si) == 2 else input.reshape(numel(si[:-1]), si[-1])
    w = weight.unsqueeze(-1) if len(sw) == 1 else weight.mT
    target = out if len(si) == len(sw) == 2 else out.reshape(x._shape[0], w._shape[1])
    if bias is None or (bias.ndim <= 1 and len(sw) == 2):
        _addprod(target, bias, x, w, 1)
    else:  # a bias over the batch dims (or a 1-D weight's 0-d one): broadcast into the output first
        OPS["copy_"].fn(out, bias)
        _addprod(target, target, x, w, 1)
    return out


# ---- addmm, addbmm, baddbmm, addmv (and in place) --------------------------------------------------

def _inplace_product(self, a, b, beta, alpha, t):
    """self = beta * self + alpha * a @ b in place; `t` is self as the product's 2-D/3-D view.

    The product is written straight into a row-major self, and as C^T = B^T A^T into a
    column-major one; a self of another layout, or one sharing memory with a or b, gets the
    result through a temporary."""
    if self._storage is not a._storage and self._storage is not b._storage:
        if _writable(t):
            _addprod(t, t, a, b, beta, alpha)
            return self
        if _writable(t.mT):
            _addprod(t.mT, t.mT, b.mT, a.mT, beta, alpha)
            return self
    tmp = new_tensor(t._shape, self._dtype, self._storage.device)
    OPS["copy_"].fn(self, _addprod(tmp, t, a, b, beta, alpha).reshape(self._shape))
    return self


def _matrices(name, a, b):
    """The two matrices (or batches) whose product is the op's: addbmm's sum_i a[i] @ b[i] is one
    product over the concatenated inner dim; addmv's vector is a column."""
    if name == "addbmm":
        nb, n, m = a._shape
        return a.permute(1, 0, 2).reshape(n, nb * m), b.reshape(nb * m, b._shape[2])
    if name == "addmv":
        return a, b.unsqueeze(-1)
    return a, b


def _col(t):
    """A vector (or anything broadcasting to one) as the column it is in a matrix @ vector product."""
    return t.unsqueeze(-1) if t.ndim == 1 else t


def _add_kernels(name):
    """The CUDA kernels of `name` (addmm, addmv, addbmm, baddbmm) and of its in-place form."""
    vec = name == "addmv"

    def out_of_place(self, a, b, beta=1, alpha=1):
        dt = self._dtype
        _float_only(name, dt)
        out = new_tensor(rules.product_shape(name, a, b), dt, self._storage.device)
        x, y = _matrices(name, a, b)
        _addprod(out.unsqueeze(-1) if vec else out, _col(self) if vec else self, x, y, beta, alpha)
        return out

    def in_place(self, a, b, beta=1, alpha=1):
        _float_only(name + "_", self._dtype)
        x, y = _matrices(name, a, b)
        return _inplace_product(self, x, y, beta, alpha, self.unsqueeze(-1) if vec else self)
    return out_of_place, in_place


def mv(self, vec):
    dt = self._dtype
    _float_only("mv", dt)
    out = new_tensor(self._shape[:1], dt, self._storage.device)
    _addprod(out.unsqueeze(-1), None, self, vec.unsqueeze(-1))
    return out


def _dot_kernel(name):
    def kernel(self, other):
        _float_only(name, self._dtype)
        out = new_tensor((), self._dtype, self._storage.device)
        _addprod(out.reshape(1, 1), None, self.unsqueeze(0), other.unsqueeze(-1))
        return out
    return kernel


dot = _dot_kernel("dot")
vdot = _dot_kernel("vdot")  # real dtypes only: no conjugation


def outer(self, vec2):
    return OPS["mul"].fn(self.unsqueeze(-1), vec2.unsqueeze(0))


# ---- einsum and tensordot: permute / reshape / bmm composites --------------------------------------

def _diagonal(t, spec):
    """A view of t with one dim per distinct label (repeated labels take the diagonal)."""
    labels = list(dict.fromkeys(spec))
    if len(labels) == len(spec):
        return t, labels
    size = {c: n for c, n in zip(spec, t._shape)}
    stride = dict.fromkeys(labels, 0)
    for c, s in zip(spec, t._stride):
        stride[c] += s
    return OPS["as_strided"].fn(t, [size[c] for c in labels], [stride[c] for c in labels], t._offset), labels


def _sum_labels(t, labels, gone, keepdim=False):
    dims = [labels.index(c) for c in gone]
    return OPS["sum"].fn(t, dims, keepdim), labels if keepdim else [c for c in labels if c not in gone]


def _permuted(t, labels, order):
    """t with its dims in the order of the labels `order` (a subset of order: all of `labels`)."""
    idx = [labels.index(c) for c in order]
    return t if idx == list(range(len(idx))) else t.permute(*idx)


def _aligned(t, labels, order):
    """t permuted to `order` (its labels in that order) with size-1 dims for labels it lacks."""
    mine = [c for c in order if c in labels]
    t = _permuted(t, labels, mine)
    return t.reshape(*[t._shape[mine.index(c)] if c in mine else 1 for c in order])


def _contract(x, lx, y, ly, keep):
    """x (labels lx) times y (labels ly), summed over the shared labels not in `keep`."""
    sx, sy = dict(zip(lx, x._shape)), dict(zip(ly, y._shape))
    contr = [c for c in lx if c in sy and c not in keep]
    for c in contr:  # a contracted label of size 1 on one side only: sum the other side over it first
        if sx[c] != sy[c]:
            if sx[c] == 1:
                y, _ = _sum_labels(y, ly, [c], keepdim=True)
                sy[c] = 1
            else:
                x, _ = _sum_labels(x, lx, [c], keepdim=True)
                sx[c] = 1
    batch = [c for c in lx if c in sy and c in keep]
    xo = [c for c in lx if c not in sy]
    yo = [c for c in ly if c not in sx]
    labels = batch + xo + yo
    if not x._dtype.is_floating_point:  # integers: a broadcast multiply and a sum (no integer GEMM on CUDA)
        order = labels + contr
        r = OPS["mul"].fn(_aligned(x, lx, order), _aligned(y, ly, order))
        if contr:
            r = OPS["sum"].fn(r, list(range(len(labels), len(order))), False).to(x._dtype)
        return r, labels
    bs = [max(sx[c], sy[c]) for c in batch]
    xs, ys, ks = [sx[c] for c in xo], [sy[c] for c in yo], [sx[c] for c in contr]
    xm = _permuted(x, lx, batch + xo + contr)
    ym = _permuted(y, ly, batch + contr + yo)
    if batch:  # broadcast batch labels
        xm, ym = xm.expand(*bs, *xs, *ks), ym.expand(*bs, *ks, *ys)
    m, k, n = numel(xs), numel(ks), numel(ys)
    if batch:
        r = bmm(xm.reshape(numel(bs), m, k), ym.reshape(numel(bs), k, n))
    else:
        r = mm(xm.reshape(m, k), ym.reshape(k, n))
    return r.reshape(*bs, *xs, *ys), labels


def _einsum_lower(specs, out_spec, tensors, dt):
    """einsum over label strings: diagonals, sums of labels no one else needs, then pairwise
    products left to right, and the output's order."""
    ops = []
    for t, spec in zip(tensors, specs):
        if t._dtype is not dt and (dt.is_floating_point or len(tensors) > 1):
            t = t.to(dt)
        ops.append(_diagonal(t, spec))
    for i, (t, labels) in enumerate(ops):
        others = set(out_spec).union(*(lab for j, (_, lab) in enumerate(ops) if j != i))
        gone = [c for c in labels if c not in others]
        if gone:
            ops[i] = _sum_labels(t, labels, gone)
    x, lx = ops[0]
    for i in range(1, len(ops)):
        y, ly = ops[i]
        keep = set(out_spec).union(*(lab for _, lab in ops[i + 1:]))
        x, lx = _contract(x, lx, y, ly, keep)
    x = _permuted(x, lx, list(out_spec))
    if x._dtype is not dt:
        x = x.to(dt)
    if not x.is_contiguous() or any(x._storage is t._storage for t in tensors):
        x = OPS["clone"].fn(x, memory_format=contiguous_format)
    return x


def einsum_cuda(equation, tensors):
    specs, out_spec, dt, _ = rules.einsum_specs(equation, tensors)
    return _einsum_lower(specs, out_spec, list(tensors), dt)


def tensordot_cuda(a, b, dims=2):
    """The contraction of einsum's lowering, with a letter per dim (b's contracted dims take a's)."""
    da, db = rules.tensordot_dims(a, b, dims)
    la = list(rules.LETTERS[:a.ndim])
    lb = list(rules.LETTERS[a.ndim:a.ndim + b.ndim])
    for i, j in zip(da, db):
        lb[j] = la[i]
    r, _ = _contract(a, la, b, lb, set())
    return r if r.is_contiguous() else OPS["clone"].fn(r, memory_format=contiguous_format)


def _matrix(t, cols):
    """t as a (rows, cols) matrix view (no autograd; a contiguous copy first where t isn't)."""
    if not t.is_contiguous():
        t = t.contiguous()
    return t._as_view((t.numel() // cols if cols else 0, cols), (cols, 1), t._offset)


def linear_backward(self, grad_output, weight, need_input, need_weight, need_bias):
    """grad_input = g @ W, grad_weight = g^T @ x, grad_bias = column sums of g, with g and x the
    (rows, features) views of grad_output and input: two GEMMs, the bias grad in the second one's
    epilogue (cuBLASLt's BGRADB; else one reduction), no dispatch between."""
    (n, k), rows = weight._shape, numel(self._shape[:-1])
    dt = self._dtype
    _float_only("linear_backward", dt)
    dev = self._storage.device
    g = _matrix(grad_output, n)
    gi = gw = gb = None
    if need_input:
        gi = new_tensor(self._shape, dt, dev)
        _addprod(gi._as_view((rows, k), (k, 1), 0), None, g, weight)
    if need_weight:
        gw = new_tensor((n, k), dt, dev)
        gt, x = g._as_view((n, rows), (1, n), g._offset), _matrix(self, k)
        if need_bias and rows:
            gb = new_tensor((n,), dt, dev)
            if not _gemm_bias_grad(gw, gt, x, gb):      # no fused bias grad: the product, then the sums
                gb = None
                _addprod(gw, None, gt, x)
        else:
            _addprod(gw, None, gt, x)
    if need_bias and gb is None:
        gb = _reduce(g, "sum", (0,), False, dt, _reduction_ck(dt))
    return gi, gw, gb


def _register():
    for name, fn in (("mm", mm), ("bmm", bmm), ("matmul", matmul_cuda), ("linear", linear_cuda),
                     ("linear_backward", linear_backward), ("mv", mv), ("dot", dot), ("vdot", vdot),
                     ("outer", outer), ("einsum", einsum_cuda), ("tensordot", tensordot_cuda)):
        OPS[name].register("cuda")(fn)
    for name in ("addmm", "addmv", "addbmm", "baddbmm"):
        out_of_place, in_place = _add_kernels(name)
        OPS[name].register("cuda")(out_of_place)
        OPS[name + "_"].register("cuda")(in_place)


_register()
