"""The `Distribution` base class (torch.distributions.Distribution)."""
from __future__ import annotations

import warnings

from . import _api as E
from . import constraints
from .utils import _is_number, broadcast_all, lazy_property

__all__ = ["Distribution"]


def _size(shape) -> "E.Size":
    return shape if isinstance(shape, E.Size) else E.Size(tuple(shape))


class Distribution:
    """Distribution is the abstract base class for probability distributions.

    Args:
        batch_shape (ember.Size): the shape over which parameters are batched.
        event_shape (ember.Size): the shape of a single sample (without batching).
        validate_args (bool, optional): whether to validate arguments (default: `Distribution._validate_args`,
            which is on unless Python runs with -O, and is set by `set_default_validate_args`).
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Sets whether validation is enabled or disabled by default."""
        if value not in [True, False]:
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = _size(batch_shape)
        self._event_shape = _size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            try:
                arg_constraints = self.arg_constraints
            except NotImplementedError:
                arg_constraints = {}
                warnings.warn(f"{self.__class__} does not define `arg_constraints`. Please set "
                              "`arg_constraints = {}` or initialize the distribution with `validate_args=False` "
                              "to turn off validation.", stacklevel=2)
            for param, constraint in arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue  # skip constraints that cannot be checked
                if param not in self.__dict__ and isinstance(getattr(type(self), param), lazy_property):
                    continue  # skip checking lazily-constructed args
                value = getattr(self, param)
                valid = constraint.check(value)
                if not bool(valid.all()):
                    raise ValueError(f"Expected parameter {param} ({type(value).__name__} of shape "
                                     f"{tuple(value.shape)}) of distribution {repr(self)} to satisfy the "
                                     f"constraint {repr(constraint)}, but found invalid values:\n{value}")
        super().__init__()

    # the parameter names of a distribution whose parameters all broadcast to its batch shape (Normal's loc and
    # scale, ...): `expand` then comes from here; others define their own
    _params = ()

    def expand(self, batch_shape, _instance=None):
        """A new distribution whose parameters are expanded (views) to `batch_shape`; no validation repeats."""
        if not self._params:
            raise NotImplementedError
        owner = next(c for c in type(self).__mro__ if "_params" in c.__dict__)     # as torch's cls in expand
        return self._expand_params(owner, batch_shape, _instance, self._params)

    @property
    def batch_shape(self) -> "E.Size":
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> "E.Size":
        """The shape of a single sample (without batching)."""
        return self._event_shape

    @property
    def arg_constraints(self) -> dict:
        """A dict from argument names to the `Constraint` each must satisfy."""
        raise NotImplementedError

    @property
    def support(self):
        """The `Constraint` describing the distribution's support."""
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError

    @property
    def mode(self):
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError

    @property
    def stddev(self):
        return self.variance.sqrt()

    def sample(self, sample_shape=()):
        """A sample of shape sample_shape + batch_shape + event_shape (no gradient)."""
        with E.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        """A reparameterised sample (differentiable in the parameters) of shape
        sample_shape + batch_shape + event_shape."""
        raise NotImplementedError

    def sample_n(self, n: int):
        warnings.warn("`sample_n(n)` will be deprecated. Use `sample((n,))` instead.", FutureWarning, stacklevel=2)
        return self.sample(E.Size((n,)))

    def log_prob(self, value):
        """The log of the probability density/mass function at `value`."""
        raise NotImplementedError

    def cdf(self, value):
        """The cumulative distribution function at `value`."""
        raise NotImplementedError

    def icdf(self, value):
        """The inverse cumulative distribution function at `value`."""
        raise NotImplementedError

    def enumerate_support(self, expand=True):
        """All values of a discrete distribution, along dim 0: (cardinality,) + batch_shape + event_shape (with
        `expand=False`, singleton batch dims)."""
        raise NotImplementedError

    def entropy(self):
        """The entropy, batched over batch_shape."""
        raise NotImplementedError

    def perplexity(self):
        return E.exp(self.entropy())

    def _extended_shape(self, sample_shape=()) -> "E.Size":
        """sample_shape + batch_shape + event_shape."""
        return E.Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def _validate_sample(self, value) -> None:
        """Checks that `value` matches the event shape, broadcasts with batch_shape + event_shape and lies in
        the support; raises ValueError otherwise."""
        if not isinstance(value, E.Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = len(value.shape) - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != tuple(self._event_shape):
            raise ValueError(f"The right-most size of value must match event_shape: {value.shape} vs "
                             f"{self._event_shape}.")
        actual_shape = value.shape
        expected_shape = E.Size(tuple(self._batch_shape) + tuple(self._event_shape))
        for i, j in zip(reversed(actual_shape), reversed(expected_shape)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {actual_shape} vs "
                                 f"{expected_shape}.")
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(f"{self.__class__} does not define `support` to enable sample validation. Please "
                          "initialize the distribution with `validate_args=False` to turn off validation.",
                          stacklevel=2)
            return
        if support is None:
            raise AssertionError("support is unexpectedly None")
        valid = support.check(value)
        if not bool(valid.all()):
            raise ValueError(f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to "
                             f"be within the support ({repr(support)}) of the distribution {repr(self)}, but found "
                             f"invalid values:\n{value}")

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom "
                                      "__init__ method must also define a custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def _set_broadcast_params(self, **params):
        """Sets each parameter, broadcast against the others (`broadcast_all`); returns the batch shape: () if
        all of them are Python numbers, else the broadcast shape."""
        values = broadcast_all(*params.values())
        for name, value in zip(params, values):
            setattr(self, name, value)
        return () if all(_is_number(v) for v in params.values()) else values[0].shape

    def _expand_params(self, cls, batch_shape, _instance, names):
        """`expand` for a distribution of `cls` whose parameters `names` all have shape batch_shape."""
        new = self._get_checked_instance(cls, _instance)
        batch_shape = E.Size(tuple(batch_shape))
        for name in names:
            setattr(new, name, getattr(self, name).expand(batch_shape))
        return self._finish_expand(cls, new, batch_shape)

    def _finish_expand(self, cls, new, batch_shape, event_shape=()):
        """The end of `expand`: initialises `new` (above `cls`) without validation, which it then inherits."""
        super(cls, new).__init__(batch_shape, event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def __repr__(self) -> str:
        param_names = [k for k in self.arg_constraints if k in self.__dict__]
        args_string = ", ".join(
            f"{p}: {self.__dict__[p] if self.__dict__[p].numel() == 1 else self.__dict__[p].shape}"
            for p in param_names)
        return self.__class__.__name__ + "(" + args_string + ")"
