"""CPU kernels of the random ops (NumPy's PCG64 through ember.Generator)."""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.device import CPU
from ...random import get_generator
from ._common import arr, impl

_from_numpy = Tensor._from_numpy


def _float_dt(dtype, op):
    dt = D.get_default_dtype() if dtype is None else dtype
    if dt.category != 2:
        raise RuntimeError(f"{op}: expected a floating point dtype, got {dt}")
    return dt


def _sample_dtype(dt):
    return np.float64 if dt is D.float64 else np.float32


@impl("rand")
def _rand(size, generator=None, dtype=None, device=None):
    dt = _float_dt(dtype, "rand")
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.random(size, dtype=_sample_dtype(dt)).astype(dt.np, copy=False), dt)


@impl("randn")
def _randn(size, generator=None, dtype=None, device=None):
    dt = _float_dt(dtype, "randn")
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.standard_normal(size, dtype=_sample_dtype(dt)).astype(dt.np, copy=False), dt)


@impl("randint")
def _randint(low, high, size, generator=None, dtype=None, device=None):
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = D.int64 if dtype is None else dtype
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.integers(low, high, size, dtype=np.int64).astype(dt.np, copy=False), dt)


@impl("randperm")
def _randperm(n, generator=None, dtype=None, device=None):
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    dt = D.int64 if dtype is None else dtype
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.permutation(n).astype(dt.np, copy=False), dt)


def _fill(self, values):
    np.copyto(arr(self), values, casting="unsafe")
    return self


@impl("normal_")
def _normal_(self, mean=0.0, std=1.0, generator=None):
    if std < 0:
        raise RuntimeError(f"normal_ expects std >= 0.0, but found std {std}")
    g = get_generator(generator, CPU)._np
    return _fill(self, g.normal(mean, std, self._shape))


@impl("uniform_")
def _uniform_(self, from_=0.0, to=1.0, generator=None):
    if from_ > to:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}")
    g = get_generator(generator, CPU)._np
    return _fill(self, g.uniform(from_, to, self._shape))


_RANDOM_TO = {D.bool: 2, D.float16: 1 << 11, D.bfloat16: 1 << 8, D.float32: 1 << 24, D.float64: 1 << 53}


@impl("random_")
def _random_(self, from_=0, to=None, generator=None):
    g = get_generator(generator, CPU)._np
    if to is None:
        to = _RANDOM_TO.get(self._dtype) or int(np.iinfo(self._dtype.np).max) + 1
    return _fill(self, g.integers(from_, to, self._shape))


@impl("exponential_")
def _exponential_(self, lambd=1.0, generator=None):
    g = get_generator(generator, CPU)._np
    return _fill(self, g.exponential(1.0 / lambd, self._shape))


def _check_p(p):
    if (p < 0).any() or (p > 1).any():
        raise RuntimeError("bernoulli: probabilities must be in [0, 1]")


@impl("bernoulli")
def _bernoulli(self, p=None, generator=None):
    g = get_generator(generator, CPU)._np
    probs = arr(self).astype(np.float64) if p is None else np.full(self._shape, p)
    _check_p(np.asarray(probs))
    out = (g.random(self._shape) < probs).astype(self._dtype.np)
    return _from_numpy(out, self._dtype)


@impl("bernoulli_")
def _bernoulli_(self, p=0.5, generator=None):
    g = get_generator(generator, CPU)._np
    probs = arr(p).astype(np.float64) if isinstance(p, Tensor) else np.float64(p)
    _check_p(np.asarray(probs))
    return _fill(self, g.random(self._shape) < probs)


@impl("multinomial")
def _multinomial(self, num_samples, replacement=False, generator=None):
    if self.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: probability tensor must be 1 or 2 dim, got {self.ndim}")
    g = get_generator(generator, CPU)._np
    probs = arr(self).astype(np.float64).reshape(-1, self._shape[-1])
    if (probs < 0).any() or not np.isfinite(probs).all():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    total = probs.sum(-1, keepdims=True)
    if (total <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and num_samples > probs.shape[-1]:
        raise RuntimeError(f"multinomial: cannot sample n_sample={num_samples} > prob_dist.size(-1)="
                           f"{probs.shape[-1]} samples without replacement")
    probs = probs / total
    rows = [g.choice(probs.shape[-1], num_samples, replace=replacement, p=row) for row in probs]
    out = np.stack(rows).astype(np.int64)
    return _from_numpy(out.reshape(self._shape[:-1] + (num_samples,)), D.int64)


@impl("native_dropout")
def _native_dropout(input, p, train=None):
    x = arr(input)
    if train is False:
        return _from_numpy(x.copy(), input._dtype), _from_numpy(np.ones(x.shape, np.bool_), D.bool)
    keep = get_generator(None, CPU)._np.random(input._shape) < 1.0 - p
    scale = input._dtype.np.type(0.0 if p == 1 else 1.0 / (1.0 - p))
    return _from_numpy(x * (keep.astype(x.dtype) * scale), input._dtype), _from_numpy(keep, D.bool)


@impl("native_dropout_backward")
def _native_dropout_backward(grad_output, mask, scale):
    g = arr(grad_output)
    return _from_numpy(g * (arr(mask).astype(g.dtype) * g.dtype.type(scale)), grad_output._dtype)
