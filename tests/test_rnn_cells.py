"""The fused recurrent cells (src/ember/ops/rnn.py) on the CPU: gradcheck and double backward of (hy, cy) in
float64, one autograd node per cell call (and per time step of nn.LSTM / nn.GRU), a state whose grad never
arrives, double backward through nn.LSTM / nn.GRU against torch's, and the cells under CPU autocast. Values
against torch are in the sample table (tests/samples/rnn.py); the layers against torch in tests/test_rnn.py."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import ember
from ember.autograd import gradcheck, gradgradcheck
from ember.dispatch import OPS
from helpers import from_torch

LSTM_CELL, GRU_CELL = OPS["_thnn_fused_lstm_cell"].fn, OPS["_thnn_fused_gru_cell"].fn


def _leaves(shapes, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [ember.from_numpy(rng.uniform(-2, 2, s).astype(dtype)).requires_grad_() for s in shapes]


def _cell_leaves(gates, B=3, H=4, bias=True):
    shapes = [(B, gates * H), (B, gates * H), (B, H)] + ([(gates * H,), (gates * H,)] if bias else [])
    return _leaves(shapes)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_gradcheck_and_double_backward(bias):
    leaves = _cell_leaves(4, bias=bias)
    assert gradcheck(lambda *a: LSTM_CELL(*a)[:2], leaves)
    assert gradgradcheck(lambda *a: LSTM_CELL(*a)[:2], leaves)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_gradcheck_and_double_backward(bias):
    leaves = _cell_leaves(3, bias=bias)
    assert gradcheck(lambda *a: GRU_CELL(*a)[0], leaves)
    assert gradgradcheck(lambda *a: GRU_CELL(*a)[0], leaves)


def test_one_node_per_cell_call_and_the_workspace_takes_no_grad():
    ig, hg, cx = _cell_leaves(4, bias=False)
    hy, cy, ws = LSTM_CELL(ig, hg, cx)
    assert hy.grad_fn is cy.grad_fn is ws.grad_fn and hy.grad_fn.name() == "ThnnFusedLstmCellBackward0"
    edges = hy.grad_fn.next_functions
    assert all(e[0].variable is t for e, t in zip(edges, (ig, hg, cx))) and edges[3:] == (None, None)
    ws.sum().backward()     # the workspace is an output without a derivative (torch: not differentiable)
    assert all(t.grad is None or not t.grad.abs().sum().item() for t in (ig, hg, cx))
    gi, gh, hx = _cell_leaves(3, bias=False)
    hy, _ = GRU_CELL(gi, gh, hx)
    assert hy.grad_fn.name() == "ThnnFusedGruCellBackward0" and len(hy.grad_fn.next_functions) == 5


def test_lstm_cell_grads_when_only_hy_or_only_cy_is_used():
    """The missing output's grad is zeros (materialized on the grads' device), the workspace's is never made."""
    ig, hg, cx = _cell_leaves(4, bias=False)
    tig, thg, tcx = (torch.from_numpy(t.detach().numpy()).requires_grad_() for t in (ig, hg, cx))
    i, f, g, o = (tig + thg).chunk(4, 1)
    tcy = f.sigmoid() * tcx + i.sigmoid() * g.tanh()
    thy = o.sigmoid() * tcy.tanh()
    for k, (t_out, name) in enumerate(((thy, "hy"), (tcy, "cy"))):
        e_out = LSTM_CELL(ig, hg, cx)[k]
        got = ember.autograd.grad([e_out.sum()], [ig, hg, cx])
        want = torch.autograd.grad([t_out.sum()], [tig, thg, tcx], retain_graph=True)
        for e, t in zip(got, want):
            np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


def _node_names(t):
    seen, todo, names = set(), [t.grad_fn], []
    while todo:
        n = todo.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        names.append(n.name())
        todo += [e[0] for e in n.next_functions if e is not None]
    return names


@pytest.mark.parametrize("cls,cell,kw", [("LSTM", "ThnnFusedLstmCellBackward0", {}),
                                         ("LSTM", "ThnnFusedLstmCellBackward0", {"proj_size": 3}),
                                         ("GRU", "ThnnFusedGruCellBackward0", {})])
def test_layers_record_one_cell_node_per_step(cls, cell, kw):
    m = getattr(ember.nn, cls)(4, 5, num_layers=2, bidirectional=True, **kw)
    out, _ = m(ember.randn(6, 3, 4))
    names = _node_names(out)
    assert names.count(cell) == 6 * 2 * 2
    assert not any(n.startswith(("SigmoidBackward", "TanhBackward")) for n in names), sorted(set(names))


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_layer_double_backward_matches_torch(cls):
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(3, 4, num_layers=2, dtype=torch.float64)
    em = getattr(ember.nn, cls)(3, 4, num_layers=2, dtype=ember.float64)
    em.load_state_dict(OrderedDict((k, from_torch(v)) for k, v in tm.state_dict().items()))
    x = np.random.default_rng(1).uniform(-1, 1, (5, 2, 3))
    grads = []
    for lib, m in ((ember, em), (torch, tm)):
        xx = lib.from_numpy(x.copy()).requires_grad_()
        out, _ = m(xx)
        (gx,) = lib.autograd.grad([(out * out).sum()], [xx], create_graph=True)
        (gx * gx).sum().backward()
        grads.append([xx.grad.detach().numpy()] + [p.grad.detach().numpy() for p in m.parameters()])
    for e, t in zip(*grads):
        np.testing.assert_allclose(e, t, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_layers_under_cpu_autocast_promote_the_cells(cls):
    """CPU autocast makes the products bfloat16 while the default state is float32: the cells promote (torch's CPU
    autocast has no fused cells), so the recurrence and its outputs stay float32, and backward runs."""
    m = getattr(ember.nn, cls)(4, 5)
    x = ember.randn(3, 2, 4, requires_grad=True)
    with ember.autocast("cpu", dtype=ember.bfloat16):
        out, h = m(x)
    assert out.dtype is ember.float32 and all(t.dtype is ember.float32 for t in (h if cls == "LSTM" else (h,)))
    out.sum().backward()
    assert x.grad is not None and m.weight_hh_l0.grad.dtype is ember.float32
