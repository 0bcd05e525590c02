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
DOMAIN = {"asin": (-0.99, 0.99), "acos": (-0.99, 0.99), "atanh": (-0.99, 0.99), "acosh": (1.0, 4.0),
          "tan": (-1.5, 1.5)}
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
    low, high = DOMAIN.get(name, (0.1 if name in POS else -3.0, 3.0))
    e, t = pair((33, 17), dtype, low=low, high=high, layout=layout)
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


BIN = ["add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "pow", "hypot",
       "atan2", "floor_divide", "fmod", "remainder", "fmax", "fmin"]


@pytest.mark.parametrize("name", BIN)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_binary_broadcast_strided(name, dtype):
    low = 0.1 if name == "pow" else -3.0
    a, ta = pair((5, 1, 33), dtype, low=low)
    b, tb = pair((4, 33), dtype, low=low, seed=1, layout="transposed")   # strided, broadcast to (5, 4, 33)
    if name in ("floor_divide", "fmod", "remainder"):    # divisors away from 0 (torch rounds big half quotients)
        b, tb = b.sign() * (b.abs() + 0.5), tb.sign() * (tb.abs() + 0.5)
    check(getattr(ember, name)(a, b), getattr(torch, name)(ta, tb))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "eq", "lt", "pow", "floor_divide", "fmod", "remainder"])
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


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int64"])
def test_strided_elementwise_with_32bit_indices(dtype, monkeypatch):
    """The strided ew_kernel with its index arithmetic in 32 bits (`INDEX32`): the heads' transpose-and-merge
    copy of attention, a broadcast binary op on permuted operands, a flipped (negative-stride) copy."""
    monkeypatch.setattr(EW, "INDEX32", True)
    e, t = pair((4, 8, 40, 16), dtype)
    check(e.transpose(1, 2).reshape(4, 40, 128), t.transpose(1, 2).reshape(4, 40, 128))
    b, tb = pair((40, 16), dtype, seed=1, layout="transposed")
    check(e.permute(0, 2, 1, 3) + b.unsqueeze(1), t.permute(0, 2, 1, 3) + tb.unsqueeze(1))
    check(e.flip(2).contiguous(), t.flip(2).contiguous())
    assert any(k[-1] for k in EW._plans), "no 32-bit plan was built"


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


# ---- math functions, integer division, reflected and parametrised ops ------------------------------

@pytest.mark.parametrize("name", ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "frac",
                                  "round", "expm1", "log1p"])
def test_unary_math_float64(name):
    low, high = DOMAIN.get(name, (-3.0, 3.0))
    e, t = pair((20, 30), "float64", low=low, high=high, layout="transposed")
    check(getattr(ember, name)(e), getattr(torch, name)(t))


SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e-30, 20.5, 89.0, -89.0, 1e20, -1e20,
           float("inf"), float("-inf"), float("nan")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_math_at_special_values(dtype):
    e_dt, t_dt = DTYPES[dtype]
    e, t = ember.tensor(SPECIAL, dtype=e_dt).cuda(), torch.tensor(SPECIAL, dtype=t_dt).cuda()
    for name in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "frac", "round",
                 "expm1", "log1p", "signbit", "isposinf", "isneginf"):
        check(getattr(ember, name)(e), getattr(torch, name)(t))
    pv = [0.0, -0.0, 2.0, -2.0, 7.5, -7.5, 0.3, float("inf"), float("-inf"), float("nan")]
    p, tp = ember.tensor(pv, dtype=e_dt).cuda(), torch.tensor(pv, dtype=t_dt).cuda()
    n = len(pv)
    a, b = p.reshape(n, 1).expand(n, n), p.reshape(1, n).expand(n, n)             # every pair
    ta, tb = tp.reshape(n, 1).expand(n, n), tp.reshape(1, n).expand(n, n)
    for name in ("atan2", "fmod", "remainder", "floor_divide", "fmax", "fmin"):
        check(getattr(ember, name)(a, b), getattr(torch, name)(ta, tb))
    for mode in ("trunc", "floor"):
        check(ember.div(a, b, rounding_mode=mode), torch.div(ta, tb, rounding_mode=mode))


@pytest.mark.parametrize("dtype", ["float32", "float64"])   # (torch rounds half/bfloat16 quotients > 2^11 / 2^8)
def test_division_family_large_quotients(dtype):
    a, ta = pair((40, 50), dtype, low=-1000, high=1000)
    b, tb = pair((50,), dtype, low=0.01, high=3, seed=4)
    for name in ("fmod", "remainder", "floor_divide"):
        check(getattr(ember, name)(a, b), getattr(torch, name)(ta, tb))
        check(getattr(ember, name)(a, -b), getattr(torch, name)(ta, -tb))
    check(ember.div(a, b, rounding_mode="trunc"), torch.div(ta, tb, rounding_mode="trunc"))


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
def test_integer_division_pow_and_minmax(dtype):
    lo = 0 if dtype == "uint8" else -50
    a, ta = pair((7, 11), dtype, low=lo, high=50, layout="transposed")
    div = [3, 2, 5, 7, 1, 1, 9, 4, 2, 8, 6] if dtype == "uint8" else [3, -2, 5, -7, 1, -1, 9, -4, 2, -8, 6]
    b, tb = ember.tensor(div, dtype=DTYPES[dtype][0]).cuda(), torch.tensor(div, dtype=DTYPES[dtype][1]).cuda()
    for name in ("floor_divide", "remainder", "fmod", "fmax", "fmin"):           # Python floor vs C truncation
        check(getattr(ember, name)(a, b), getattr(torch, name)(ta, tb))
    for s in (7,) if dtype == "uint8" else (7, -3):
        for name in ("floor_divide", "remainder", "fmod"):
            check(getattr(ember, name)(a, s), getattr(torch, name)(ta, s))
    for mode in ("trunc", "floor"):
        check(ember.div(a, b, rounding_mode=mode), torch.div(ta, tb, rounding_mode=mode))
    check(a // b, ta // tb)
    check(a % b, ta % tb)
    base = [0, 1, 2, 3] if dtype == "uint8" else [-2, -1, 0, 1, 2, 3]
    ex = [0, 1, 2, 3, 5, 7] if dtype == "uint8" else [-3, -2, -1, 0, 1, 2, 3, 5, 7]
    e_dt, t_dt = DTYPES[dtype]
    eb, tb_ = ember.tensor(base, dtype=e_dt).cuda().reshape(-1, 1), torch.tensor(base, dtype=t_dt).cuda().reshape(-1, 1)
    ee, te = ember.tensor(ex, dtype=e_dt).cuda(), torch.tensor(ex, dtype=t_dt).cuda()
    check(eb ** ee, tb_ ** te)                  # negative exponents: 1, +-1 or 0 as torch
    check(eb ** 3, tb_ ** 3)
    check(2 ** ee, 2 ** te)
    check(a.signbit(), ta.signbit())
    check(ember.isposinf(a), torch.isposinf(ta))
    with pytest.raises(RuntimeError, match="negative integer powers"):
        eb ** -1


def test_reflected_ops():
    e, t = pair((6, 8), "float32", low=0.5, high=4.0, layout="transposed")
    i, ti = pair((6, 8), "int64", low=1, high=9)
    for x, tx in ((e, t), (i, ti)):
        check(2.5 % x, 2.5 % tx)
        check(7 % x, 7 % tx)
        check(-7 // x, -7 // tx)
        check(2.5 // x, 2.5 // tx)
        check(3 ** x, 3 ** tx)
        check(0.5 ** x, 0.5 ** tx)
    OPS = ember.dispatch.OPS
    check(OPS["_rfmod"].fn(e, -5.5), torch.fmod(torch.full_like(t, -5.5), t))
    check(OPS["_rfmod"].fn(i, -5), torch.fmod(torch.full_like(ti, -5), ti))
    check(OPS["_ratan2"].fn(e, -1.0), torch.atan2(torch.full_like(t, -1.0), t))


def test_inplace_forms_of_new_ops():
    e, t = pair((5, 7), "float32", low=-0.9, high=0.9)
    b, tb = pair((7,), "float32", low=0.5, high=2.0, seed=3)
    for name in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "atanh", "frac", "round"):
        x, tx = e.t().clone().t(), t.t().clone().t()                          # strided targets
        getattr(x, name + "_")()
        getattr(tx, name + "_")()
        check(x, tx)
    for name in ("atan2", "fmod", "remainder", "floor_divide"):
        x, tx = e.clone(), t.clone()
        getattr(x, name + "_")(b)
        getattr(tx, name + "_")(tb)
        check(x, tx)
    for mode in ("trunc", "floor"):
        x, tx = e * 10, t * 10
        x.div_(b, rounding_mode=mode)
        tx.div_(tb, rounding_mode=mode)
        check(x, tx)
    n, tn = pair((4, 5), "int32", low=-20, high=20)
    n.div_(3, rounding_mode="floor")
    tn.div_(3, rounding_mode="floor")
    check(n, tn)
    n.remainder_(-4)
    tn.remainder_(-4)
    check(n, tn)
    s = ember.tensor([1.0, float("nan"), float("inf"), float("-inf")]).cuda()
    ts = torch.tensor([1.0, float("nan"), float("inf"), float("-inf")]).cuda()
    s.nan_to_num_(nan=2.0, neginf=-5.0)
    ts.nan_to_num_(nan=2.0, neginf=-5.0)
    check(s, ts)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_nan_to_num_leaky_relu_softplus(dtype):
    e, t = pair((9, 13), dtype, low=-30, high=30, layout="transposed")
    e_dt, t_dt = DTYPES[dtype]
    s = ember.tensor([1.0, float("nan"), float("inf"), float("-inf"), -2.0], dtype=e_dt).cuda()
    ts = torch.tensor([1.0, float("nan"), float("inf"), float("-inf"), -2.0], dtype=t_dt).cuda()
    for kw in ({}, {"nan": 1.5, "posinf": 9.0}, {"neginf": -7.0}):
        check(ember.nan_to_num(s, **kw), torch.nan_to_num(ts, **kw))
    F, TF = ember.nn.functional, torch.nn.functional
    check(F.leaky_relu(e, 0.2), TF.leaky_relu(t, 0.2))
    check(F.leaky_relu(e), TF.leaky_relu(t))
    check(F.softplus(e), TF.softplus(t))
    check(F.softplus(e, beta=2, threshold=5), TF.softplus(t, beta=2, threshold=5))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "uint8", "bool"])
def test_isclose(dtype):
    a, ta = pair((6, 10), dtype, low=-20, high=20, layout="transposed")
    d, td = pair((10,), dtype, low=-2, high=2, seed=5)
    if dtype == "bool":
        b, tb = a | d, ta | td
    elif dtype in ("int64", "uint8"):
        b, tb = a + d, ta + td
    else:
        b, tb = a + d * 1e-3, ta + td * 1e-3
        nan, inf = float("nan"), float("inf")
        for x, y in ((a, b), (ta, tb)):
            x[0, 0], y[0, 0], x[1, 1], y[1, 1], x[2, 2] = nan, nan, inf, inf, -inf
    for kw in ({}, {"rtol": 1e-3, "atol": 1e-3}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0},
               {"rtol": 0.1, "atol": 1.0}):
        check(ember.isclose(a, b, **kw), torch.isclose(ta, tb, **kw))


GRAD_UNARY = {"acos": (-0.9, 0.9), "asin": (-0.9, 0.9), "atan": (-3, 3), "sinh": (-3, 3), "cosh": (-3, 3),
              "tan": (-1.2, 1.2), "asinh": (-3, 3), "acosh": (1.1, 4), "atanh": (-0.9, 0.9)}


def _grads(fn, tfn, *pairs):
    """d(sum(fn(*xs) * w))/dxs for ember and torch; the inputs are used transposed (strided)."""
    es = [e.requires_grad_() for e, _ in pairs]
    ts = [t.requires_grad_() for _, t in pairs]
    out = fn(*[e.t() for e in es])
    tout = tfn(*[t.t() for t in ts])
    w, tw = pair(tuple(tout.shape), "float32", seed=11)
    (out * w).sum().backward()
    (tout * tw).sum().backward()
    for e, t in zip(es, ts):
        check(e.grad, t.grad)


@pytest.mark.parametrize("name", sorted(GRAD_UNARY))
def test_unary_math_gradients(name):
    lo, hi = GRAD_UNARY[name]
    _grads(getattr(ember, name), getattr(torch, name), pair((6, 5), "float32", low=lo, high=hi))


def test_binary_and_activation_gradients():
    a = lambda: pair((6, 5), "float32", low=-3, high=3)                           # noqa: E731
    b = lambda: pair((6, 5), "float32", low=0.5, high=2, seed=1)                  # noqa: E731
    for name in ("atan2", "fmod", "remainder"):
        _grads(getattr(ember, name), getattr(torch, name), a(), b())
    F, TF = ember.nn.functional, torch.nn.functional
    _grads(lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), a())
    _grads(lambda x: F.softplus(x, beta=2, threshold=1.5), lambda x: TF.softplus(x, beta=2, threshold=1.5), a())
    for approx in ("none", "tanh"):     # the fused gelu_backward kernel
        _grads(lambda x: F.gelu(x, approximate=approx), lambda x: TF.gelu(x, approximate=approx), a())
    for dtype in ("float16", "bfloat16"):
        (e, t), (ge, gt) = pair((6, 5), dtype, low=-3, high=3), pair((6, 5), dtype, seed=2)
        check(ember.ops.gelu_backward(ge, e), torch.ops.aten.gelu_backward(gt, t))


def test_new_ops_on_empty_and_zero_dim():
    z, tz = pair((), "float32", low=0.2, high=0.8)
    e = ember.zeros(0, 4, device="cuda")
    te = torch.zeros(0, 4, device="cuda")
    for name in ("acos", "sinh", "round", "signbit"):
        check(getattr(ember, name)(z), getattr(torch, name)(tz))
        check(getattr(ember, name)(e), getattr(torch, name)(te))
    check(ember.fmod(z, 0.3), torch.fmod(tz, 0.3))
    check(ember.atan2(e, e), torch.atan2(te, te))
    check(ember.isclose(z, z), torch.isclose(tz, tz))


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


# ---- divergences from torch fixed in issue 12 (their interpreter versions: test_cuda_kernels_interp.py) --

@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_gelu_of_integers_raises_like_torch(dtype):
    e, t = pair((4,), dtype)
    with pytest.raises(NotImplementedError):
        torch.nn.functional.gelu(t)
    with pytest.raises(NotImplementedError, match="gelu"):
        ember.nn.functional.gelu(e)
    with pytest.raises(NotImplementedError, match="gelu_backward"):
        ember.dispatch.OPS["gelu_backward"].fn(e, e)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_division_is_rounded_as_torch(dtype):
    """`s / t` equals torch's (`t.reciprocal() * s`, the reciprocal IEEE-rounded: Triton's fp32 `/` made it an ulp
    off); `a / b` of two tensors is one IEEE division, as torch's."""
    e, t = pair((257, 129), dtype, low=0.1, high=10.0, layout="transposed")
    e2, t2 = pair((129,), dtype, low=-5.0, high=5.0, seed=1)
    for s in (3.0, 0.7, -13.0):
        assert torch.equal(torch.from_numpy((s / e).cpu().numpy()), (s / t).cpu())
    assert torch.equal(torch.from_numpy((e / e2).cpu().numpy()), (t / t2).cpu())
    tiny_e = ember.tensor([1e-40, -1e-40, 2e-40], dtype=getattr(ember, dtype)).cuda()
    tiny_t = torch.tensor([1e-40, -1e-40, 2e-40], dtype=getattr(torch, dtype)).cuda()
    r = (1e-39 / tiny_e).cpu().numpy()
    np.testing.assert_array_equal(r, (1e-39 / tiny_t).cpu().numpy())     # inf in float32, as torch


def test_float_results_of_integer_inputs_follow_the_default_dtype():
    e, t = pair((5,), "int64")
    assert ember.exp(e).dtype is ember.float32
    ember.set_default_dtype(ember.float64)
    torch.set_default_dtype(torch.float64)
    try:
        for name in ("exp", "sqrt", "sigmoid"):
            check(getattr(ember, name)(e.abs()), getattr(torch, name)(t.abs()))
        check(ember.atan2(e, e), torch.atan2(t, t))
        check(e / 3, t / 3)
        check(3 / (e.abs() + 1), 3 / (t.abs() + 1))
    finally:
        ember.set_default_dtype(ember.float32)
        torch.set_default_dtype(torch.float32)
    check(ember.exp(e), torch.exp(t))
