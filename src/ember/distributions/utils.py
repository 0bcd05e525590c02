"""torch.distributions.utils for ember: broadcasting of parameters, probs <-> logits, lazy properties."""
from __future__ import annotations

from functools import update_wrapper
from numbers import Number

from . import _api as E

__all__ = ["broadcast_all", "logits_to_probs", "clamp_probs", "probs_to_logits", "lazy_property",
           "tril_matrix_to_vec", "vec_to_tril_matrix", "euler_constant"]

euler_constant = 0.57721566490153286060  # Euler Mascheroni Constant


def _is_number(v) -> bool:
    return isinstance(v, Number) and not isinstance(v, E.Tensor)


def broadcast_all(*values):
    """Broadcast tensors and numbers together: numbers become tensors of the first tensor's dtype and device (the
    default dtype when all are numbers), then all are expanded to the common shape."""
    if not all(isinstance(v, E.Tensor) or _is_number(v) for v in values):
        raise ValueError("Input arguments must all be instances of Number, ember.Tensor or objects implementing "
                         "__torch_function__.")
    if not all(isinstance(v, E.Tensor) for v in values):
        options = dict(dtype=E.get_default_dtype())
        for value in values:
            if isinstance(value, E.Tensor):
                options = dict(dtype=value.dtype, device=value.device)
                break
        values = [v if isinstance(v, E.Tensor) else E.tensor(v, **options) for v in values]
    return E.broadcast_tensors(*values)


def _standard_normal(shape, dtype, device):
    return E.randn(tuple(shape), dtype=dtype, device=device)


def _sum_rightmost(value, dim: int):
    """Sum out `dim` many rightmost dimensions of a given tensor."""
    if dim == 0:
        return value
    required_shape = tuple(value.shape[:-dim]) + (-1,)
    return value.reshape(required_shape).sum(-1)


def logits_to_probs(logits, is_binary: bool = False):
    if is_binary:
        return E.sigmoid(logits)
    return E.softmax(logits, -1)


def clamp_probs(probs):
    """Clamp probabilities into the open interval (0, 1), at eps of the dtype."""
    eps = E.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary: bool = False):
    ps_clamped = clamp_probs(probs)
    if is_binary:
        return E.log(ps_clamped) - E.log1p(-ps_clamped)
    return E.log(ps_clamped)


class lazy_property:
    """A non-data descriptor that computes the property on first access (with grad enabled), then stores it on
    the instance."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return _lazy_property_and_property(self.wrapped)
        with E.enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


class _lazy_property_and_property(lazy_property, property):
    """A lazy_property that also looks like a property (for introspection)."""

    def __init__(self, wrapped):
        property.__init__(self, wrapped)


def _tril_mask(n, diag, device):
    arange = E.arange(n, device=device)
    return arange < arange.view(-1, 1) + (diag + 1)


def tril_matrix_to_vec(mat, diag: int = 0):
    """The lower-triangular elements of (batched) D x D matrices, in row order."""
    n = mat.shape[-1]
    if diag < -n or diag >= n:
        raise ValueError(f"diag ({diag}) provided is outside [{-n}, {n - 1}].")
    idx = E.arange(n * n, device=mat.device)[_tril_mask(n, diag, mat.device).reshape(-1)]
    return mat.reshape(tuple(mat.shape[:-2]) + (n * n,))[..., idx]


def vec_to_tril_matrix(vec, diag: int = 0):
    """The inverse of tril_matrix_to_vec."""
    n = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * vec.shape[-1] + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    eps = E.finfo(vec.dtype).eps
    if round(n) - n > eps:
        raise ValueError(f"The size of last dimension is {vec.shape[-1]} which cannot be expressed as "
                         "the lower triangular part of a square D x D matrix.")
    n = round(n)
    mask = _tril_mask(n, diag, vec.device).reshape(-1)
    # position of each matrix entry in vec (entries outside the triangle read a zero appended to vec)
    pos = (mask.long().cumsum(0) - 1).masked_fill(~mask, vec.shape[-1])
    padded = E.cat([vec, E.zeros(tuple(vec.shape[:-1]) + (1,), dtype=vec.dtype, device=vec.device)], -1)
    return padded[..., pos].reshape(tuple(vec.shape[:-1]) + (n, n))



def _forwarded(holder: str, name: str, doc: str | None = None) -> property:
    """A read-only property that reads `name` of the object in attribute `holder` (for wrappers)."""
    return property(lambda self: getattr(getattr(self, holder), name), doc=doc)
