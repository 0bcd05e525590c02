"""Bernoulli (torch.distributions.Bernoulli)."""
from __future__ import annotations

import math

from . import _api as E
from . import constraints
from .exp_family import ExponentialFamily
from ._probs_logits import _check_one_of, _ProbsLogits
from .utils import broadcast_all

__all__ = ["Bernoulli"]


def _bce_with_logits(logits, target):
    """binary_cross_entropy_with_logits(logits, target, reduction='none'), torch's stable formula."""
    max_val = (-logits).clamp(min=0)
    return (1 - target) * logits + max_val + E.log(E.exp(-max_val) + E.exp(-logits - max_val))


class Bernoulli(_ProbsLogits, ExponentialFamily):
    """A Bernoulli distribution over {0, 1}, parameterised by `probs` or `logits` (but not both)."""
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _mean_carrier_measure = 0

    def __init__(self, probs=None, logits=None, validate_args=None):
        _check_one_of(probs, logits)
        if probs is not None:
            batch_shape = self._set_broadcast_params(probs=probs)
        else:
            batch_shape = self._set_broadcast_params(logits=logits)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Bernoulli, _instance)
        batch_shape = E.Size(tuple(batch_shape))
        self._expand_probs_logits(new, batch_shape)
        return self._finish_expand(Bernoulli, new, batch_shape)

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        mode = (self.probs >= 0.5).to(self.probs.dtype)
        return E.where(self.probs == 0.5, math.nan, mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with E.no_grad():
            return E.bernoulli(self.probs.expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -_bce_with_logits(logits, value)

    def entropy(self):
        return _bce_with_logits(self.logits, self.probs)

    def enumerate_support(self, expand=True):
        return self._support_values(E.arange(2, dtype=self._param.dtype, device=self._param.device), expand)

    @property
    def _natural_params(self):
        return (E.log(self.probs) - E.log1p(-self.probs),)

    def _log_normalizer(self, x):
        return E.log1p(E.exp(x))
