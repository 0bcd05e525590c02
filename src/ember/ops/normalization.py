"""Fused normalisation ops: `native_layer_norm` (forward, giving the output and the per-row mean and
1/std it used) and `native_layer_norm_backward`, as in PyTorch. `nn.functional.layer_norm` goes
through them: one kernel forward, one (plus the weight/bias sums) backward, instead of the eight
and sixteen ops of the composite. The derivative is one joint formula for input, weight and bias;
under `create_graph=True` it recomputes the composite from the input so double backward is exact.
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..dispatch import defop

defop("native_layer_norm(Tensor input, int[] normalized_shape, Tensor? weight, Tensor? bias, float eps) "
      "-> (Tensor, Tensor, Tensor)")
defop("native_layer_norm_backward(Tensor grad_out, Tensor input, int[] normalized_shape, Tensor mean, Tensor rstd, "
      "Tensor? weight, Tensor? bias, bool need_input, bool need_weight, bool need_bias) -> (Tensor, Tensor, Tensor)")

derivative("native_layer_norm", **{
    "input, weight, bias": "layer_norm_backward(grad, input, normalized_shape, result1, result2, weight, bias, eps, "
                           "grad_input_mask)"})


def check_layer_norm(input, normalized_shape, weight, bias, fn="layer_norm") -> tuple:
    """normalized_shape as a tuple, after PyTorch's checks of input, weight and bias."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    shape = input._shape
    if k == 0 or len(shape) < k or tuple(shape[len(shape) - k:]) != normalized_shape:
        raise RuntimeError(f"{fn}: Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in normalized_shape)}], but got input of size"
                           f"{list(shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t._shape != normalized_shape:
            raise RuntimeError(f"{fn}: Expected {name} to be of same shape as normalized_shape, but got {name} of "
                               f"shape {list(t._shape)} and normalized_shape = {list(normalized_shape)}")
    return normalized_shape
