"""The fused LSTM and GRU cell Triton kernels through Triton's interpreter on CPU tensors, against the CPU kernels:
forward and backward, every dtype, with and without biases, strided inputs (a time step of a projection, transposed
gates, sliced biases and states), shapes that take several programs each way, and no rows."""
import inspect
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_rnn.py", allow_module_level=True)
pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from ember.backends.cuda import rnn as R  # noqa: E402
from ember.dispatch import OPS  # noqa: E402

TOL = {"float32": 1e-6, "float64": 1e-12, "float16": 2e-3, "bfloat16": 1.6e-2}
SHAPES = {"small": (3, 5), "programs": (9, 150)}   # (B, H): 9 x 150 takes 3 x 3 programs


def _cpu(name):
    return OPS[name].kernels["cpu"]


def _t(shape, dt, seed, layout="contiguous"):
    rng = np.random.default_rng(seed)
    if layout == "transposed":
        return ember.tensor(rng.uniform(-2, 2, shape[::-1])).to(dt).t()
    if layout == "sliced":
        return ember.tensor(rng.uniform(-2, 2, shape[:-1] + (2 * shape[-1],))).to(dt)[..., ::2]
    if layout == "step":        # step 1 of a (3, *shape) projection: an offset into a larger buffer
        return ember.tensor(rng.uniform(-2, 2, (3,) + shape)).to(dt)[1]
    return ember.tensor(rng.uniform(-2, 2, shape)).to(dt)


def _same(got, want, dtype):
    tol = TOL[dtype]
    for g, w in zip(got, want):
        assert g.dtype is w.dtype and tuple(g.shape) == tuple(w.shape) and g.is_contiguous()
        np.testing.assert_allclose(g.double().numpy(), w.double().numpy(), rtol=tol, atol=tol)


def _cell_args(gates, B, H, dt, layout, bias):
    lay = {"contiguous": ("contiguous",) * 3, "strided": ("step", "transposed", "sliced")}[layout]
    args = [_t((B, gates * H), dt, 0, lay[0]), _t((B, gates * H), dt, 1, lay[1]), _t((B, H), dt, 2, lay[2])]
    if bias:
        args += [_t((gates * H,), dt, 3, "sliced" if layout == "strided" else "contiguous"), _t((gates * H,), dt, 4)]
    return args


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("layout,bias", [("contiguous", False), ("contiguous", True), ("strided", True)])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_lstm_kernels_match_cpu(dtype, layout, bias, shape):
    B, H = SHAPES[shape]
    dt = getattr(ember, dtype)
    args = _cell_args(4, B, H, dt, layout, bias)
    want = _cpu("_thnn_fused_lstm_cell")(*args)
    _same(R.fused_lstm_cell(*args), want, dtype)
    _, cy, ws = want
    ghy, gcy = _t((B, H), dt, 5, "transposed" if layout == "strided" else "contiguous"), _t((B, H), dt, 6)
    bargs = (ghy, gcy, args[2], cy, ws)
    _same(R.fused_lstm_cell_backward(*bargs), _cpu("_thnn_fused_lstm_cell_backward")(*bargs), dtype)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("layout,bias", [("contiguous", False), ("contiguous", True), ("strided", True)])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_gru_kernels_match_cpu(dtype, layout, bias, shape):
    B, H = SHAPES[shape]
    dt = getattr(ember, dtype)
    args = _cell_args(3, B, H, dt, layout, bias)
    want = _cpu("_thnn_fused_gru_cell")(*args)
    _same(R.fused_gru_cell(*args), want, dtype)
    ws = want[1] if layout == "contiguous" else _t((B, 5 * H), dt, 7, "sliced")
    ghy = _t((B, H), dt, 5, "transposed" if layout == "strided" else "contiguous")
    _same(R.fused_gru_cell_backward(ghy, ws), _cpu("_thnn_fused_gru_cell_backward")(ghy, ws), dtype)


def test_no_rows_launch_nothing():
    z = ember.zeros
    for got in (R.fused_lstm_cell(z(0, 8), z(0, 8), z(0, 2)), R.fused_lstm_cell_backward(*(z(0, 2),) * 4, z(0, 8)),
                R.fused_gru_cell(z(0, 6), z(0, 6), z(0, 2)), R.fused_gru_cell_backward(z(0, 2), z(0, 10))):
        assert all(t.shape[0] == 0 and t.dtype is ember.float32 for t in got)


def test_arguments_follow_the_kernels_parameter_order(monkeypatch):
    """The interpreter takes the arguments by name, a compiled launch packs them in order: the order must be the
    kernel's (this is the check the interpreter cannot make)."""
    seen = []

    def check(fn, grid, args, constexprs, index=0, num_warps=4, num_stages=None):
        assert [a[0] for a in args] + list(constexprs) == list(inspect.signature(fn.fn).parameters), fn.fn.__name__
        seen.append(fn.fn.__name__)
    monkeypatch.setattr(R, "run", check)
    z = ember.zeros
    for bias in ((), (z(8), z(8))):
        R.fused_lstm_cell(z(3, 8), z(3, 8), z(3, 2), *bias)
    R.fused_lstm_cell_backward(*(z(3, 2),) * 4, z(3, 8))
    for bias in ((), (z(6), z(6))):
        R.fused_gru_cell(z(3, 6), z(3, 6), z(3, 2), *bias)
    R.fused_gru_cell_backward(z(3, 2), z(3, 10))
    assert sorted(set(seen)) == ["gru_bwd_kernel", "gru_fwd_kernel", "lstm_bwd_kernel", "lstm_fwd_kernel"]
