"""Random ops: sampling factories and in-place fills, all drawing from an `ember.Generator`."""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..dispatch import OPS, defop

_F = "ScalarType? dtype=None, Device? device=None, bool requires_grad=False"
defop(f"rand(int[]... size, *, Generator? generator=None, {_F}) -> Tensor")
defop(f"randn(int[]... size, *, Generator? generator=None, {_F}) -> Tensor")
defop(f"randint(int low, int high, int[] size, *, Generator? generator=None, {_F}) -> Tensor")
defop(f"randperm(int n, *, Generator? generator=None, {_F}) -> Tensor")
defop("normal_(Tensor(a!) self, float mean=0.0, float std=1.0, *, Generator? generator=None) -> Tensor(a!)",
      method=True)
defop("uniform_(Tensor(a!) self, float from_=0.0, float to=1.0, *, Generator? generator=None) -> Tensor(a!)",
      method=True)
defop("random_(Tensor(a!) self, int from_=0, int? to=None, *, Generator? generator=None) -> Tensor(a!)", method=True)
defop("exponential_(Tensor(a!) self, float lambd=1.0, *, Generator? generator=None) -> Tensor(a!)", method=True)
defop("bernoulli(Tensor self, float? p=None, *, Generator? generator=None) -> Tensor", method=True)
defop("bernoulli_(Tensor(a!) self, Tensor|Scalar p=0.5, *, Generator? generator=None) -> Tensor(a!)", method=True)
defop("multinomial(Tensor self, int num_samples, bool replacement=False, *, Generator? generator=None) -> Tensor",
      method=True)
# fused dropout, as PyTorch's: (input * mask / (1 - p), bool mask) in one kernel, the mask saved for backward
defop("native_dropout(Tensor input, float p, bool? train=None) -> (Tensor, Tensor)")
defop("native_dropout_backward(Tensor grad_output, Tensor mask, float scale) -> Tensor")
derivative("native_dropout",
           input="native_dropout_backward(grad, result1, 1.0 if train is False else 0.0 if p == 1 else 1 / (1 - p))")
derivative("native_dropout_backward", grad_output="native_dropout_backward(grad, mask, scale)")

rand = OPS["rand"].fn
randn = OPS["randn"].fn
randperm = OPS["randperm"].fn
multinomial = OPS["multinomial"].fn
bernoulli = OPS["bernoulli"].fn
_randint = OPS["randint"].fn


def randint(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """`randint(high, size)` or `randint(low, high, size)` (PyTorch's overloads)."""
    if size is not None:
        args = args + (size,)
    if len(args) == 2:
        low, (high, size) = 0, args
    elif len(args) == 3:
        low, high, size = args
    else:
        raise TypeError(f"randint() takes (high, size) or (low, high, size), got {len(args)} positional arguments")
    return _randint(low, high, tuple(size), generator=generator, dtype=dtype, device=device,
                    requires_grad=requires_grad)


def _like(name):
    fn = OPS[name].fn

    def like(input, *, dtype=None, device=None, generator=None, requires_grad=False, memory_format=None):
        return fn(*input._shape, generator=generator, dtype=dtype or input._dtype, device=device or input.device,
                  requires_grad=requires_grad)
    like.__name__ = name + "_like"
    return like


rand_like = _like("rand")
randn_like = _like("randn")


def randint_like(input, low=0, high=None, *, dtype=None, device=None, generator=None):
    if high is None:
        low, high = 0, low
    return _randint(low, high, input._shape, generator=generator, dtype=dtype or input._dtype,
                    device=device or input.device)


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None):
    """`normal(mean, std, size)` with float mean/std, or elementwise with tensor mean and/or std."""
    from .._tensor import Tensor
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        z = randn(*ref._shape, generator=generator, dtype=ref._dtype, device=ref.device)
        return z * std + mean
    if size is None:
        raise TypeError("normal(mean: float, std: float) needs a size")
    return randn(*size, generator=generator, dtype=dtype, device=device).mul_(std).add_(mean)
