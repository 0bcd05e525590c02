"""ExponentialFamily (torch.distributions.ExponentialFamily): entropy and KL by Bregman divergence."""
from __future__ import annotations

from . import _api as E
from .distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """Base class for exponential-family distributions p_F(x; theta) = exp(<t(x), theta> - F(theta) + k(x)),
    where theta are the natural parameters, t(x) the sufficient statistic, F the log normalizer and k the carrier
    measure. Subclasses give `_natural_params`, `_log_normalizer` and `_mean_carrier_measure`."""

    @property
    def _natural_params(self):
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError

    def entropy(self):
        """Entropy by the Bregman divergence of the log normalizer."""
        result = -self._mean_carrier_measure
        nparams = [p.detach().requires_grad_() for p in self._natural_params]
        with E.enable_grad():
            lg_normal = self._log_normalizer(*nparams)
            gradients = E.grad(lg_normal.sum(), nparams, create_graph=True)
        result = result + lg_normal
        for np_, g in zip(nparams, gradients):
            result = result - (np_ * g).reshape(tuple(self._batch_shape) + (-1,)).sum(-1)
        return result
