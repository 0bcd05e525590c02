"""Fused normalisation ops: `native_layer_norm` (forward, giving the output and the per-row mean and
1/std it used) and `native_layer_norm_backward`, as in PyTorch; `_fused_rms_norm` (the output and the
per-row 1/rms) and `_fused_rms_norm_backward`, PyTorch's names for RMSNorm's. `nn.functional.layer_norm`
and `rms_norm` go through them: one kernel forward, one (plus the weight/bias sums) backward, instead
of the ops of the composite. Each derivative is one joint formula for input and parameters; under
`create_graph=True` it recomputes the composite from the input so double backward is exact.

The statistics (mean, 1/std, 1/rms) are float32 for float16/bfloat16 inputs on every device, as
PyTorch's CUDA kernels and its CPU mixed-precision path keep them (its CPU layer norm kernel rounds
them to the input dtype when weight and bias are low precision too); else the input's dtype.
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..core import dtype as D
from ..dispatch import defop
from .linalg import SCALAR_TYPE


def as_normalized_shape(normalized_shape) -> tuple:
    """normalized_shape (an int or a sequence of ints) as a tuple."""
    return (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)


def check_layer_norm(input, normalized_shape, weight, bias, fn="layer_norm") -> tuple:
    """normalized_shape as a tuple, after PyTorch's checks of input, weight and bias."""
    normalized_shape = as_normalized_shape(normalized_shape)
    k = len(normalized_shape)
    if k == 0:
        raise RuntimeError(f"{fn}: Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
                           f"least one element, but got normalized_shape = []")
    shape = input._shape
    if len(shape) < k or tuple(shape[len(shape) - k:]) != normalized_shape:
        raise RuntimeError(f"{fn}: Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in normalized_shape)}], but got input of size"
                           f"{list(shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t._shape != normalized_shape:
            raise RuntimeError(f"{fn}: Expected {name} to be of same shape as normalized_shape, but got {name} of "
                               f"shape {list(t._shape)} and normalized_shape = {list(normalized_shape)}")
    return normalized_shape


def stats_dtype(dt):
    """The dtype of layer norm's mean and 1/std for an input of dtype `dt`."""
    return D.float32 if dt is D.float16 or dt is D.bfloat16 else dt


def rms_norm_eps(dt, eps) -> float:
    """rms_norm's eps for an input of dtype `dt`: `eps`, or when None the machine epsilon of the dtype it
    computes in (float32's for 16-bit inputs, float64's for float64), as torch's. `nn.functional.rms_norm`
    resolves it: `_fused_rms_norm` takes a float."""
    if eps is not None:
        return eps
    return 2.220446049250313e-16 if dt is D.float64 else 1.1920928955078125e-07


def _check_dtypes(fn, input, weight, bias, kernel="LayerNormKernelImpl"):
    dt = input._dtype
    if not dt.is_floating_point:
        raise NotImplementedError(f"{fn}: \"{kernel}\" not implemented for '{SCALAR_TYPE[dt]}': the "
                                  f"input must be floating point, got {dt}")
    for name, t in (("weight", weight), ("bias", bias)):
        # float32 parameters with a float16/bfloat16 input are PyTorch's mixed-precision layer norm
        if t is not None and t._dtype is not dt and t._dtype is not stats_dtype(dt):
            raise RuntimeError(f"{fn}: expected {name} of the input's dtype {dt} (or float32 for a float16/bfloat16 "
                               f"input), got {t._dtype}")


def native_layer_norm_meta(input, normalized_shape, weight, bias, eps):
    ns = check_layer_norm(input, normalized_shape, weight, bias, "native_layer_norm")
    _check_dtypes("native_layer_norm", input, weight, bias)
    shape = input._shape
    stats = (shape[:len(shape) - len(ns)] + (1,) * len(ns), stats_dtype(input._dtype))
    return (shape, input._dtype), stats, stats


def native_layer_norm_backward_meta(grad_out, input, normalized_shape, mean, rstd, weight, bias, need_input,
                                    need_weight, need_bias):
    fn = "native_layer_norm_backward"
    ns = check_layer_norm(input, normalized_shape, weight, bias, fn)
    _check_dtypes(fn, input, weight, bias)
    if grad_out._shape != input._shape:
        raise RuntimeError(f"{fn}: expected grad_out of the input's shape {list(input._shape)}, got "
                           f"{list(grad_out._shape)}")
    return ((input._shape, input._dtype) if need_input else None,
            (ns, weight._dtype) if need_weight and weight is not None else None,
            (ns, bias._dtype) if need_bias and bias is not None else None)


defop("native_layer_norm(Tensor input, int[] normalized_shape, Tensor? weight, Tensor? bias, float eps) "
      "-> (Tensor, Tensor, Tensor)", meta=native_layer_norm_meta)
defop("native_layer_norm_backward(Tensor grad_out, Tensor input, int[] normalized_shape, Tensor mean, Tensor rstd, "
      "Tensor? weight, Tensor? bias, bool need_input, bool need_weight, bool need_bias) -> (Tensor, Tensor, Tensor)",
      meta=native_layer_norm_backward_meta)

derivative("native_layer_norm", **{
    "input, weight, bias": "layer_norm_backward(grad, input, normalized_shape, result1, result2, weight, bias, eps, "
                           "grad_input_mask)"})


def rms_norm_meta(input, normalized_shape, weight, eps):
    ns = check_layer_norm(input, normalized_shape, weight, None, "rms_norm")
    _check_dtypes("rms_norm", input, weight, None, "rms_norm")
    shape = input._shape
    return (shape, input._dtype), (shape[:len(shape) - len(ns)] + (1,) * len(ns), stats_dtype(input._dtype))


def rms_norm_backward_meta(grad_out, input, normalized_shape, rstd, weight, need_input, need_weight):
    fn = "rms_norm_backward"
    ns = check_layer_norm(input, normalized_shape, weight, None, fn)
    _check_dtypes(fn, input, weight, None, "rms_norm")
    if grad_out._shape != input._shape:
        raise RuntimeError(f"{fn}: expected grad_out of the input's shape {list(input._shape)}, got "
                           f"{list(grad_out._shape)}")
    return ((input._shape, input._dtype) if need_input else None,
            (ns, weight._dtype) if need_weight and weight is not None else None)


defop("_fused_rms_norm(Tensor input, int[] normalized_shape, Tensor? weight, float eps) -> (Tensor, Tensor)",
      meta=rms_norm_meta)
defop("_fused_rms_norm_backward(Tensor grad_out, Tensor input, int[] normalized_shape, Tensor rstd, Tensor? weight, "
      "bool need_input, bool need_weight) -> (Tensor, Tensor)", meta=rms_norm_backward_meta)

derivative("_fused_rms_norm", **{
    "input, weight": "rms_norm_backward(grad, input, normalized_shape, result1, weight, eps, grad_input_mask)"})
