"""Samples of the normalisation family (src/ember/ops/normalization.py): native_layer_norm and
native_layer_norm_backward, against torch.ops.aten's ops of those names; _fused_rms_norm against
torch.ops.aten's, and its backward (which torch 2.13 implements on CUDA only) against torch's own
decomposition of it (torch._decomp).

ember keeps the mean and 1/std in float32 for float16/bfloat16 inputs on every device (torch CUDA's
dtypes, and torch CPU's when the parameters are float32); torch's CPU kernel rounds them to the input
dtype otherwise, so the comparison reads torch's statistics in float32. The CUDA kernels take
float16/bfloat16/float32 (float64 takes the composite in nn.functional.layer_norm): the samples the
interpreter suite picks (the first three and every strided one) are of those dtypes.
"""
import torch
from helpers import assert_same, make_pair
from torch._decomp.decompositions import _fused_rms_norm_backward as _torch_rms_norm_backward

import ember

from ._core import ErrorSample, OpInfo, Sample, register

LN = "native_layer_norm"
EPS = 1e-5
TOL = {"float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}


F64 = "the fused CUDA kernel takes float16/bfloat16/float32; float64 takes the composite in nn.functional"

def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, low=-3, high=3, seed=seed, layout=layout)[0]


def _name(dtype):
    return str(dtype).replace("torch.", "")


def _compare_stats_in_float32(e, t):
    """Each result within the tolerance of the input's dtype (that of the first result: y, or the
    input's grad), torch's float16/bfloat16 statistics read as float32 (ember keeps them in float32)."""
    first = next((y for y in t if y is not None), None)
    tol = TOL.get(_name(first.dtype), (None, None)) if first is not None else (None, None)
    for k, (x, y) in enumerate(zip(e, t)):
        if y is None or x is None:
            assert x is None and y is None, f"result[{k}]: {x!r} vs {y!r}"
            continue
        if x.dtype is ember.float32 and y.dtype in (torch.float16, torch.bfloat16):
            y = y.float()
        assert_same(x, y, *tol)


def layer_norm_samples():
    return [
        Sample((T((3, 4)), [4], T((4,), seed=1), T((4,), seed=2), EPS), desc="float32, affine"),
        Sample((T((2, 3, 4), "float16"), (3, 4), T((3, 4), "float16", seed=1), None, EPS), desc="float16, weight"),
        Sample((T((2, 5), "bfloat16"), [5], T((5,), seed=1), T((5,), seed=2), EPS),
               desc="bfloat16 with float32 parameters (mixed precision)"),
        Sample((T((4, 3), layout="transposed"), [3], None, None, 1e-3), desc="transposed input, eps 1e-3"),
        Sample((T((2, 4), "bfloat16"), [4], None, T((4,), "bfloat16", seed=1), EPS), desc="bfloat16, bias"),
        Sample((T((0, 4)), [4], None, None, EPS), desc="no rows"),
        Sample((T((3, 4), "float64"), [4], T((4,), "float64", seed=1), T((4,), "float64", seed=2), EPS),
               desc="float64, affine", cuda=F64),
        Sample((T((2, 3, 4), "float64"), [3, 4], None, None, EPS), desc="float64, two normalized dims", cuda=F64),
    ]


def layer_norm_errors():
    x = T((2, 3))
    return [
        ErrorSample((x, [4], None, None, EPS), {}, RuntimeError, r"Given normalized_shape=\[4\], expected input with "
                    r"shape \[\*, 4\]", desc="normalized_shape 4 for 3"),
        ErrorSample((x, [3], T((4,)), None, EPS), {}, RuntimeError, r"Expected weight to be of same shape",
                    desc="weight (4,)"),
        ErrorSample((x, [3], None, T((2,)), EPS), {}, RuntimeError, r"Expected bias to be of same shape",
                    desc="bias (2,)"),
        ErrorSample((x, [], None, None, EPS), {}, RuntimeError, r"at least 1-dimensional", desc="empty shape"),
        ErrorSample((T((2, 3), "int64"), [3], None, None, EPS), {}, NotImplementedError, r"'Long'", desc="int64"),
        ErrorSample((x, [3], T((3,), "float64"), None, EPS), {}, RuntimeError, r"expected weight of the input's dtype",
                    desc="float64 weight, float32 input"),
    ]


def _backward_sample(shape, ns, dt, affine, mask, seed=0, layout="contiguous", wdt=None, desc="", cuda=""):
    """A backward sample with the statistics the forward gives (ember's CPU op)."""
    wdt = wdt or dt
    x = T(shape, dt, layout, seed)
    w = T(ns, wdt, seed=seed + 1) if affine else None
    b = T(ns, wdt, seed=seed + 2) if affine else None
    _, mean, rstd = ember.native_layer_norm(x, list(ns), w, b, EPS)
    return Sample((T(shape, dt, seed=seed + 3), x, list(ns), mean, rstd, w, b, *mask), desc=desc, cuda=cuda)


def layer_norm_backward_samples():
    return [
        _backward_sample((3, 4), (4,), "float32", True, (True, True, True), desc="float32, affine"),
        _backward_sample((2, 3, 4), (4,), "float16", True, (True, False, True), desc="float16, no weight grad"),
        _backward_sample((2, 5), (5,), "bfloat16", True, (True, True, True), wdt="float32",
                         desc="bfloat16 with float32 parameters"),
        _backward_sample((4, 3), (3,), "float32", False, (True, False, False), layout="transposed",
                         desc="transposed input, no parameters"),
        _backward_sample((0, 4), (4,), "float32", True, (True, True, True), desc="no rows: zero parameter grads"),
        _backward_sample((3, 4), (4,), "float64", True, (True, True, True), desc="float64", cuda=F64),
        _backward_sample((2, 3, 4), (3, 4), "float64", True, (False, True, True), desc="float64, parameters only", cuda=F64),
    ]


def layer_norm_backward_errors():
    s = layer_norm_backward_samples()[0].args
    return [
        ErrorSample((T((3, 5)),) + s[1:], {}, RuntimeError, r"expected grad_out of the input's shape \[3, 4\]",
                    desc="grad_out (3, 5)", torch_raises=False),
        ErrorSample(s[:2] + ([5],) + s[3:], {}, RuntimeError, r"Given normalized_shape=\[5\]",
                    desc="normalized_shape 5 for 4"),
    ]


def _backward_ref(grad_out, input, normalized_shape, mean, rstd, weight, bias, *mask):
    if input.device.type == "cpu" and input.dtype in (torch.float16, torch.bfloat16) and \
            (weight is None or weight.dtype == input.dtype):
        # torch's CPU kernel takes the statistics it gives: in the input's dtype unless the parameters are float32
        mean, rstd = mean.to(input.dtype), rstd.to(input.dtype)
    return torch.ops.aten.native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias,
                                                     list(mask))


register(OpInfo(LN, layer_norm_samples, layer_norm_errors, ref=torch.ops.aten.native_layer_norm,
                tol=TOL, compare=_compare_stats_in_float32,
                grad="the mean and 1/std outputs are not differentiable (as in torch) while autograd.gradcheck "
                     "compares every output; tests/test_layer_norm.py gradchecks layer_norm's output"))
register(OpInfo(LN + "_backward", layer_norm_backward_samples, layer_norm_backward_errors, ref=_backward_ref,
                tol=TOL, compare=_compare_stats_in_float32,
                grad="no derivative: double backward of layer norm recomputes the composite (create_graph)"))


RMS = "_fused_rms_norm"


def rms_norm_samples():
    return [
        Sample((T((3, 4)), [4], T((4,), seed=1), EPS), desc="float32, weight"),
        Sample((T((2, 3, 4), "float16"), (3, 4), T((3, 4), "float16", seed=1), 1.1920928955078125e-07),
               desc="float16, weight, float32's epsilon"),
        Sample((T((2, 5), "bfloat16"), [5], T((5,), seed=1), EPS), desc="bfloat16 with a float32 weight"),
        Sample((T((4, 3), layout="transposed"), [3], None, 1e-3), desc="transposed input, eps 1e-3"),
        Sample((T((0, 4)), [4], T((4,), seed=1), EPS), desc="no rows"),
        Sample((T((3, 4), "float64"), [4], T((4,), "float64", seed=1), EPS), desc="float64, weight", cuda=F64),
        Sample((T((2, 3, 4), "float64"), [3, 4], None, EPS), desc="float64, two normalized dims", cuda=F64),
    ]


def rms_norm_errors():
    # torch's _fused_rms_norm leaves the shape and weight dtype checks to torch.rms_norm: torch_raises=False
    x = T((2, 3))
    return [
        ErrorSample((x, [4], None, EPS), {}, RuntimeError, r"rms_norm: Given normalized_shape=\[4\], expected input "
                    r"with shape \[\*, 4\]", desc="normalized_shape 4 for 3", torch_raises=False),
        ErrorSample((x, [3], T((4,)), EPS), {}, RuntimeError, r"Expected weight to be of same shape",
                    desc="weight (4,)", torch_raises=False),
        ErrorSample((x, [], None, EPS), {}, RuntimeError, r"at least 1-dimensional", desc="empty shape",
                    torch_raises=False),
        ErrorSample((T((2, 3), "int64"), [3], None, EPS), {}, NotImplementedError,
                    r"\"rms_norm\" not implemented for 'Long'", desc="int64"),
        ErrorSample((x, [3], T((3,), "float64"), EPS), {}, RuntimeError, r"expected weight of the input's dtype",
                    desc="float64 weight, float32 input", torch_raises=False),
    ]


def _rms_backward_sample(shape, ns, dt, affine, mask, seed=0, layout="contiguous", wdt=None, desc="", cuda=""):
    """A backward sample with the 1/rms the forward gives (ember's CPU op)."""
    x = T(shape, dt, layout, seed)
    w = T(ns, wdt or dt, seed=seed + 1) if affine else None
    _, rstd = ember.ops._fused_rms_norm(x, list(ns), w, EPS)
    return Sample((T(shape, dt, seed=seed + 3), x, list(ns), rstd, w, *mask), desc=desc, cuda=cuda)


def rms_norm_backward_samples():
    return [
        _rms_backward_sample((3, 4), (4,), "float32", True, (True, True), desc="float32, weight"),
        _rms_backward_sample((2, 3, 4), (4,), "float16", True, (True, False), desc="float16, no weight grad"),
        _rms_backward_sample((2, 5), (5,), "bfloat16", True, (True, True), wdt="float32",
                             desc="bfloat16 with a float32 weight"),
        _rms_backward_sample((4, 3), (3,), "float32", False, (True, False), layout="transposed",
                             desc="transposed input, no weight"),
        _rms_backward_sample((0, 4), (4,), "float32", True, (True, True), desc="no rows: a zero weight grad"),
        _rms_backward_sample((3, 4), (4,), "float64", True, (True, True), desc="float64", cuda=F64),
        _rms_backward_sample((2, 3, 4), (3, 4), "float64", True, (False, True), desc="float64, weight only",
                             cuda=F64),
    ]


def rms_norm_backward_errors():
    s = rms_norm_backward_samples()[0].args
    return [
        ErrorSample((T((3, 5)),) + s[1:], {}, RuntimeError, r"expected grad_out of the input's shape \[3, 4\]",
                    desc="grad_out (3, 5)"),
        ErrorSample(s[:2] + ([5],) + s[3:], {}, RuntimeError, r"Given normalized_shape=\[5\]",
                    desc="normalized_shape 5 for 4", torch_raises=False),
    ]


def _rms_backward_ref(grad_out, input, normalized_shape, rstd, weight, need_input, need_weight):
    """torch's decomposition, its weight grad in the weight's dtype (it rounds it to the input's)."""
    gx, gw = _torch_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, [need_input, need_weight])
    return gx, (gw.to(weight.dtype) if gw is not None else None)


register(OpInfo(RMS, rms_norm_samples, rms_norm_errors, ref=torch.ops.aten._fused_rms_norm, tol=TOL,
                compare=_compare_stats_in_float32,
                grad="the 1/rms output is not differentiable (as in torch) while autograd.gradcheck compares "
                     "every output; tests/test_rms_norm.py gradchecks rms_norm's output"))
register(OpInfo(RMS + "_backward", rms_norm_backward_samples, rms_norm_backward_errors, ref=_rms_backward_ref,
                tol=TOL, compare=_compare_stats_in_float32,
                grad="no derivative: double backward of rms_norm recomputes the composite (create_graph)"))
