"""Categorical (torch.distributions.Categorical)."""
from __future__ import annotations

import math

from . import _api as E
from . import constraints
from .distribution import Distribution
from ._probs_logits import _check_one_of, _ProbsLogits

__all__ = ["Categorical"]


class Categorical(_ProbsLogits, Distribution):
    """A categorical distribution over {0, ..., K - 1}, parameterised by `probs` (nonnegative, normalised along
    the last dimension) or `logits` (unnormalised log probabilities), but not both."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True
    _binary = False

    def __init__(self, probs=None, logits=None, validate_args=None):
        _check_one_of(probs, logits)
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = self._param.shape[:-1] if self._param.dim() > 1 else ()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = E.Size(tuple(batch_shape))
        param_shape = tuple(batch_shape) + (self._num_events,)
        self._expand_probs_logits(new, param_shape)
        new._num_events = self._num_events
        return self._finish_expand(Categorical, new, batch_shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @property
    def mean(self):
        return E.full(tuple(self._extended_shape()), math.nan, dtype=self.probs.dtype, device=self.probs.device)

    @property
    def mode(self):
        return self.probs.argmax(dim=-1)

    variance = mean  # both undefined: nan

    def sample(self, sample_shape=()):
        sample_shape = E.Size(tuple(sample_shape))
        with E.no_grad():
            probs_2d = self.probs.reshape(-1, self._num_events)
            samples_2d = E.multinomial(probs_2d, sample_shape.numel(), True).T
            return samples_2d.reshape(tuple(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = E.broadcast_tensors(value, self.logits)
        value = value[..., :1]
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self):
        min_real = E.finfo(self.logits.dtype).min
        logits = self.logits.clamp(min=min_real)
        p_log_p = logits * self.probs
        return -p_log_p.sum(-1)

    def enumerate_support(self, expand=True):
        return self._support_values(E.arange(self._num_events, dtype=E.int64, device=self._param.device), expand)
