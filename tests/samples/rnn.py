"""Samples of the fused recurrent cells (src/ember/ops/rnn.py): _thnn_fused_lstm_cell, _thnn_fused_gru_cell and
their backward ops. torch has these ops on CUDA only, for float16, float32 and float64, so the reference is
built from torch ops (computed in float32 for float16/bfloat16 and rounded once, as ember's kernels), except on
CUDA in those dtypes (the GPU suite): there it is torch's own op (its backward ops' bias grads, which ember's
leave to the engine, are dropped).

The strided samples (a transposed input_gates, a sliced bias, a time step of a (T, B, 4H) projection) are the
ones the interpreter suite runs besides the first three.
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register

TOL = {"float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1.6e-2)}
LOW = (torch.float16, torch.bfloat16)


def T(shape, dtype="float32", layout="contiguous", seed=0):
    return make_pair(shape, dtype, low=-2, high=2, seed=seed, layout=layout)[0]


def _up(t, dt):
    return None if t is None else (t.float() if dt in LOW else t)


def _torch_has(t):
    """Whether torch has a fused cell kernel for tensor t (CUDA; its kernels dispatch no bfloat16)."""
    return t.is_cuda and t.dtype != torch.bfloat16


# ---- LSTM ---------------------------------------------------------------------------------------------------

def lstm_cell_ref(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    """(hy, cy, workspace): gates i, f, g, o of input_gates + hidden_gates (+ biases)."""
    if _torch_has(input_gates):
        return torch.ops.aten._thnn_fused_lstm_cell(input_gates, hidden_gates, cx, input_bias, hidden_bias)
    dt = input_gates.dtype
    g = _up(input_gates, dt) + _up(hidden_gates, dt)
    if input_bias is not None:
        g = g + _up(input_bias, dt) + _up(hidden_bias, dt)
    i, f, c, o = g.chunk(4, 1)
    i, f, c, o = i.sigmoid(), f.sigmoid(), c.tanh(), o.sigmoid()
    cy = f * _up(cx, dt) + i * c
    return (o * cy.tanh()).to(dt), cy.to(dt), torch.cat([i, f, c, o], 1).to(dt)


def lstm_cell_backward_ref(grad_hy, grad_cy, cx, cy, workspace):
    """(grad of the gates' pre-activations, grad of cx)."""
    if _torch_has(workspace):
        return torch.ops.aten._thnn_fused_lstm_cell_backward_impl(grad_hy, grad_cy, cx, cy, workspace, False)[:2]
    dt = workspace.dtype
    i, f, g, o = _up(workspace, dt).chunk(4, 1)
    gh = _up(grad_hy, dt)
    tc = _up(cy, dt).tanh()
    gc = gh * o * (1 - tc * tc) + _up(grad_cy, dt)
    gg = torch.cat([gc * g * i * (1 - i), gc * _up(cx, dt) * f * (1 - f), gc * i * (1 - g * g),
                    gh * tc * o * (1 - o)], 1)
    return gg.to(dt), (gc * f).to(dt)


def _lstm(B, H, dt="float32", bias=False, layouts=("contiguous",) * 3, seed=0):
    args = tuple(T(s, dt, lay, seed + k) for k, (s, lay) in enumerate(zip(((B, 4 * H), (B, 4 * H), (B, H)),
                                                                          layouts)))
    return args + ((T((4 * H,), dt, seed=seed + 3), T((4 * H,), dt, seed=seed + 4)) if bias else ())


def _time_step(B, G, dt="float32", t=1, seed=0):
    """Step t of a (T, B, G) input projection: the view the LSTM's time loop hands the cell."""
    return T((3, B, G), dt, seed=seed)[t]


def lstm_cell_samples():
    return [
        Sample(_lstm(3, 5), desc="float32, no biases"),
        Sample(_lstm(3, 5, bias=True), desc="float32, biases"),
        Sample(_lstm(4, 6, "float16", bias=True), desc="float16, biases"),
        Sample(_lstm(2, 3, "bfloat16"), desc="bfloat16"),
        Sample(_lstm(3, 5, layouts=("transposed", "contiguous", "transposed")),
               desc="transposed input_gates and cx"),
        Sample((_time_step(3, 20),) + _lstm(3, 5)[1:] + (T((4 * 5,), layout="sliced", seed=5), T((4 * 5,), seed=6)),
               desc="a time step of a (T, B, 4H) projection, a sliced bias"),
        Sample(_lstm(0, 4), desc="no rows"),
        Sample(_lstm(3, 4, "float64", bias=True), desc="float64, biases"),
        Sample(_lstm(2, 3, "float64", layouts=("sliced", "contiguous", "sliced")), desc="float64, sliced"),
    ]


def lstm_cell_errors():
    ig, hg, cx = _lstm(3, 5)
    return [
        ErrorSample((ig, hg, T((3, 4))), {}, RuntimeError, r"_thnn_fused_lstm_cell: expected input_gates of shape "
                    r"\(B, 4 \* H\) for a cx of shape \(B, H\), got input_gates \[3, 20\] and cx \[3, 4\]",
                    desc="cx of 4 units for gates of 5"),
        ErrorSample((ig, T((3, 16)), cx), {}, RuntimeError, r"expected hidden_gates of the input_gates' shape "
                    r"\[3, 20\], got \[3, 16\]", desc="hidden_gates (3, 16)"),
        ErrorSample((ig, hg, cx, T((20,)), T((16,))), {}, RuntimeError, r"expected hidden_bias of shape \(20,\) "
                    r"\(the gates' width\), got \[16\]", desc="hidden_bias (16,)"),
        ErrorSample((ig, hg, cx, T((20,)), None), {}, RuntimeError, r"give both input_bias and hidden_bias, or "
                    r"neither", desc="one bias", torch_raises=False),
        ErrorSample((ig, hg, cx.double()), {}, RuntimeError, r"expected every tensor of input_gates's dtype "
                    r"ember.float32, got cx of dtype ember.float64", desc="float64 cx", torch_raises=False),
        ErrorSample((T((3, 20), "int64"), T((3, 20), "int64"), T((3, 5), "int64")), {}, RuntimeError,
                    r"expected floating point tensors, got input_gates of dtype ember.int64", desc="int64",
                    torch_raises=False),
    ]


def _lstm_backward(B, H, dt="float32", layouts=("contiguous",) * 3, seed=0, bias=False):
    ig, hg, cx, *b = _lstm(B, H, dt, bias, seed=seed)
    _, cy, ws = ember.ops._thnn_fused_lstm_cell(ig, hg, cx, *b)
    ghy, gcy = T((B, H), dt, layouts[0], seed + 7), T((B, H), dt, layouts[1], seed + 8)
    cx = cx if layouts[2] == "contiguous" else T((B, H), dt, layouts[2], seed + 2)
    return ghy, gcy, cx, cy, ws


def lstm_cell_backward_samples():
    return [
        Sample(_lstm_backward(3, 5), desc="float32"),
        Sample(_lstm_backward(4, 6, "float16", bias=True), desc="float16"),
        Sample(_lstm_backward(2, 3, "bfloat16"), desc="bfloat16"),
        Sample(_lstm_backward(3, 5, layouts=("transposed", "sliced", "transposed")),
               desc="transposed grad_hy and cx, sliced grad_cy"),
        Sample(_lstm_backward(0, 4), desc="no rows"),
        Sample(_lstm_backward(3, 4, "float64"), desc="float64"),
    ]


def lstm_cell_backward_errors():
    ghy, gcy, cx, cy, ws = _lstm_backward(3, 5)
    return [
        ErrorSample((ghy, gcy, cx, cy, T((3, 18))), {}, RuntimeError, r"_thnn_fused_lstm_cell_backward: expected a "
                    r"workspace of shape \(B, 4 \* H\), got \[3, 18\]", desc="workspace (3, 18)", torch_raises=False),
        ErrorSample((ghy, T((3, 4)), cx, cy, ws), {}, RuntimeError, r"expected grad_cy of shape \[3, 5\], got "
                    r"\[3, 4\]", desc="grad_cy (3, 4)", torch_raises=False),
        ErrorSample((ghy.half(), gcy, cx, cy, ws), {}, RuntimeError, r"expected every tensor of workspace's dtype "
                    r"ember.float32, got grad_hy of dtype ember.float16", desc="float16 grad_hy", torch_raises=False),
    ]


# ---- GRU ----------------------------------------------------------------------------------------------------

def gru_cell_ref(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    """(hy, workspace [r, z, n, hx, h_n])."""
    if _torch_has(input_gates):
        return torch.ops.aten._thnn_fused_gru_cell(input_gates, hidden_gates, hx, input_bias, hidden_bias)
    dt = input_gates.dtype
    gi, gh, h = _up(input_gates, dt), _up(hidden_gates, dt), _up(hx, dt)
    if input_bias is not None:
        gi, gh = gi + _up(input_bias, dt), gh + _up(hidden_bias, dt)
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return (n + z * (h - n)).to(dt), torch.cat([r, z, n, h, h_n], 1).to(dt)


def gru_cell_backward_ref(grad_hy, workspace):
    """(grad of input_gates, grad of hidden_gates, grad of hx)."""
    if _torch_has(workspace):
        return torch.ops.aten._thnn_fused_gru_cell_backward(grad_hy, workspace, False)[:3]
    dt = workspace.dtype
    r, z, n, h, h_n = _up(workspace, dt).chunk(5, 1)
    go = _up(grad_hy, dt)
    gn = go * (1 - z) * (1 - n * n)
    gr, gz = gn * h_n * r * (1 - r), go * (h - n) * z * (1 - z)
    return torch.cat([gr, gz, gn], 1).to(dt), torch.cat([gr, gz, gn * r], 1).to(dt), (go * z).to(dt)


def _gru(B, H, dt="float32", bias=False, layouts=("contiguous",) * 3, seed=0):
    args = tuple(T(s, dt, lay, seed + k) for k, (s, lay) in enumerate(zip(((B, 3 * H), (B, 3 * H), (B, H)),
                                                                          layouts)))
    return args + ((T((3 * H,), dt, seed=seed + 3), T((3 * H,), dt, seed=seed + 4)) if bias else ())


def gru_cell_samples():
    return [
        Sample(_gru(3, 5), desc="float32, no biases"),
        Sample(_gru(3, 5, bias=True), desc="float32, biases"),
        Sample(_gru(4, 6, "float16", bias=True), desc="float16, biases"),
        Sample(_gru(2, 3, "bfloat16"), desc="bfloat16"),
        Sample(_gru(3, 5, layouts=("contiguous", "transposed", "sliced")), desc="transposed hidden_gates, sliced hx"),
        Sample((_time_step(3, 15),) + _gru(3, 5)[1:] + (T((15,), seed=5), T((15,), layout="sliced", seed=6)),
               desc="a time step of a (T, B, 3H) projection, a sliced bias"),
        Sample(_gru(0, 4), desc="no rows"),
        Sample(_gru(3, 4, "float64", bias=True), desc="float64, biases"),
        Sample(_gru(2, 3, "float64", layouts=("transposed", "contiguous", "contiguous")), desc="float64, transposed"),
    ]


def gru_cell_errors():
    ig, hg, hx = _gru(3, 5)
    return [
        ErrorSample((ig, hg, T((3, 4))), {}, RuntimeError, r"_thnn_fused_gru_cell: expected input_gates of shape "
                    r"\(B, 3 \* H\) for a hx of shape \(B, H\), got input_gates \[3, 15\] and hx \[3, 4\]",
                    desc="hx of 4 units for gates of 5"),
        ErrorSample((ig, T((2, 15)), hx), {}, RuntimeError, r"expected hidden_gates of the input_gates' shape "
                    r"\[3, 15\], got \[2, 15\]", desc="hidden_gates of 2 rows"),
        ErrorSample((ig, hg, T((5,))), {}, RuntimeError, r"for a hx of shape \(B, H\), got input_gates \[3, 15\] and "
                    r"hx \[5\]", desc="1-D hx"),
        ErrorSample((ig, hg, hx, T((15,)), T((15,), "float64")), {}, RuntimeError, r"got hidden_bias of dtype "
                    r"ember.float64", desc="float64 hidden_bias", torch_raises=False),
    ]


def _gru_backward(B, H, dt="float32", layout="contiguous", seed=0, bias=False):
    _, ws = ember.ops._thnn_fused_gru_cell(*_gru(B, H, dt, bias, seed=seed))
    return T((B, H), dt, layout, seed + 7), ws


def gru_cell_backward_samples():
    return [
        Sample(_gru_backward(3, 5), desc="float32"),
        Sample(_gru_backward(4, 6, "float16", bias=True), desc="float16"),
        Sample(_gru_backward(2, 3, "bfloat16"), desc="bfloat16"),
        Sample(_gru_backward(3, 5, "float32", "transposed"), desc="transposed grad_hy"),
        Sample((T((3, 5), seed=1), T((3, 25), layout="sliced", seed=2)), desc="a sliced workspace"),
        Sample(_gru_backward(0, 4), desc="no rows"),
        Sample(_gru_backward(3, 4, "float64"), desc="float64"),
    ]


def gru_cell_backward_errors():
    ghy, ws = _gru_backward(3, 5)
    return [
        ErrorSample((ghy, T((3, 24))), {}, RuntimeError, r"_thnn_fused_gru_cell_backward: expected a workspace of "
                    r"shape \(B, 5 \* H\), got \[3, 24\]", desc="workspace (3, 24)", torch_raises=False),
        ErrorSample((T((3, 4)), ws), {}, RuntimeError, r"expected grad_hy of shape \[3, 5\], got \[3, 4\]",
                    desc="grad_hy (3, 4)"),
    ]


WORKSPACE = ("the workspace output is not differentiable (as torch's) while autograd.gradcheck compares every "
             "output; tests/test_rnn_cells.py gradchecks (hy, cy) and double backward")
NO_GRAD = "no derivative: under create_graph the cell's derivative recomputes the composite"

register(OpInfo("_thnn_fused_lstm_cell", lstm_cell_samples, lstm_cell_errors, ref=lstm_cell_ref, tol=TOL,
                grad=WORKSPACE))
register(OpInfo("_thnn_fused_lstm_cell_backward", lstm_cell_backward_samples, lstm_cell_backward_errors,
                ref=lstm_cell_backward_ref, tol=TOL, grad=NO_GRAD))
register(OpInfo("_thnn_fused_gru_cell", gru_cell_samples, gru_cell_errors, ref=gru_cell_ref, tol=TOL, grad=WORKSPACE))
register(OpInfo("_thnn_fused_gru_cell_backward", gru_cell_backward_samples, gru_cell_backward_errors,
                ref=gru_cell_backward_ref, tol=TOL, grad=NO_GRAD))
