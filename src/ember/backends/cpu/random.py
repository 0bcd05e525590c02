"""CPU kernels of the random ops (NumPy's PCG64 through ember.Generator). The ops' metas
(ops/random.py) have checked the arguments; the kernels check only what needs the data (tensor
probabilities of bernoulli and multinomial)."""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...core import dtype as D
from ...core.device import CPU
from ...ops.creation import factory_dtype
from ...ops.random import dropout_backward_dtype, integer_dtype, random_range
from ...random import get_generator
from ._common import arr, impl, wrap_ew

_from_numpy = Tensor._from_numpy


def _sample_dtype(dt):
    return np.float64 if dt is D.float64 else np.float32


@impl("rand")
def _rand(size, generator=None, dtype=None, device=None):
    dt = factory_dtype(dtype)
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.random(size, dtype=_sample_dtype(dt)).astype(dt.np, copy=False), dt)


@impl("randn")
def _randn(size, generator=None, dtype=None, device=None):
    dt = factory_dtype(dtype)
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.standard_normal(size, dtype=_sample_dtype(dt)).astype(dt.np, copy=False), dt)


@impl("randint")
def _randint(low, high, size, generator=None, dtype=None, device=None):
    dt = integer_dtype(dtype)
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.integers(low, high, size, dtype=np.int64).astype(dt.np, copy=False), dt)


@impl("randperm")
def _randperm(n, generator=None, dtype=None, device=None):
    dt = integer_dtype(dtype)
    g = get_generator(generator, CPU)._np
    return _from_numpy(g.permutation(n).astype(dt.np, copy=False), dt)


def _fill(self, values):
    np.copyto(arr(self), values, casting="unsafe")
    return self


@impl("normal_")
def _normal_(self, mean=0.0, std=1.0, generator=None):
    g = get_generator(generator, CPU)._np
    return _fill(self, g.normal(mean, std, self._shape))


@impl("uniform_")
def _uniform_(self, from_=0.0, to=1.0, generator=None):
    g = get_generator(generator, CPU)._np
    return _fill(self, g.uniform(from_, to, self._shape))


@impl("random_")
def _random_(self, from_=0, to=None, generator=None):
    g = get_generator(generator, CPU)._np
    return _fill(self, g.integers(*random_range(self._dtype, from_, to), self._shape))


@impl("exponential_")
def _exponential_(self, lambd=1.0, generator=None):
    g = get_generator(generator, CPU)._np
    return _fill(self, g.exponential(1.0 / lambd, self._shape))


def _probabilities(p: Tensor) -> np.ndarray:
    """A tensor of probabilities as float64, checked (the data: the CUDA kernels leave this unchecked)."""
    probs = arr(p).astype(np.float64)
    if (probs < 0).any() or (probs > 1).any():
        raise RuntimeError("bernoulli: probabilities must be in [0, 1]")
    return probs


@impl("bernoulli")
def _bernoulli(self, p=None, generator=None):
    g = get_generator(generator, CPU)._np
    probs = _probabilities(self) if p is None else p
    return _from_numpy((g.random(self._shape) < probs).astype(self._dtype.np), self._dtype)


@impl("bernoulli_")
def _bernoulli_(self, p=0.5, generator=None):
    g = get_generator(generator, CPU)._np
    return _fill(self, g.random(self._shape) < (_probabilities(p) if isinstance(p, Tensor) else p))


@impl("multinomial")
def _multinomial(self, num_samples, replacement=False, generator=None):
    g = get_generator(generator, CPU)._np
    probs = arr(self).astype(np.float64).reshape(-1, self._shape[-1])
    if (probs < 0).any() or not np.isfinite(probs).all():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    total = probs.sum(-1, keepdims=True)
    if (total <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    probs = probs / total
    rows = [g.choice(probs.shape[-1], num_samples, replace=replacement, p=row) for row in probs]
    out = np.stack(rows).astype(np.int64) if rows else np.empty((0, num_samples), np.int64)
    return _from_numpy(out.reshape(self._shape[:-1] + (num_samples,)), D.int64)


@impl("native_dropout")
def _native_dropout(input, p, train=None):
    x = arr(input)          # (output and mask in input's layout, as torch's)
    if train is False:
        return wrap_ew(x.copy(order="K"), input._dtype, (input,)), wrap_ew(np.ones(x.shape, np.bool_), D.bool, (input,))
    keep = get_generator(None, CPU)._np.random(input._shape) < 1.0 - p
    scale = input._dtype.np.type(0.0 if p == 1 else 1.0 / (1.0 - p))
    return wrap_ew(x * (keep.astype(x.dtype) * scale), input._dtype, (input,)), wrap_ew(keep, D.bool, (input,))


@impl("native_dropout_backward")
def _native_dropout_backward(grad_output, mask, scale):
    dt = dropout_backward_dtype(grad_output)
    g = arr(grad_output).astype(dt.np, copy=False)
    return wrap_ew(g * (arr(mask).astype(g.dtype) * g.dtype.type(scale)), dt, (grad_output, mask))
