"""CPU kernels for linear algebra, on np.matmul / np.einsum / np.tensordot.

Operands go to NumPy as their strided views (np.matmul hands transposed layouts to BLAS
without a copy); only float16/bfloat16 are widened to float32 (PyTorch's opmath) and the
result is cast back once. Shape and dtype checks come first so that errors read like PyTorch's.
"""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import broadcast_shapes, normalize_dim
from ._common import F32, arr, compute_np, impl, operand, wrap

# PyTorch names dtypes in these messages by their C++ type, elsewhere by their ScalarType.
_CPP = {D.float32: "float", D.float64: "double", D.float16: "c10::Half", D.bfloat16: "c10::BFloat16",
        D.int64: "long int", D.int32: "int", D.int16: "short int", D.int8: "signed char",
        D.uint8: "unsigned char", D.bool: "bool"}
_ST = {D.float32: "Float", D.float64: "Double", D.float16: "Half", D.bfloat16: "BFloat16", D.int64: "Long",
       D.int32: "Int", D.int16: "Short", D.int8: "Char", D.uint8: "Byte", D.bool: "Bool"}
_LOWP = (D.float16, D.bfloat16)


def _np_of(t: Tensor):
    """The operand as NumPy in its compute dtype (a zero-copy view unless float16/bfloat16)."""
    a = t._np
    if a is None:
        a = t._array
    dt = t._dtype
    return a.astype(F32) if dt is D.float16 or dt is D.bfloat16 else a


def _mm_shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# ---- checks (off the fast path) -----------------------------------------------------------

def _no_bool(name, dt):
    if dt is D.bool:
        raise NotImplementedError(f"{name}: not implemented for 'Bool' tensors; "
                                  f"convert them to an integer or floating-point dtype first")


def _check_m1_m2(name, a, b):
    if a._dtype is not b._dtype:
        raise RuntimeError(f"{name}: expected m1 and m2 to have the same dtype, but got: "
                           f"{_CPP[a._dtype]} != {_CPP[b._dtype]}")
    _no_bool(name, a._dtype)


def _check_same(name, what, *tensors):
    d = tensors[0]._dtype
    if any(t._dtype is not d for t in tensors):
        names = [_ST[t._dtype] for t in tensors]
        got = ", ".join(names[:-1]) + " and " + names[-1]
        raise RuntimeError(f"{name}: {what} must have the same dtype, but got {got}")
    _no_bool(name, d)


def _dot_errors(name, a, b):
    na, nb = len(a._shape), len(b._shape)
    if na != 1 or nb != 1:
        raise RuntimeError(f"{name}: 1D tensors expected, but got {na}D and {nb}D tensors")
    if a._shape[0] != b._shape[0]:
        raise RuntimeError(f"{name}: inconsistent tensor size, expected tensor [{a._shape[0]}] and src "
                           f"[{b._shape[0]}] to have the same number of elements, but got {a._shape[0]} and "
                           f"{b._shape[0]} elements respectively")
    if a._dtype is not b._dtype:
        raise RuntimeError(f"{name}: expected both vectors to have same dtype, but found "
                           f"{_ST[a._dtype]} and {_ST[b._dtype]}")
    _no_bool(name, a._dtype)


def _mv_size_error(name, mshape, vlen):
    raise RuntimeError(f"{name}: size mismatch, got input ({mshape[0]}), mat ({_mm_shape(mshape)}), "
                       f"vec ({vlen})")


def _matmul_errors(a, b):
    """Raises PyTorch's error for matmul(a, b); called only when NumPy refused or a check failed."""
    sa, sb = a._shape, b._shape
    na, nb = len(sa), len(sb)
    if na == 0 or nb == 0:
        raise RuntimeError(f"matmul: both arguments to matmul need to be at least 1D, but they are "
                           f"{na}D and {nb}D")
    if na == 1 and nb == 1:
        _dot_errors("matmul", a, b)
    _check_m1_m2("matmul", a, b)
    ka = sa[-1]
    kb = sb[-2] if nb >= 2 else sb[0]
    if ka != kb:
        if nb == 1:
            _mv_size_error("matmul", (_prod(sa[:-1]), ka), kb)
        m = _prod(sa[:-1]) if nb == 2 else (sa[-2] if na >= 2 else 1)
        raise RuntimeError(f"matmul: mat1 and mat2 shapes cannot be multiplied ({m}x{ka} and {kb}x{sb[-1]}) "
                           f"(input shapes {list(sa)} and {list(sb)})")
    try:
        broadcast_shapes(sa[:-2], sb[:-2])
    except RuntimeError as e:
        raise RuntimeError(f"matmul: the batch dimensions of shapes {list(sa)} and {list(sb)} do not broadcast: "
                           f"{e}") from None
    raise RuntimeError(f"matmul: cannot multiply shapes {list(sa)} and {list(sb)}")  # pragma: no cover


def _check_mm(name, a, b, n1="self", n2="mat2"):
    if len(a._shape) != 2:
        raise RuntimeError(f"{name}: {n1} must be a matrix, got {len(a._shape)}-D tensor of shape {list(a._shape)}")
    if len(b._shape) != 2:
        raise RuntimeError(f"{name}: {n2} must be a matrix, got {len(b._shape)}-D tensor of shape {list(b._shape)}")
    if a._shape[1] != b._shape[0]:
        raise RuntimeError(f"{name}: mat1 and mat2 shapes cannot be multiplied ({_mm_shape(a._shape)} and "
                           f"{_mm_shape(b._shape)})")


def _check_bmm(name, a, b, n1="batch1", n2="batch2"):
    if len(a._shape) != 3:
        raise RuntimeError(f"{name}: {n1} must be a 3D tensor, got shape {list(a._shape)}")
    if len(b._shape) != 3:
        raise RuntimeError(f"{name}: {n2} must be a 3D tensor, got shape {list(b._shape)}")
    if a._shape[0] != b._shape[0]:
        raise RuntimeError(f"{name}: {n1} and {n2} must have same number of batches, got {a._shape[0]} "
                           f"and {b._shape[0]}")
    if a._shape[2] != b._shape[1]:
        raise RuntimeError(f"{name}: Expected size for first two dimensions of {n2} tensor to be: "
                           f"[{a._shape[0]}, {a._shape[2]}] but got: [{b._shape[0]}, {b._shape[1]}] "
                           f"(shapes {list(a._shape)} and {list(b._shape)} cannot be multiplied)")


def _check_mv(name, m, v):
    if len(m._shape) != 2 or len(v._shape) != 1:
        raise RuntimeError(f"{name}: vector + matrix @ vector expected, got a {len(m._shape)}-D matrix and a "
                           f"{len(v._shape)}-D vector")
    if m._shape[1] != v._shape[0]:
        _mv_size_error(name, m._shape, v._shape[0])


# ---- matmul and friends --------------------------------------------------------------------

@impl("matmul")
def _matmul(self, other):
    dt = self._dtype
    if dt is not other._dtype or dt is D.bool or not self._shape or not other._shape:
        _matmul_errors(self, other)
    try:
        r = np.matmul(_np_of(self), _np_of(other))
    except ValueError:
        _matmul_errors(self, other)
    return wrap(r, dt)


@impl("mm")
def _mm(self, mat2):
    _check_mm("mm", self, mat2)
    _check_m1_m2("mm", self, mat2)
    return wrap(np.matmul(_np_of(self), _np_of(mat2)), self._dtype)


@impl("bmm")
def _bmm(self, mat2):
    _check_bmm("bmm", self, mat2)
    _check_m1_m2("bmm", self, mat2)
    return wrap(np.matmul(_np_of(self), _np_of(mat2)), self._dtype)


@impl("mv")
def _mv(self, vec):
    _check_mv("mv", self, vec)
    _check_same("mv", "input tensors", self, vec)
    return wrap(np.matmul(_np_of(self), _np_of(vec)), self._dtype)


def _dot_kernel(name):
    def kernel(self, other):
        sa, sb = self._shape, other._shape
        if len(sa) != 1 or len(sb) != 1 or sa != sb or self._dtype is not other._dtype or self._dtype is D.bool:
            _dot_errors(name, self, other)
        return wrap(np.dot(_np_of(self), _np_of(other)), self._dtype)
    return kernel


impl("dot")(_dot_kernel("dot"))
impl("vdot")(_dot_kernel("vdot"))


@impl("outer")
def _outer(self, vec2):
    for argname, t in (("self", self), ("vec2", vec2)):
        if len(t._shape) != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {argname}, but got {len(t._shape)}-D")
    dt = D.result_type(self, vec2)
    cnp = compute_np(dt)
    return wrap(np.multiply.outer(operand(self, cnp), operand(vec2, cnp)), dt)


# ---- beta * self + alpha * product -------------------------------------------------------------

def _scaled_add(name, self, prod, beta, alpha, cnp):
    """beta * self + alpha * prod with self expanded (one way) to prod's shape; prod is a fresh array."""
    if alpha != 1:
        np.multiply(prod, operand(alpha, cnp), out=prod)
    s = _np_of(self)
    if beta == 0:  # PyTorch ignores self then (NaN/inf in self do not propagate), but still checks its shape
        if s.shape != prod.shape:
            _expand_check(name, self, prod, s)
        return prod
    if beta != 1:
        s = s * operand(beta, cnp)
    try:
        np.add(prod, s, out=prod)  # `out` fixes the shape: self may only expand, as in PyTorch
    except ValueError:
        _expand_check(name, self, prod, s)
        raise
    return prod


def _expand_check(name, self, prod, s):
    try:
        np.broadcast_to(s, prod.shape)
    except ValueError:
        raise RuntimeError(f"{name}: the expanded size of self {list(self._shape)} must match the result "
                           f"shape {list(prod.shape)} (self broadcasts to the product's shape)") from None


def _inplace_result(name, self, r):
    if r.shape != self._shape:
        raise RuntimeError(f"{name}: Bad in-place call: input tensor size {list(self._shape)} and output tensor "
                           f"size {list(r.shape)} should match")
    np.copyto(arr(self), r, casting="unsafe")
    return self


def _addmm_compute(self, mat1, mat2, beta, alpha, name="addmm"):
    _check_mm(name, mat1, mat2, "mat1", "mat2")
    _check_same(name, "self, mat1 and mat2", self, mat1, mat2)
    prod = np.matmul(_np_of(mat1), _np_of(mat2))
    return _scaled_add(name, self, prod, beta, alpha, prod.dtype)


def _addmv_compute(self, mat, vec, beta, alpha, name="addmv"):
    _check_mv(name, mat, vec)
    _check_same(name, "input tensors (self, mat, vec)", self, mat, vec)
    prod = np.matmul(_np_of(mat), _np_of(vec))
    return _scaled_add(name, self, prod, beta, alpha, prod.dtype)


def _addbmm_compute(self, batch1, batch2, beta, alpha, name="addbmm"):
    _check_bmm(name, batch1, batch2)
    _check_same(name, "self, batch1 and batch2", self, batch1, batch2)
    b, n, m = batch1._shape
    p = batch2._shape[2]
    # sum_b batch1[b] @ batch2[b] is one matmul over the concatenated inner dimension (b*m).
    x = _np_of(batch1).transpose(1, 0, 2).reshape(n, b * m)
    y = _np_of(batch2).reshape(b * m, p)
    prod = np.matmul(x, y)
    return _scaled_add(name, self, prod, beta, alpha, prod.dtype)


def _baddbmm_compute(self, batch1, batch2, beta, alpha, name="baddbmm"):
    _check_bmm(name, batch1, batch2)
    _check_same(name, "input, batch1 and batch2", self, batch1, batch2)
    prod = np.matmul(_np_of(batch1), _np_of(batch2))
    return _scaled_add(name, self, prod, beta, alpha, prod.dtype)


def _register_add(name, compute):
    @impl(name)
    def out_of_place(self, a, b, beta=1, alpha=1):
        return wrap(compute(self, a, b, beta, alpha, name), self._dtype)

    @impl(name + "_")
    def in_place(self, a, b, beta=1, alpha=1):
        return _inplace_result(name + "_", self, compute(self, a, b, beta, alpha, name + "_"))


_register_add("addmm", _addmm_compute)
_register_add("addmv", _addmv_compute)
_register_add("addbmm", _addbmm_compute)
_register_add("baddbmm", _baddbmm_compute)


# ---- linear ----------------------------------------------------------------------------------

@impl("linear")
def _linear(input, weight, bias=None):
    si, sw = input._shape, weight._shape
    dt = input._dtype
    if not si or not sw:
        raise RuntimeError(f"linear: both arguments to linear need to be at least 1D, but they are "
                           f"{len(si)}D and {len(sw)}D")
    if len(sw) > 2:
        raise RuntimeError(f"linear: weight must be 1-D or 2-D (out_features, in_features), got shape {list(sw)}")
    if dt is not weight._dtype:
        raise RuntimeError(f"linear: expected m1 and m2 to have the same dtype, but got: {_CPP[dt]} != "
                           f"{_CPP[weight._dtype]} (input and weight)")
    if bias is not None and bias._dtype is not dt:
        raise RuntimeError(f"linear: expected input, weight and bias to have the same dtype, but got "
                           f"{_ST[dt]}, {_ST[weight._dtype]} and {_ST[bias._dtype]}")
    _no_bool("linear", dt)
    if si[-1] != sw[-1]:
        rows = _prod(si[:-1])
        wt = (sw[1], sw[0]) if len(sw) == 2 else (sw[0], 1)
        raise RuntimeError(f"linear: mat1 and mat2 shapes cannot be multiplied ({rows}x{si[-1]} and "
                           f"{wt[0]}x{wt[1]}) (input {list(si)}, weight {list(sw)}: input's last dimension "
                           f"must equal in_features)")
    w = _np_of(weight)
    r = np.matmul(_np_of(input), w.T if w.ndim == 2 else w)
    if bias is not None:
        b = _np_of(bias)
        try:
            if type(r) is np.ndarray:
                np.add(r, b, out=r)  # `out` fixes the shape: the bias may only expand
            else:
                r = np.asarray(r) + np.broadcast_to(b, ())
        except ValueError:
            raise RuntimeError(f"linear: bias of shape {list(bias._shape)} does not broadcast to the output shape "
                               f"{list(np.shape(r))}") from None
    return wrap(r, dt)


# ---- einsum ----------------------------------------------------------------------------------

_LETTER_ORDER = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LETTERS = frozenset(_LETTER_ORDER)
_EINSUM_CACHE: dict = {}


def _parse_term(eq, start, stop, pos_name):
    """Labels of one term eq[start:stop] as a list ('...' is one entry), validating characters."""
    labels, i, ell = [], start, False
    while i < stop:
        c = eq[i]
        if c == " ":
            i += 1
        elif c == ".":
            if ell:
                raise RuntimeError(f"einsum(): found '.' for {pos_name} for which an ellipsis was already found")
            if eq[i:i + 3] != "..." or i + 3 > stop:
                raise RuntimeError(f"einsum(): found '.' for {pos_name} that is not part of any ellipsis")
            labels.append("...")
            ell = True
            i += 3
        elif c in _LETTERS:
            labels.append(c)
            i += 1
        else:
            raise RuntimeError(f"einsum(): invalid subscript given at index {i} in the equation string, "
                               f"subscripts must be in [a-zA-Z]")
    return labels


def _parse_equation(eq, nops):
    """(input terms, output term) of an equation, explicit output computed for the implicit form."""
    key = (eq, nops)
    hit = _EINSUM_CACHE.get(key)
    if hit is not None:
        return hit
    arrow = eq.find("->")
    lhs_end = arrow if arrow >= 0 else len(eq)
    terms, start = [], 0
    while True:
        comma = eq.find(",", start, lhs_end)
        stop = comma if comma >= 0 else lhs_end
        terms.append(_parse_term(eq, start, stop, f"operand {len(terms)}"))
        if comma < 0:
            break
        start = comma + 1
    if len(terms) > nops:
        raise RuntimeError(f"einsum(): fewer operands were provided than specified in the equation "
                           f"({nops} operands for {len(terms)} terms in {eq!r})")
    if len(terms) < nops:
        raise RuntimeError(f"einsum(): more operands were provided than specified in the equation "
                           f"({nops} operands for {len(terms)} terms in {eq!r})")
    if arrow >= 0:
        out = _parse_term(eq, arrow + 2, len(eq), "the output")
        seen = set()
        used = {c for t in terms for c in t}
        for c in out:
            if c in seen and c != "...":
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")
            seen.add(c)
            if c != "..." and c not in used:
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any "
                                   f"input operand")
    else:
        counts: dict = {}
        for t in terms:
            for c in t:
                if c != "...":
                    counts[c] = counts.get(c, 0) + 1
        out = (["..."] if any("..." in t for t in terms) else []) + sorted(c for c, n in counts.items() if n == 1)
    if len(_EINSUM_CACHE) < 1024:
        _EINSUM_CACHE[key] = (terms, out)
    return terms, out


def einsum_specs(equation, tensors):
    """einsum's parsing and checks (both backends): one label string per operand with '...' spelled
    out in letters the equation leaves free, the output's labels and the result dtype."""
    terms, out = _parse_equation(equation, len(tensors))
    # Expand each '...' into letters the equation does not use, aligned to the right across operands
    # (NumPy would refuse ellipsis dims missing from an explicit output; PyTorch sums them).
    nells = []
    for k, (t, term) in enumerate(zip(tensors, terms)):
        nd, nl = len(t._shape), len(term)
        if "..." in term:
            if nl - 1 > nd:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({nl - 1}) is more "
                                   f"than the number of dimensions ({nd}) for operand {k}")
            nells.append(nd - (nl - 1))
        else:
            if nl != nd:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({nl}) does not match "
                                   f"the number of dimensions ({nd}) for operand {k} and no ellipsis was given")
            nells.append(0)
    m = max(nells)
    ell = ""
    if m:
        used = {c for term in terms for c in term}
        free = [c for c in _LETTER_ORDER if c not in used]
        if len(free) < m:
            raise RuntimeError(f"einsum(): too many dimensions: the ellipsis covers {m} dimensions but only "
                               f"{len(free)} subscript letters are left")
        ell = "".join(free[:m])
    sizes: dict = {}
    specs = []
    for k, (t, term, nell) in enumerate(zip(tensors, terms, nells)):
        labels = "".join(ell[m - nell:] if c == "..." else c for c in term)
        specs.append(labels)
        local: dict = {}
        for c, n in zip(labels, t._shape):
            if c in local and local[c] != n:
                raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {k} but the sizes don't match, "
                                   f"{n} != {local[c]}")
            local[c] = n
        for c, n in local.items():
            prev = sizes.get(c)
            if prev is None or prev == 1:
                sizes[c] = n
            elif n != prev and n != 1:
                if c in ell:
                    raise RuntimeError(f"einsum(): the dimensions covered by the ellipsis of operand {k} (shape "
                                       f"{list(t._shape)}) do not broadcast with the other operands': size {n} vs "
                                       f"{prev}")
                raise RuntimeError(f"einsum(): subscript {c} has size {n} for operand {k} which does not broadcast "
                                   f"with previously seen size {prev}")
    out_spec = "".join(ell if c == "..." else c for c in out)
    dt = tensors[0]._dtype
    if any(t._dtype is not dt for t in tensors):
        dt = D.result_type(*tensors)
    summed = any(c not in out_spec for spec in specs for c in spec)
    if len(tensors) == 1:
        if summed and dt.category != 2:
            dt = D.int64  # a plain sum over a label, like sum(): integers and bool accumulate in int64
    elif dt is D.bool and summed:
        raise NotImplementedError("einsum: contracting 'Bool' tensors is not implemented; convert them to an "
                                  "integer or floating-point dtype first")
    return specs, out_spec, dt


@impl("einsum")
def _einsum(equation, tensors):
    if isinstance(tensors, Tensor):
        raise TypeError("einsum(): operands must be given as tensors or one list of tensors, not a Tensor")
    tensors = list(tensors)
    specs, out_spec, dt = einsum_specs(equation, tensors)
    cnp = compute_np(dt)
    arrays = [operand(t, cnp) for t in tensors]
    big = len(arrays) > 1 and sum(a.size for a in arrays) > 4096
    try:
        r = np.einsum(",".join(specs) + "->" + out_spec, *arrays, optimize=big)
    except ValueError as e:  # pragma: no cover - the checks above should catch every bad input
        raise RuntimeError(f"einsum(): operands of shapes {[list(t._shape) for t in tensors]} do not fit the "
                           f"equation {equation!r}: {e}") from None
    return wrap(r, dt)


# ---- tensordot -------------------------------------------------------------------------------

def _dim_list(v, ndim):
    if isinstance(v, Tensor):
        v = v.tolist()
    if isinstance(v, int):
        v = [v]
    out = [normalize_dim(d, ndim) for d in v]
    if len(set(out)) != len(out):
        raise RuntimeError(f"tensordot: dim {out[0] if len(out) else ''} appears multiple times in the list of "
                           f"dims {list(v)}")
    return out


@impl("tensordot")
def _tensordot(a, b, dims=2):
    na, nb = len(a._shape), len(b._shape)
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > na or dims > nb:
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims} "
                               f"(ndim_a={na}, ndim_b={nb})")
        da, db = list(range(na - dims, na)), list(range(dims))
    else:
        try:
            dims_a, dims_b = dims
        except (TypeError, ValueError):
            raise TypeError(f"tensordot: dims must be an int or a pair of dim lists, got {dims!r}") from None
        da, db = _dim_list(dims_a, na), _dim_list(dims_b, nb)
        if len(da) != len(db):
            raise RuntimeError(f"tensordot: both dimension lists should have same length, got {len(da)} and "
                               f"{len(db)}")
    if a._dtype is not b._dtype:
        raise RuntimeError(f"tensordot: both inputs should have same dtype, got {_ST[a._dtype]} and "
                           f"{_ST[b._dtype]}")
    _no_bool("tensordot", a._dtype)
    x, y = _np_of(a), _np_of(b)
    for i, j in zip(da, db):
        sa, sb = a._shape[i], b._shape[j]
        if sa != sb:
            if sa == 1:  # PyTorch broadcasts a size-1 contracted dim: sum the other side over it
                y = y.sum(axis=j, keepdims=True, dtype=y.dtype)
            elif sb == 1:
                x = x.sum(axis=i, keepdims=True, dtype=x.dtype)
            else:
                raise RuntimeError(f"tensordot: contracted dimensions need to match, but first has size {sa} in "
                                   f"dim {i} and second has size {sb} in dim {j}")
    return wrap(np.tensordot(x, y, axes=(da, db)), a._dtype)


@impl("linear_backward")
def _linear_backward(self, grad_output, weight, need_input, need_weight, need_bias):
    from ...ops.linalg import check_linear_backward
    rows, k, n = check_linear_backward(self, grad_output, weight)
    dt = self._dtype
    g = _np_of(grad_output).reshape(rows, n)
    gi = wrap(np.matmul(g, _np_of(weight)).reshape(self._shape), dt) if need_input else None
    gw = wrap(np.matmul(g.T, _np_of(self).reshape(rows, k)), dt) if need_weight else None
    gb = wrap(np.add.reduce(g, axis=0), dt) if need_bias else None
    return gi, gw, gb
