"""CUDA kernels of the fused layer norm and RMS norm (`ops/normalization.py`): one launch forward;
backward one launch for dx and per-program partial sums of the weight (and bias) grads, plus one launch
that sums both. Both norms share the two kernels (RMS norm: CENTER=0). Rows longer than MAX_N elements and
float64 inputs are not implemented here (`nn.functional.layer_norm` and `rms_norm` take the composite
for them)."""
from __future__ import annotations

from math import prod

from ...core import dtype as D
from ...dispatch import OPS
from ...ops.normalization import as_normalized_shape, stats_dtype
from .compiler import LazyKernels, next_power_of_2, pointer_arg, run
from .memory import new_tensor

MAX_N = 16384
MAX_PROGRAMS = 512
K = LazyKernels("normalization")


def _geometry(n: int):
    block_n = max(16, next_power_of_2(n))
    block_r = max(1, min(16, 4096 // block_n))
    warps = 4 if block_n <= 2048 else (8 if block_n <= 8192 else 16)
    return block_n, block_r, warps


def fused_ok(input, n: int) -> bool:
    return n <= MAX_N and input._dtype in (D.float32, D.float16, D.bfloat16)


def _check_fused(name, input, n, fn):
    if not fused_ok(input, n):
        raise NotImplementedError(f"{name} on CUDA is for float16/bfloat16/float32 rows of at most "
                                  f"{MAX_N} elements (got {input._dtype} rows of {n}); nn.functional.{fn} "
                                  f"takes the composite there")


def _dense(t):
    """An affine parameter as the kernels read it (row-major over the normalised dims): a computed weight (`w.t()`,
    `w * s` of a transposed w) is copied."""
    return t if t is None or t.is_contiguous() else t.contiguous()


def _forward(name, fn, input, normalized_shape, weight, bias, eps, center):
    """(y, mean or None, rstd) of layer norm (center) or RMS norm."""
    ns = as_normalized_shape(normalized_shape)
    n = prod(ns)
    _check_fused(name, input, n, fn)
    x = input if input.is_contiguous() else input.contiguous()
    weight, bias = _dense(weight), _dense(bias)
    shape, dt = input._shape, input._dtype
    batch = shape[:len(shape) - len(ns)]
    rows = prod(batch)
    y = new_tensor(shape, dt, input.device)
    mean = new_tensor(batch + (1,) * len(ns), stats_dtype(dt), input.device) if center else None
    rstd = new_tensor(batch + (1,) * len(ns), stats_dtype(dt), input.device)
    if rows and n:
        block_n, block_r, warps = _geometry(n)
        args = [pointer_arg("x_ptr", x), pointer_arg("w_ptr", weight if weight is not None else x),
                pointer_arg("b_ptr", bias if bias is not None else x), pointer_arg("y_ptr", y),
                pointer_arg("mean_ptr", mean if center else rstd), pointer_arg("rstd_ptr", rstd),
                ("R", rows, "i64"), ("N", n, "i64"), ("eps", float(eps), "fp32")]
        run(K.norm_fwd_kernel, ((rows + block_r - 1) // block_r,), args,
            {"CENTER": int(center), "HAS_W": int(weight is not None), "HAS_B": int(bias is not None),
             "BLOCK_R": block_r, "BLOCK_N": block_n}, input.device.index or 0, warps)
    return y, mean, rstd


def _backward(name, fn, grad_out, input, normalized_shape, mean, rstd, weight, bias, need_input, need_weight,
              need_bias):
    """(dx, dw, db) of layer norm (mean given) or RMS norm (mean and bias None)."""
    ns = as_normalized_shape(normalized_shape)
    n = prod(ns)
    _check_fused(name, input, n, fn)   # the forward's limits: its statistics come from there
    center = mean is not None
    rows = prod(input._shape[:len(input._shape) - len(ns)])
    x = input if input.is_contiguous() else input.contiguous()
    dy = grad_out if grad_out.is_contiguous() else grad_out.contiguous()
    weight, bias = _dense(weight), _dense(bias)
    need_wb = (need_weight and weight is not None) or (need_bias and bias is not None)
    dx = new_tensor(input._shape, input._dtype, input.device) if need_input else None
    block_n, block_r, warps = _geometry(n)
    progs = max(1, min(MAX_PROGRAMS, (rows + block_r - 1) // block_r))
    per = (rows + progs - 1) // progs
    per = (per + block_r - 1) // block_r * block_r
    progs = max(1, (rows + per - 1) // per) if rows else 1
    dwp = new_tensor((progs, n), D.float32, input.device) if need_wb else None
    dbp = new_tensor((progs, n), D.float32, input.device) if need_wb and center else None
    if rows and n and (need_input or need_wb):
        args = [pointer_arg("dy_ptr", dy), pointer_arg("x_ptr", x),
                pointer_arg("w_ptr", weight if weight is not None else x),
                pointer_arg("mean_ptr", mean if center else rstd), pointer_arg("rstd_ptr", rstd),
                pointer_arg("dx_ptr", dx if dx is not None else x),
                pointer_arg("dwp_ptr", dwp if dwp is not None else rstd),
                pointer_arg("dbp_ptr", dbp if dbp is not None else rstd),
                ("R", rows, "i64"), ("N", n, "i64"), ("rows_per_prog", per, "i64")]
        run(K.norm_bwd_kernel, (progs,), args,
            {"CENTER": int(center), "HAS_W": int(weight is not None), "NEED_DX": int(bool(need_input)),
             "NEED_DWB": int(need_wb), "BLOCK_R": block_r, "BLOCK_N": block_n}, input.device.index or 0, warps)
    elif need_wb:       # no rows: the sums are zeros
        for t in (dwp, dbp):
            if t is not None:
                OPS["zero_"].fn(t)
    need_w, need_b = need_weight and weight is not None, need_bias and bias is not None
    gw = new_tensor(ns, weight._dtype, input.device) if need_w else None
    gb = new_tensor(ns, bias._dtype, input.device) if need_b else None
    if need_w or need_b:    # both column sums of the partials in one launch
        block_c = min(64, max(16, next_power_of_2(n)))
        run(K.norm_wb_sum_kernel, ((n + block_c - 1) // block_c,),
            [pointer_arg("dwp_ptr", dwp), pointer_arg("dbp_ptr", dbp if dbp is not None else dwp),
             pointer_arg("gw_ptr", gw if need_w else dwp), pointer_arg("gb_ptr", gb if need_b else dwp),
             ("P", progs, "i64"), ("N", n, "i64")],
            {"NEED_DW": int(need_w), "NEED_DB": int(need_b), "BLOCK_P": 32, "BLOCK_C": block_c},
            input.device.index or 0)
    return dx, gw, gb


def native_layer_norm(input, normalized_shape, weight, bias, eps):
    return _forward("native_layer_norm", "layer_norm", input, normalized_shape, weight, bias, eps, True)


def native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias, need_input,
                               need_weight, need_bias):
    return _backward("native_layer_norm_backward", "layer_norm", grad_out, input, normalized_shape, mean, rstd,
                     weight, bias, need_input, need_weight, need_bias)


def fused_rms_norm(input, normalized_shape, weight, eps):
    y, _, rstd = _forward("_fused_rms_norm", "rms_norm", input, normalized_shape, weight, None, eps, False)
    return y, rstd


def fused_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, need_input, need_weight):
    return _backward("_fused_rms_norm_backward", "rms_norm", grad_out, input, normalized_shape, None, rstd, weight,
                     None, need_input, need_weight, False)[:2]


OPS["native_layer_norm"].register("cuda")(native_layer_norm)
OPS["native_layer_norm_backward"].register("cuda")(native_layer_norm_backward)
OPS["_fused_rms_norm"].register("cuda")(fused_rms_norm)
OPS["_fused_rms_norm_backward"].register("cuda")(fused_rms_norm_backward)
