"""Identity, Linear (and the NonDynamicallyQuantizableLinear used by MultiheadAttention), Bilinear."""
from __future__ import annotations

import math

from ...ops.creation import empty
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module

__all__ = ["Identity", "Linear", "NonDynamicallyQuantizableLinear", "Bilinear"]


def _weight_and_bias(module: Module, weight_shape: tuple, bias: bool, device, dtype) -> None:
    """Registers `module.weight` of `weight_shape` and `module.bias` of `weight_shape[0]` (None when
    not `bias`), then initialises them with the module's `reset_parameters` (Linear, Bilinear, Conv)."""
    module.weight = Parameter(empty(*weight_shape, device=device, dtype=dtype))
    module.register_parameter("bias", Parameter(empty(weight_shape[0], device=device, dtype=dtype)) if bias else None)
    module.reset_parameters()


def _kaiming_init(weight, bias) -> None:
    """PyTorch's default for Linear and Conv: W from kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), and b from U(-1/sqrt(fan_in), 1/sqrt(fan_in)); b is zeros when fan_in is 0."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """Returns its input; accepts (and ignores) any constructor arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x @ W.T + b with W: (out_features, in_features), initialised as PyTorch does:
    kaiming_uniform_(a=sqrt(5)) for W (i.e. U(-1/sqrt(in), 1/sqrt(in))) and U(-1/sqrt(in), 1/sqrt(in)) for b."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        _weight_and_bias(self, (out_features, in_features), bias, device, dtype)

    def reset_parameters(self) -> None:
        _kaiming_init(self.weight, self.bias)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class NonDynamicallyQuantizableLinear(Linear):
    """The out-projection of MultiheadAttention (a plain Linear; the name matches PyTorch's repr)."""


class Bilinear(Module):
    """y_k = x1 @ W_k @ x2 + b_k with W: (out, in1, in2), all entries U(-1/sqrt(in1), 1/sqrt(in1))."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        _weight_and_bias(self, (out_features, in1_features, in2_features), bias, device, dtype)

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.size(1))
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
