"""ember.distributions: parameterisable probability distributions and sampling, with torch.distributions' API
and semantics (batch_shape / event_shape, sample / rsample, log_prob, entropy, moments, cdf / icdf, expand,
constraints and argument validation, transforms, kl_divergence).

Everything is written in ember ops, so it runs on any ember device and autograd differentiates log_prob, entropy,
KL and rsample through the ops' derivatives. Special functions (lgamma, digamma, erfinv, the incomplete gamma
function), the Cholesky factorisation and triangular solves, and the Gamma / Dirichlet / Poisson / Binomial
samplers, which ember's op table lacks, are composed inside this package (`_special`, `_samplers`).

    >>> m = Normal(ember.tensor([0.0]), ember.tensor([1.0]))
    >>> x = m.rsample((3,)); m.log_prob(x)

The package loads its modules on first use (PEP 562), so that `import ember` stays cheap.
"""
from __future__ import annotations

import importlib

# public name -> the module that defines it
_NAMES = {
    "Bernoulli": "bernoulli", "Beta": "beta", "Binomial": "binomial", "Categorical": "categorical",
    "Dirichlet": "dirichlet", "Distribution": "distribution", "Exponential": "exponential",
    "ExponentialFamily": "exp_family", "Gamma": "gamma", "Independent": "independent", "LogNormal": "log_normal",
    "MultivariateNormal": "multivariate_normal", "Normal": "normal", "OneHotCategorical": "one_hot_categorical",
    "OneHotCategoricalStraightThrough": "one_hot_categorical", "Poisson": "poisson",
    "TransformedDistribution": "transformed_distribution", "Uniform": "uniform", "kl_divergence": "kl",
    "register_kl": "kl",
}
_TRANSFORMS = (
    "AbsTransform", "AffineTransform", "ComposeTransform", "CumulativeDistributionTransform", "ExpTransform",
    "IndependentTransform", "LowerCholeskyTransform", "PowerTransform", "ReshapeTransform", "SigmoidTransform",
    "SoftplusTransform", "TanhTransform", "SoftmaxTransform", "StickBreakingTransform", "Transform",
    "identity_transform",
)
_NAMES.update((name, "transforms") for name in _TRANSFORMS)
_SUBMODULES = {
    "constraints", "transforms", "kl", "utils", "distribution", "exp_family", "bernoulli", "beta", "binomial",
    "categorical", "dirichlet", "exponential", "gamma", "independent", "log_normal", "multivariate_normal",
    "normal", "one_hot_categorical", "poisson", "transformed_distribution", "uniform",
}

__all__ = list(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module("." + _NAMES[name], __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | _SUBMODULES)
