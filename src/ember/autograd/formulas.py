"""Helpers that derivative formulas call (each built only from ember ops, so it is differentiable too)."""
from __future__ import annotations

import math

from ..core import dtype as D
from ..core.shape import normalize_dim, normalize_dims, numel, stacked_spacing
from ..dispatch import OPS

__all__ = ["zeros_for", "reduce_backward", "select_backward", "unbind_backward", "split_backward", "slice_backward", "index_view_backward",
           "diagonal_backward", "unfold_backward", "as_strided_backward", "inverse_permutation",
           "gelu_backward", "clamp_backward", "clamp_bound_backward", "maxmin_backward", "pow_self_backward",
           "pow_exponent_backward", "softmax_backward", "log_softmax_backward", "layer_norm_backward",
           "rms_norm_backward", "rotary_embedding_backward", "lstm_cell_backward", "gru_cell_backward",
           "attention_backward", "attention_dropout_backward", "packed_attention_backward", "linear_backward", "cross_entropy_backward", "LN2", "LN10", "TWO_OVER_SQRT_PI"]

LN2 = math.log(2.0)
LN10 = math.log(10.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _f(name):
    return OPS[name].fn


def zeros_for(grad, shape):
    return _f("zeros")(*shape, dtype=grad.dtype, device=grad.device)


def reduce_backward(grad, shape, dim, keepdim):
    """The grad of a reduction over `dim`, broadcast back to the input's `shape`."""
    n = len(shape)
    if not keepdim and n:
        dims = range(n) if dim is None or (not isinstance(dim, int) and len(dim) == 0) else normalize_dims(dim, n)
        for d in sorted(dims):
            grad = _f("unsqueeze")(grad, d)
    return _f("expand")(grad, *shape)


def unbind_backward(grads, dim):
    """unbind's gradient: the outputs' gradients stacked along `dim` (zeros where an output had none), one op;
    no op at all outside create_graph when they are stacked already: equally spaced views of one storage that
    lay one new block out (the fused attention's grads of a permuted qkv, `_packed_grads`)."""
    from .grad_mode import state
    if not state.enabled:
        view = _stacked_view(grads, dim)
        if view is not None:
            return view
    return _f("stack")(list(grads), dim)


def _stacked_view(grads, dim):
    """grads[0] seen with a dim of len(grads) inserted at `dim`, when grads[i] is that view's slice i of a buffer
    made for these grads alone (no one else's data in it); else None."""
    if any(g is None or g.requires_grad for g in grads):
        return None
    sp = stacked_spacing(grads)
    g0 = grads[0]
    shape, st = g0._shape, g0._stride
    if not sp or g0._offset or g0._storage.nbytes != len(grads) * numel(shape) * g0._dtype.itemsize:
        return None
    d = normalize_dim(dim, len(shape) + 1)
    return g0._as_view(shape[:d] + (len(grads),) + shape[d:], st[:d] + (sp,) + st[d:], 0)


def split_backward(grads, dim):
    """split_with_sizes' gradient: the pieces' gradients concatenated along `dim` (zeros where a piece had
    none), one op."""
    return _f("cat")(list(grads), dim)


def select_backward(grad, shape, dim, index):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("select")(z, dim, index), grad)
    return z


def slice_backward(grad, shape, dim, start, end, step):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("slice")(z, dim, start, end, step), grad)
    return z


def index_view_backward(grad, shape, index):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("_index_view")(z, index), grad)
    return z


def diagonal_backward(grad, shape, offset, dim1, dim2):
    z = zeros_for(grad, shape)
    _f("copy_")(_f("diagonal")(z, offset, dim1, dim2), grad)
    return z


def unfold_backward(grad, shape, dimension, size, step):
    """Windows may overlap: for each offset j inside a window, add the j-th elements of all windows
    (a strided slice of the input) at once."""
    z = zeros_for(grad, shape)
    if not shape:
        return _f("add")(z, _f("reshape")(grad, *shape))
    d = normalize_dim(dimension, len(shape))
    n = grad.shape[d]  # number of windows
    if n == 0:
        return z
    for j in range(size):
        target = _f("slice")(z, d, j, j + step * (n - 1) + 1, step)
        _f("add_")(target, _f("select")(grad, -1, j))
    return z


def _storage_index(shape, stride, offset, device):
    """The storage element index of every position of a strided view, as an int64 tensor."""
    idx = _f("full")(tuple(shape), offset, dtype=_int64(), device=device)
    for k, (n, st) in enumerate(zip(shape, stride)):
        view = [1] * len(shape)
        view[k] = n
        idx = idx + _f("reshape")(_f("arange")(n, dtype=_int64(), device=device) * st, *view)
    return idx


def _int64():
    from ..core.dtype import int64
    return int64


def as_strided_backward(grad, self, size, stride, storage_offset):
    """Scatter-add the grad of an as_strided view back onto the input's elements (handles overlap)."""
    off = self._offset if storage_offset is None else storage_offset
    span = max([self._offset + sum((n - 1) * s for n, s in zip(self._shape, self._stride)) + 1,
                off + sum((n - 1) * s for n, s in zip(size, stride)) + 1, 1])
    dev = grad.device
    out_idx = _f("reshape")(_storage_index(size, stride, off, dev), -1)
    in_idx = _f("reshape")(_storage_index(self._shape, self._stride, self._offset, dev), -1)
    flat = _f("index_add")(zeros_for(grad, (span,)), 0, out_idx, _f("reshape")(grad, -1))
    return _f("reshape")(_f("index_select")(flat, 0, in_idx), *self._shape)


def inverse_permutation(dims):
    n = len(dims)
    dims = [d % n if n else d for d in dims]
    inv = [0] * n
    for i, d in enumerate(dims):
        inv[d] = i
    return inv


def gelu_backward(grad, x, approximate):
    """One fused op; under create_graph (grad mode on) the composite, differentiable again."""
    from .grad_mode import state
    if not state.enabled:
        return OPS["gelu_backward"].fn(grad, x, approximate=approximate)
    if approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)
        inner = k * (x + 0.044715 * x * x * x)
        t = inner.tanh()
        d_inner = k * (1 + 3 * 0.044715 * x * x)
        return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
    cdf = 0.5 * (1 + (x * _INV_SQRT2).erf())
    pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
    return grad * (cdf + x * pdf)


def clamp_backward(grad, x, lo, hi):
    mask = None
    if lo is not None:
        mask = x >= lo
    if hi is not None:
        m = x <= hi
        mask = m if mask is None else mask & m
    return grad if mask is None else _f("where")(mask, grad, 0.0)


def clamp_bound_backward(grad, x, bound, other_bound, is_min):
    """Grad of a tensor `min` (is_min) or `max` bound: flows where the bound was chosen."""
    mask = (x < bound) if is_min else (x > bound)
    if other_bound is not None and is_min:
        mask = mask & (bound <= other_bound) if not hasattr(other_bound, "_shape") else mask & (bound <= other_bound)
    return _f("where")(mask, grad, 0.0)


def maxmin_backward(grad, x, other, is_self, is_max):
    """maximum/minimum: the grad goes to the larger (smaller) input, split in half on ties."""
    win = (x > other) if is_max else (x < other)
    if not is_self:
        win = (other > x) if is_max else (other < x)
    tie = x == other
    return _f("where")(win, grad, 0.0) + _f("where")(tie, grad * 0.5, 0.0)


def pow_self_backward(grad, x, exponent):
    if isinstance(exponent, (int, float)):
        if exponent == 0:
            return grad * 0.0
        return grad * exponent * x.pow(exponent - 1)
    return _f("where")(exponent == 0.0, 0.0, grad * exponent * x.pow(exponent - 1))


def pow_exponent_backward(grad, x, exponent, result):
    if isinstance(x, (int, float)):
        return grad * result * math.log(x) if x > 0 else grad * 0.0 if x == 0 else grad * result * math.nan
    cond = (x == 0) & (exponent >= 0)
    return _f("where")(cond, 0.0, grad * result * x.log())


def softmax_backward(grad, result, dim):
    gy = grad * result
    return gy - result * gy.sum(dim, True)


def log_softmax_backward(grad, result, dim):
    return grad - result.exp() * grad.sum(dim, True)


# ---- reductions ---------------------------------------------------------------------------------

def _reduced_count(shape, dim):
    n = len(shape)
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):
        dims = range(n)
    else:
        dims = normalize_dims(dim, n)
    c = 1
    for d in dims:
        c *= shape[d]
    return c


def mean_backward(grad, shape, dim, keepdim):
    return reduce_backward(grad, shape, dim, keepdim) / max(_reduced_count(shape, dim), 1)


def _keep(t, shape, dim, keepdim):
    """A reduced tensor with its reduced dims restored as size 1 (broadcastable against the input)."""
    n = len(shape)
    if keepdim or not n:
        return t
    dims = range(n) if dim is None or (not isinstance(dim, int) and len(dim) == 0) else normalize_dims(dim, n)
    for d in sorted(dims):
        t = _f("unsqueeze")(t, d)
    return t


def nanmean_backward(grad, x, dim, keepdim):
    ok = ~x.isnan()
    count = _keep(ok.sum(dim, keepdim), x.shape, dim, keepdim)
    return _f("where")(ok, reduce_backward(grad, x.shape, dim, keepdim) / count, 0.0)


def amax_backward(grad, x, result, dim, keepdim):
    """The grad is shared evenly among the elements equal to the max (as PyTorch does)."""
    r = _keep(result, x.shape, dim, keepdim)
    mask = x == r
    count = _keep(mask.sum(dim, keepdim), x.shape, dim, keepdim)
    return _f("where")(mask, reduce_backward(grad, x.shape, dim, keepdim) / count, 0.0)


def value_selecting_backward(grad, dim, indices, shape, keepdim):
    """Grad of max/min/kthvalue over `dim`: each value's grad goes to the index it came from."""
    if not keepdim and len(shape):
        grad = _f("unsqueeze")(grad, dim)
        indices = _f("unsqueeze")(indices, dim)
    return _f("scatter")(zeros_for(grad, shape), dim, indices, grad)


def _exclusive_cumprod(x, d):
    n = x.shape[d]
    ones = _f("ones")(*[1 if i == d else s for i, s in enumerate(x.shape)], dtype=x.dtype, device=x.device)
    if n <= 1:
        return _f("expand")(ones, *x.shape)
    head = _f("slice")(x, d, 0, n - 1, 1)
    return _f("cat")([ones, _f("cumprod")(head, d)], d)


def prod_backward(grad, x, dim, keepdim):
    """d prod / d x_i = product of the other elements (exact with zeros: exclusive prefix * suffix)."""
    if dim is None:
        flat = _f("reshape")(x, -1)
        others = _exclusive_cumprod(flat, 0) * _f("flip")(_exclusive_cumprod(_f("flip")(flat, 0), 0), 0)
        return _f("reshape")(others, *x.shape) * grad
    d = normalize_dim(dim, len(x.shape)) if x.shape else 0
    if not x.shape:
        return grad
    others = _exclusive_cumprod(x, d) * _f("flip")(_exclusive_cumprod(_f("flip")(x, d), d), d)
    return others * reduce_backward(grad, x.shape, dim, keepdim)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def var_backward(grad, x, dim, unbiased, keepdim, correction):
    n = _reduced_count(x.shape, dim)
    c = _correction(unbiased, correction)
    mean = x.mean(dim if dim is not None else None, True) if dim is not None else x.mean()
    return (2.0 / max(n - c, 0)) * (x - mean) * reduce_backward(grad, x.shape, dim, keepdim) if n - c > 0 else \
        (x - mean) * reduce_backward(grad, x.shape, dim, keepdim) * float("nan")


def std_backward(grad, x, result, dim, unbiased, keepdim, correction):
    # where the standard deviation is 0 (equal values, or one value with correction 0) the gradient is 0,
    # as in torch, not 0/0
    return var_backward(_f("where")(result == 0, 0.0, grad / (2.0 * result)), x, dim, unbiased, keepdim, correction)


def logsumexp_backward(grad, x, result, dim, keepdim):
    r = _keep(result, x.shape, dim, keepdim)
    return reduce_backward(grad, x.shape, dim, keepdim) * (x - r).exp()


def norm_backward(grad, x, result, p, dim, keepdim):
    g = reduce_backward(grad, x.shape, dim, keepdim)
    r = _keep(result, x.shape, dim, keepdim)
    if p is None or p == "fro" or p == 2:
        return _f("where")(r == 0, 0.0, x * g / r)
    if p == 1:
        return x.sign() * g
    if p == 0:
        return g * 0.0
    if p in (math.inf, -math.inf):
        mask = x.abs() == r
        count = _keep(mask.sum(dim, keepdim), x.shape, dim, keepdim)
        return _f("where")(mask, x.sign() * g / count, 0.0)
    if isinstance(p, str):
        raise RuntimeError(f"norm backward: p={p!r} is not differentiable in ember yet")
    return _f("where")(r == 0, 0.0, x * x.abs().pow(p - 2) * g / r.pow(p - 1))


def _rev_cumsum(t, d):
    return _f("flip")(_f("cumsum")(_f("flip")(t, d), d), d)


def cumsum_backward(grad, dim):
    return _rev_cumsum(grad, dim) if grad.ndim else grad


def cumprod_backward(grad, x, result, dim):
    """Exact where x has no zeros (sum over later outputs of grad * out / x_i); zeros use the prefix form."""
    if not x.ndim:
        return grad
    d = normalize_dim(dim, x.ndim)
    if not bool((x == 0).any()):
        return _rev_cumsum(grad * result, d) / x
    # O(n^2) in the length of dim, only taken when a zero is present
    n = x.shape[d]
    outs = []
    for i in range(n):
        xi = _f("slice")(x, d, 0, n, 1)
        ones = _f("ones")(*[1 if k == d else s for k, s in enumerate(x.shape)], dtype=x.dtype, device=x.device)
        mod = _f("cat")([_f("slice")(xi, d, 0, i, 1), ones, _f("slice")(xi, d, i + 1, n, 1)], d)
        cp = _f("cumprod")(mod, d)
        mask = _f("arange")(n, device=x.device) >= i
        shape = [1] * x.ndim
        shape[d] = n
        contrib = _f("where")(_f("reshape")(mask, *shape), grad * cp, 0.0).sum(d, True)
        outs.append(contrib)
    return _f("cat")(outs, d)


def logcumsumexp_backward(grad, x, result, dim):
    d = normalize_dim(dim, x.ndim) if x.ndim else 0
    if not x.ndim:
        return grad
    return _rev_cumsum(grad * (-result).exp(), d) * x.exp()


def cummaxmin_backward(grad, x, indices, dim):
    if not x.ndim:
        return grad
    return _f("scatter_add")(zeros_for(grad, x.shape), dim, indices, grad)


__all__ += ["mean_backward", "nanmean_backward", "amax_backward", "value_selecting_backward", "prod_backward",
            "var_backward", "std_backward", "logsumexp_backward", "norm_backward", "cumsum_backward",
            "cumprod_backward", "logcumsumexp_backward", "cummaxmin_backward"]


# ---- linear algebra ---------------------------------------------------------------------------

def matmul_backward(grad, a, b, wrt_a):
    """matmul's grads with its 1-D promotions undone; batch broadcasting is summed by the engine."""
    if a.ndim == 1 and b.ndim == 1:
        return grad * b if wrt_a else grad * a
    a1 = a if a.ndim > 1 else _f("unsqueeze")(a, 0)
    b1 = b if b.ndim > 1 else _f("unsqueeze")(b, -1)
    g = grad
    if a.ndim == 1:
        g = _f("unsqueeze")(g, -2)
    if b.ndim == 1:
        g = _f("unsqueeze")(g, -1)
    if wrt_a:
        r = _f("matmul")(g, b1.mT)
        return _f("squeeze")(r, -2) if a.ndim == 1 else r
    r = _f("matmul")(a1.mT, g)
    return _f("squeeze")(r, -1) if b.ndim == 1 else r


def linear_backward(grad, input, weight, bias_shape, mask):
    """Grads of linear for (input, weight, bias): the one linear_backward op for a 2-D weight outside
    create_graph (its bias grad only for a bias of shape (out,): other shapes get grad, which the
    engine sums to theirs); else matmul and linear_weight_backward, differentiable again."""
    from .grad_mode import state
    out_bias = mask[2] and bias_shape == tuple(weight.shape[:1])
    if not state.enabled and weight.ndim == 2 and input.dtype == grad.dtype == weight.dtype:
        gi, gw, gb = OPS["linear_backward"].fn(input, grad, weight, mask[0], mask[1], out_bias)
        return gi, gw, (gb if out_bias else grad if mask[2] else None)
    return (_f("matmul")(grad, weight) if mask[0] else None,
            linear_weight_backward(grad, input) if mask[1] else None,
            grad if mask[2] else None)


def linear_weight_backward(grad, x):
    g2 = _f("reshape")(grad, -1, grad.shape[-1]) if grad.ndim != 2 else grad
    x2 = _f("reshape")(x, -1, x.shape[-1]) if x.ndim != 2 else x
    if grad.ndim == 1:
        return _f("outer")(grad, x)
    return _f("matmul")(g2.mT, x2)


def _einsum_parse(equation, shapes):
    """Splits an equation into per-operand subscripts and the output, with `...` spelled out in letters."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    subs = lhs.split(",")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    n_ell = max([len(s) - (len(sub) - 3) for sub, s in zip(subs, shapes) if "..." in sub] or [0])
    ell = "".join(free[:n_ell])
    out_subs = []
    for sub, s in zip(subs, shapes):
        if "..." in sub:
            k = len(s) - (len(sub) - 3)
            sub = sub.replace("...", ell[n_ell - k:] if k else "")
        out_subs.append(sub)
    if not arrow:
        counts = {}
        for sub in out_subs:
            for c in sub:
                counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    return out_subs, rhs


def einsum_backward(grad, equation, tensors):
    shapes = [t.shape for t in tensors]
    subs, rhs = _einsum_parse(equation, shapes)
    grads = []
    for i, (sub, t) in enumerate(zip(subs, tensors)):
        if len(set(sub)) != len(sub):
            raise RuntimeError(f"einsum backward: repeated subscripts within one operand ({sub!r}, a diagonal) "
                               f"are not differentiable in ember yet")
        others = [(s, x) for j, (s, x) in enumerate(zip(subs, tensors)) if j != i]
        avail = set(rhs) | {c for s, _ in others for c in s}
        kept = "".join(c for c in sub if c in avail)
        eq = ",".join([rhs] + [s for s, _ in others]) + "->" + kept
        g = _f("einsum")(eq, [grad] + [x for _, x in others])
        if kept != sub:  # letters only this operand had were summed away: broadcast back
            for k, c in enumerate(sub):
                if c not in avail:
                    g = _f("unsqueeze")(g, k)
            g = _f("expand")(g, *t.shape)
        grads.append(_fit_broadcast(g, t.shape))
    return grads


def _fit_broadcast(g, shape):
    """A label of size 1 in one operand broadcasts against the others (torch allows it): the operand's
    gradient sums over that label, and a size-1 gradient along a label the operand has in full expands."""
    if tuple(g.shape) == tuple(shape):
        return g
    summed = [k for k, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1]
    if summed:
        g = g.sum(summed, keepdim=True)
    return _f("expand")(g, *shape) if tuple(g.shape) != tuple(shape) else g


def _tensordot_subs(a_ndim, b_ndim, dims):
    if isinstance(dims, int):
        da, db = list(range(a_ndim - dims, a_ndim)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
        da = [d % a_ndim for d in da]
        db = [d % b_ndim for d in db]
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    sa = [next(letters) for _ in range(a_ndim)]
    sb = [None] * b_ndim
    for x, y in zip(da, db):
        sb[y] = sa[x]
    sb = [c if c is not None else next(letters) for c in sb]
    out = [c for k, c in enumerate(sa) if k not in da] + [c for k, c in enumerate(sb) if k not in db]
    return "".join(sa) + "," + "".join(sb) + "->" + "".join(out)


def tensordot_backward(grad, a, b, dims):
    eq = _tensordot_subs(a.ndim, b.ndim, dims)
    return einsum_backward(grad, eq, [a, b])


__all__ += ["matmul_backward", "linear_weight_backward", "einsum_backward", "tensordot_backward"]


# ---- shape ops ---------------------------------------------------------------------------------

def cat_backward(grad, shapes, dim):
    nd = grad.ndim
    d = normalize_dim(dim, nd) if nd else 0
    out, start = [], 0
    for s in shapes:
        if len(s) == 1 and s[0] == 0 and nd != 1:  # skipped legacy empty input
            out.append(zeros_for(grad, s))
            continue
        n = s[d]
        out.append(_f("slice")(grad, d, start, start + n, 1))
        start += n
    return out


def repeat_backward(grad, shape, repeats):
    lead = len(repeats) - len(shape)
    padded = (1,) * lead + tuple(shape)
    split = []
    for r, s in zip(repeats, padded):
        split += [r, s]
    g = _f("reshape")(grad, *split)
    g = g.sum(list(range(0, len(split), 2)))
    return _f("reshape")(g, *shape)


def diag_backward(grad, shape, diagonal):
    if len(shape) == 1:
        return grad.diagonal(diagonal)
    return diagonal_backward(grad, shape, diagonal, 0, 1)


def index_backward(grad, shape, indices):
    return _f("index_put")(zeros_for(grad, shape), indices, grad, True)


def roll_backward(grad, shifts, dims):
    if isinstance(shifts, int):
        shifts = (shifts,)
    return grad.roll([-s for s in shifts], dims)


__all__ += ["roll_backward", "cat_backward", "repeat_backward", "diag_backward", "index_backward"]


# ---- indexing -----------------------------------------------------------------------------------

def masked_scatter_backward(grad, mask, source_shape):
    n = 1
    for s in source_shape:
        n *= s
    picked = grad.masked_select(mask)
    flat = zeros_for(grad, (n,))
    k = picked.shape[0]
    if k:
        _f("copy_")(_f("slice")(flat, 0, 0, k, 1), picked)
    return _f("reshape")(flat, *source_shape)


def masked_select_backward(grad, shape, mask):
    from ..core.shape import broadcast_shapes
    full = broadcast_shapes(tuple(shape), tuple(mask.shape))
    return _f("masked_scatter")(zeros_for(grad, full), mask.expand(*full), grad)


def embedding_backward(grad, shape, indices, padding_idx, scale_grad_by_freq):
    idx = _f("reshape")(indices, -1)
    g = _f("reshape")(grad, -1, shape[-1])
    if padding_idx is not None and padding_idx >= 0:
        g = g * _f("unsqueeze")(idx != padding_idx, 1)
    if scale_grad_by_freq:
        counts = _f("bincount")(idx, None, shape[0]) if "bincount" in OPS else None
        if counts is None:
            ones = _f("ones")(idx.shape[0], dtype=grad.dtype, device=grad.device)
            counts = _f("index_add")(zeros_for(grad, (shape[0],)), 0, idx, ones)
        g = g / _f("unsqueeze")(_f("index_select")(counts, 0, idx), 1)
    return _f("index_add")(zeros_for(grad, shape), 0, idx, g)


def scatter_reduce_backward(grad, self, index, dim, reduce, include_self, wrt_self):
    if reduce != "sum":
        raise RuntimeError(f"scatter_reduce backward is implemented for reduce='sum' only in ember, got {reduce!r}")
    if wrt_self:
        if include_self:
            return grad
        return _f("scatter")(grad, dim, index, 0.0)
    return grad.gather(dim, index)


__all__ += ["masked_scatter_backward", "masked_select_backward", "embedding_backward", "scatter_reduce_backward"]


def _norm_composite_backward(grad, input, normalized_shape, weight, bias, eps, mask, center):
    """(input grad, weight grad, bias grad) of layer norm (center) or RMS norm from the composite, recomputed
    from the input so that it is differentiable again (create_graph); those not in `mask` None."""
    k = len(normalized_shape)
    dims = list(range(input.ndim - k, input.ndim))
    batch = list(range(input.ndim - k))
    low = input.dtype.itemsize == 2 and input.dtype.is_floating_point
    x = input.float() if low else input
    g = grad.float() if low else grad
    xc = x - x.mean(dims, True) if center else x
    r = ((xc * xc).mean(dims, True) + eps).rsqrt()
    xhat = xc * r
    gx = gw = gb = None
    if mask[0]:
        wdy = g * weight if weight is not None else g
        gx = wdy - xhat * (wdy * xhat).mean(dims, True)
        gx = r * (gx - wdy.mean(dims, True) if center else gx)
        gx = gx.to(input.dtype) if low else gx
    if mask[1] and weight is not None:
        gw = (g * xhat).sum(batch) if batch else g * xhat
    if mask[2] and bias is not None:
        gb = g.sum(batch) if batch else g
    return gx, gw, gb


def layer_norm_backward(grad, input, normalized_shape, mean, rstd, weight, bias, eps, mask):
    """Grads of native_layer_norm for (input, weight, bias), those not in `mask` None. The fused
    backward op, except under create_graph (grad mode on): then the composite, recomputed from the
    input, so that it is differentiable again."""
    from .grad_mode import state
    if not state.enabled:
        return OPS["native_layer_norm_backward"].fn(grad, input, normalized_shape, mean, rstd, weight, bias, *mask)
    return _norm_composite_backward(grad, input, normalized_shape, weight, bias, eps, mask, True)


def rms_norm_backward(grad, input, normalized_shape, rstd, weight, eps, mask):
    """Grads of _fused_rms_norm for (input, weight), those not in `mask` None: the fused backward op, except
    under create_graph (grad mode on), where the composite is recomputed from the input, as layer norm's."""
    from .grad_mode import state
    if not state.enabled:
        return OPS["_fused_rms_norm_backward"].fn(grad, input, normalized_shape, rstd, weight, *mask)
    return _norm_composite_backward(grad, input, normalized_shape, weight, None, eps, (*mask, False), False)[:2]


def lstm_cell_backward(grad_hy, grad_cy, input_gates, hidden_gates, cx, input_bias, hidden_bias, cy, workspace):
    """Grads of _thnn_fused_lstm_cell for (input_gates, hidden_gates, cx, input_bias, hidden_bias): the gates'
    grad serves both gates and both biases (the engine sums it over the batch for a bias). The fused backward
    op, except under create_graph (grad mode on): then the cell recomputed from its inputs with ember ops."""
    from .grad_mode import state
    if not state.enabled:
        gg, gcx = OPS["_thnn_fused_lstm_cell_backward"].fn(grad_hy, grad_cy, cx, cy, workspace)
        return gg, gg, gcx, gg, gg
    gates = input_gates + hidden_gates
    i, f, g, o = (gates if input_bias is None else gates + input_bias + hidden_bias).chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    tc = (f * cx + i * g).tanh()
    gc = grad_hy * o * (1 - tc * tc) + grad_cy
    gg = _f("cat")([gc * g * i * (1 - i), gc * cx * f * (1 - f), gc * i * (1 - g * g),
                    grad_hy * tc * o * (1 - o)], 1)
    return gg, gg, gc * f, gg, gg


def gru_cell_backward(grad_hy, input_gates, hidden_gates, hx, input_bias, hidden_bias, workspace):
    """Grads of _thnn_fused_gru_cell for (input_gates, hidden_gates, hx, input_bias, hidden_bias), each bias given
    its gates' grad (the engine sums it over the batch). The fused backward op, except under create_graph (grad
    mode on): then the cell recomputed from its inputs with ember ops."""
    from .grad_mode import state
    if not state.enabled:
        gi, gh, ghx = OPS["_thnn_fused_gru_cell_backward"].fn(grad_hy, workspace)
        return gi, gh, ghx, gi, gh
    if input_bias is not None:
        input_gates, hidden_gates = input_gates + input_bias, hidden_gates + hidden_bias
    i_r, i_z, i_n = input_gates.chunk(3, 1)
    h_r, h_z, h_n = hidden_gates.chunk(3, 1)
    r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    gn = grad_hy * (1 - z) * (1 - n * n)
    gr = gn * h_n * r * (1 - r)
    gz = grad_hy * (hx - n) * z * (1 - z)
    cat = _f("cat")
    gi, gh = cat([gr, gz, gn], 1), cat([gr, gz, gn * r], 1)
    return gi, gh, grad_hy * z, gi, gh


def _rotary_pairs(t, interleaved):
    """The two halves (..., D/2) of the pairs _rotary_embedding rotates in t (..., D): views, no copy."""
    h = t.shape[-1] // 2
    if interleaved:
        t = t.unflatten(-1, (h, 2))
        return t.select(-1, 0), t.select(-1, 1)
    return t.narrow(-1, 0, h), t.narrow(-1, h, h)


def rotary_embedding_backward(grad, input, cos, interleaved, mask):
    """Grads of _rotary_embedding for (cos, sin) over the input's (..., T, D/2), in cos's dtype; the engine
    sums them to cos's and sin's shapes. y_a = x_a cos - x_b sin, y_b = x_b cos + x_a sin."""
    xa, xb = _rotary_pairs(input.to(cos.dtype), interleaved)
    ga, gb = _rotary_pairs(grad.to(cos.dtype), interleaved)
    return (ga * xa + gb * xb if mask[0] else None, gb * xa - ga * xb if mask[1] else None)


def cross_entropy_backward(grad, input, target, weight, reduction, ignore_index, label_smoothing, lse, total_weight):
    """The logits' grad of _cross_entropy: the fused backward op, except under create_graph (grad mode on):
    then the composite, recomputed from the logits, so that it is differentiable again."""
    from .grad_mode import state
    if not state.enabled:
        return OPS["_cross_entropy_backward"].fn(grad, input, target, weight, reduction, ignore_index,
                                                 label_smoothing, lse, total_weight)
    N, C = input.shape
    cdt = lse.dtype
    p = input.to(cdt).softmax(1)
    counted = target != ignore_index
    safe = target.masked_fill(counted.logical_not(), 0).long()
    wt = weight.to(cdt).index_select(0, safe) * counted if weight is not None else counted.to(cdt)
    g = grad.to(cdt)
    if reduction == 1:
        g = g / total_weight.to(cdt)
    if reduction != 0:
        g = g.expand(N)
    coef = (g * (1.0 - label_smoothing) * wt).unsqueeze(1)
    onehot = _f("arange")(C, device=input.device).unsqueeze(0) == safe.unsqueeze(1)
    gi = coef * p - coef * onehot
    if label_smoothing > 0:
        W = weight.to(cdt).sum() if weight is not None else float(C)
        wc = weight.to(cdt) if weight is not None else 1.0
        gi = gi + (g * (label_smoothing / C) * counted).unsqueeze(1) * (W * p - wc)
    return gi.to(input.dtype)


def attention_backward(grad, query, key, value, attn_mask, out, lse, is_causal, scale, mask):
    """Grads of _fused_attention for (query, key, value), those not in `mask` None. The fused
    backward op, except under create_graph (grad mode on): then the composite, recomputed from the
    inputs (fully masked rows give zero grads), so that it is differentiable again."""
    from .grad_mode import state
    if not state.enabled:
        return OPS["_fused_attention_backward"].fn(grad, query, key, value, attn_mask, out, lse, is_causal, scale,
                                                   *mask)
    dt = query.dtype
    low = dt.itemsize == 2 and dt.is_floating_point
    q, k, v, g = (t.float() for t in (query, key, value, grad)) if low else (query, key, value, grad)
    s = (q @ k.mT) * scale
    L, S = s.shape[-2], s.shape[-1]
    if is_causal:
        s = s.masked_fill(_f("ones")(L, S, dtype=D.bool, device=s.device).triu(1), -math.inf)
    elif attn_mask is not None:
        if attn_mask.dtype.is_floating_point:
            s = s + (attn_mask.float() if low else attn_mask)
        else:
            s = s.masked_fill(attn_mask.logical_not(), -math.inf)
    dead = s.isneginf().all(-1, True)
    p = s.masked_fill(dead, 0.0).softmax(-1).masked_fill(dead, 0.0)
    dp = g @ v.mT
    ds = p * (dp - (dp * p).sum(-1, True))
    gq = (ds @ k) * scale if mask[0] else None
    gk = (ds.mT @ q) * scale if mask[1] else None
    gv = p.mT @ g if mask[2] else None
    if low:
        gq, gk, gv = (t.to(dt) if t is not None else None for t in (gq, gk, gv))
    return gq, gk, gv


def attention_dropout_backward(grad, query, key, value, attn_mask, out, lse, rng, is_causal, scale, dropout_p,
                               mask):
    """Grads of _fused_attention_dropout for (query, key, value): the fused backward op. The mask exists only
    as the forward's random stream, so there is no composite to differentiate again (as torch's fused
    attention kernels, whose backward has no derivative either)."""
    from .grad_mode import state
    if state.enabled:
        raise RuntimeError("scaled_dot_product_attention with dropout_p > 0 does not support double backward "
                           "(create_graph=True): its dropout mask is regenerated inside the fused kernels. Apply "
                           "dropout outside the attention, or set dropout_p=0 for the double backward")
    return OPS["_fused_attention_dropout_backward"].fn(grad, query, key, value, attn_mask, out, lse, rng, is_causal,
                                                       scale, dropout_p, *mask)


def packed_attention_backward(grad, qkv, num_heads, attn_mask, out, lse, is_causal, scale):
    """Grad of _packed_self_attention for qkv: the fused backward op, except under create_graph
    (grad mode on): then attention_backward's composite on views of qkv, stacked back."""
    from .grad_mode import state
    if not state.enabled:
        return OPS["_packed_self_attention_backward"].fn(grad, qkv, num_heads, attn_mask, out, lse, is_causal, scale)
    B, L, E3 = qkv.shape
    hd = E3 // 3 // num_heads
    q, k, v = qkv.reshape(B, L, 3, num_heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
    g, o = (t.reshape(B, L, num_heads, hd).transpose(1, 2) for t in (grad, out))
    grads = attention_backward(g, q, k, v, attn_mask, o, lse, is_causal, scale, (True, True, True))
    return _f("stack")(list(grads), 0).permute(1, 3, 0, 2, 4).reshape(B, L, E3)
