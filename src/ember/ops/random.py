"""Random ops: sampling factories and in-place fills, all drawing from an `ember.Generator`."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..autograd.derivatives import derivative
from ..core import dtype as D
from ..dispatch import OPS, defop
from .creation import check_size, factory_dtype, like_layout

__all__ = ["rand", "randn", "randint", "randperm", "multinomial", "bernoulli", "rand_like", "randn_like",
           "randint_like", "normal", "integer_dtype", "random_range", "dropout_backward_dtype"]


# ---- the rules, shared by the metas and both backends' kernels -----------------------------------

def integer_dtype(dtype) -> "D.dtype":
    """randint's and randperm's result dtype: `dtype`, or int64 when None."""
    return D.int64 if dtype is None else factory_dtype(dtype)


# random_ without `to` draws [from, 2^digits) on floats (the integers the dtype holds exactly)
_RANDOM_TO = {D.bool: 2, D.float16: 1 << 11, D.bfloat16: 1 << 8, D.float32: 1 << 24, D.float64: 1 << 53}


def random_range(dtype, from_, to) -> tuple:
    """random_'s [from, to): `to` None means up to the dtype's largest integer (exactly held)."""
    if to is None:
        to = _RANDOM_TO.get(dtype) or int(np.iinfo(dtype.np).max) + 1
    return from_, to


def dropout_backward_dtype(grad_output) -> "D.dtype":
    """grad * mask * scale: a floating grad keeps its dtype, another gives the default float."""
    return grad_output._dtype if grad_output._dtype.is_floating_point else D.get_default_dtype()


def _floating(dt, kernel: str, op: str):
    """torch's error for a sampling op asked for an integer or bool result."""
    if not dt.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{dt}\': {op} draws floating point values, '
                                  f"so it expects a floating point dtype")
    return dt


def _expands_to(shape: tuple, target: tuple) -> bool:
    """`shape` broadcasts to `target` without changing it (expand's rule)."""
    k = len(target) - len(shape)
    return k >= 0 and all(s == t or s == 1 for s, t in zip(shape, target[k:]))


def _check_p(p):
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")


def _check_integer_range(op: str, dt, from_: int, to: int):
    """random_ / randint: from < to, both ends held by an integer (or bool) result dtype."""
    if from_ >= to:
        raise RuntimeError(f"{op} expects 'from' to be less than 'to', but got from={from_} >= to={to}")
    if not dt.is_floating_point:
        lo, hi = (0, 1) if dt is D.bool else (int(np.iinfo(dt.np).min), int(np.iinfo(dt.np).max))
        if not lo <= from_ <= hi:
            raise RuntimeError(f"{op}: from is out of bounds for {dt} (from={from_}, the dtype holds [{lo}, {hi}])")
        if not lo <= to - 1 <= hi:
            raise RuntimeError(f"{op}: to - 1 is out of bounds for {dt} (to={to}, the dtype holds [{lo}, {hi}])")


# ---- metas ------------------------------------------------------------------------------------------

def _rand_meta(size, generator=None, dtype=None, device=None):
    check_size(size)
    return size, _floating(factory_dtype(dtype), "check_uniform_bounds", "rand")


def _randn_meta(size, generator=None, dtype=None, device=None):
    check_size(size)
    return size, _floating(factory_dtype(dtype), "normal_kernel_cpu", "randn")


def _randint_meta(low, high, size, generator=None, dtype=None, device=None):
    check_size(size)
    dt = integer_dtype(dtype)
    _check_integer_range("random_", dt, low, high)
    return tuple(size), dt


def _randperm_meta(n, generator=None, dtype=None, device=None):
    check_size((n,))
    dt = integer_dtype(dtype)
    if dt is D.bool:
        raise NotImplementedError("\"randperm\" not implemented for 'bool': choose a numeric dtype")
    return (n,), dt


def _normal_meta(self, mean=0.0, std=1.0, generator=None):
    _floating(self._dtype, "normal_kernel_cpu", "normal_")
    if std < 0:
        raise RuntimeError(f"normal_ expects std >= 0.0, but found std {std}")
    return self._shape, self._dtype


def _uniform_meta(self, from_=0.0, to=1.0, generator=None):
    _floating(self._dtype, "check_uniform_bounds", "uniform_")
    if from_ > to:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}")
    return self._shape, self._dtype


def _random_meta(self, from_=0, to=None, generator=None):
    _check_integer_range("random_", self._dtype, *random_range(self._dtype, from_, to))
    return self._shape, self._dtype


def _exponential_meta(self, lambd=1.0, generator=None):
    if not self._dtype.is_floating_point:
        raise RuntimeError(f"Exponential distribution is a continuous probability distribution. dtype must be a "
                           f"floating point but you specified {self._dtype}")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    return self._shape, self._dtype


def _bernoulli_meta(self, p=None, generator=None):
    if p is None:
        _floating(self._dtype, "bernoulli_tensor_cpu_p_", "bernoulli (probabilities from the tensor)")
    else:
        _check_p(p)
    return self._shape, self._dtype


def _bernoulli__meta(self, p=0.5, generator=None):
    if isinstance(p, Tensor):
        if not _expands_to(p._shape, self._shape):
            raise RuntimeError(f"bernoulli_: the probabilities' size {list(p._shape)} cannot be expanded to the "
                               f"tensor's size {list(self._shape)}")
        _floating(p._dtype, "bernoulli_tensor_cpu_p_", "bernoulli_ (probabilities from a tensor)")
    else:
        _check_p(p)
    return self._shape, self._dtype


def _multinomial_meta(self, num_samples, replacement=False, generator=None):
    if len(self._shape) not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got a {len(self._shape)}-d tensor")
    if not self._dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {self._dtype}")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples (got {num_samples})")
    categories = self._shape[-1]
    if not replacement and num_samples > categories:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                           f"(n_sample={num_samples}, prob_dist.size(-1)={categories})")
    if categories == 0:
        raise RuntimeError("multinomial: invalid multinomial distribution (no categories, so the sum of "
                           "probabilities is 0)")
    return self._shape[:-1] + (num_samples,), D.int64


def _native_dropout_meta(input, p, train=None):
    if train is not False:
        if not 0 <= p <= 1:
            raise RuntimeError(f"native_dropout: p must be in [0, 1], got {p} (bernoulli_ expects p to be in "
                               f"[0, 1], but got p={1 - p})")
        if not input._dtype.is_floating_point:
            raise RuntimeError(f"native_dropout: result type Float can't be cast to the desired output type "
                               f"{input._dtype} (dropout in training expects a floating point input)")
    return (input._shape, input._dtype), (input._shape, D.bool)


def _native_dropout_backward_meta(grad_output, mask, scale):
    if mask._dtype is not D.bool:
        raise RuntimeError(f"native_dropout_backward: Mask should be Bool Scalar Type, got {mask._dtype}")
    if not _expands_to(mask._shape, grad_output._shape):
        raise RuntimeError(f"native_dropout_backward: the mask's size {list(mask._shape)} does not broadcast to the "
                           f"gradient's size {list(grad_output._shape)}")
    return grad_output._shape, dropout_backward_dtype(grad_output)


_F = "ScalarType? dtype=None, Device? device=None, bool requires_grad=False"
defop(f"rand(int[]... size, *, Generator? generator=None, {_F}) -> Tensor", meta=_rand_meta, out="dtype")
defop(f"randn(int[]... size, *, Generator? generator=None, {_F}) -> Tensor", meta=_randn_meta, out="dtype")
defop(f"randint(int low, int high, int[] size, *, Generator? generator=None, {_F}) -> Tensor", meta=_randint_meta,
      out="dtype")
defop(f"randperm(int n, *, Generator? generator=None, {_F}) -> Tensor", meta=_randperm_meta, out="dtype")
defop("normal_(Tensor(a!) self, float mean=0.0, float std=1.0, *, Generator? generator=None) -> Tensor(a!)",
      meta=_normal_meta, method=True)
defop("uniform_(Tensor(a!) self, float from_=0.0, float to=1.0, *, Generator? generator=None) -> Tensor(a!)",
      meta=_uniform_meta, method=True)
defop("random_(Tensor(a!) self, int from_=0, int? to=None, *, Generator? generator=None) -> Tensor(a!)",
      meta=_random_meta, method=True)
defop("exponential_(Tensor(a!) self, float lambd=1.0, *, Generator? generator=None) -> Tensor(a!)",
      meta=_exponential_meta, method=True)
defop("bernoulli(Tensor self, float? p=None, *, Generator? generator=None) -> Tensor", meta=_bernoulli_meta,
      method=True)
defop("bernoulli_(Tensor(a!) self, Tensor|Scalar p=0.5, *, Generator? generator=None) -> Tensor(a!)",
      meta=_bernoulli__meta, method=True)
defop("multinomial(Tensor self, int num_samples, bool replacement=False, *, Generator? generator=None) -> Tensor",
      meta=_multinomial_meta, method=True)
# fused dropout, as PyTorch's: (input * mask / (1 - p), bool mask) in one kernel, the mask saved for backward
defop("native_dropout(Tensor input, float p, bool? train=None) -> (Tensor, Tensor)", meta=_native_dropout_meta)
defop("native_dropout_backward(Tensor grad_output, Tensor mask, float scale) -> Tensor",
      meta=_native_dropout_backward_meta)
derivative("native_dropout",
           input="native_dropout_backward(grad, result1, 1.0 if train is False else 0.0 if p == 1 else 1 / (1 - p))")
derivative("native_dropout_backward", grad_output="native_dropout_backward(grad, mask, scale)")

rand = OPS["rand"].fn
randn = OPS["randn"].fn
randperm = OPS["randperm"].fn
multinomial = OPS["multinomial"].fn
bernoulli = OPS["bernoulli"].fn
_randint = OPS["randint"].fn


_random_ = OPS["random_"].fn


def random_(self, *args, generator=None, **kwargs):
    """random_(), random_(to) or random_(from, to): integers drawn uniformly from [from, to), as
    PyTorch's overloads (one positional number is `to`)."""
    if len(args) == 1 and not kwargs:
        args = (0, args[0])
    return _random_(self, *args, generator=generator, **kwargs)


random_._op, random_._dispatch = OPS["random_"], _random_
OPS["random_"].fn = random_
Tensor.random_ = random_


def randint(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False, out=None):
    """`randint(high, size)` or `randint(low, high, size)` (PyTorch's overloads)."""
    if size is not None:
        args = args + (size,)
    if len(args) == 2:
        low, (high, size) = 0, args
    elif len(args) == 3:
        low, high, size = args
    else:
        raise TypeError(f"randint() takes (high, size) or (low, high, size), got {len(args)} positional arguments")
    return _randint(low, high, tuple(size), generator=generator, dtype=dtype, device=device,
                    requires_grad=requires_grad, out=out)


def _like(name):
    fn = OPS[name].fn

    def like(input, *, dtype=None, device=None, generator=None, requires_grad=False, memory_format=None):
        made = fn(*input._shape, generator=generator, dtype=dtype or input._dtype, device=device or input.device)
        out = like_layout(input, made, memory_format, like.__name__)    # (the values in row-major order)
        out.requires_grad = requires_grad
        return out
    like.__name__ = name + "_like"
    return like


rand_like = _like("rand")
randn_like = _like("randn")


def randint_like(input, low=0, high=None, *, dtype=None, device=None, generator=None, memory_format=None):
    if high is None:
        low, high = 0, low
    made = _randint(low, high, input._shape, generator=generator, dtype=dtype or input._dtype,
                    device=device or input.device)
    return like_layout(input, made, memory_format, "randint_like")


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None):
    """`normal(mean, std, size)` with float mean/std, or elementwise with tensor mean and/or std."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        z = randn(*ref._shape, generator=generator, dtype=ref._dtype, device=ref.device)
        return z * std + mean
    if size is None:
        raise TypeError("normal(mean: float, std: float) needs a size")
    return randn(*size, generator=generator, dtype=dtype, device=device).mul_(std).add_(mean)
