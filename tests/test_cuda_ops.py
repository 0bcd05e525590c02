"""CUDA ops against torch CUDA on the GPU machine (`pytest -m cuda`)."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

torch = pytest.importorskip("torch")
from helpers import E2T, DTYPES  # noqa: E402

from ember.backends.cuda import elementwise as EW  # noqa: E402

POS = {"log", "sqrt", "rsqrt", "log2", "log10", "log1p", "reciprocal"}
TOL = {"float32": (1e-5, 1e-5), "float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1e-2), "float64": (1e-7, 1e-7)}


def pair(shape, dtype, low=-3.0, high=3.0, seed=0, layout="contiguous"):
    rng = np.random.default_rng(seed)
    e_dt, t_dt = DTYPES[dtype]
    base = shape[:-2] + (shape[-1], shape[-2]) if layout == "transposed" else shape
    if dtype == "bool":
        a = rng.random(base) > 0.5
    elif e_dt.category == 1:
        a = rng.integers(0 if dtype == "uint8" else int(low), int(high) + 1, size=base)
    else:
        a = rng.uniform(low, high, size=base)
    e = ember.tensor(a, dtype=e_dt).cuda()
    t = torch.tensor(a).to(t_dt).cuda()
    if layout == "transposed":
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
    return e, t


def check(e, t, dtype=None):
    assert e.device.type == "cuda"
    assert tuple(e.shape) == tuple(t.shape), (e.shape, t.shape)
    assert E2T[e.dtype] == t.dtype, (e.dtype, t.dtype)
    ea = e.cpu().numpy()
    ta = t.cpu()
    if t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        r, a = TOL[str(t.dtype).split(".")[-1]]
        np.testing.assert_allclose(ea.astype(np.float64), ta.double().numpy(), rtol=r, atol=a, equal_nan=True)
    else:
        np.testing.assert_array_equal(ea, ta.numpy())


UNARY = sorted(n for n in EW.UNARY_OPS if n not in ("bitwise_not", "logical_not"))


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_unary(name, dtype, layout):
    e, t = pair((33, 17), dtype, low=0.1 if name in POS else -3.0, layout=layout)
    fn = getattr(torch, name, None) or getattr(torch.special, name, None)
    if name in ("silu", "relu"):
        fn = getattr(torch.nn.functional, name)
    check(getattr(ember, name)(e) if hasattr(ember, name) else getattr(e, name)(), fn(t))


@pytest.mark.parametrize("name", ["abs", "neg", "sign", "square", "relu"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8"])
def test_unary_integers(name, dtype):
    if dtype == "uint8" and name in ("neg", "abs"):
        return
    e, t = pair((40,), dtype)
    fn = torch.nn.functional.relu if name == "relu" else getattr(torch, name)
    check(getattr(ember, name)(e), fn(t))


BIN = ["add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "pow", "hypot"]


@pytest.mark.parametrize("name", BIN)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_binary_broadcast_strided(name, dtype):
    low = 0.1 if name == "pow" else -3.0
    a, ta = pair((5, 1, 33), dtype, low=low)
    b, tb = pair((4, 33), dtype, low=low, seed=1, layout="transposed")   # strided, broadcast to (5, 4, 33)
    check(getattr(ember, name)(a, b), getattr(torch, name)(ta, tb))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "eq", "lt", "pow"])
def test_binary_with_python_and_0dim_scalars(name):
    a, ta = pair((7, 9), "float32", low=0.5)
    check(getattr(ember, name)(a, 2.5), getattr(torch, name)(ta, 2.5))
    i, ti = pair((7, 9), "int64")
    if name != "pow":
        check(getattr(ember, name)(i, 3), getattr(torch, name)(ti, 3))
        check(getattr(ember, name)(i, 2.5), getattr(torch, name)(ti, 2.5))   # int tensor * float -> float
    z = ember.tensor(1.5).cuda()
    check(getattr(ember, name)(a, z), getattr(torch, name)(ta, torch.tensor(1.5).cuda()))
    check(getattr(ember, name)(a, ember.tensor(1.5)), getattr(torch, name)(ta, torch.tensor(1.5)))  # CPU 0-dim


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_bitwise_and_logical(dtype):
    a, ta = pair((50,), dtype)
    b, tb = pair((50,), dtype, seed=3)
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or", "logical_xor"):
        check(getattr(ember, name)(a, b), getattr(torch, name)(ta, tb))
    check(ember.logical_not(a), torch.logical_not(ta))
    if dtype != "bool":
        check(ember.bitwise_not(a), torch.bitwise_not(ta))


def test_add_alpha_and_inplace_forms():
    a, ta = pair((6, 8), "float32")
    b, tb = pair((8,), "float32", seed=2)
    check(ember.add(a, b, alpha=-0.5), torch.add(ta, tb, alpha=-0.5))
    check(ember.sub(a, b, alpha=2), torch.sub(ta, tb, alpha=2))
    check(2.0 - a, 2.0 - ta)
    check(1.0 / (a.abs() + 1), 1.0 / (ta.abs() + 1))
    v = a._version
    a.add_(b).mul_(2).exp_()
    ta.add_(tb).mul_(2).exp_()
    check(a, ta)
    assert a._version == v + 3
    s = ember.zeros(8, 6, device="cuda").t()                       # strided in-place target
    ts = torch.zeros(8, 6, device="cuda").t()
    s.add_(a)
    ts.add_(ta)
    check(s, ts)
    i = ember.ones(4, dtype=ember.int64, device="cuda")
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.add_(1.5)


@pytest.mark.parametrize("src,dst", [("float32", "float16"), ("float32", "bfloat16"), ("float64", "int32"),
                                     ("int64", "float32"), ("float16", "float32"), ("float32", "bool"),
                                     ("bool", "float32"), ("uint8", "int64")])
def test_casts_and_strided_copies(src, dst):
    e, t = pair((9, 13), src, layout="transposed")
    d_e, d_t = DTYPES[dst]
    check(e.to(d_e), t.to(d_t))
    out = ember.zeros(13, 9, dtype=d_e, device="cuda").t()
    tout = torch.zeros(13, 9, dtype=d_t, device="cuda").t()
    out.copy_(e)
    tout.copy_(t)
    check(out, tout)
    check(e.contiguous(), t.contiguous())
    check(e.clone(), t.clone())


def test_empty_and_zero_dim():
    e = ember.zeros(0, 3, device="cuda")
    check(e.exp() + 1, torch.zeros(0, 3, device="cuda").exp() + 1)
    z, tz = pair((), "float32")
    check(z.exp() * 2, tz.exp() * 2)


def test_more_than_2_31_elements():
    n = (1 << 31) + 1000
    x = ember.zeros(n, dtype=ember.uint8, device="cuda")
    x.add_(3)
    y = x + 4
    tail = y[n - 5:].cpu().tolist()
    head = y[:3].cpu().tolist()
    assert tail == [7] * 5 and head == [7] * 3
    del x, y


def test_kernel_compile_stats():
    info = ember.cuda.compiled_kernels()
    assert info["count"] > 0 and info["seconds"] > 0
    names = {k[0] for k in info["kernels"]}
    assert "ew_kernel" in names and len(info["kernels"]) == info["count"]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_ternary_ops(dtype):
    a, ta = pair((6, 9), dtype)
    b, tb = pair((9,), dtype, seed=1)
    w, tw = pair((6, 9), dtype, low=0.0, high=1.0, seed=2)
    c, tc = a > 0, ta > 0
    check(ember.where(c, a, b), torch.where(tc, ta, tb))
    check(ember.where(c, a, 0.5), torch.where(tc, ta, 0.5))
    check(a.masked_fill(c, -2.0), ta.masked_fill(tc, -2.0))
    check(a.clamp(-0.5, 1.0), ta.clamp(-0.5, 1.0))
    check(a.clamp(min=b), ta.clamp(min=tb))
    check(ember.lerp(a, b, 0.25), torch.lerp(ta, tb, 0.25))
    check(ember.lerp(a, b.expand(6, 9), w), torch.lerp(ta, tb.expand(6, 9), tw))
    p, tp = pair((6, 9), dtype, low=0.5, high=2.0, seed=3)
    check(ember.addcmul(a, b, p, value=0.5), torch.addcmul(ta, tb, tp, value=0.5))
    check(ember.addcdiv(a, b, p, value=-1.5), torch.addcdiv(ta, tb, tp, value=-1.5))
    a.addcmul_(b, p, value=2.0).clamp_(-1, 1)
    ta.addcmul_(tb, tp, value=2.0).clamp_(-1, 1)
    check(a, ta)


def test_adamw_step_on_cuda_matches_torch():
    rng = np.random.default_rng(0)
    w0, g = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    p = ember.tensor(w0, dtype=ember.float32).cuda().requires_grad_()
    tp = torch.tensor(w0, dtype=torch.float32).cuda().requires_grad_()
    opt = ember.optim.AdamW([p], lr=1e-2, weight_decay=0.1)
    topt = torch.optim.AdamW([tp], lr=1e-2, weight_decay=0.1, foreach=False)
    for _ in range(3):
        p.grad = ember.tensor(g, dtype=ember.float32).cuda()
        tp.grad = torch.tensor(g, dtype=torch.float32).cuda()
        opt.step()
        topt.step()
    check(p.detach(), tp.detach())


def test_indexing_family_vs_torch():
    x, tx = pair((5, 7), "float32", layout="transposed")
    idx = ember.tensor([[0, 6, 2], [1, 1, 0], [4, 3, 3], [0, 0, 0], [6, 5, 4]]).cuda()
    tidx = torch.tensor(idx.cpu().tolist()).cuda()
    check(x.gather(1, idx), tx.gather(1, tidx))
    sel, tsel = ember.tensor([4, 0, 4]).cuda(), torch.tensor([4, 0, 4]).cuda()
    check(x.index_select(0, sel), tx.index_select(0, tsel))
    check(ember.embedding(x, ember.tensor([[1, 2], [4, 4]]).cuda()),
          torch.nn.functional.embedding(torch.tensor([[1, 2], [4, 4]]).cuda(), tx))
    src, tsrc = pair((5, 3), "float32", seed=1)
    check(x.scatter_add(1, idx, src), tx.scatter_add(1, tidx, tsrc))
    rows, trows = pair((3, 7), "float32", seed=2)
    check(x.index_add(0, sel, rows, alpha=2.0), tx.index_add(0, tsel, trows, alpha=2.0))
    check(ember.cat([x, rows], 0), torch.cat([tx, trows], 0))
    check(ember.stack([x, x], 2), torch.stack([tx, tx], 2))
    check(x.triu(1), tx.triu(1))
    check(x.tril(), tx.tril())
    check(x.norm(), tx.norm())
    check(x.norm(1, dim=1), tx.norm(1, dim=1))


def test_transformer_training_step_on_cuda_matches_cpu():
    from ember.datasets import ReversalDataset
    from ember.examples.reverse import ReversalTransformer
    import ember.nn.functional as F
    d = ReversalDataset(64, 8, 2, 6, seed=0)
    ember.manual_seed(0)
    m_cpu = ReversalTransformer(d.vocab_size, d.seq_len, 32, 4, 2, 64)
    m_gpu = ReversalTransformer(d.vocab_size, d.seq_len, 32, 4, 2, 64)
    m_gpu.load_state_dict(m_cpu.state_dict())
    m_gpu.to("cuda")
    losses = []
    for m, dev in ((m_cpu, "cpu"), (m_gpu, "cuda")):
        opt = ember.optim.AdamW(m.parameters(), lr=1e-3)
        out = []
        for step in range(3):
            x, y = d.batch(range(step * 16, step * 16 + 16))
            x, y = x.to(dev), y.to(dev)
            logits = m(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            ember.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            out.append(loss.item())
        losses.append(out)
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-4)
