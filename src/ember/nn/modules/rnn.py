"""Recurrent layers: RNN (tanh or relu), LSTM (with projections, proj_size), GRU, and the one-step cells RNNCell,
LSTMCell and GRUCell, with PyTorch's constructor arguments, parameter names and shapes, initialisation
(every parameter U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))), gate order and return values.

Gate order (rows of weight_ih / weight_hh): LSTM i, f, g, o; GRU r, z, n with
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),   h' = (1 - z) * n + z * h.

Everything is written with ember ops, so autograd (and the device) comes from them. Per layer and direction the
input projection of all time steps is one matrix product (x @ W_ih^T + b_ih over the whole sequence, or over a
PackedSequence's data); only the recurrent part loops over time: per step one product of the hidden state and,
for LSTM and GRU, one fused cell op (`_thnn_fused_lstm_cell` / `_thnn_fused_gru_cell`, ops/rnn.py) for the gates'
sum and activations, so a step is two kernel launches forward on CUDA (three with proj_size). Nothing in the loop
reads a value on the host (a PackedSequence's batch_sizes are host data already), so a training step through
these layers can be captured in a CUDA graph.

A PackedSequence runs with a shrinking batch: at step t only its first batch_sizes[t] rows are updated, the rows
of sequences that have ended keep their final state (the reverse direction starts each sequence at its own last
step), which is what torch computes.
"""
from __future__ import annotations

import math
import numbers
import warnings

from ..._tensor import Tensor
from ...amp.autocast_mode import is_autocast_enabled
from ...dispatch import OPS
from ...ops.creation import empty, zeros
from .. import functional as F, init
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_addmm = OPS["addmm"].fn
_cat = OPS["cat"].fn
_stack = OPS["stack"].fn
_lstm_cell = OPS["_thnn_fused_lstm_cell"].fn
_gru_cell = OPS["_thnn_fused_gru_cell"].fn

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ---- one time step --------------------------------------------------------------------------------------
# Each step function takes `gi`, the input projection of this step (x_t @ W_ih^T + bias, see _input_bias), and
# the state tuple ((h,) or (h, c)), and returns the new state tuple. `w_hh_t` is weight_hh transposed.

def _step_fn(mode: str, w_hh_t: Tensor, b_hh: Tensor | None, w_hr_t: Tensor | None):
    if mode == "RNN_TANH":
        return lambda gi, s: (_addmm(gi, s[0], w_hh_t).tanh(),)
    if mode == "RNN_RELU":
        return lambda gi, s: (F.relu(_addmm(gi, s[0], w_hh_t)),)
    if mode == "LSTM":
        def lstm_step(gi, s):
            h, c, _ = _lstm_cell(gi, s[0].mm(w_hh_t), s[1])
            return (h if w_hr_t is None else h.mm(w_hr_t)), c
        return lstm_step
    if mode == "GRU":
        def gru_step(gi, s):
            h = s[0]
            gh = h.mm(w_hh_t) if b_hh is None else _addmm(b_hh, h, w_hh_t)
            return (_gru_cell(gi, gh, h)[0],)
        return gru_step
    raise ValueError("Unrecognized RNN mode: " + mode)


def _input_bias(mode: str, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor | None:
    """The bias added with the input projection: b_ih + b_hh for RNN and LSTM (both enter the gates as a plain
    sum), b_ih alone for GRU (b_hn is inside r * (W_hn h + b_hn), so b_hh stays with the recurrent product)."""
    if b_ih is None:
        return None
    return b_ih if mode == "GRU" else b_ih + b_hh


def _run_direction(step, steps: list, sizes: list, state0: tuple, reverse: bool) -> tuple:
    """Runs `step` over the per-time-step projections `steps` (steps[t] has sizes[t] rows, sizes non-increasing),
    from the initial state `state0` (each (sizes[0], *)). Returns (outputs per time step, final state tuple).

    Forward: when the batch shrinks, the rows of the sequences that ended are set aside as their final state.
    Reverse: the walk starts at the last step with the sequences that reach it, and a sequence joins (from its
    row of state0) at its own last step."""
    T = len(sizes)
    outs = [None] * T
    if not reverse:
        state, cur, ended = state0, sizes[0] if T else 0, []
        for t in range(T):
            b = sizes[t]
            if b < cur:
                ended.append(tuple(s[b:cur] for s in state))
                state = tuple(s[:b] for s in state)
                cur = b
            state = step(steps[t], state)
            outs[t] = state[0]
        if ended:
            state = tuple(_cat([s] + [e[k] for e in reversed(ended)], 0) for k, s in enumerate(state))
        return outs, state
    cur = sizes[-1] if T else 0
    state = state0 if not T or cur == sizes[0] else tuple(s[:cur] for s in state0)
    for t in range(T - 1, -1, -1):
        b = sizes[t]
        if b > cur:
            state = tuple(_cat([s, s0[cur:b]], 0) for s, s0 in zip(state, state0))
            cur = b
        state = step(steps[t], state)
        outs[t] = state[0]
    return outs, state


# ---- the layers -----------------------------------------------------------------------------------------

class RNNBase(Module):
    """The multi-layer recurrent network shared by RNN, LSTM and GRU (`mode` is "RNN_TANH", "RNN_RELU", "LSTM" or
    "GRU"). Parameters per layer k and direction (suffix "_reverse" for the second): weight_ih_l{k} (gates *
    hidden, in), weight_hh_l{k} (gates * hidden, out), bias_ih_l{k}, bias_hh_l{k} (gates * hidden) when `bias`,
    weight_hr_l{k} (proj_size, hidden) when proj_size > 0 (LSTM); `out` is proj_size or hidden_size and `in` is
    input_size for layer 0, else out * num_directions."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(f"dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, but got dropout={dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=3)
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers), ("proj_size", proj_size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if input_size <= 0:
            raise ValueError(f"input_size must be greater than zero, but got input_size={input_size}")
        if hidden_size <= 0:
            raise ValueError(f"hidden_size must be greater than zero, but got hidden_size={hidden_size}")
        if num_layers <= 0:
            raise ValueError(f"num_layers must be greater than zero, but got num_layers={num_layers}")
        if proj_size < 0:
            raise ValueError(f"proj_size should be a positive integer or zero to disable projections, but got "
                             f"proj_size={proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, but got proj_size={proj_size} and "
                             f"hidden_size={hidden_size}")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        fk = {"device": device, "dtype": dtype}
        num_directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * num_directions
            for direction in range(num_directions):
                shapes = [("weight_ih_l{}{}", (gate_size, layer_input)), ("weight_hh_l{}{}", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih_l{}{}", (gate_size,)), ("bias_hh_l{}{}", (gate_size,))]
                if proj_size > 0:
                    shapes += [("weight_hr_l{}{}", (proj_size, hidden_size))]
                suffix = "_reverse" if direction == 1 else ""
                names = []
                for fmt, shape in shapes:
                    name = fmt.format(layer, suffix)
                    setattr(self, name, Parameter(empty(*shape, **fk)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, n, None) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        """The parameters, one list per layer and direction, in torch's order (w_ih, w_hh, [b_ih, b_hh], [w_hr])."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Nothing to do: there is no cuDNN weight buffer in ember (kept for torch code that calls it)."""

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    # -- checks (torch's names and messages) --

    def _name(self) -> str:
        return type(self).__name__

    def check_input(self, input: Tensor, batch_sizes) -> None:
        w = getattr(self, self._flat_weights_names[0])
        if input.dtype != w.dtype and not is_autocast_enabled(input.device.type):
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({w.dtype}). Convert "
                             f"input: input.to({w.dtype}), or convert model: model.to({input.dtype})")
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.size(-1)}")

    def get_expected_hidden_size(self, input: Tensor, batch_sizes) -> tuple:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, mini_batch,
                self.proj_size if self.proj_size > 0 else self.hidden_size)

    def check_hidden_size(self, hx: Tensor, expected_hidden_size: tuple,
                          msg: str = "Expected hidden size {}, got {}") -> None:
        if tuple(hx.size()) != tuple(expected_hidden_size):
            raise RuntimeError(msg.format(tuple(expected_hidden_size), list(hx.size())))

    def _check_hidden_dtype(self, input: Tensor, hx: Tensor, what: str) -> None:
        if hx.dtype != input.dtype and not is_autocast_enabled(input.device.type):
            raise RuntimeError(f"{self._name()}: {what} dtype ({hx.dtype}) does not match input dtype "
                               f"({input.dtype})")

    def check_forward_args(self, input: Tensor, hidden: Tensor, batch_sizes) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))
        self._check_hidden_dtype(input, hidden, "hx")

    def permute_hidden(self, hx: Tensor, permutation: Tensor | None):
        if permutation is None:
            return hx
        return hx.index_select(1, permutation)

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # -- forward --

    def _zeros_state(self, input: Tensor, batch: int) -> Tensor:
        """The default hx: zeros (layers * directions, batch, proj_size or hidden_size)."""
        size = self.proj_size if self.proj_size > 0 else self.hidden_size
        return zeros(self.num_layers * (2 if self.bidirectional else 1), batch, size, dtype=input.dtype,
                     device=input.device)

    def _layers(self, input: Tensor, hx: tuple, batch_sizes) -> tuple:
        """The whole network. `input` is (T, B, I) (or (B, T, I) with batch_first) when batch_sizes is None, else
        a PackedSequence's data (N, I) with `batch_sizes` a list of ints; `hx` is the state tuple, each
        (layers * directions, B, *). Returns (output, final state tuple, each (layers * directions, B, *))."""
        packed = batch_sizes is not None
        if not packed and self.batch_first:
            input = input.transpose(0, 1)
        sizes = batch_sizes if packed else [input.size(1)] * input.size(0)
        num_directions = 2 if self.bidirectional else 1
        finals = [[] for _ in hx]
        x = input
        for layer in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                w = dict(zip(("w_ih", "w_hh", "b_ih", "b_hh") if self.bias else ("w_ih", "w_hh"),
                             (getattr(self, n) for n in self._all_weights[k])))
                w_hr = getattr(self, self._all_weights[k][-1]) if self.proj_size > 0 else None
                b_ih, b_hh = w.get("b_ih"), w.get("b_hh")
                # the input projection of every time step at once
                proj = F.linear(x, w["w_ih"], _input_bias(self.mode, b_ih, b_hh))
                steps = list(proj.split_with_sizes(sizes, 0)) if packed else list(proj.unbind(0))
                step = _step_fn(self.mode, w["w_hh"].t(), b_hh, None if w_hr is None else w_hr.t())
                seq, state = _run_direction(step, steps, sizes, tuple(h[k] for h in hx), reverse=direction == 1)
                outs.append(_cat(seq, 0) if packed else _stack(seq, 0))
                for f, s in zip(finals, state):
                    f.append(s)
            x = outs[0] if num_directions == 1 else _cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        if not packed and self.batch_first:
            x = x.transpose(0, 1)
        return x, tuple(_stack(f, 0) for f in finals)

    def _unpack_input(self, input, hx, zeros_state) -> tuple:
        """forward's input: a PackedSequence unpacked (hx permuted to its sorted order, or zeros_state(data,
        batch) when None), or a 2-D/3-D Tensor checked and given a batch dim when unbatched (hx left as it is).
        Returns (input, hx, batch_sizes (a list, None for a Tensor), is_batched, batch_dim)."""
        if isinstance(input, PackedSequence):
            batch_sizes = [int(b) for b in input.batch_sizes.tolist()]
            if hx is None:
                hx = zeros_state(input.data, batch_sizes[0])
            else:
                hx = self.permute_hidden(hx, input.sorted_indices)
            return input.data, hx, batch_sizes, True, None
        name = self._name()
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input should be a Tensor or a PackedSequence, but got {type(input).__name__}")
        if input.dim() not in (2, 3):
            # torch's LSTM words this one without "tensor"
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D"
                             f"{'' if self.mode == 'LSTM' else ' tensor'} instead")
        is_batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not is_batched:
            input = input.unsqueeze(batch_dim)
        return input, hx, None, is_batched, batch_dim

    def _repack_output(self, orig_input, output, hidden, is_batched: bool, batch_dim) -> tuple:
        """forward's (output, hidden) in the form of its input: a PackedSequence (hidden back in the unsorted
        order) for a packed one; the batch dim squeezed from output and each hidden tensor for an unbatched one."""
        if isinstance(orig_input, PackedSequence):
            return (PackedSequence(output, orig_input.batch_sizes, orig_input.sorted_indices,
                                   orig_input.unsorted_indices),
                    self.permute_hidden(hidden, orig_input.unsorted_indices))
        if not is_batched:
            output = output.squeeze(batch_dim)
            hidden = hidden.squeeze(1) if isinstance(hidden, Tensor) else tuple(h.squeeze(1) for h in hidden)
        return output, hidden

    def forward(self, input, hx=None):
        """input: (T, B, input_size) ((B, T, input_size) with batch_first), unbatched (T, input_size), or a
        PackedSequence; hx: (layers * directions, B, hidden_size) (2-D when unbatched), zeros when None.
        Returns (output, h_n): output (T, B, directions * hidden_size) (a PackedSequence for one), h_n like hx."""
        orig_input = input
        if hx is not None and not isinstance(hx, Tensor):
            raise TypeError(f"{self._name()}: hx should be a Tensor, but got {type(hx).__name__}")
        input, hx, batch_sizes, is_batched, batch_dim = self._unpack_input(input, hx, self._zeros_state)
        if batch_sizes is None:
            if not is_batched:
                if hx is not None:
                    if hx.dim() != 2:
                        raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D "
                                           f"tensor")
                    hx = hx.unsqueeze(1)
            elif hx is not None and hx.dim() != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
            if hx is None:
                hx = self._zeros_state(input, input.size(batch_dim))
        self.check_forward_args(input, hx, batch_sizes)
        output, (hidden,) = self._layers(input, (hx,), batch_sizes)
        return self._repack_output(orig_input, output, hidden, is_batched, batch_dim)


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu (`nonlinearity`).

    RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self_nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self_nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self_nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self_nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self_nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = self_nonlinearity


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n (in that order in the weights):
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False,
    device=None, dtype=None)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o (in that order in the weights):
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g), h' = sigmoid(o) * tanh(c'), then h' = h' W_hr^T when
    proj_size > 0 (h is then proj_size wide, c stays hidden_size wide).

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False,
    proj_size=0, device=None, dtype=None). forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n))."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def get_expected_cell_size(self, input: Tensor, batch_sizes) -> tuple:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        return (self.num_layers * (2 if self.bidirectional else 1), mini_batch, self.hidden_size)

    def check_forward_args(self, input: Tensor, hidden: tuple, batch_sizes) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden[0], self.get_expected_hidden_size(input, batch_sizes),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hidden[1], self.get_expected_cell_size(input, batch_sizes),
                               "Expected hidden[1] size {}, got {}")
        self._check_hidden_dtype(input, hidden[0], "hx[0]")
        self._check_hidden_dtype(input, hidden[1], "hx[1]")

    def permute_hidden(self, hx: tuple, permutation: Tensor | None) -> tuple:
        if permutation is None:
            return hx
        return hx[0].index_select(1, permutation), hx[1].index_select(1, permutation)

    def _zeros_pair(self, input: Tensor, batch: int) -> tuple:
        c = zeros(self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size, dtype=input.dtype,
                  device=input.device)
        return self._zeros_state(input, batch), c

    def forward(self, input, hx=None):
        """input as RNN.forward; hx = (h_0, c_0): h_0 (layers * directions, B, proj_size or hidden_size), c_0
        (layers * directions, B, hidden_size) (2-D when unbatched), zeros when None.
        Returns (output, (h_n, c_n)); output's last dim is directions * (proj_size or hidden_size)."""
        orig_input = input
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2
                                   and all(isinstance(h, Tensor) for h in hx)):
            got = type(hx).__name__ + (f" of length {len(hx)}" if isinstance(hx, (tuple, list)) else "")
            raise TypeError(f"LSTM: hx should be a tuple (h_0, c_0) of two Tensors, but got {got}")
        input, hx, batch_sizes, is_batched, batch_dim = self._unpack_input(input, hx, self._zeros_pair)
        if batch_sizes is None:
            if hx is None:
                hx = self._zeros_pair(input, input.size(batch_dim))
            elif is_batched:
                if hx[0].dim() != 3 or hx[1].dim() != 3:
                    raise RuntimeError(f"For batched 3-D input, hx and cx should also be 3-D but got "
                                       f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
            else:
                if hx[0].dim() != 2 or hx[1].dim() != 2:
                    raise RuntimeError(f"For unbatched 2-D input, hx and cx should also be 2-D but got "
                                       f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
                hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        hx = tuple(hx)
        self.check_forward_args(input, hx, batch_sizes)
        output, hidden = self._layers(input, hx, batch_sizes)
        return self._repack_output(orig_input, output, hidden, is_batched, batch_dim)


# ---- the cells ------------------------------------------------------------------------------------------

class RNNCellBase(Module):
    """One time step: weight_ih (chunks * hidden, input), weight_hh (chunks * hidden, hidden), bias_ih and
    bias_hh (chunks * hidden) or None, all U(-1/sqrt(hidden), 1/sqrt(hidden))."""

    _mode = None

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None, dtype=None):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero, but got {name}={value}")
        fk = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(empty(num_chunks * hidden_size, input_size, **fk))
        self.weight_hh = Parameter(empty(num_chunks * hidden_size, hidden_size, **fk))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, **fk))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, **fk))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _prepare(self, input, hx, n_state: int):
        """Checks the arguments; returns (batched input, state tuple, is_batched)."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input should be a Tensor, but got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            hs = tuple(hx) if n_state == 2 else (hx,)
            if n_state == 2 and not (isinstance(hx, (tuple, list)) and len(hs) == 2):
                raise TypeError(f"{name}: hx should be a tuple (h, c) of two Tensors, but got {type(hx).__name__}")
            for idx, h in enumerate(hs):
                what = f"hx[{idx}]" if n_state == 2 else "hidden"
                if not isinstance(h, Tensor):
                    raise TypeError(f"{name}: {what} should be a Tensor, but got {type(h).__name__}")
                if h.dim() not in (1, 2):
                    raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {h.dim()}D instead")
                if h.dim() != input.dim():
                    raise RuntimeError(f"{name}: Expected {what} to be {input.dim()}D like the "
                                       f"{'batched' if input.dim() == 2 else 'unbatched'} {input.dim()}D input, "
                                       f"got {h.dim()}D instead")
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}")
        if input.dtype != self.weight_ih.dtype and not is_autocast_enabled(input.device.type):
            raise ValueError(f"{name} input dtype ({input.dtype}) does not match weight dtype "
                             f"({self.weight_ih.dtype})")
        if hx is None:
            z = zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
            return input, (z,) * n_state, is_batched
        hs = tuple(h if is_batched else h.unsqueeze(0) for h in hs)
        for idx, h in enumerate(hs):
            if h.size(0) != input.size(0):
                raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{idx} batch size "
                                   f"{h.size(0)}")
            if h.size(1) != self.hidden_size:
                raise RuntimeError(f"hidden{idx} has inconsistent hidden_size: got {h.size(1)}, expected "
                                   f"{self.hidden_size}")
            if h.dtype != input.dtype and not is_autocast_enabled(input.device.type):
                raise RuntimeError(f"{name}: hidden{idx} dtype ({h.dtype}) does not match input dtype "
                                   f"({input.dtype})")
        return input, hs, is_batched

    def _cell(self, mode: str, input, hx, n_state: int) -> tuple:
        input, state, is_batched = self._prepare(input, hx, n_state)
        gi = F.linear(input, self.weight_ih, _input_bias(mode, self.bias_ih, self.bias_hh))
        state = _step_fn(mode, self.weight_hh.t(), self.bias_hh, None)(gi, state)
        return state if is_batched else tuple(s.squeeze(0) for s in state)


class RNNCell(RNNCellBase):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.
    RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh', device=None, dtype=None)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return self._cell("RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU", input, hx, 1)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o); forward(input, (h, c)=None) -> (h', c').
    LSTMCell(input_size, hidden_size, bias=True, device=None, dtype=None)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        return self._cell("LSTM", input, hx, 2)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n). GRUCell(input_size, hidden_size, bias=True, device=None, dtype=None)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._cell("GRU", input, hx, 1)[0]
