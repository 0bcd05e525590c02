"""The slice of ember's API that the distributions use, bound once: a `torch.`-like namespace over the op table
(the package imports neither the `ember` package itself nor a backend)."""
from __future__ import annotations

from .._tensor import Size, Tensor
from ..autograd import grad
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ..core import dtype as _D
from ..core.shape import broadcast_shapes
from ..dispatch import OPS
from ..ops.creation import (
    arange, empty, eye, full, full_like, ones, ones_like, tensor, zeros, zeros_like,
)
from ..ops.random import bernoulli, multinomial, rand, randn

__all__ = [
    "Size", "Tensor", "grad", "Function", "enable_grad", "is_grad_enabled", "no_grad",
    "broadcast_shapes", "arange", "empty", "eye", "full", "full_like", "ones", "ones_like", "tensor", "zeros",
    "zeros_like", "bernoulli", "multinomial", "rand", "randn", "finfo", "broadcast_tensors",
]

float32 = _D.float32
float64 = _D.float64
int64 = _D.int64
bool_ = _D.bool
get_default_dtype = _D.get_default_dtype

where = OPS["where"].fn
stack = OPS["stack"].fn
cat = OPS["cat"].fn
exp = OPS["exp"].fn
log = OPS["log"].fn
log1p = OPS["log1p"].fn
expm1 = OPS["expm1"].fn
sqrt = OPS["sqrt"].fn
erf = OPS["erf"].fn
sigmoid = OPS["sigmoid"].fn
softplus = OPS["softplus"].fn
tanh = OPS["tanh"].fn
atanh = OPS["atanh"].fn
sin = OPS["sin"].fn
tan = OPS["tan"].fn
abs = OPS["abs"].fn  # noqa: A001
floor = OPS["floor"].fn
ceil = OPS["ceil"].fn
matmul = OPS["matmul"].fn
one_hot = OPS["one_hot"].fn
softmax = OPS["softmax"].fn
logsumexp = OPS["logsumexp"].fn
maximum = OPS["maximum"].fn
minimum = OPS["minimum"].fn
isnan = OPS["isnan"].fn

diag_embed = OPS["diag_embed"].fn
flip = OPS["flip"].fn

# the limits of each floating dtype (torch.finfo's eps, tiny, max), by dtype name
_FINFO = {
    "float16": (0.0009765625, 6.103515625e-05, 65504.0),
    "bfloat16": (0.0078125, 1.1754943508222875e-38, 3.3895313892515355e+38),
    "float32": (1.1920928955078125e-07, 1.1754943508222875e-38, 3.4028234663852886e+38),
    "float64": (2.220446049250313e-16, 2.2250738585072014e-308, 1.7976931348623157e+308),
}


class finfo:
    """torch.finfo's eps, tiny and max/min for an ember floating dtype."""

    def __init__(self, dtype):
        self.eps, self.tiny, self.max = _FINFO[dtype.name]
        self.min = -self.max
        self.smallest_normal = self.tiny


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(t if tuple(t.shape) == shape else t.expand(shape) for t in tensors)
