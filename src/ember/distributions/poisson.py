"""Poisson (torch.distributions.Poisson)."""
from __future__ import annotations

from . import _api as E
from . import constraints
from ._samplers import sample_poisson
from ._special import lgamma, xlogy
from .exp_family import ExponentialFamily
from .utils import broadcast_all

__all__ = ["Poisson"]


class Poisson(ExponentialFamily):
    """A Poisson distribution with `rate`. Samples are floats of the rate's dtype."""
    arg_constraints = {"rate": constraints.nonnegative}
    _params = ("rate",)
    support = constraints.nonnegative_integer

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def __init__(self, rate, validate_args=None):
        batch_shape = self._set_broadcast_params(rate=rate)
        super().__init__(batch_shape, validate_args=validate_args)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with E.no_grad():
            return sample_poisson(self.rate.expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return xlogy(value, rate) - rate - lgamma(value + 1)

    @property
    def _natural_params(self):
        return (E.log(self.rate),)

    def _log_normalizer(self, x):
        return E.exp(x)
