"""The probs/logits parameter pair shared by Bernoulli, Binomial and Categorical."""
from __future__ import annotations

from .utils import lazy_property, logits_to_probs, probs_to_logits


def _check_one_of(probs, logits):
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


class _ProbsLogits:
    """A mixin for distributions given by exactly one of `probs` and `logits` (`_param` is the one given; the
    other is computed lazily). `_binary`: whether they are the binary (Bernoulli) pair or categorical."""
    _binary = True

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=self._binary)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=self._binary)

    @property
    def param_shape(self):
        return self._param.shape

    def _expand_probs_logits(self, new, param_shape):
        """Sets on `new` the given parameter(s) of self, expanded to param_shape."""
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(param_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(param_shape)
            new._param = new.logits

    def _support_values(self, values, expand):
        """`enumerate_support` from the 1-d tensor of the values: along dim 0, before the batch dims."""
        values = values.view((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values
