"""The recurrent layers on CUDA (GPU machine): the fused cell kernels against torch's own `_thnn_fused_*` CUDA ops
at the LSTM LM's size, nn.LSTM / nn.GRU forward and backward against torch's cuDNN layers (layers, directions,
proj_size, no bias, batch_first, packed sequences, float64 and float16, autocast), and the LSTM language model's
training step (benchmarks/lstm_lm.py) captured as one CUDA graph against the eager step."""

import numpy as np
import pytest

import ember
from helpers import load_benchmark
from samples.rnn import gru_cell_backward_ref, gru_cell_ref, lstm_cell_backward_ref, lstm_cell_ref

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings"),
              pytest.mark.skipif(not torch.cuda.is_available(), reason="the reference needs torch with CUDA")]

TOL = {"float32": 1e-4, "float64": 1e-9, "float16": 2e-2, "bfloat16": 5e-2}
I, H, T, B = 12, 24, 6, 5


@pytest.fixture(autouse=True)
def _ieee_float32():
    """cuDNN's RNNs take TF32 by default; ember's float32 products are IEEE (as torch's matmuls by default)."""
    prev = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = prev


def _close(e, t, tol, what):
    """ember tensor `e` equals torch tensor `t`: shape, dtype, values within tol (atol scaled by t's size)."""
    assert tuple(e.shape) == tuple(t.shape), f"{what}: shape {tuple(e.shape)} vs torch {tuple(t.shape)}"
    assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{what}: dtype {e.dtype} vs torch {t.dtype}"
    tn = t.detach().double().cpu().numpy()
    scale = max(1.0, float(np.abs(tn).max())) if tn.size else 1.0
    np.testing.assert_allclose(e.detach().double().cpu().numpy(), tn, rtol=tol, atol=tol * scale, err_msg=what)


def _pair(shape, dtype, seed, requires_grad=True):
    a = np.random.default_rng(seed).uniform(-1, 1, shape)
    return (ember.tensor(a, dtype=getattr(ember, dtype), device="cuda", requires_grad=requires_grad),
            torch.tensor(a, dtype=getattr(torch, dtype), device="cuda", requires_grad=requires_grad))


# ---- the fused cells against torch's CUDA ops ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("bias", [False, True])
def test_fused_cells_match_torch_ops(dtype, bias):
    """B 20, H 650 (the LM's): many programs each way; input_gates a time step of a (T, B, G) projection. The
    reference is torch's own CUDA op (the sample table's, built from torch ops for bfloat16, which torch's lacks)."""
    b, h = 20, 650
    tol = TOL[dtype]
    for gates, name in ((4, "lstm"), (3, "gru")):
        (eproj, tproj), (ehg, thg), (ehx, thx) = (_pair(s, dtype, k, False) for k, s in
                                                  enumerate(((3, b, gates * h), (b, gates * h), (b, h))))
        eb = [_pair((gates * h,), dtype, 5 + k, False) for k in range(2)] if bias else [(None, None)] * 2
        got = getattr(ember.ops, f"_thnn_fused_{name}_cell")(eproj[1], ehg, ehx, eb[0][0], eb[1][0])
        want = (lstm_cell_ref if name == "lstm" else gru_cell_ref)(tproj[1], thg, thx, eb[0][1], eb[1][1])
        for k, (e, t) in enumerate(zip(got, want)):
            _close(e, t, tol, f"{name} forward output {k}")
        egh, tgh = _pair((b, h), dtype, 9, False)
        if name == "lstm":
            egc, tgc = _pair((b, h), dtype, 10, False)
            got = ember.ops._thnn_fused_lstm_cell_backward(egh, egc, ehx, got[1], got[2])
            want = lstm_cell_backward_ref(tgh, tgc, thx, want[1], want[2])
        else:
            got = ember.ops._thnn_fused_gru_cell_backward(egh, got[1])
            want = gru_cell_backward_ref(tgh, want[1])
        for k, (e, t) in enumerate(zip(got, want)):
            _close(e, t, tol, f"{name} backward output {k}")


# ---- the layers against torch's cuDNN ones ------------------------------------------------------------------

CONFIGS = [("LSTM", {}), ("LSTM", {"num_layers": 2, "bidirectional": True}),
           ("LSTM", {"num_layers": 2, "proj_size": 8}),
           ("LSTM", {"num_layers": 2, "bias": False, "batch_first": True}),
           ("LSTM", {"num_layers": 3, "bidirectional": True, "proj_size": 5}),
           ("GRU", {}), ("GRU", {"num_layers": 2, "bidirectional": True}),
           ("GRU", {"num_layers": 2, "bias": False, "batch_first": True})]
IDS = ["lstm", "lstm_bi2", "lstm_proj2", "lstm_nobias_bf", "lstm_bi3_proj", "gru", "gru_bi2", "gru_nobias_bf"]


def _modules(cls, kw, dtype):
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(I, H, device="cuda", dtype=getattr(torch, dtype), **kw)
    em = getattr(ember.nn, cls)(I, H, device="cuda", dtype=getattr(ember, dtype), **kw)
    em.load_state_dict({k: ember.tensor(v.detach().cpu().numpy()) for k, v in tm.state_dict().items()})
    return em, tm


def _states(cls, kw, dtype, batch):
    d = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    shapes = [(d, batch, kw.get("proj_size") or H)] + ([(d, batch, H)] if cls == "LSTM" else [])
    return [_pair(s, dtype, 20 + k) for k, s in enumerate(shapes)]


def _flat(out):
    """The tensors of an RNN result; a PackedSequence (torch's is a namedtuple) gives its data."""
    if hasattr(out, "batch_sizes"):
        return [out.data]
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flat(o)]
    return [out]


def _backward_and_compare(em, tm, eo, to, leaves, dtype, use=None):
    """Compares the outputs, then the grads of the leaves and parameters after backward of a random weighting of
    the outputs (only those whose index is in `use`, when given)."""
    tol = TOL[dtype]
    eo, to = _flat(eo), _flat(to)
    rng = np.random.default_rng(99)
    el = tl = 0
    for k, (e, t) in enumerate(zip(eo, to)):
        _close(e, t, tol, f"output {k}")
        if use is None or k in use:
            w = rng.uniform(-1, 1, tuple(t.shape))
            el = el + (e * ember.tensor(w, dtype=e.dtype, device="cuda")).float().sum()
            tl = tl + (t * torch.tensor(w, dtype=t.dtype, device="cuda")).float().sum()
    el.backward()
    tl.backward()
    for k, (e, t) in enumerate(leaves):
        assert (e.grad is None) == (t.grad is None), f"leaf {k}: a grad in ember {e.grad is not None}, torch " \
                                                     f"{t.grad is not None}"
        if t.grad is not None:
            _close(e.grad, t.grad, tol * 4, f"grad of leaf {k}")
    tp = dict(tm.named_parameters())
    for n, p in em.named_parameters():
        _close(p.grad, tp[n].grad, tol * 4, f"grad of {n}")


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=IDS)
def test_layer_forward_backward_matches_torch(cls, kw):
    em, tm = _modules(cls, kw, "float32")
    x = _pair((B, T, I) if kw.get("batch_first") else (T, B, I), "float32", 1)
    hx = _states(cls, kw, "float32", B)
    eh, th = (tuple(p[0] for p in hx), tuple(p[1] for p in hx)) if cls == "LSTM" else hx[0]
    _backward_and_compare(em, tm, em(x[0], eh), tm(x[1], th), [x] + hx, "float32")


@pytest.mark.parametrize("dtype", ["float64", "float16"])
@pytest.mark.parametrize("cls,kw", [CONFIGS[2], CONFIGS[6]], ids=[IDS[2], IDS[6]])
def test_layer_in_other_dtypes_matches_torch(cls, kw, dtype):
    em, tm = _modules(cls, kw, dtype)
    x = _pair((T, B, I), dtype, 1)
    _backward_and_compare(em, tm, em(x[0]), tm(x[1]), [x], dtype)


@pytest.mark.parametrize("cls,kw", [CONFIGS[1], CONFIGS[6]], ids=[IDS[1], IDS[6]])
def test_packed_sequence_matches_torch(cls, kw):
    em, tm = _modules(cls, kw, "float32")
    lengths = [T, 3, T - 1, 1]          # unsorted: enforce_sorted=False permutes the batch and the states
    x = _pair((T, len(lengths), I), "float32", 1)
    ep = ember.nn.utils.rnn.pack_padded_sequence(x[0], lengths, enforce_sorted=False)
    tp = torch.nn.utils.rnn.pack_padded_sequence(x[1], lengths, enforce_sorted=False)
    _backward_and_compare(em, tm, em(ep), tm(tp), [x], "float32")


def test_lstm_loss_from_the_output_only_matches_torch():
    """No grad reaches h_n and c_n (a language model's loss): the last steps' cells get zeros made on the GPU for
    the missing grads."""
    em, tm = _modules("LSTM", {"num_layers": 2}, "float32")
    x = _pair((T, B, I), "float32", 1)
    _backward_and_compare(em, tm, em(x[0]), tm(x[1]), [x], "float32", use={0})


def test_lstm_under_autocast_matches_torch():
    em, tm = _modules("LSTM", {"num_layers": 2, "bidirectional": True}, "float32")
    x = _pair((T, B, I), "float32", 1)
    with ember.autocast("cuda", dtype=ember.float16):
        eo = em(x[0])
    with torch.autocast("cuda", dtype=torch.float16):
        to = tm(x[1])
    assert [str(t.dtype) for t in _flat(eo)] == ["ember.float16"] * 3      # as cuDNN's under autocast
    _backward_and_compare(em, tm, eo, to, [x], "float16")


# ---- the LSTM language model's step as one CUDA graph -------------------------------------------------------

@pytest.fixture(scope="module")
def lm():
    return load_benchmark("lstm_lm")


def _losses(r, steps):
    out = []
    for _ in range(steps):
        r["run"]()
        out.append(float(r["state"]["loss"]))
    return out


def test_lstm_lm_step_captured_follows_the_eager_one(lm):
    """Forward, loss, backward, clipping and SGD of the LM, the hidden state carried between steps: replays of the
    captured step give the eager step's losses (make_runner raises if the capture was abandoned)."""
    cfg = dict(lm.TINY, dropout=0.0, hidden=48, emb=32)
    eager = _losses(lm.make_runner("ember", "eager", cfg, "cuda", warmup=2), 8)
    graphed = _losses(lm.make_runner("ember", "graphed", cfg, "cuda", warmup=2), 8)
    np.testing.assert_allclose(graphed, eager, rtol=1e-3)     # the same kernels; atomics may order sums otherwise


def test_lstm_lm_step_with_dropout_is_captured(lm):
    r = lm.make_runner("ember", "graphed", dict(lm.TINY), "cuda", warmup=2)
    losses = _losses(r, 6)
    assert all(np.isfinite(losses)) and len(set(losses)) > 1, losses


def test_lstm_lm_step_matches_torch(lm):
    losses = lm.twin_losses(dict(lm.TINY, dropout=0.0), "cuda")
    np.testing.assert_allclose(losses["ember"], losses["torch"], rtol=1e-4)
