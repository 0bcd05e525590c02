"""Fused pointwise cells of the recurrent layers, named as PyTorch's private ops: `_thnn_fused_lstm_cell` and
`_thnn_fused_gru_cell`, with their backward ops. `nn.LSTM`, `nn.GRU` and their cells compute each time step as
one matrix product of the hidden state and one of these ops (the input projection of all steps is one product
before the loop): on CUDA the gates' sum and activations are one kernel each way instead of about ten, and
autograd records one node per step.

LSTM: input_gates and hidden_gates (B, 4H) are the pre-activations of the gates i, f, g, o (in that order),
    c' = sigmoid(f) * cx + sigmoid(i) * tanh(g),   h' = sigmoid(o) * tanh(c')
over gates = input_gates + hidden_gates (+ input_bias + hidden_bias, each (4H,)). Returns (hy, cy, workspace):
hy and cy (B, H), workspace (B, 4H) the activated gates, which the backward reads.
GRU: input_gates (B, 3H) = W_i x (+ b_i) and hidden_gates (B, 3H) = W_h h + b_h of the gates r, z, n,
    r = sigmoid(i_r + h_r),  z = sigmoid(i_z + h_z),  n = tanh(i_n + r * h_n),  h' = n + z * (hx - n)
(input_bias and hidden_bias, when given, are added to them first). Returns (hy, workspace): hy (B, H), workspace
(B, 5H) = [r, z, n, hx, h_n], as torch's.

All tensors of one call share a dtype; float16/bfloat16 are computed in float32 and rounded once. The outputs
are contiguous; the workspace is kept in the input dtype, as torch's.

Different from torch: the backward ops return no bias grads and take no `has_bias`. They give the gates' grads
(B, G), from which the engine sums a bias's grad over the batch (a bias enters the gates as a plain sum), so
each backward is one kernel: `_thnn_fused_lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace) -> (grad_gates,
grad_cx)` (the grad of both input_gates and hidden_gates) and `_thnn_fused_gru_cell_backward(grad_hy,
workspace) -> (grad_input_gates, grad_hidden_gates, grad_hx)`. Under create_graph the derivatives recompute
the cell from its inputs with ember ops, so double backward is exact.
"""
from __future__ import annotations

from ..autograd.derivatives import derivative
from ..dispatch import defop


def _check_cell(fn, ig, hg, factor, state, state_name, input_bias, hidden_bias):
    """(B, H) of a fused cell whose gates are (B, factor * H), after checking every shape and dtype."""
    G = factor * state._shape[-1] if state.ndim == 2 else None
    if G is None or ig._shape != (state._shape[0], G):
        raise RuntimeError(f"{fn}: expected input_gates of shape (B, {factor} * H) for a {state_name} of shape "
                           f"(B, H), got input_gates {list(ig._shape)} and {state_name} {list(state._shape)}")
    if hg._shape != ig._shape:
        raise RuntimeError(f"{fn}: expected hidden_gates of the input_gates' shape {list(ig._shape)}, got "
                           f"{list(hg._shape)}")
    if (input_bias is None) != (hidden_bias is None):
        raise RuntimeError(f"{fn}: give both input_bias and hidden_bias, or neither")
    for name, b in (("input_bias", input_bias), ("hidden_bias", hidden_bias)):
        if b is not None and b._shape != (G,):
            raise RuntimeError(f"{fn}: expected {name} of shape ({G},) (the gates' width), got {list(b._shape)}")
    _check_dtypes(fn, (("input_gates", ig), ("hidden_gates", hg), (state_name, state), ("input_bias", input_bias),
                       ("hidden_bias", hidden_bias)))
    return state._shape


def _check_dtypes(fn, named):
    dt = named[0][1]._dtype
    if not dt.is_floating_point:
        raise RuntimeError(f"{fn}: expected floating point tensors, got {named[0][0]} of dtype {dt}")
    for name, t in named[1:]:
        if t is not None and t._dtype is not dt:
            raise RuntimeError(f"{fn}: expected every tensor of {named[0][0]}'s dtype {dt}, got {name} of "
                               f"dtype {t._dtype}")


def _check_like(fn, named, shape):
    for name, t in named:
        if t._shape != shape:
            raise RuntimeError(f"{fn}: expected {name} of shape {list(shape)}, got {list(t._shape)}")


def lstm_cell_meta(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    B, H = _check_cell("_thnn_fused_lstm_cell", input_gates, hidden_gates, 4, cx, "cx", input_bias, hidden_bias)
    dt = input_gates._dtype
    return ((B, H), dt), ((B, H), dt), ((B, 4 * H), dt)


def lstm_cell_backward_meta(grad_hy, grad_cy, cx, cy, workspace):
    fn = "_thnn_fused_lstm_cell_backward"
    if workspace.ndim != 2 or workspace._shape[1] % 4:
        raise RuntimeError(f"{fn}: expected a workspace of shape (B, 4 * H), got {list(workspace._shape)}")
    B, H = workspace._shape[0], workspace._shape[1] // 4
    _check_like(fn, (("grad_hy", grad_hy), ("grad_cy", grad_cy), ("cx", cx), ("cy", cy)), (B, H))
    _check_dtypes(fn, (("workspace", workspace), ("grad_hy", grad_hy), ("grad_cy", grad_cy), ("cx", cx), ("cy", cy)))
    dt = workspace._dtype
    return ((B, 4 * H), dt), ((B, H), dt)


def gru_cell_meta(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    B, H = _check_cell("_thnn_fused_gru_cell", input_gates, hidden_gates, 3, hx, "hx", input_bias, hidden_bias)
    dt = input_gates._dtype
    return ((B, H), dt), ((B, 5 * H), dt)


def gru_cell_backward_meta(grad_hy, workspace):
    fn = "_thnn_fused_gru_cell_backward"
    if workspace.ndim != 2 or workspace._shape[1] % 5:
        raise RuntimeError(f"{fn}: expected a workspace of shape (B, 5 * H), got {list(workspace._shape)}")
    B, H = workspace._shape[0], workspace._shape[1] // 5
    _check_like(fn, (("grad_hy", grad_hy),), (B, H))
    _check_dtypes(fn, (("workspace", workspace), ("grad_hy", grad_hy)))
    dt = workspace._dtype
    return ((B, 3 * H), dt), ((B, 3 * H), dt), ((B, H), dt)


defop("_thnn_fused_lstm_cell(Tensor input_gates, Tensor hidden_gates, Tensor cx, Tensor? input_bias=None, "
      "Tensor? hidden_bias=None) -> (Tensor, Tensor, Tensor)", meta=lstm_cell_meta)
defop("_thnn_fused_lstm_cell_backward(Tensor grad_hy, Tensor grad_cy, Tensor cx, Tensor cy, Tensor workspace) "
      "-> (Tensor, Tensor)", meta=lstm_cell_backward_meta)
defop("_thnn_fused_gru_cell(Tensor input_gates, Tensor hidden_gates, Tensor hx, Tensor? input_bias=None, "
      "Tensor? hidden_bias=None) -> (Tensor, Tensor)", meta=gru_cell_meta)
defop("_thnn_fused_gru_cell_backward(Tensor grad_hy, Tensor workspace) -> (Tensor, Tensor, Tensor)",
      meta=gru_cell_backward_meta)

# the workspace outputs are not differentiable (as torch's): no formula reads their grads
derivative("_thnn_fused_lstm_cell", **{
    "input_gates, hidden_gates, cx, input_bias, hidden_bias":
        "lstm_cell_backward(grad, grad1, input_gates, hidden_gates, cx, input_bias, hidden_bias, result1, result2)"})
derivative("_thnn_fused_gru_cell", **{
    "input_gates, hidden_gates, hx, input_bias, hidden_bias":
        "gru_cell_backward(grad, input_gates, hidden_gates, hx, input_bias, hidden_bias, result1)"})
