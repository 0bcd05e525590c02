"""Linear-algebra ops: matmul and its family (mm, bmm, mv, dot, outer, addmm, ...), einsum,
tensordot and linear; their rules (argument checks with PyTorch's messages, result shape and
dtype) as metas and public helpers that both backends' kernels use.

PyTorch semantics: the matrix operands must share one dtype (no promotion; `outer` is the
exception since it is a broadcast multiply), integer matmul is exact in the integer dtype and
float16/bfloat16 compute in float32. The alias `ger` is an op of its own whose user-facing
function calls `outer` (so autograd records `outer`).
"""
from __future__ import annotations

from .._tensor import Tensor
from ..core import dtype as D
from ..core.shape import broadcast_shapes, normalize_dim, numel
from ..dispatch import OPS, defop
from ..autograd.derivatives import derivative

_ALL = ("cpu", "cuda")
_BS = "*, Scalar beta=1, Scalar alpha=1"

# PyTorch names dtypes in some messages by their C++ type, elsewhere by their ScalarType
_CPP = D.CPP_TYPE
SCALAR_TYPE = D.SCALAR_TYPE


def _mm_shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def expands_to(shape, target) -> bool:
    """Does `shape` broadcast (one way) to `target`."""
    return len(shape) <= len(target) and all(s == t or s == 1 for s, t in zip(shape[::-1], target[::-1]))


# ---- checks: the rules both backends share (and the metas run) -----------------------------------

def no_bool(name, dt):
    if dt is D.bool:
        raise NotImplementedError(f"{name}: not implemented for 'Bool' tensors; "
                                  f"convert them to an integer or floating-point dtype first")


def check_m1_m2(name, a, b):
    if a._dtype is not b._dtype:
        raise RuntimeError(f"{name}: expected m1 and m2 to have the same dtype, but got: "
                           f"{_CPP[a._dtype]} != {_CPP[b._dtype]}")
    no_bool(name, a._dtype)


def check_same(name, what, *tensors):
    d = tensors[0]._dtype
    if any(t._dtype is not d for t in tensors):
        names = [SCALAR_TYPE[t._dtype] for t in tensors]
        got = ", ".join(names[:-1]) + " and " + names[-1]
        raise RuntimeError(f"{name}: {what} must have the same dtype, but got {got}")
    no_bool(name, d)


def check_dot(name, a, b):
    na, nb = len(a._shape), len(b._shape)
    if na != 1 or nb != 1:
        raise RuntimeError(f"{name}: 1D tensors expected, but got {na}D and {nb}D tensors")
    if a._shape[0] != b._shape[0]:
        raise RuntimeError(f"{name}: inconsistent tensor size, expected tensor [{a._shape[0]}] and src "
                           f"[{b._shape[0]}] to have the same number of elements, but got {a._shape[0]} and "
                           f"{b._shape[0]} elements respectively")
    if a._dtype is not b._dtype:
        raise RuntimeError(f"{name}: expected both vectors to have same dtype, but found "
                           f"{SCALAR_TYPE[a._dtype]} and {SCALAR_TYPE[b._dtype]}")
    no_bool(name, a._dtype)


def _mv_size_error(name, mshape, vlen):
    raise RuntimeError(f"{name}: size mismatch, got input ({mshape[0]}), mat ({_mm_shape(mshape)}), "
                       f"vec ({vlen})")


def _matmul_errors(a, b):
    """Raises PyTorch's error for matmul(a, b); called only when a check failed."""
    sa, sb = a._shape, b._shape
    na, nb = len(sa), len(sb)
    if na == 0 or nb == 0:
        raise RuntimeError(f"matmul: both arguments to matmul need to be at least 1D, but they are "
                           f"{na}D and {nb}D")
    if na == 1 and nb == 1:
        check_dot("matmul", a, b)
    check_m1_m2("matmul", a, b)
    ka = sa[-1]
    kb = sb[-2] if nb >= 2 else sb[0]
    if ka != kb:
        if nb == 1:
            _mv_size_error("matmul", (numel(sa[:-1]), ka), kb)
        m = numel(sa[:-1]) if nb == 2 else (sa[-2] if na >= 2 else 1)
        raise RuntimeError(f"matmul: mat1 and mat2 shapes cannot be multiplied ({m}x{ka} and {kb}x{sb[-1]}) "
                           f"(input shapes {list(sa)} and {list(sb)})")
    try:
        broadcast_shapes(sa[:-2], sb[:-2])
    except RuntimeError as e:
        raise RuntimeError(f"matmul: the batch dimensions of shapes {list(sa)} and {list(sb)} do not broadcast: "
                           f"{e}") from None
    raise RuntimeError(f"matmul: cannot multiply shapes {list(sa)} and {list(sb)}")  # pragma: no cover


def _check_ndim(name, named, ndim, kind):
    for what, t in named:
        if len(t._shape) != ndim:
            raise RuntimeError(f"{name}: {what} must be a {kind}, got {len(t._shape)}-D tensor of shape "
                               f"{list(t._shape)}")


def check_mm(name, a, b, n1="self", n2="mat2"):
    _check_ndim(name, ((n1, a), (n2, b)), 2, "matrix")
    if a._shape[1] != b._shape[0]:
        raise RuntimeError(f"{name}: mat1 and mat2 shapes cannot be multiplied ({_mm_shape(a._shape)} and "
                           f"{_mm_shape(b._shape)})")


def check_bmm(name, a, b, n1="batch1", n2="batch2"):
    _check_ndim(name, ((n1, a), (n2, b)), 3, "3D tensor")
    if a._shape[0] != b._shape[0]:
        raise RuntimeError(f"{name}: {n1} and {n2} must have same number of batches, got {a._shape[0]} "
                           f"and {b._shape[0]}")
    if a._shape[2] != b._shape[1]:
        raise RuntimeError(f"{name}: Expected size for first two dimensions of {n2} tensor to be: "
                           f"[{a._shape[0]}, {a._shape[2]}] but got: [{b._shape[0]}, {b._shape[1]}] "
                           f"(shapes {list(a._shape)} and {list(b._shape)} cannot be multiplied)")


def check_mv(name, m, v):
    if len(m._shape) != 2 or len(v._shape) != 1:
        raise RuntimeError(f"{name}: vector + matrix @ vector expected, got a {len(m._shape)}-D matrix and a "
                           f"{len(v._shape)}-D vector")
    if m._shape[1] != v._shape[0]:
        _mv_size_error(name, m._shape, v._shape[0])


def _expand_error(name, what, shape, target):
    if len(shape) > len(target):
        raise RuntimeError(f"{name}: {what} of shape {list(shape)} must broadcast to {list(target)}, but the number "
                           f"of sizes provided ({len(target)}) is less than the number of dimensions in the tensor "
                           f"({len(shape)})")
    i = next(i for i in range(1, len(shape) + 1) if shape[-i] not in (1, target[-i]))
    raise RuntimeError(f"{name}: The expanded size of the tensor ({target[-i]}) must match the existing size "
                       f"({shape[-i]}) at non-singleton dimension {len(target) - i}.  Target sizes: {list(target)}.  "
                       f"Tensor sizes: {list(shape)} ({what} must broadcast to the result's shape)")


def check_self(name, self, shape):
    """self of beta * self + alpha * product must broadcast to the product's shape."""
    if not expands_to(self._shape, shape):
        _expand_error(name, "self", self._shape, shape)


def check_inplace(name, self, shape):
    if self._shape != tuple(shape):
        raise RuntimeError(f"{name}: Bad in-place call: input tensor size {list(self._shape)} and output tensor "
                           f"size {list(shape)} should match")


def _linear_errors(input, weight, bias):
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
                           f"{SCALAR_TYPE[dt]}, {SCALAR_TYPE[weight._dtype]} and {SCALAR_TYPE[bias._dtype]}")
    no_bool("linear", dt)
    rows = numel(si[:-1])
    wt = (sw[1], sw[0]) if len(sw) == 2 else (sw[0], 1)
    raise RuntimeError(f"linear: mat1 and mat2 shapes cannot be multiplied ({rows}x{si[-1]} and "
                       f"{wt[0]}x{wt[1]}) (input {list(si)}, weight {list(sw)}: input's last dimension "
                       f"must equal in_features)")


def check_linear_backward(self, grad_output, weight) -> tuple:
    """(rows, in_features, out_features) of linear_backward's matrices, after checking the shapes."""
    if self.ndim < 1 or weight.ndim != 2 or grad_output._shape != self._shape[:-1] + weight._shape[:1] or \
            self._shape[-1] != weight._shape[1]:
        raise RuntimeError(f"linear_backward: expected input (*, in), grad_output (*, out) and weight (out, in), got "
                           f"shapes {list(self.shape)}, {list(grad_output.shape)} and {list(weight.shape)}")
    dt = self._dtype
    if grad_output._dtype is not dt or weight._dtype is not dt or not dt.is_floating_point:
        raise RuntimeError(f"linear_backward: expected floating tensors of one dtype, got {self._dtype}, "
                           f"{grad_output._dtype} and {weight._dtype}")
    return numel(self._shape[:-1]), weight._shape[1], weight._shape[0]


# ---- einsum's equation ------------------------------------------------------------------------------

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"   # einsum's subscripts, in sublist order
_LETTER_SET = frozenset(LETTERS)
_EINSUM_CACHE: dict = {}    # (equation, operand count) -> parsed terms
_SPECS_CACHE: dict = {}     # (equation, operands' shapes and dtypes) -> einsum_specs


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
        elif c in _LETTER_SET:
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
    if len(terms) != nops:
        which = "fewer" if len(terms) > nops else "more"
        raise RuntimeError(f"einsum(): {which} operands were provided than specified in the equation "
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


def _einsum_dtype(tensors, specs, out_spec):
    """PyTorch's: one operand summed over a label accumulates integers and bools in int64 (like sum());
    operands of different dtypes promote when nothing is contracted between them (a broadcast
    multiply), and must share one dtype when something is (a batched matrix product)."""
    dt = tensors[0]._dtype
    summed = {c for spec in specs for c in spec if c not in out_spec}
    if len(tensors) == 1:
        return D.int64 if summed and not dt.is_floating_point else dt
    shared = {c for c in summed if sum(c in spec for spec in specs) > 1}
    for t in tensors[1:]:
        if t._dtype is not dt:
            if shared:
                raise RuntimeError(f"einsum(): expected scalar type {SCALAR_TYPE[dt]} but found "
                                   f"{SCALAR_TYPE[t._dtype]}: operands with contracted subscripts "
                                   f"({''.join(sorted(shared))}) must have the same dtype")
            dt = D.promote_types(dt, t._dtype)
    if dt is D.bool and summed:
        raise NotImplementedError("einsum: contracting 'Bool' tensors is not implemented; convert them to an "
                                  "integer or floating-point dtype first")
    return dt


def einsum_specs(equation, tensors):
    """einsum's parsing and checks: one label string per operand with '...' spelled out in letters
    the equation leaves free, the output's labels, the result dtype and the result shape. Memoised by
    the equation and the operands' shapes and dtypes (the meta and the kernel both ask)."""
    if isinstance(tensors, Tensor):
        raise TypeError("einsum(): operands must be given as tensors or one list of tensors, not a Tensor")
    key = (equation, *[(t._shape, t._dtype) for t in tensors])
    hit = _SPECS_CACHE.get(key)
    if hit is None:
        hit = _einsum_specs(equation, tensors)
        if len(_SPECS_CACHE) >= 1024:
            _SPECS_CACHE.clear()
        _SPECS_CACHE[key] = hit
    return hit


def _einsum_specs(equation, tensors):
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
        free = [c for c in LETTERS if c not in used]
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
    return tuple(specs), out_spec, _einsum_dtype(tensors, specs, out_spec), tuple(sizes[c] for c in out_spec)


# ---- tensordot's dims -------------------------------------------------------------------------------

def _dim_list(v, ndim):
    out = [normalize_dim(d, ndim) for d in ([v] if isinstance(v, int) else v)]
    if len(set(out)) != len(out):
        dup = next(d for d in out if out.count(d) > 1)
        raise RuntimeError(f"tensordot: dim {dup} appears multiple times in the list of dims {list(v)}")
    return out


def tensordot_dims(a, b, dims) -> tuple:
    """The contracted dims (of a, of b) as two lists of non-negative dims, after PyTorch's checks of
    `dims` (the meta checks the rest)."""
    na, nb = len(a._shape), len(b._shape)
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
    return da, db


def _check_tensordot(a, b, da, db):
    """One dtype, not bool, and contracted dims of one size: a size-1 dim on one side only broadcasts
    (the kernels sum the other side over it)."""
    if a._dtype is not b._dtype:
        raise RuntimeError(f"tensordot: both inputs should have same dtype, got {SCALAR_TYPE[a._dtype]} and "
                           f"{SCALAR_TYPE[b._dtype]}")
    no_bool("tensordot", a._dtype)
    for i, j in zip(da, db):
        sa, sb = a._shape[i], b._shape[j]
        if sa != sb and sa != 1 and sb != 1:
            raise RuntimeError(f"tensordot: contracted dimensions need to match, but first has size {sa} in "
                               f"dim {i} and second has size {sb} in dim {j}")


# ---- metas ----------------------------------------------------------------------------------------

def matmul_meta(self, other):
    sa, sb = self._shape, other._shape
    dt = self._dtype
    if dt is not other._dtype or dt is D.bool or not sa or not sb:
        _matmul_errors(self, other)
    if len(sb) == 1:
        if sa[-1] != sb[0]:
            _matmul_errors(self, other)
        return sa[:-1], dt
    if sa[-1] != sb[-2]:
        _matmul_errors(self, other)
    if len(sa) == 1:
        return sb[:-2] + sb[-1:], dt
    if len(sa) == 2 and len(sb) == 2:
        return (sa[0], sb[1]), dt
    try:
        batch = broadcast_shapes(sa[:-2], sb[:-2])
    except RuntimeError:
        _matmul_errors(self, other)
    return batch + (sa[-2], sb[-1]), dt


def mm_meta(self, mat2):
    check_mm("mm", self, mat2)
    check_m1_m2("mm", self, mat2)
    return (self._shape[0], mat2._shape[1]), self._dtype


def bmm_meta(self, mat2):
    check_bmm("bmm", self, mat2)
    check_m1_m2("bmm", self, mat2)
    return (self._shape[0], self._shape[1], mat2._shape[2]), self._dtype


def mv_meta(self, vec):
    check_mv("mv", self, vec)
    check_same("mv", "input tensors", self, vec)
    return self._shape[:1], self._dtype


def _dot_meta(name):
    def meta(self, other):
        check_dot(name, self, other)
        return (), self._dtype
    return meta


def outer_meta(self, vec2):
    for argname, t in (("self", self), ("vec2", vec2)):
        if len(t._shape) != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {argname}, but got {len(t._shape)}-D")
    return self._shape + vec2._shape, D.promote_types(self._dtype, vec2._dtype)


def product_shape(name, a, b) -> tuple:
    """The shape of the product in addmm (a @ b), addmv (a @ b), addbmm (sum_i a[i] @ b[i]) and baddbmm
    (a @ b), for operands the meta accepted."""
    if name == "addmm":
        return a._shape[0], b._shape[1]
    if name == "addmv":
        return a._shape[:1]
    return (a._shape[1], b._shape[2]) if name == "addbmm" else (a._shape[0], a._shape[1], b._shape[2])


_ADD_OPERANDS = {"addmm": "self, mat1 and mat2", "addmv": "input tensors (self, mat, vec)",
                 "addbmm": "self, batch1 and batch2", "baddbmm": "input, batch1 and batch2"}


def add_product_meta(name):
    """The meta of `name` (addmm, addmv, addbmm, baddbmm) and of its in-place form `name_`: beta * self +
    alpha * product, self broadcasting (one way) to the product; in place, self must have its shape."""
    base = name.rstrip("_")
    what = _ADD_OPERANDS[base]
    check = check_mm if base == "addmm" else check_mv if base == "addmv" else check_bmm
    names = ("mat1", "mat2") if base == "addmm" else ()

    def meta(self, a, b, beta=1, alpha=1):
        check(name, a, b, *names)
        shape = product_shape(base, a, b)
        check_same(name, what, self, a, b)
        if name == base:
            check_self(name, self, shape)
        else:
            check_inplace(name, self, shape)
        return shape, self._dtype
    meta.scalars_by_class = True    # beta and alpha only scale: their values decide nothing here
    return meta


def einsum_meta(equation, tensors):
    _, _, dt, shape = einsum_specs(equation, tensors)
    return shape, dt


def tensordot_meta(a, b, dims=2):
    da, db = tensordot_dims(a, b, dims)
    _check_tensordot(a, b, da, db)
    shape = tuple(n for i, n in enumerate(a._shape) if i not in da) + \
        tuple(n for j, n in enumerate(b._shape) if j not in db)
    return shape, a._dtype


def linear_meta(input, weight, bias=None):
    si, sw = input._shape, weight._shape
    dt = input._dtype
    if not si or not sw or len(sw) > 2 or si[-1] != sw[-1] or dt is not weight._dtype or dt is D.bool or \
            (bias is not None and bias._dtype is not dt):
        _linear_errors(input, weight, bias)
    shape = si[:-1] + sw[:-1]
    if bias is not None:
        if len(sw) == 1 and len(si) > 1:   # torch takes this as addmm(bias, input, weight.t())
            raise RuntimeError(f"linear: mat2 must be a matrix, got 1-D tensor (a 1-D weight of shape {list(sw)} "
                               f"with a bias takes a 1-D input, got input of shape {list(si)})")
        if bias._shape != sw[:-1] and not expands_to(bias._shape, shape):
            _expand_error("linear", "bias", bias._shape, shape)
    return shape, dt


def linear_backward_meta(self, grad_output, weight, need_input, need_weight, need_bias):
    rows, k, n = check_linear_backward(self, grad_output, weight)
    dt = self._dtype
    return ((self._shape, dt) if need_input else None, ((n, k), dt) if need_weight else None,
            ((n,), dt) if need_bias else None)



def _declare():
    defop("matmul(Tensor self, Tensor other) -> Tensor", meta=matmul_meta, method=True, out="exact")
    defop("mm(Tensor self, Tensor mat2) -> Tensor", meta=mm_meta, method=True, out="exact")
    defop("bmm(Tensor self, Tensor mat2) -> Tensor", meta=bmm_meta, method=True, out="exact")
    defop("mv(Tensor self, Tensor vec) -> Tensor", meta=mv_meta, method=True, out="exact")
    defop("dot(Tensor self, Tensor tensor) -> Tensor", meta=_dot_meta("dot"), method=True, out="exact")
    defop("vdot(Tensor self, Tensor other) -> Tensor", meta=_dot_meta("vdot"), method=True, out="exact")
    defop("outer(Tensor self, Tensor vec2) -> Tensor", meta=outer_meta, method=True)
    defop("ger(Tensor self, Tensor vec2) -> Tensor", meta=outer_meta, method=True)
    for name, args in (("addmm", "mat1, Tensor mat2"), ("addmv", "mat, Tensor vec"),
                       ("addbmm", "batch1, Tensor batch2"), ("baddbmm", "batch1, Tensor batch2")):
        defop(f"{name}(Tensor self, Tensor {args}, {_BS}) -> Tensor", meta=add_product_meta(name), method=True,
              out="exact")
        defop(f"{name}_(Tensor(a!) self, Tensor {args}, {_BS}) -> Tensor(a!)", meta=add_product_meta(name + "_"),
              method=True)
    defop("einsum(str equation, Tensor[] tensors) -> Tensor", meta=einsum_meta)
    defop("tensordot(Tensor a, Tensor b, Any dims=2) -> Tensor", meta=tensordot_meta, out="exact")
    defop("linear(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor", meta=linear_meta)
    # linear's three grads in one op call (as aten::linear_backward): grad_output and input as
    # (rows, features) matrices, the bias grad as the column sums of grad_output; the need_* flags say which
    defop("linear_backward(Tensor self, Tensor grad_output, Tensor weight, bool need_input, bool need_weight, "
          "bool need_bias) -> (Tensor, Tensor, Tensor)", meta=linear_backward_meta)


_declare()


# ---- front ends: the user-facing functions over the dispatching ones ---------------------------------

def _front(name, fn):
    op = OPS[name]
    fn._op = op
    fn._dispatch = op.fn
    op.fn = fn


def ger(self, vec2):
    """Alias of outer."""
    return OPS["outer"].fn(self, vec2)


OPS["ger"].register(*_ALL)(ger)
_front("ger", ger)
Tensor.ger = ger


def _sublist_label(v, pos):
    if v is Ellipsis:
        return "..."
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 52:
        raise ValueError(f"einsum(): subscript in a sublist must be an int in [0, 52) or Ellipsis, got {v!r} "
                         f"(sublist {pos})")
    return LETTERS[v]


def _from_sublists(args):
    """einsum(op0, [0, 1], op1, [1, 2], [0, 2]) -> ('AB,BC->AC', [op0, op1])."""
    operands, terms = [], []
    i = 0
    while i + 1 < len(args):
        operands.append(args[i])
        terms.append("".join(_sublist_label(v, len(terms)) for v in args[i + 1]))
        i += 2
    eq = ",".join(terms)
    if i < len(args):  # a trailing output sublist
        eq += "->" + "".join(_sublist_label(v, "output") for v in args[i])
    return eq, operands


_einsum_op = OPS["einsum"].fn


def einsum(*args):
    """einsum(equation, *operands), einsum(equation, [operands]) or the sublist format."""
    if not args or (isinstance(args[0], str) and len(args) == 1):
        raise ValueError("einsum(): must specify the equation string and at least one operand, "
                         "or at least one operand and its subscripts list")
    eq = args[0]
    if isinstance(eq, str):
        operands = args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = operands[0]
    elif isinstance(eq, Tensor):
        eq, operands = _from_sublists(args)
    else:
        raise TypeError(f"einsum(): argument 'equation' (position 1) must be str, not {type(eq).__name__}")
    return _einsum_op(eq, list(operands))


_front("einsum", einsum)

_tensordot_op = OPS["tensordot"].fn


def _dims_value(v):
    return v.tolist() if isinstance(v, Tensor) else v


def tensordot(a, b, dims=2, *, out=None):
    """tensordot(a, b, dims): dims an int (the last `dims` of a against the first of b), or a pair of
    dim lists; either may be given as a tensor (read here, so the op sees plain ints)."""
    dims = _dims_value(dims)
    if isinstance(dims, (list, tuple)):
        dims = [_dims_value(d) for d in dims]
    return _tensordot_op(a, b, dims, out=out)


_front("tensordot", tensordot)


# ---- derivatives ----------------------------------------------------------------------------------

def _derivatives():
    d = derivative
    d("matmul", self="matmul_backward(grad, self, other, True)", other="matmul_backward(grad, self, other, False)")
    d("mm", self="matmul(grad, mat2.mT)", mat2="matmul(self.mT, grad)")
    d("bmm", self="matmul(grad, mat2.mT)", mat2="matmul(self.mT, grad)")
    d("mv", self="outer(grad, vec)", vec="matmul(self.mT, grad)")
    d("dot", self="grad * tensor", tensor="grad * self")
    d("vdot", self="grad * other", other="grad * self")
    d("outer", self="matmul(grad, vec2)", vec2="matmul(grad.mT, self)")
    d("addmm", self="grad * beta", mat1="matmul(grad, mat2.mT) * alpha", mat2="matmul(mat1.mT, grad) * alpha")
    d("addmv", self="grad * beta", mat="outer(grad, vec) * alpha", vec="matmul(mat.mT, grad) * alpha")
    d("addbmm", self="grad * beta",
      batch1="matmul(grad.expand(batch1.shape[0], *grad.shape), batch2.mT) * alpha",
      batch2="matmul(batch1.mT, grad.expand(batch1.shape[0], *grad.shape)) * alpha")
    d("baddbmm", self="grad * beta", batch1="matmul(grad, batch2.mT) * alpha",
      batch2="matmul(batch1.mT, grad) * alpha")
    d("einsum", tensors="einsum_backward(grad, equation, tensors)")
    d("tensordot", a="tensordot_backward(grad, a, b, dims)[0]", b="tensordot_backward(grad, a, b, dims)[1]")
    d("linear", **{"input, weight, bias": "linear_backward(grad, input, weight, bias_shape, grad_input_mask)"})


_derivatives()
