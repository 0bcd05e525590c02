"""CUDA gather/scatter family on two Triton kernels, and the composites built on them:
gather, index_select, embedding, scatter_add, index_add; plus stack/cat and triu/tril.

Index values are not bounds-checked on the device (PyTorch uses device-side asserts); the
host checks shapes and dtypes.
"""
from __future__ import annotations

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.shape import normalize_dim
from ...dispatch import OPS
from .elementwise import BLOCK, MAXDIM, _CK, _collapse, _compute_dtype, _empty, copy_cast, launch_tern

_ATOMIC_OK = {"float32", "float64", "float16", "int32", "int64"}


def _kernels():
    from .kernels import indexing
    return indexing


def _check_index(name, index):
    if index._dtype is not D.int64 and index._dtype is not D.int32:
        raise RuntimeError(f"{name}(): Expected dtype int64 (or int32) for index, got {index._dtype}")


def _launch(kernel, shape, ptrs, per_strides, scalars, consts, device):
    """Runs an index kernel over `shape`; per_strides: one stride list per strided operand."""
    from .compiler import SIG, run
    n = 1
    for s in shape:
        n *= s
    if n == 0:
        return
    sizes, sts = _collapse(list(shape), [list(s) for s in per_strides])
    nd = len(sizes)
    if nd > MAXDIM:
        raise NotImplementedError(f"indexing kernel over {nd} non-mergeable dims (at most {MAXDIM})")
    pad = lambda v: list(v) + [0] * (MAXDIM - len(v))  # noqa: E731
    args = [(name, t, "*" + SIG[t._dtype.name]) for name, t in ptrs] + [("n", n, "i64")] + scalars
    s = pad(sizes)
    args += [(f"s{k}", s[k], "i64") for k in range(1, MAXDIM)]
    for prefix, st in zip(("ot", "xt" if kernel.__name__ == "gather_kernel" else "st", "it"), sts):
        args += [(f"{prefix}{k}", pad(st)[k], "i64") for k in range(MAXDIM)]
    run(kernel, ((n + BLOCK - 1) // BLOCK,), args, dict(consts, NDIM=nd, BLOCK=BLOCK), device.index or 0)


def gather(self, dim, index, sparse_grad=False):
    _check_index("gather", index)
    nd = max(self.ndim, 1)
    d = normalize_dim(dim, nd)
    if index.ndim != self.ndim:
        raise RuntimeError(f"gather(): Index tensor must have the same number of dimensions as input tensor "
                           f"({index.ndim} vs {self.ndim})")
    out = _empty(index._shape, self._dtype, self.device)
    if not self._shape:
        return copy_cast(out, self)
    xs = list(self._stride)
    xdim = xs[d]
    xs[d] = 0
    _launch(_kernels().gather_kernel, index._shape, [("out_ptr", out), ("x_ptr", self), ("idx_ptr", index)],
            [out._stride, xs, index._stride], [("xdim", xdim, "i64")], {}, self.device)
    return out


def _along(index, d, shape):
    """A 1-D index along dim d as a broadcast view over `shape` (strides 0 elsewhere)."""
    view = [1] * len(shape)
    view[d] = index._shape[0]
    return index.reshape(*view).expand(*shape)


def index_select(self, dim, index):
    _check_index("index_select", index)
    if index.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector, got {index.ndim} dims")
    if not self._shape:
        return gather(self.reshape(1), 0, index.reshape(-1)).reshape(*index._shape)
    d = normalize_dim(dim, self.ndim)
    shape = list(self._shape)
    shape[d] = index.numel()
    return gather(self, d, _along(index.reshape(-1), d, shape))


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    flat = index_select(weight, 0, indices.reshape(-1))
    return flat.reshape(*indices._shape, weight._shape[-1])


def _scatter_add_into(out, d, index, src, alpha=1):
    if out._dtype.name not in _ATOMIC_OK:
        raise NotImplementedError(f"scatter_add/index_add on CUDA supports {sorted(_ATOMIC_OK)}, got {out._dtype}")
    os_ = list(out._stride)
    odim = os_[d]
    os_[d] = 0
    ck = _CK[_compute_dtype(out._dtype).name]
    sty = "fp64" if ck == 1 else ("fp32" if ck == 0 else "i64")
    _launch(_kernels().scatter_add_kernel, index._shape, [("out_ptr", out), ("src_ptr", src), ("idx_ptr", index)],
            [os_, src._stride, index._stride], [("odim", odim, "i64"), ("alpha", alpha, sty)], {"CK": ck},
            out.device)
    return out


def scatter_add(self, dim, index, src):
    _check_index("scatter_add", index)
    d = normalize_dim(dim, max(self.ndim, 1))
    out = copy_cast(_empty(self._shape, self._dtype, self.device), self)
    return _scatter_add_into(out, d, index, src)


def scatter_add_(self, dim, index, src):
    _check_index("scatter_add_", index)
    return _scatter_add_into(self, normalize_dim(dim, max(self.ndim, 1)), index, src)


def index_add(self, dim, index, source, alpha=1):
    _check_index("index_add", index)
    d = normalize_dim(dim, max(self.ndim, 1))
    out = copy_cast(_empty(self._shape, self._dtype, self.device), self)
    return _scatter_add_into(out, d, _along(index.reshape(-1), d, source._shape), source, alpha)


def index_add_(self, dim, index, source, alpha=1):
    _check_index("index_add_", index)
    d = normalize_dim(dim, max(self.ndim, 1))
    return _scatter_add_into(self, d, _along(index.reshape(-1), d, source._shape), source, alpha)


def cat(tensors, dim=0):
    live = [t for t in tensors if not (t.ndim == 1 and t._shape[0] == 0)] or list(tensors[:1])
    ref = live[0]
    d = normalize_dim(dim, ref.ndim)
    dt = D.result_type(*tensors) if len(tensors) > 1 else ref._dtype
    for t in live:
        if t.ndim != ref.ndim or any(a != b for k, (a, b) in enumerate(zip(t._shape, ref._shape)) if k != d):
            raise RuntimeError(f"cat(): sizes of tensors must match except in dimension {d}: "
                               f"{list(ref._shape)} vs {list(t._shape)}")
    shape = list(ref._shape)
    shape[d] = sum(t._shape[d] for t in live)
    out = _empty(tuple(shape), dt, ref.device)
    start = 0
    for t in live:
        n = t._shape[d]
        copy_cast(OPS["slice"].fn(out, d, start, start + n, 1), t)
        start += n
    return out


def stack(tensors, dim=0):
    ref = tensors[0]
    d = normalize_dim(dim, ref.ndim + 1)
    return cat([t.unsqueeze(d) for t in tensors], d)


def _tri(upper):
    def kernel(self, diagonal=0):
        r, c = self._shape[-2], self._shape[-1]
        keep = OPS["ones"].fn(r, c, dtype=D.bool)       # built on the host: a (rows x cols) mask
        keep = OPS["triu" if upper else "tril"].kernels["cpu"](keep, diagonal)
        keep = keep.to(self.device)
        out = _empty(self._shape, self._dtype, self.device)
        return launch_tern(0, out, keep, self, 0, _CK[_compute_dtype(self._dtype).name]
                           if self._dtype.category == 2 else _CK[self._dtype.name], True)
    return kernel


def _register():
    reg = lambda name: OPS[name].register("cuda")  # noqa: E731
    reg("gather")(gather)
    reg("index_select")(index_select)
    reg("embedding")(embedding)
    reg("scatter_add")(scatter_add)
    reg("scatter_add_")(scatter_add_)
    reg("index_add")(index_add)
    reg("index_add_")(index_add_)
    reg("cat")(cat)
    reg("stack")(stack)
    reg("triu")(_tri(True))
    reg("tril")(_tri(False))


_register()


def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector norms composed of CUDA kernels (abs, pow, sum, amax, sqrt)."""
    x = self if dtype is None else self.to(dtype)
    dims = () if dim is None else dim
    if p is None or p == "fro" or p == 2:
        return (x * x).sum(dims, keepdim).sqrt()
    if p == 1:
        return x.abs().sum(dims, keepdim)
    if p == float("inf"):
        return x.abs().amax(dims, keepdim)
    if p == float("-inf"):
        return x.abs().amin(dims, keepdim)
    if isinstance(p, (int, float)) and p != 0:
        return (x.abs() ** p).sum(dims, keepdim) ** (1.0 / p)
    raise NotImplementedError(f"norm on CUDA: p={p!r} is not implemented yet")


OPS["norm"].register("cuda")(norm)


def _all_any(is_all):
    def kernel(self, dim=None, keepdim=False):
        dims = () if dim is None else dim
        if is_all:
            return (self == 0).sum(dims, keepdim) == 0
        return (self != 0).sum(dims, keepdim) > 0
    return kernel


OPS["all"].register("cuda")(_all_any(True))
OPS["any"].register("cuda")(_all_any(False))
