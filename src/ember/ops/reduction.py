"""Reduction ops: declarations, their shape/dtype rules, and the thin composites over them.

Every reduction takes `dim` as None (all dims), an int, or a list/tuple of ints; negative dims
wrap; `keepdim=True` keeps each reduced dim as size 1. As in PyTorch, an empty dim list means
"all dims" for sum/mean/amax/... (but "no dim" for all/any).

Declared ops (kernels in backends/<device>/reduction.py):
  sum, nansum, prod, mean, nanmean, amax, amin, argmax, argmin, var, std, logsumexp, norm,
  all, any, count_nonzero, cumsum, cumprod, cummax, cummin, logcumsumexp, softmax, log_softmax,
  _max_dim, _min_dim (the `(values, indices)` forms of max/min over one dim).
Composites (Python over ops): max, min, aminmax, var_mean, std_mean.

The helpers below (`reduce_dims`, `sum_dtype`, ...) hold the backend-independent rules; kernels
and the `meta=` functions share them. A meta returns `(shape, dtype)`, or a tuple of such pairs
for ops with several outputs.
"""
from __future__ import annotations

import math
import operator
import sys
from collections import namedtuple

from .._tensor import Tensor
from ..core import dtype as D
from ..core.shape import normalize_dim
from ..dispatch import OPS, defop
from ..autograd.derivatives import derivative, nondifferentiable

# ---- return types (like torch.return_types) ---------------------------------------------------


class return_types:  # noqa: N801 - mirrors torch.return_types
    """Named tuples returned by max/min over a dim, aminmax, cummax and cummin."""
    max = namedtuple("max", ["values", "indices"])
    min = namedtuple("min", ["values", "indices"])
    cummax = namedtuple("cummax", ["values", "indices"])
    cummin = namedtuple("cummin", ["values", "indices"])
    aminmax = namedtuple("aminmax", ["min", "max"])


for _rt in (return_types.max, return_types.min, return_types.cummax, return_types.cummin,
            return_types.aminmax):
    _rt.__module__ = "ember.return_types"
    _rt.__repr__ = (lambda self, _n=_rt.__name__: f"ember.return_types.{_n}(\n" + ",\n".join(
        f"{k}={v!r}" for k, v in zip(self._fields, self)) + ")")


# ---- rules shared by kernels and metas ----------------------------------------------------------

def reduce_dims(name: str, dim, ndim: int, empty_all: bool = True):
    """`dim` as a sorted tuple of non-negative dims, or None for "all dims".

    0-dim tensors accept dim 0 / -1 (and reduce "everything", i.e. return None). With
    `empty_all`, an empty list means all dims (sum, mean, amax, ...); otherwise it means none.
    """
    if dim is None:
        return None
    if type(dim) is int:
        if ndim == 0:
            normalize_dim(dim, 0, f"{name}(): dim")
            return None
        if 0 <= dim < ndim:
            return (dim,)
        return (normalize_dim(dim, ndim, f"{name}(): dim"),)
    if isinstance(dim, (tuple, list)):
        if not dim:
            return None if empty_all else ()
        if ndim == 0:
            out = tuple(normalize_dim(d, 0, f"{name}(): dim") for d in dim)
        else:
            out = tuple(normalize_dim(d, ndim, f"{name}(): dim") for d in dim)
        if len(set(out)) != len(out):
            dup = next(d for d in out if out.count(d) > 1)
            raise RuntimeError(f"{name}(): dim {dup} appears multiple times in the list of dims {list(dim)}")
        return None if ndim == 0 else tuple(sorted(out))
    if isinstance(dim, bool) or not hasattr(dim, "__index__"):
        raise TypeError(f"{name}(): argument 'dim' must be None, an int or a tuple of ints, "
                        f"not {type(dim).__name__}")
    return reduce_dims(name, operator.index(dim), ndim, empty_all)


def one_dim(name: str, dim, ndim: int) -> int:
    """A single required int dim (cumsum, softmax, max(dim), ...), wrapped; -1 means none for 0-d."""
    if type(dim) is not int:
        if isinstance(dim, bool) or not hasattr(dim, "__index__"):
            raise TypeError(f"{name}(): argument 'dim' must be int, not {type(dim).__name__}")
        dim = operator.index(dim)
    return normalize_dim(dim, ndim, f"{name}(): dim")


def reduced_shape(shape: tuple, dims, keepdim: bool) -> tuple:
    if dims is None or not shape:
        return (1,) * len(shape) if keepdim else ()
    if keepdim:
        return tuple(1 if i in dims else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in dims)


def check_nonempty(name: str, shape: tuple, dims) -> None:
    """max/amax/argmax/...: no identity, so reducing an empty dim is an error."""
    if dims is None:
        if 0 in shape:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                               f"Specify the reduction dim with the 'dim' argument.")
        return
    for d in dims:
        if shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def sum_dtype(self, dtype):
    """sum/prod/nansum/cumsum: integer and bool inputs accumulate (and return) int64."""
    if dtype is not None:
        return dtype
    d = self._dtype
    return d if d.is_floating_point else D.int64


def mean_dtype(name: str, self, dtype):
    if dtype is not None:
        if not dtype.is_floating_point:
            raise RuntimeError(f"{name}(): could not infer output dtype. Optional dtype must be either a "
                               f"floating point or complex dtype. Got: {D.SCALAR_TYPE[dtype]}")
        return dtype
    d = self._dtype
    if not d.is_floating_point:
        raise RuntimeError(f"{name}(): could not infer output dtype. Input dtype must be either a floating "
                           f"point or complex dtype. Got: {D.SCALAR_TYPE[d]}")
    return d


def nanmean_dtype(self, dtype):
    if not self._dtype.is_floating_point:
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                           f"{D.SCALAR_TYPE[self._dtype]}")
    return mean_dtype("nanmean", self, dtype)


def float_dtype(self):
    """The dtype of logsumexp: the input's if floating, else the default float dtype."""
    d = self._dtype
    return d if d.is_floating_point else D.get_default_dtype()


def var_args(name: str, self, dim, unbiased, correction):
    """Resolves the legacy `var(x, unbiased)` / `var(x, dim, unbiased)` forms; returns (dim, correction)."""
    if not self._dtype.is_floating_point:
        raise RuntimeError(f"{name}(): std and var only support floating point and complex dtypes, "
                           f"got {self._dtype}")
    if isinstance(dim, bool):  # var(x, False): the legacy `unbiased` positional
        if unbiased is not None:
            raise TypeError(f"{name}(): got a bool as dim ({dim}) and unbiased={unbiased}; "
                            f"pass dim as an int or a tuple of ints")
        dim, unbiased = None, dim
    if unbiased is not None:
        if correction is not None:
            raise TypeError(f"{name}(): pass only one of 'unbiased' (legacy) and 'correction', "
                            f"got unbiased={unbiased} and correction={correction}")
        if not isinstance(unbiased, bool):
            raise TypeError(f"{name}(): argument 'unbiased' must be bool, not {type(unbiased).__name__}")
        return dim, (1 if unbiased else 0)
    if correction is None:
        return dim, 1
    if isinstance(correction, bool) or not isinstance(correction, (int, float)):
        raise TypeError(f"{name}(): argument 'correction' must be a number, not {type(correction).__name__}")
    return dim, correction


def softmax_dtype(name: str, self, dtype):
    d = self._dtype if dtype is None else dtype
    if not d.is_floating_point:
        raise NotImplementedError(f"{name}(): not implemented for dtype {d}; softmax needs a floating point "
                                  f"input or dtype= (e.g. dtype=ember.float32)")
    return d


def norm_args(self, p, dim, dtype):
    """Validates norm's arguments; returns (p, dims, out_dtype) with p a float or 'nuc'."""
    d = self._dtype
    if not d.is_floating_point:
        raise RuntimeError(f"norm(): expected a floating point tensor as input, got {d}")
    if dtype is not None:
        if not dtype.is_floating_point or D.promote_types(d, dtype) is not dtype:
            raise RuntimeError(f"norm(): the dtype of the input ({d}) should be convertible without narrowing "
                               f"to the specified dtype ({dtype})")
        d = dtype
    ndim = len(self._shape)
    if isinstance(p, str):
        if p not in ("fro", "nuc"):
            raise RuntimeError(f"norm(): order {p!r} not supported; use a number, 'fro' or 'nuc'")
        if dim is None and p == "nuc":
            dim = (0, 1) if ndim == 2 else tuple(range(ndim))
        ndims = 1 if type(dim) is int else (None if dim is None else len(dim))
        if p == "nuc" or (ndims is not None and ndims > 2):
            if ndims != 2:
                raise RuntimeError(f"norm(): the {p!r} matrix norm needs dim to be a 2-tuple, got dim={dim} "
                                   f"for an input with {ndim} dims")
            if p == "nuc":
                dims = reduce_dims("norm", dim, ndim)
                if dims is None or len(dims) != 2:
                    raise RuntimeError(f"norm(): the 'nuc' norm needs two distinct dims, got {dim}")
                return "nuc", tuple(normalize_dim(x, ndim) for x in dim), d
        p = 2.0
    elif p is None:
        p = 2.0
    elif isinstance(p, (int, float)):
        p = float(p)
    else:
        raise TypeError(f"norm(): argument 'p' must be a number or 'fro'/'nuc', not {type(p).__name__}")
    dims = reduce_dims("norm", dim, ndim)
    if p < 0 or p == math.inf:
        if dims is None:
            if 0 in self._shape:
                raise RuntimeError(f"norm(): cannot compute the {_fmt_p(p)} norm on an empty tensor because "
                                   f"the operation does not have an identity")
        else:
            for x in dims:
                if self._shape[x] == 0:
                    raise RuntimeError(f"norm(): cannot compute the {_fmt_p(p)} norm on the dimension {x} "
                                       f"because this dimension is empty and the operation does not have "
                                       f"an identity")
    return p, dims, d


def _fmt_p(p):
    return int(p) if math.isfinite(p) and p == int(p) else p


# ---- meta functions ---------------------------------------------------------------------------

def _meta_sum(name):
    def meta(self, dim=None, keepdim=False, dtype=None):
        return reduced_shape(self._shape, reduce_dims(name, dim, len(self._shape)), keepdim), sum_dtype(self, dtype)
    return meta


def _meta_prod(self, dim=None, keepdim=False, dtype=None):
    dims = None if dim is None else (one_dim("prod", dim, len(self._shape)),)
    return reduced_shape(self._shape, dims, keepdim), sum_dtype(self, dtype)


def _meta_mean(name):
    def meta(self, dim=None, keepdim=False, dtype=None):
        dt = nanmean_dtype(self, dtype) if name == "nanmean" else mean_dtype(name, self, dtype)
        return reduced_shape(self._shape, reduce_dims(name, dim, len(self._shape)), keepdim), dt
    return meta


def _meta_amax(name):
    def meta(self, dim=(), keepdim=False):
        dims = reduce_dims(name, dim, len(self._shape))
        check_nonempty(name, self._shape, dims)
        return reduced_shape(self._shape, dims, keepdim), self._dtype
    return meta


def check_arg_extremum(name: str, self, dims) -> None:
    """argmax/argmin (and max/min over a dim): no bool input for argmax/argmin, no empty reduction."""
    shape = self._shape
    if name in ("argmax", "argmin") and self._dtype is D.bool:
        raise RuntimeError(f"{name}(): does not support bool input; convert it first, e.g. x.to(ember.uint8)")
    if dims is None:
        if 0 in shape:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        return
    for d in dims:
        if shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def _meta_argmax(name):
    def meta(self, dim=None, keepdim=False):
        ndim = len(self._shape)
        dims = None if dim is None else (one_dim(name, dim, ndim),)
        dims = dims if ndim else None
        check_arg_extremum(name, self, dims)
        return reduced_shape(self._shape, dims, keepdim), D.int64
    return meta


def _meta_max_dim(name):
    def meta(self, dim, keepdim=False):
        ndim = len(self._shape)
        d = one_dim(name, dim, ndim)
        dims = (d,) if ndim else None
        check_arg_extremum(name, self, dims)
        shape = reduced_shape(self._shape, dims, keepdim)
        return (shape, self._dtype), (shape, D.int64)
    return meta


def _meta_var(name):
    def meta(self, dim=None, unbiased=None, keepdim=False, correction=None):
        dim, _ = var_args(name, self, dim, unbiased, correction)
        return reduced_shape(self._shape, reduce_dims(name, dim, len(self._shape)), keepdim), self._dtype
    return meta


def _meta_logsumexp(self, dim, keepdim=False):
    return reduced_shape(self._shape, reduce_dims("logsumexp", dim, len(self._shape)), keepdim), float_dtype(self)


def _meta_norm(self, p="fro", dim=None, keepdim=False, dtype=None):
    p, dims, dt = norm_args(self, p, dim, dtype)
    return reduced_shape(self._shape, dims, keepdim), dt


def _meta_all(self, dim=None, keepdim=False):
    dims = reduce_dims("all", dim, len(self._shape), empty_all=False)
    return reduced_shape(self._shape, dims, keepdim), (D.uint8 if self._dtype is D.uint8 else D.bool)


def _meta_count_nonzero(self, dim=None):
    return reduced_shape(self._shape, reduce_dims("count_nonzero", dim, len(self._shape)), False), D.int64


def _meta_cumsum(name):
    def meta(self, dim, dtype=None):
        one_dim(name, dim, len(self._shape))
        return self._shape, sum_dtype(self, dtype)
    return meta


def _meta_cummax(name):
    def meta(self, dim):
        one_dim(name, dim, len(self._shape))
        return (self._shape, self._dtype), (self._shape, D.int64)
    return meta


def _meta_logcumsumexp(self, dim):
    one_dim("logcumsumexp", dim, len(self._shape))
    return self._shape, softmax_dtype("logcumsumexp", self, None)


def _meta_softmax(name):
    def meta(self, dim, dtype=None):
        one_dim(name, dim, len(self._shape))
        return self._shape, softmax_dtype(name, self, dtype)
    return meta


# ---- declarations -------------------------------------------------------------------------------

def _declare():
    for name in ("sum", "nansum"):
        defop(f"{name}(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
              meta=_meta_sum(name), method=True, out="dtype")
    defop("prod(Tensor self, int? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
          meta=_meta_prod, method=True, out="dtype")
    for name in ("mean", "nanmean"):
        defop(f"{name}(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
              meta=_meta_mean(name), method=True, out="dtype")
    for name in ("amax", "amin"):
        defop(f"{name}(Tensor self, int[] dim=(), bool keepdim=False) -> Tensor", meta=_meta_amax(name), method=True,
              out="exact")
    for name in ("argmax", "argmin"):
        defop(f"{name}(Tensor self, int? dim=None, bool keepdim=False) -> Tensor",
              meta=_meta_argmax(name), method=True, out="exact")
    for name in ("max", "min"):
        defop(f"_{name}_dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)",
              meta=_meta_max_dim(name))
    for name in ("var", "std"):
        defop(f"{name}(Tensor self, int[]? dim=None, bool? unbiased=None, bool keepdim=False, *, "
              f"Scalar? correction=None) -> Tensor", meta=_meta_var(name), method=True, out="cast")
    defop("logsumexp(Tensor self, int[] dim, bool keepdim=False) -> Tensor", meta=_meta_logsumexp, method=True,
          out="cast")
    defop("norm(Tensor self, Any p='fro', int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
          meta=_meta_norm, method=True, out="exact")
    for name in ("all", "any"):
        defop(f"{name}(Tensor self, int[]? dim=None, bool keepdim=False) -> Tensor", meta=_meta_all, method=True,
              out="exact")
    defop("count_nonzero(Tensor self, int[]? dim=None) -> Tensor", meta=_meta_count_nonzero, method=True)
    for name in ("cumsum", "cumprod"):
        defop(f"{name}(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor", meta=_meta_cumsum(name),
              method=True, out="dtype")
    for name in ("cummax", "cummin"):
        defop(f"{name}(Tensor self, int dim) -> (Tensor values, Tensor indices)", meta=_meta_cummax(name),
              method=True)
    defop("logcumsumexp(Tensor self, int dim) -> Tensor", meta=_meta_logcumsumexp, method=True, out="exact")
    for name in ("softmax", "log_softmax"):
        defop(f"{name}(Tensor self, int dim, ScalarType? dtype=None) -> Tensor", meta=_meta_softmax(name),
              method=True, out="exact")


_declare()

_amax = OPS["amax"].fn
_amin = OPS["amin"].fn
_max_dim = OPS["_max_dim"].fn
_min_dim = OPS["_min_dim"].fn
_var = OPS["var"].fn
_std = OPS["std"].fn
_mean = OPS["mean"].fn
_maximum = OPS["maximum"].fn
_minimum = OPS["minimum"].fn


# ---- composites -----------------------------------------------------------------------------------

def _shape_of(name, input):
    try:
        return input._shape
    except AttributeError:
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}") from None


def _max_like(name, full, by_dim, pairwise):
    def fn(input, dim=None, keepdim=False, *, other=None):
        if other is not None or isinstance(dim, Tensor):
            if other is None:
                other = dim
            elif dim is not None:
                raise TypeError(f"{name}(): pass either dim or other, not both")
            if keepdim:
                raise TypeError(f"{name}(): keepdim is not accepted with a tensor 'other' (elementwise form)")
            return pairwise(input, other)
        if dim is None:
            shape = _shape_of(name, input)
            if keepdim:
                raise TypeError(f"{name}(): keepdim=True needs a dim; {name}() over all elements returns "
                                f"a 0-dim tensor")
            if 0 in shape:
                raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                                   f"Specify the reduction dim with the 'dim' argument.")
            return full(input)
        return by_dim(input, dim, keepdim)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"{name}(input) -> 0-dim tensor; {name}(input, dim, keepdim=False) -> "
                  f"(values, indices); {name}(input, other) -> elementwise {'maximum' if name == 'max' else 'minimum'}")
    return fn


max = _max_like("max", _amax, _max_dim, _maximum)  # noqa: A001 - PyTorch's names
min = _max_like("min", _amin, _min_dim, _minimum)  # noqa: A001


def aminmax(input, *, dim=None, keepdim=False):
    """(min, max) over all elements or over one dim."""
    shape = _shape_of("aminmax", input)
    if dim is None:
        if 0 in shape:
            raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation "
                               "has no identity.")
        return return_types.aminmax(_amin(input, (), keepdim), _amax(input, (), keepdim))
    d = one_dim("aminmax", dim, len(shape))
    if shape and shape[d] == 0:
        raise IndexError(f"aminmax(): Expected reduction dim {d} to have non-zero size.")
    return return_types.aminmax(_amin(input, d, keepdim), _amax(input, d, keepdim))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over `dim`; arguments as in var()."""
    _shape_of("var_mean", input)
    dim, corr = var_args("var_mean", input, dim, unbiased, correction)
    return _var(input, dim, None, keepdim, correction=corr), _mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over `dim`; arguments as in std()."""
    _shape_of("std_mean", input)
    dim, corr = var_args("std_mean", input, dim, unbiased, correction)
    return _std(input, dim, None, keepdim, correction=corr), _mean(input, dim, keepdim)


COMPOSITES = {"max": max, "min": min, "aminmax": aminmax, "var_mean": var_mean, "std_mean": std_mean}
Tensor.max = max
Tensor.min = min
Tensor.aminmax = aminmax


def _export():
    """Makes the composites `ember.max` etc. (the package's op loop only exports declared ops)."""
    pkg = sys.modules.get(__name__.split(".")[0])
    if pkg is not None:
        for k, v in COMPOSITES.items():
            setattr(pkg, k, v)
        if not hasattr(pkg, "return_types"):
            pkg.return_types = return_types


_export()


# ---- derivatives ----------------------------------------------------------------------------------

def _derivatives():
    d = derivative
    d("sum", self="reduce_backward(grad, self_shape, dim, keepdim)")
    d("nansum", self="where(self.isnan(), 0.0, reduce_backward(grad, self_shape, dim, keepdim))")
    d("mean", self="mean_backward(grad, self_shape, dim, keepdim)")
    d("nanmean", self="nanmean_backward(grad, self, dim, keepdim)")
    d("prod", self="prod_backward(grad, self, dim, keepdim)")
    d("amax", self="amax_backward(grad, self, result, dim, keepdim)")
    d("amin", self="amax_backward(grad, self, result, dim, keepdim)")
    d("_max_dim", self="value_selecting_backward(grad, dim, result1, self_shape, keepdim)")
    d("_min_dim", self="value_selecting_backward(grad, dim, result1, self_shape, keepdim)")
    d("var", self="var_backward(grad, self, dim, unbiased, keepdim, correction)")
    d("std", self="std_backward(grad, self, result, dim, unbiased, keepdim, correction)")
    d("logsumexp", self="logsumexp_backward(grad, self, result, dim, keepdim)")
    d("norm", self="norm_backward(grad, self, result, p, dim, keepdim)")
    d("cumsum", self="cumsum_backward(grad, dim)")
    d("cumprod", self="cumprod_backward(grad, self, result, dim)")
    d("logcumsumexp", self="logcumsumexp_backward(grad, self, result, dim)")
    d("cummax", self="cummaxmin_backward(grad, self, result1, dim)")
    d("cummin", self="cummaxmin_backward(grad, self, result1, dim)")
    d("softmax", self="softmax_backward(grad, result, dim)")
    d("log_softmax", self="log_softmax_backward(grad, result, dim)")
    nondifferentiable("argmax", "argmin", "all", "any", "count_nonzero")


_derivatives()
