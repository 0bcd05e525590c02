"""CUDA kernels of the fused LSTM and GRU cells (`ops/rnn.py`): one launch each forward and backward, inputs read
through their strides (a time step's slice of the input projection needs no copy), outputs contiguous. Nothing
here reads a value on the host, so a time loop of these cells can be captured in a CUDA graph."""
from __future__ import annotations

from ...core import dtype as D
from ...dispatch import OPS
from .compiler import LazyKernels, next_power_of_2, pointer_arg, run
from .memory import new_tensor

K = LazyKernels("rnn")


def _strides(name, t) -> list:
    """A 2-D tensor's (row, column) stride arguments."""
    return [(name + "_r", t._stride[0], "i64"), (name + "_c", t._stride[1], "i64")]


def _bias_args(input_bias, hidden_bias, like) -> tuple:
    """(pointer args, stride args) of the two biases; without them `like` stands in, never read."""
    if input_bias is None:
        return [pointer_arg("bi_ptr", like), pointer_arg("bh_ptr", like)], [("bi_s", 0, "i64"), ("bh_s", 0, "i64")]
    return ([pointer_arg("bi_ptr", input_bias), pointer_arg("bh_ptr", hidden_bias)],
            [("bi_s", input_bias._stride[0], "i64"), ("bh_s", hidden_bias._stride[0], "i64")])


def _launch(kernel, B, H, args, constexprs, device):
    if not B or not H:
        return
    block_h = min(64, next_power_of_2(H))
    block_b = max(1, min(next_power_of_2(B), 256 // block_h))
    run(kernel, ((B + block_b - 1) // block_b, (H + block_h - 1) // block_h), args,
        dict(constexprs, BLOCK_B=block_b, BLOCK_H=block_h), device.index or 0)


def fused_lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    B, H = cx._shape
    dt, dev = input_gates._dtype, input_gates.device
    hy, cy, ws = new_tensor((B, H), dt, dev), new_tensor((B, H), dt, dev), new_tensor((B, 4 * H), dt, dev)
    bias_ptrs, bias_strides = _bias_args(input_bias, hidden_bias, cx)
    args = ([pointer_arg("ig_ptr", input_gates), pointer_arg("hg_ptr", hidden_gates), pointer_arg("cx_ptr", cx)]
            + bias_ptrs + [pointer_arg("hy_ptr", hy), pointer_arg("cy_ptr", cy), pointer_arg("ws_ptr", ws),
                           ("B", B, "i64"), ("H", H, "i64")]
            + _strides("ig", input_gates) + _strides("hg", hidden_gates) + _strides("cx", cx)
            + bias_strides)
    _launch(K.lstm_fwd_kernel, B, H, args, {"HAS_BIAS": int(input_bias is not None), "F64": int(dt is D.float64)},
            dev)
    return hy, cy, ws


def fused_lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace):
    B, H = cx._shape
    dt, dev = workspace._dtype, workspace.device
    gg, gcx = new_tensor((B, 4 * H), dt, dev), new_tensor((B, H), dt, dev)
    named = (("ghy", grad_hy), ("gcy", grad_cy), ("cx", cx), ("cy", cy), ("ws", workspace))
    args = ([pointer_arg(n + "_ptr", t) for n, t in named] + [pointer_arg("gg_ptr", gg), pointer_arg("gcx_ptr", gcx),
                                                              ("B", B, "i64"), ("H", H, "i64")]
            + [a for n, t in named for a in _strides(n, t)])
    _launch(K.lstm_bwd_kernel, B, H, args, {"F64": int(dt is D.float64)}, dev)
    return gg, gcx


def fused_gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    B, H = hx._shape
    dt, dev = input_gates._dtype, input_gates.device
    hy, ws = new_tensor((B, H), dt, dev), new_tensor((B, 5 * H), dt, dev)
    bias_ptrs, bias_strides = _bias_args(input_bias, hidden_bias, hx)
    args = ([pointer_arg("ig_ptr", input_gates), pointer_arg("hg_ptr", hidden_gates), pointer_arg("hx_ptr", hx)]
            + bias_ptrs + [pointer_arg("hy_ptr", hy), pointer_arg("ws_ptr", ws), ("B", B, "i64"), ("H", H, "i64")]
            + _strides("ig", input_gates) + _strides("hg", hidden_gates) + _strides("hx", hx)
            + bias_strides)
    _launch(K.gru_fwd_kernel, B, H, args, {"HAS_BIAS": int(input_bias is not None), "F64": int(dt is D.float64)},
            dev)
    return hy, ws


def fused_gru_cell_backward(grad_hy, workspace):
    B, H = grad_hy._shape
    dt, dev = workspace._dtype, workspace.device
    gi, gh, ghx = new_tensor((B, 3 * H), dt, dev), new_tensor((B, 3 * H), dt, dev), new_tensor((B, H), dt, dev)
    args = ([pointer_arg("ghy_ptr", grad_hy), pointer_arg("ws_ptr", workspace), pointer_arg("gi_ptr", gi),
             pointer_arg("gh_ptr", gh), pointer_arg("ghx_ptr", ghx), ("B", B, "i64"), ("H", H, "i64")]
            + _strides("ghy", grad_hy) + _strides("ws", workspace))
    _launch(K.gru_bwd_kernel, B, H, args, {"F64": int(dt is D.float64)}, dev)
    return gi, gh, ghx


OPS["_thnn_fused_lstm_cell"].register("cuda")(fused_lstm_cell)
OPS["_thnn_fused_lstm_cell_backward"].register("cuda")(fused_lstm_cell_backward)
OPS["_thnn_fused_gru_cell"].register("cuda")(fused_gru_cell)
OPS["_thnn_fused_gru_cell_backward"].register("cuda")(fused_gru_cell_backward)
