"""ember.nn recurrent layers (RNN, LSTM, GRU and their cells) and ember.nn.utils.rnn against torch.

Every comparison starts from the same weights (torch's state dict copied into ember by name) and checks outputs,
final states and the gradients of the input, the initial state and every parameter after backward of a randomly
weighted sum of all outputs (so that every element matters): float64 to 1e-10, float32 to 1e-5.
"""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn

import ember
import ember.nn as nn
import ember.nn.utils.rnn as ernn
from helpers import from_torch, to_torch

pytestmark = [pytest.mark.filterwarnings("ignore:dropout option adds dropout"),
              pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")]

TOL = {"float64": 1e-10, "float32": 1e-5}
EDT = {"float64": ember.float64, "float32": ember.float32}
TDT = {"float64": torch.float64, "float32": torch.float32}

# (class name, extra constructor kwargs): every recurrent variant
MODES = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("GRU", {}), ("LSTM", {}), ("LSTM", {"proj_size": 3})]
MODE_IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "lstm_proj"]
I, H, T, B = 4, 5, 6, 3


# ---- helpers ----------------------------------------------------------------------------------------------

def make_modules(cls, *args, dtype="float64", seed=0, **kwargs):
    """A torch module and an ember module of the same class and arguments, ember holding torch's weights."""
    torch.manual_seed(seed)
    tm = getattr(torch.nn, cls)(*args, dtype=TDT[dtype], **kwargs)
    em = getattr(nn, cls)(*args, dtype=EDT[dtype], **kwargs)
    em.load_state_dict(OrderedDict((k, from_torch(v)) for k, v in tm.state_dict().items()))
    return em, tm


def leaf_pair(shape, dtype, seed):
    a = np.random.default_rng(seed).uniform(-1.5, 1.5, size=shape)
    e = ember.from_numpy(a.astype(np.dtype(dtype))).requires_grad_()
    t = torch.from_numpy(a.astype(np.dtype(dtype))).requires_grad_()
    return e, t


def flat(out):
    """The tensors of a (possibly nested) RNN result, a PackedSequence contributing its data."""
    if isinstance(out, (ernn.PackedSequence, trnn.PackedSequence)):
        return [out.data]
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in flat(o)]
    return [out]


def close(e, t, tol, what=""):
    assert tuple(e.shape) == tuple(t.shape), f"{what}: shape {tuple(e.shape)} vs torch {tuple(t.shape)}"
    ea = e.detach().numpy() if isinstance(e, ember.Tensor) else np.asarray(e)
    np.testing.assert_allclose(ea, t.detach().numpy(), rtol=tol, atol=tol, err_msg=what)


def compare(em, tm, e_out, t_out, e_leaves, t_leaves, dtype, seed=99):
    """Values of every output, then gradients of every leaf and parameter after backward of a random weighting."""
    tol = TOL[dtype]
    eo, to = flat(e_out), flat(t_out)
    assert len(eo) == len(to)
    for k, (e, t) in enumerate(zip(eo, to)):
        close(e, t, tol, f"output {k}")
    rng = np.random.default_rng(seed)
    el, tl = 0, 0
    for e, t in zip(eo, to):
        w = rng.standard_normal(tuple(t.shape)).astype(np.dtype(dtype))
        el = el + (e * ember.from_numpy(w)).sum()
        tl = tl + (t * torch.from_numpy(w)).sum()
    el.backward()
    tl.backward()
    for k, (e, t) in enumerate(zip(e_leaves, t_leaves)):
        assert (e.grad is None) == (t.grad is None), f"leaf {k}"
        if t.grad is not None:
            close(e.grad, t.grad, tol, f"grad of leaf {k}")
    tp = dict(tm.named_parameters())
    names = [n for n, _ in em.named_parameters()]
    assert names == list(tp), "parameter names/order"
    for n, p in em.named_parameters():
        assert p.grad is not None and tp[n].grad is not None, n
        close(p.grad, tp[n].grad, tol, f"grad of {n}")


def state_shapes(cls, kw, layers, bidir, batch):
    d = (2 if bidir else 1) * layers
    hsize = kw.get("proj_size", 0) or H
    return [(d, batch, hsize), (d, batch, H)] if cls == "LSTM" else [(d, batch, H)]


def make_hx(cls, kw, layers, bidir, batch, dtype, seed=7, unbatched=False):
    shapes = state_shapes(cls, kw, layers, bidir, batch)
    if unbatched:
        shapes = [(s[0], s[2]) for s in shapes]
    pairs = [leaf_pair(s, dtype, seed + i) for i, s in enumerate(shapes)]
    es, ts = [p[0] for p in pairs], [p[1] for p in pairs]
    if cls == "LSTM":
        return tuple(es), tuple(ts), es, ts
    return es[0], ts[0], es, ts


# ---- parameters and state dicts ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_names_shapes_both_ways(cls, kw, bias):
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(I, H, num_layers=2, bidirectional=True, bias=bias, **kw)
    em = getattr(nn, cls)(I, H, num_layers=2, bidirectional=True, bias=bias, **kw)
    tsd, esd = tm.state_dict(), em.state_dict()
    assert list(esd) == list(tsd)
    for k in tsd:
        assert tuple(esd[k].shape) == tuple(tsd[k].shape), k
        assert esd[k].dtype is ember.float32
    # torch -> ember
    em.load_state_dict(OrderedDict((k, from_torch(v)) for k, v in tsd.items()))
    for k, v in em.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), tsd[k].numpy())
    # ember -> torch
    em2 = getattr(nn, cls)(I, H, num_layers=2, bidirectional=True, bias=bias, **kw)
    tm.load_state_dict(OrderedDict((k, to_torch(v)) for k, v in em2.state_dict().items()))
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), em2.state_dict()[k].numpy())
    assert [[tuple(w.shape) for w in ws] for ws in em.all_weights] == \
        [[tuple(w.shape) for w in ws] for ws in tm.all_weights]
    assert repr(em) == repr(tm)


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_state_dict(cls, bias):
    tm = getattr(torch.nn, cls)(I, H, bias=bias)
    em = getattr(nn, cls)(I, H, bias=bias)
    assert [(k, tuple(v.shape)) for k, v in em.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    tm.load_state_dict(OrderedDict((k, to_torch(v)) for k, v in em.state_dict().items()))
    assert repr(em) == repr(tm)
    assert em.bias_ih is None if not bias else em.bias_ih is not None


def test_repr_matches_torch():
    for args, kw in [((3, 4), {}), ((3, 4, 2), {"nonlinearity": "relu", "batch_first": True, "dropout": 0.5}),
                     ((3, 4), {"bias": False, "bidirectional": True})]:
        assert repr(nn.RNN(*args, **kw)) == repr(torch.nn.RNN(*args, **kw))
    assert repr(nn.LSTM(3, 4, proj_size=2)) == repr(torch.nn.LSTM(3, 4, proj_size=2))
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == repr(torch.nn.RNNCell(3, 4, nonlinearity="relu"))


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_init_uniform_bound(cls):
    ember.manual_seed(1)
    m = getattr(nn, cls)(3, 16, **({"num_layers": 2} if not cls.endswith("Cell") else {}))
    bound = 1 / 16 ** 0.5
    vals = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert vals.min() >= -bound and vals.max() <= bound
    assert vals.min() < -0.8 * bound and vals.max() > 0.8 * bound  # spread over the whole range
    assert abs(vals.mean()) < 0.1 * bound
    ember.manual_seed(1)
    m2 = getattr(nn, cls)(3, 16, **({"num_layers": 2} if not cls.endswith("Cell") else {}))
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_factory_kwargs_and_flatten():
    m = nn.LSTM(3, 4, num_layers=2, dtype=ember.float64, device="cpu")
    assert all(p.dtype is ember.float64 for p in m.parameters())
    m.flatten_parameters()  # a no-op, kept for torch code
    assert m.double() is m and m.weight_ih_l0.dtype is ember.float64


# ---- the layers against torch -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
def test_layer_matches_torch(cls, kw, layers, bidir, batch_first, with_hx, dtype):
    em, tm = make_modules(cls, I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first,
                          dtype=dtype, **kw)
    xe, xt = leaf_pair((B, T, I) if batch_first else (T, B, I), dtype, seed=1)
    le, lt = [xe], [xt]
    if with_hx:
        he, ht, hes, hts = make_hx(cls, kw, layers, bidir, B, dtype)
        le, lt = le + hes, lt + hts
        eo, to = em(xe, he), tm(xt, ht)
    else:
        eo, to = em(xe), tm(xt)
    assert isinstance(eo, tuple) and len(eo) == 2
    if cls == "LSTM":
        assert isinstance(eo[1], tuple) and len(eo[1]) == 2
    compare(em, tm, eo, to, le, lt, dtype)


@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
def test_no_bias_matches_torch(cls, kw):
    em, tm = make_modules(cls, I, H, num_layers=2, bidirectional=True, bias=False, **kw)
    xe, xt = leaf_pair((T, B, I), "float64", seed=2)
    he, ht, hes, hts = make_hx(cls, kw, 2, True, B, "float64")
    compare(em, tm, em(xe, he), tm(xt, ht), [xe] + hes, [xt] + hts, "float64")


@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
def test_unbatched_matches_torch(cls, kw, batch_first, with_hx):
    em, tm = make_modules(cls, I, H, num_layers=2, bidirectional=True, batch_first=batch_first, **kw)
    xe, xt = leaf_pair((T, I), "float64", seed=3)
    le, lt = [xe], [xt]
    if with_hx:
        he, ht, hes, hts = make_hx(cls, kw, 2, True, None, "float64", unbatched=True)
        le, lt = le + hes, lt + hts
        eo, to = em(xe, he), tm(xt, ht)
    else:
        eo, to = em(xe), tm(xt)
    assert eo[0].dim() == 2
    compare(em, tm, eo, to, le, lt, "float64")


@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
def test_dropout_eval_equals_no_dropout(cls, kw):
    em, tm = make_modules(cls, I, H, num_layers=3, dropout=0.5, **kw)
    em0 = getattr(nn, cls)(I, H, num_layers=3, dropout=0.0, dtype=ember.float64, **kw)
    em0.load_state_dict(em.state_dict())
    em.eval()
    tm.eval()
    x = np.random.default_rng(4).standard_normal((T, B, I))
    a = flat(em(ember.from_numpy(x)))
    b = flat(em0(ember.from_numpy(x)))
    c = flat(tm(torch.from_numpy(x)))
    for u, v, w in zip(a, b, c):
        np.testing.assert_array_equal(u.detach().numpy(), v.detach().numpy())
        close(u, w, 1e-10)


@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
def test_dropout_training(cls, kw):
    # p = 1 zeroes the input of every layer but the first (not the output of the last): deterministic, as torch
    em, tm = make_modules(cls, I, H, num_layers=2, dropout=1.0, **kw)
    xe, xt = leaf_pair((T, B, I), "float64", seed=5)
    compare(em, tm, em(xe), tm(xt), [xe], [xt], "float64")
    # 0 < p < 1: the first layer is unchanged, the output changes, eval mode gives the dropout-free result
    em, _ = make_modules(cls, I, H, num_layers=2, dropout=0.5, **kw)
    x = ember.from_numpy(np.random.default_rng(6).standard_normal((T, B, I)))
    ember.manual_seed(0)
    train_out = flat(em(x))
    em.eval()
    eval_out = flat(em(x))
    assert not np.allclose(train_out[0].detach().numpy(), eval_out[0].detach().numpy())
    # h_n of layer 0 does not see any dropout
    np.testing.assert_allclose(train_out[1].detach().numpy()[0], eval_out[1].detach().numpy()[0], atol=1e-12)


def test_lstm_proj_shapes():
    m = nn.LSTM(I, H, num_layers=2, proj_size=2, bidirectional=True, batch_first=True)
    assert tuple(m.weight_hr_l1_reverse.shape) == (2, H)
    assert tuple(m.weight_ih_l1.shape) == (4 * H, 4)
    assert tuple(m.weight_hh_l0.shape) == (4 * H, 2)
    y, (h, c) = m(ember.randn(B, T, I))
    assert tuple(y.shape) == (B, T, 4) and tuple(h.shape) == (4, B, 2) and tuple(c.shape) == (4, B, H)


def test_parameter_replacement_is_used():
    # the forward reads the parameters by name on every call (no stale flat-weight cache)
    em, tm = make_modules("GRU", I, H)
    new = torch.nn.Parameter(torch.randn_like(tm.weight_hh_l0))
    tm.weight_hh_l0 = new
    em.weight_hh_l0 = nn.Parameter(from_torch(new))
    xe, xt = leaf_pair((T, B, I), "float64", seed=8)
    compare(em, tm, em(xe), tm(xt), [xe], [xt], "float64")


# ---- packed sequences -------------------------------------------------------------------------------------

PACK_CASES = [([6, 6, 3], True), ([6, 4, 1], True), ([2, 6, 4], False), ([4, 6, 4], False), ([1, 3, 6], False)]


@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("lengths,enforce_sorted", PACK_CASES, ids=[str(c) for c in PACK_CASES])
@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
def test_packed_matches_torch(cls, kw, lengths, enforce_sorted, bidir, with_hx):
    batch_first = not enforce_sorted  # both layouts of the padded input
    em, tm = make_modules(cls, I, H, num_layers=2, bidirectional=bidir, batch_first=batch_first, **kw)
    xe, xt = leaf_pair((B, T, I) if batch_first else (T, B, I), "float64", seed=9)
    pe = ernn.pack_padded_sequence(xe, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    pt = trnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=enforce_sorted)
    assert isinstance(pe, ernn.PackedSequence)
    close(pe.data, pt.data, 0)
    assert pe.batch_sizes.tolist() == pt.batch_sizes.tolist() and pe.batch_sizes.dtype is ember.int64
    for a, b in ((pe.sorted_indices, pt.sorted_indices), (pe.unsorted_indices, pt.unsorted_indices)):
        assert (a is None) == (b is None)
        if b is not None:
            assert a.tolist() == b.tolist()
    le, lt = [xe], [xt]
    if with_hx:
        he, ht, hes, hts = make_hx(cls, kw, 2, bidir, B, "float64")
        le, lt = le + hes, lt + hts
        eo, to = em(pe, he), tm(pt, ht)
    else:
        eo, to = em(pe), tm(pt)
    assert isinstance(eo[0], ernn.PackedSequence)
    assert eo[0].batch_sizes.tolist() == to[0].batch_sizes.tolist()
    # through pad_packed_sequence, so that its backward is exercised as well
    pad_e, len_e = ernn.pad_packed_sequence(eo[0], batch_first=batch_first, padding_value=0.5, total_length=T + 1)
    pad_t, len_t = trnn.pad_packed_sequence(to[0], batch_first=batch_first, padding_value=0.5, total_length=T + 1)
    assert len_e.tolist() == len_t.tolist() == lengths and len_e.dtype is ember.int64
    compare(em, tm, (eo[0], pad_e, eo[1]), (to[0], pad_t, to[1]), le, lt, "float64")


@pytest.mark.parametrize("cls,kw", MODES, ids=MODE_IDS)
def test_packed_float32(cls, kw):
    em, tm = make_modules(cls, I, H, num_layers=2, bidirectional=True, dtype="float32", **kw)
    xe, xt = leaf_pair((T, B, I), "float32", seed=10)
    pe = ernn.pack_padded_sequence(xe, [3, 6, 5], enforce_sorted=False)
    pt = trnn.pack_padded_sequence(xt, [3, 6, 5], enforce_sorted=False)
    compare(em, tm, em(pe), tm(pt), [xe], [xt], "float32")


def test_pack_sequence_roundtrip():
    seqs = [leaf_pair((n, 2), "float64", seed=n) for n in (3, 5, 1)]
    pe = ernn.pack_sequence([s[0] for s in seqs], enforce_sorted=False)
    pt = trnn.pack_sequence([s[1] for s in seqs], enforce_sorted=False)
    close(pe.data, pt.data, 0)
    ue, ut = ernn.unpack_sequence(pe), trnn.unpack_sequence(pt)
    assert len(ue) == len(ut) == 3
    for a, b in zip(ue, ut):
        close(a, b, 0)
    assert ernn.invert_permutation(ember.tensor([2, 0, 1])).tolist() == [1, 2, 0]
    assert ernn.invert_permutation(None) is None
    p2 = pe.double()
    assert p2.data.dtype is ember.float64 and pe.to("cpu") is pe and not pe.is_cuda
    padded = ernn.pad_sequence([s[0] for s in seqs], batch_first=True)
    assert [u.shape[0] for u in ernn.unpad_sequence(padded, [3, 5, 1], batch_first=True)] == [3, 5, 1]
    assert tuple(padded.shape) == (3, 5, 2)  # unpad_sequence left its input alone


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, side):
    pairs = [leaf_pair((n, 2, 3), "float64", seed=n) for n in (4, 1, 6)]
    pe = ernn.pad_sequence([p[0] for p in pairs], batch_first=batch_first, padding_value=-2.0, padding_side=side)
    pt = trnn.pad_sequence([p[1] for p in pairs], batch_first=batch_first, padding_value=-2.0, padding_side=side)
    close(pe, pt, 0)
    w = np.random.default_rng(0).standard_normal(tuple(pt.shape))
    (pe * ember.from_numpy(w)).sum().backward()
    (pt * torch.from_numpy(w)).sum().backward()
    for e, t in pairs:
        close(e.grad, t.grad, 1e-12)


def test_pack_pad_gradients_match_torch():
    xe, xt = leaf_pair((5, 3, 2), "float64", seed=11)
    pe = ernn.pack_padded_sequence(xe, ember.tensor([2, 5, 3]), enforce_sorted=False)
    pt = trnn.pack_padded_sequence(xt, torch.tensor([2, 5, 3]), enforce_sorted=False)
    oe, _ = ernn.pad_packed_sequence(pe, padding_value=1.0)
    ot, _ = trnn.pad_packed_sequence(pt, padding_value=1.0)
    close(oe, ot, 0)
    w = np.random.default_rng(1).standard_normal(tuple(ot.shape))
    ((oe * ember.from_numpy(w)).sum() + pe.data.sum()).backward()
    ((ot * torch.from_numpy(w)).sum() + pt.data.sum()).backward()
    close(xe.grad, xt.grad, 1e-12)


# ---- cells ------------------------------------------------------------------------------------------------

CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}), ("GRUCell", {})]
CELL_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", ["no_hx", "hx", "unbatched", "unbatched_hx"])
@pytest.mark.parametrize("cls,kw", CELLS, ids=CELL_IDS)
def test_cell_matches_torch(cls, kw, case, bias, dtype):
    em, tm = make_modules(cls, I, H, bias=bias, dtype=dtype, **kw)
    unbatched = case.startswith("unbatched")
    xe, xt = leaf_pair((I,) if unbatched else (B, I), dtype, seed=12)
    le, lt = [xe], [xt]
    args_e, args_t = (xe,), (xt,)
    if case.endswith("hx"):
        shape = (H,) if unbatched else (B, H)
        pairs = [leaf_pair(shape, dtype, seed=13 + k) for k in range(2 if cls == "LSTMCell" else 1)]
        le, lt = le + [p[0] for p in pairs], lt + [p[1] for p in pairs]
        if cls == "LSTMCell":
            args_e, args_t = (xe, (pairs[0][0], pairs[1][0])), (xt, (pairs[0][1], pairs[1][1]))
        else:
            args_e, args_t = (xe, pairs[0][0]), (xt, pairs[0][1])
    eo, to = em(*args_e), tm(*args_t)
    if cls == "LSTMCell":
        assert isinstance(eo, tuple) and len(eo) == 2
    compare(em, tm, eo, to, le, lt, dtype)


@pytest.mark.parametrize("cls,kw", [("RNN", {}), ("LSTM", {}), ("GRU", {})])
def test_cell_loop_equals_layer(cls, kw):
    # a Cell applied step by step with the layer's weights gives the layer's output
    layer = getattr(nn, cls)(I, H, dtype=ember.float64)
    cell = getattr(nn, cls + "Cell")(I, H, dtype=ember.float64)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = ember.from_numpy(np.random.default_rng(14).standard_normal((T, B, I)))
    y, _ = layer(x)
    state = None
    for t in range(T):
        state = cell(x[t], state)
        h = state[0] if cls == "LSTM" else state
        np.testing.assert_allclose(h.detach().numpy(), y[t].detach().numpy(), rtol=1e-12, atol=1e-12)


# ---- errors -----------------------------------------------------------------------------------------------

def test_constructor_errors():
    with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\].*dropout=1.5"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="dropout should be a number"):
        nn.GRU(3, 4, dropout=-0.1)
    with pytest.raises(ValueError, match="dropout should be a number"):
        nn.GRU(3, 4, dropout=True)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size.*proj_size=4.*hidden_size=4"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
        nn.LSTM(3, 4, proj_size=-1)
    for cls in (nn.RNN, nn.GRU):
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
            cls(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'."):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        nn.RNN(3, 4, 1, "gelu")
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="num_layers must be greater than zero"):
        nn.LSTM(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="input_size must be greater than zero"):
        nn.LSTM(0, 3)
    with pytest.raises(TypeError, match="hidden_size should be of type int, got: float"):
        nn.GRU(3, 4.0)
    with pytest.raises(TypeError, match="batch_first should be of type bool, got: int"):
        nn.GRU(3, 4, batch_first=1)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.RNN(3, 4, dropout=0.5)
    assert nn.RNN(3, 4, 1, "relu").nonlinearity == "relu"


def test_forward_errors():
    gru, lstm, rnn = nn.GRU(3, 4), nn.LSTM(3, 4, proj_size=2), nn.RNN(3, 4, num_layers=2, bidirectional=True)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 5"):
        gru(ember.randn(5, 2, 5))
    with pytest.raises(ValueError, match="GRU: Expected input to be 2D or 3D, got 4D tensor instead"):
        gru(ember.randn(5, 2, 3, 1))
    with pytest.raises(ValueError, match="LSTM: Expected input to be 2D or 3D, got 1D instead"):
        lstm(ember.randn(3))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(4, 2, 4\), got \[2, 2, 4\]"):
        rnn(ember.randn(5, 2, 3), ember.randn(2, 2, 4))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]"):
        gru(ember.randn(5, 2, 3), ember.randn(1, 3, 4))
    with pytest.raises(RuntimeError, match="For batched 3-D input, hx should also be 3-D but got 2-D tensor"):
        gru(ember.randn(5, 2, 3), ember.randn(2, 4))
    with pytest.raises(RuntimeError, match="For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"):
        gru(ember.randn(5, 3), ember.randn(1, 1, 4))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 2, 2\), got \[1, 2, 4\]"):
        lstm(ember.randn(5, 2, 3), (ember.randn(1, 2, 4), ember.randn(1, 2, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(1, 2, 4\), got \[1, 2, 2\]"):
        lstm(ember.randn(5, 2, 3), (ember.randn(1, 2, 2), ember.randn(1, 2, 2)))
    with pytest.raises(RuntimeError, match=r"hx and cx should also be 3-D but got \(3-D, 2-D\) tensors"):
        lstm(ember.randn(5, 2, 3), (ember.randn(1, 2, 2), ember.randn(2, 4)))
    with pytest.raises(RuntimeError, match=r"For unbatched 2-D input, hx and cx should also be 2-D"):
        lstm(ember.randn(5, 3), (ember.randn(1, 1, 2), ember.randn(1, 4)))
    with pytest.raises(TypeError, match=r"LSTM: hx should be a tuple \(h_0, c_0\) of two Tensors, but got Tensor"):
        lstm(ember.randn(5, 2, 3), ember.randn(1, 2, 2))
    with pytest.raises(TypeError, match="GRU: hx should be a Tensor, but got tuple"):
        gru(ember.randn(5, 2, 3), (ember.randn(1, 2, 4),))
    with pytest.raises(ValueError, match=r"RNN input dtype \(ember.float64\) does not match weight dtype "
                                         r"\(ember.float32\)"):
        gru(ember.randn(5, 2, 3, dtype=ember.float64))
    with pytest.raises(RuntimeError, match=r"GRU: hx dtype \(ember.float64\) does not match input dtype"):
        gru(ember.randn(5, 2, 3), ember.randn(1, 2, 4, dtype=ember.float64))
    packed = ernn.pack_padded_sequence(ember.randn(5, 2, 3), [5, 2])
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]"):
        gru(packed, ember.randn(1, 3, 4))


def test_cell_errors():
    c, lc, gc = nn.RNNCell(3, 4), nn.LSTMCell(3, 4), nn.GRUCell(3, 4)
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 5 expected 3"):
        c(ember.randn(2, 5))
    with pytest.raises(RuntimeError, match="Input batch size 2 doesn't match hidden0 batch size 3"):
        c(ember.randn(2, 3), ember.randn(3, 4))
    with pytest.raises(RuntimeError, match="hidden0 has inconsistent hidden_size: got 5, expected 4"):
        gc(ember.randn(2, 3), ember.randn(2, 5))
    with pytest.raises(RuntimeError, match="Input batch size 2 doesn't match hidden1 batch size 3"):
        lc(ember.randn(2, 3), (ember.randn(2, 4), ember.randn(3, 4)))
    with pytest.raises(RuntimeError, match="hidden1 has inconsistent hidden_size: got 5, expected 4"):
        lc(ember.randn(2, 3), (ember.randn(2, 4), ember.randn(2, 5)))
    with pytest.raises(ValueError, match="GRUCell: Expected input to be 1D or 2D, got 3D instead"):
        gc(ember.randn(2, 3, 1))
    with pytest.raises(ValueError, match="RNNCell: Expected hidden to be 1D or 2D, got 3D instead"):
        c(ember.randn(2, 3), ember.randn(1, 2, 4))
    with pytest.raises(ValueError, match=r"LSTMCell: Expected hx\[1\] to be 1D or 2D, got 3D instead"):
        lc(ember.randn(2, 3), (ember.randn(2, 4), ember.randn(1, 2, 4)))
    with pytest.raises(RuntimeError, match="RNNCell: Expected hidden to be 1D like the unbatched 1D input, got 2D"):
        c(ember.randn(3), ember.randn(2, 4))
    with pytest.raises(TypeError, match=r"LSTMCell: hx should be a tuple \(h, c\) of two Tensors, but got Tensor"):
        lc(ember.randn(2, 3), ember.randn(2, 4))
    with pytest.raises(ValueError, match=r"GRUCell input dtype \(ember.float64\) does not match weight dtype"):
        gc(ember.randn(2, 3, dtype=ember.float64))


def test_pack_pad_errors():
    x = ember.randn(5, 3, 2)
    with pytest.raises(RuntimeError, match="`lengths` array must be sorted in decreasing order when "
                                           "`enforce_sorted` is True"):
        ernn.pack_padded_sequence(x, [5, 3, 4])
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        ernn.pack_padded_sequence(x, [5, 3, 0])
    with pytest.raises(RuntimeError, match=r"Expected `len\(lengths\)` to be equal to batch_size, but got 2 "
                                           r"\(batch_size=3\)"):
        ernn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(RuntimeError, match="longest length in 'lengths' is 6, but the input has only 5 time steps"):
        ernn.pack_padded_sequence(x, [6, 3, 2])
    with pytest.raises(ValueError, match="Expected total_length to be at least the length of the longest sequence "
                                         "in input, but got total_length=3 and max sequence length being 5"):
        ernn.pad_packed_sequence(ernn.pack_padded_sequence(x, [5, 3, 2]), total_length=3)
    with pytest.raises(RuntimeError, match="received an empty list of sequences"):
        ernn.pad_sequence([])
    with pytest.raises(RuntimeError, match="Expected padding_side to be one of left or right, but got up."):
        ernn.pad_sequence([ember.randn(3, 2)], padding_side="up")
    with pytest.raises(RuntimeError, match=r"same trailing dimensions.*\(3, 2\).*\(2, 3\)"):
        ernn.pad_sequence([ember.randn(3, 2), ember.randn(2, 3)])
