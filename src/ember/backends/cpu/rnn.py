"""NumPy kernels of the fused LSTM and GRU cells (`ops/rnn.py`): float16/bfloat16 computed in float32, each
output rounded once.

The kernels work gate-major, on (gates, B, H) buffers: NumPy's ufuncs are several times slower writing into
the column slices of a (B, gates * H) array than into contiguous ones, so the gates are gathered once into a
contiguous buffer, computed there in place, and the workspace or the gates' grad is laid out as (B, gates *
H) by one copy at the end."""
from __future__ import annotations

import numpy as np

from ._common import arr, compute_np, impl, wrap


def _sigmoid_(x):
    np.negative(x, out=x)   # 1 / (1 + exp(-x)), in place
    np.exp(x, out=x)
    x += 1
    np.reciprocal(x, out=x)


def _by_gate(t, k):
    """A (B, k * H) tensor's array viewed as (k, B, H); a (k * H,) bias's as (k, 1, H)."""
    a = arr(t)
    if a.ndim == 1:
        return a.reshape(k, 1, a.shape[0] // k)
    return a.reshape(a.shape[0], k, a.shape[1] // k).transpose(1, 0, 2)


def _joined(w):
    """A (k, B, H) buffer as the (B, k * H) array the op returns (one copy)."""
    return w.transpose(1, 0, 2).reshape(w.shape[1], w.shape[0] * w.shape[2])


def _np(t, cnp):
    """t's array in the compute dtype `cnp` (no copy when it is already)."""
    return arr(t).astype(cnp, copy=False)


@impl("_thnn_fused_lstm_cell")
def fused_lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    dt, cnp = input_gates._dtype, compute_np(input_gates._dtype)
    B, H = cx._shape
    w = np.empty((4, B, H), cnp)    # i, f, g, o: the pre-activations, then the gates
    np.add(_by_gate(input_gates, 4), _by_gate(hidden_gates, 4), out=w, dtype=cnp)
    if input_bias is not None:
        w += _by_gate(input_bias, 4).astype(cnp, copy=False)
        w += _by_gate(hidden_bias, 4).astype(cnp, copy=False)
    _sigmoid_(w[:2])
    np.tanh(w[2], out=w[2])
    _sigmoid_(w[3])
    i, f, g, o = w
    cy = f * _np(cx, cnp)
    cy += i * g
    hy = np.tanh(cy)
    hy *= o
    return wrap(hy, dt), wrap(cy, dt), wrap(_joined(w), dt)


@impl("_thnn_fused_lstm_cell_backward")
def fused_lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace):
    dt, cnp = workspace._dtype, compute_np(workspace._dtype)
    i, f, g, o = (a.astype(cnp, copy=False) for a in _by_gate(workspace, 4))
    gh = _np(grad_hy, cnp)
    tc = np.tanh(_np(cy, cnp))
    gc = gh * o * (1 - tc * tc) + _np(grad_cy, cnp)
    gg = np.empty((4,) + gh.shape, cnp)
    np.multiply(gc * g, i * (1 - i), out=gg[0])
    np.multiply(gc * _np(cx, cnp), f * (1 - f), out=gg[1])
    np.multiply(gc * i, 1 - g * g, out=gg[2])
    np.multiply(gh * tc, o * (1 - o), out=gg[3])
    return wrap(_joined(gg), dt), wrap(gc * f, dt)


@impl("_thnn_fused_gru_cell")
def fused_gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    dt, cnp = input_gates._dtype, compute_np(input_gates._dtype)
    gi, gh = _by_gate(input_gates, 3), _by_gate(hidden_gates, 3)
    h = _np(hx, cnp)
    w = np.empty((5,) + h.shape, cnp)   # r, z, n, hx, h_n
    np.add(gi[:2], gh[:2], out=w[:2], dtype=cnp)
    np.copyto(w[4], gh[2])
    if input_bias is not None:
        bi, bh = _by_gate(input_bias, 3).astype(cnp, copy=False), _by_gate(hidden_bias, 3).astype(cnp, copy=False)
        w[:2] += bi[:2]
        w[:2] += bh[:2]
        w[4] += bh[2]
    _sigmoid_(w[:2])
    r, z, n = w[0], w[1], w[2]
    np.multiply(r, w[4], out=n)
    n += gi[2].astype(cnp, copy=False)
    if input_bias is not None:
        n += bi[2]
    np.tanh(n, out=n)
    w[3] = h
    hy = h - n
    hy *= z
    hy += n
    return wrap(hy, dt), wrap(_joined(w), dt)


@impl("_thnn_fused_gru_cell_backward")
def fused_gru_cell_backward(grad_hy, workspace):
    dt, cnp = workspace._dtype, compute_np(workspace._dtype)
    r, z, n, h, hn = (a.astype(cnp, copy=False) for a in _by_gate(workspace, 5))
    go = _np(grad_hy, cnp)
    gi = np.empty((3,) + go.shape, cnp)     # r, z, n
    np.multiply(go * (1 - z), 1 - n * n, out=gi[2])
    np.multiply(gi[2] * hn, r * (1 - r), out=gi[0])
    np.multiply(go * (h - n), z * (1 - z), out=gi[1])
    gh = gi.copy()
    gh[2] *= r
    return wrap(_joined(gi), dt), wrap(_joined(gh), dt), wrap(go * z, dt)
