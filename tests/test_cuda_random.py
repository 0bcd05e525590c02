"""Random ops on CUDA (Philox, `backends/cuda/random.py`) on the GPU machine. Values cannot match
PyTorch's, so these check distributions (ranges, moments, frequencies), reproducibility for a seed,
generator state, dropout's mask in forward and backward, CUDA graph replays, and that sampling makes
no host-to-device copy."""
import contextlib
import math

import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

F = ember.nn.functional
N = 1 << 20
FLOATS = ["float32", "float16", "bfloat16", "float64"]
INTS = ["uint8", "int8", "int16", "int32", "int64"]


def h(t):
    """A CUDA tensor's values on the host (floats as float64)."""
    assert t.device.type == "cuda"
    t = t.detach()
    return t.double().cpu().numpy() if t.dtype.is_floating_point else t.cpu().numpy()


@contextlib.contextmanager
def device_only():
    """Fails any host-to-device copy inside the block: sampling must happen on the device."""
    from ember.backends.cuda import tensor as T
    saved = T.h2d

    def refuse(*args, **kwargs):
        raise AssertionError("a host-to-device copy happened while sampling")
    T.h2d = refuse
    try:
        yield
    finally:
        T.h2d = saved


@pytest.fixture
def no_h2d():
    with device_only():
        yield


def stats(x):
    x = np.asarray(x, np.float64).ravel()
    m, s = x.mean(), x.std()
    return m, s, np.mean(((x - m) / s) ** 3), np.mean(((x - m) / s) ** 4)


# ---- factories -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
def test_rand_range_moments_and_histogram(dtype, no_h2d):
    dt = getattr(ember, dtype)
    ember.manual_seed(0)
    u = ember.rand(N, device="cuda", dtype=dt)
    assert u.dtype is dt and u.shape == (N,) and u.device == ember.device("cuda", 0)
    v = h(u)
    assert v.min() >= 0 and v.max() < 1
    m, s, _, _ = stats(v)
    assert abs(m - 0.5) < 0.004 and abs(s * s - 1 / 12) < 0.002
    hist = np.histogram(v, bins=16, range=(0, 1))[0] / N
    np.testing.assert_allclose(hist, 1 / 16, atol=0.003)
    distinct = len(np.unique(v))
    if dtype == "float16":
        assert distinct == 2048           # the whole 2^-11 grid
    elif dtype == "bfloat16":
        assert distinct == 256            # the whole 2^-8 grid
    else:
        assert distinct > 0.95 * N


@pytest.mark.parametrize("dtype", FLOATS)
def test_randn_moments(dtype, no_h2d):
    dt = getattr(ember, dtype)
    z = ember.randn(1024, 1024, device="cuda", dtype=dt)
    assert z.dtype is dt and z.shape == (1024, 1024)
    m, s, skew, kurt = stats(h(z))
    assert abs(m) < 0.006 and abs(s - 1) < 0.005 and abs(skew) < 0.02 and abs(kurt - 3) < 0.04
    v = h(z).ravel()
    for k, p in ((1, 0.6826894921), (2, 0.9544997361), (3, 0.9973002039)):
        assert abs(np.mean(np.abs(v) < k) - p) < 0.003


def test_factories_odd_sizes_empty_and_requires_grad(no_h2d):
    for n in (1, 3, 1023, 1025, 4097):
        v = h(ember.rand(n, device="cuda"))
        assert v.shape == (n,) and (v >= 0).all() and (v < 1).all() and len(np.unique(v)) > 0.99 * n
    assert ember.rand(0, 5, device="cuda").shape == (0, 5)
    assert ember.randn((), device="cuda").shape == ()
    r = ember.randn(3, 4, device="cuda", requires_grad=True)
    assert r.requires_grad and r.is_leaf
    like = ember.randn_like(ember.zeros(2, 3, device="cuda", dtype=ember.float16))
    assert like.dtype is ember.float16 and like.device.type == "cuda"
    with pytest.raises(NotImplementedError, match="expects a floating point dtype"):   # torch's type
        ember.rand(3, device="cuda", dtype=ember.int32)


@pytest.mark.parametrize("dtype", INTS + ["float32", "float16"])
def test_randint_dtypes(dtype, no_h2d):
    dt = getattr(ember, dtype)
    x = ember.randint(-3 if dtype != "uint8" else 0, 9, (N,), device="cuda", dtype=dt)
    assert x.dtype is dt
    v = h(x).astype(np.int64)
    lo = -3 if dtype != "uint8" else 0
    assert v.min() == lo and v.max() == 8
    freq = np.bincount(v - lo) / N
    np.testing.assert_allclose(freq, 1 / (9 - lo), atol=0.003)
    d = ember.randint(10, (5, 7), device="cuda")
    assert d.dtype is ember.int64 and d.shape == (5, 7) and 0 <= h(d).min() and h(d).max() < 10


def test_randint_wide_ranges(no_h2d):
    v = h(ember.randint(0, 1 << 40, (N,), device="cuda"))
    assert v.min() >= 0 and v.max() < 1 << 40
    assert abs(v.mean() / 2 ** 40 - 0.5) < 0.003
    assert abs(np.mean(v % 2) - 0.5) < 0.003 and abs(np.mean((v >> 35) % 2) - 0.5) < 0.003   # low and high bits
    w = h(ember.randint(-(1 << 63), (1 << 63) - 1, (N,), device="cuda"))
    assert abs(np.mean(w < 0) - 0.5) < 0.003
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to'"):
        ember.randint(5, 5, (3,), device="cuda")


# ---- in-place fills ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
def test_uniform_normal_exponential_(dtype, no_h2d):
    dt = getattr(ember, dtype)
    x = ember.empty(N, device="cuda", dtype=dt)
    assert x.uniform_(-2.0, 6.0) is x
    m, s, _, _ = stats(h(x))
    assert h(x).min() >= -2 and h(x).max() <= 6
    assert abs(m - 2) < 0.03 and abs(s * s - 64 / 12) < 0.03
    x.normal_(3.0, 0.25)
    m, s, skew, _ = stats(h(x))
    assert abs(m - 3) < 0.002 and abs(s - 0.25) < 0.002 and abs(skew) < 0.02
    x.exponential_(4.0)
    m, s, skew, _ = stats(h(x))
    assert h(x).min() >= 0 and abs(m - 0.25) < 0.002 and abs(s - 0.25) < 0.003 and abs(skew - 2) < 0.1


def test_in_place_fills_on_views_and_empty(no_h2d):
    base = ember.zeros(300, 400, device="cuda")
    view = base.t()[:, ::2]                                   # (400, 150), strided, not contiguous
    view.uniform_(1.0, 2.0)
    b = h(base)
    assert ((b[::2] >= 1) & (b[::2] < 2)).all() and (b[1::2] == 0).all()
    base.zero_()
    base[:, 100:200].normal_()
    b = h(base)
    assert (b[:, :100] == 0).all() and (b[:, 200:] == 0).all() and abs(b[:, 100:200].std() - 1) < 0.02
    assert ember.empty(0, device="cuda").normal_().shape == (0,)
    s = ember.zeros((), device="cuda").uniform_(5.0, 6.0)
    assert 5 <= s.item() < 6
    with pytest.raises(RuntimeError, match="normal_ expects std >= 0.0"):
        base.normal_(0.0, -1.0)
    with pytest.raises(RuntimeError, match="uniform_ expects to return a"):
        base.uniform_(1.0, 0.0)


@pytest.mark.parametrize("dtype", INTS + ["bool", "float16", "bfloat16", "float32", "float64"])
def test_random_default_range(dtype, no_h2d):
    dt = getattr(ember, dtype)
    v = h(ember.empty(N, device="cuda", dtype=dt).random_()).astype(np.float64)
    top = {"bool": 2, "float16": 2 ** 11, "bfloat16": 2 ** 8, "float32": 2 ** 24, "float64": 2 ** 53,
           "uint8": 256, "int8": 128, "int16": 2 ** 15, "int32": 2 ** 31, "int64": 2 ** 63}[dtype]
    assert v.min() >= 0 and v.max() < top and (v == np.round(v)).all()
    assert abs(v.mean() - (top - 1) / 2) / top < 0.01
    if top <= 2 ** 15:
        assert len(np.unique(v)) == top


def test_random_from_to(no_h2d):
    v = h(ember.empty(N, device="cuda", dtype=ember.int32).random_(-5, 5))
    assert set(np.unique(v)) == set(range(-5, 5))
    v = h(ember.empty(N, device="cuda", dtype=ember.int64).random_(0, 1 << 33))
    assert v.min() >= 0 and v.max() < 1 << 33 and v.max() > 0.99 * (1 << 33)
    v = h(ember.empty(N, device="cuda", dtype=ember.int16).random_(30000))     # one argument is `to`, as torch's
    assert v.min() >= 0 and v.max() == 29999
    v = h(ember.empty(N, device="cuda", dtype=ember.int16).random_(30000, None))   # [from, dtype max]
    assert v.min() >= 30000 and v.max() == 32767
    v = h(ember.empty(1000, device="cuda", dtype=ember.float32).random_(3, 4))
    assert (v == 3).all()


# ---- bernoulli -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int64", "bool"])
def test_bernoulli_scalar_p(dtype, no_h2d):
    dt = getattr(ember, dtype)
    x = ember.empty(N, device="cuda", dtype=dt).bernoulli_(0.3)
    v = h(x)
    assert set(np.unique(v)) == {0, 1} and abs(v.mean() - 0.3) < 0.003
    assert (h(ember.empty(1000, device="cuda", dtype=dt).bernoulli_(0.0)) == 0).all()
    assert (h(ember.empty(1000, device="cuda", dtype=dt).bernoulli_(1.0)) == 1).all()
    if dt.is_floating_point:
        y = ember.zeros(N, device="cuda", dtype=dt).bernoulli(0.8)
        assert y.dtype is dt and abs(h(y).mean() - 0.8) < 0.003
    with pytest.raises(RuntimeError, match=r"bernoulli_ expects p to be in \[0, 1\]"):
        x.bernoulli_(-0.1)


def test_bernoulli_tensor_p():
    p = ember.linspace(0, 1, 11, device="cuda")
    with device_only():
        out = ember.empty(20000, 11, device="cuda").bernoulli_(p)             # p broadcast over rows
    np.testing.assert_allclose(h(out).mean(0), np.linspace(0, 1, 11), atol=0.015)
    assert (h(out)[:, 0] == 0).all() and (h(out)[:, -1] == 1).all()
    with device_only():
        q = ember.full((1000, 1000), 0.25, device="cuda", dtype=ember.float64)
        assert abs(h(ember.empty(1000, 1000, device="cuda", dtype=ember.bool).bernoulli_(q)).mean() - 0.25) < 0.003
        pt = ember.full((300, 1000), 0.6, device="cuda").t()                # a transposed p
        assert abs(h(ember.empty(1000, 300, device="cuda").bernoulli_(pt)).mean() - 0.6) < 0.005
        zero_d = ember.tensor(0.9)                                              # a 0-dim CPU p
        assert abs(h(ember.empty(N, device="cuda").bernoulli_(zero_d)).mean() - 0.9) < 0.003
        probs = ember.rand(N, device="cuda", dtype=ember.float16)
        draw = ember.bernoulli(probs)
    assert draw.dtype is ember.float16
    v, pv = h(draw), h(probs)
    for lo in (0.0, 0.25, 0.5, 0.75):
        sel = (pv >= lo) & (pv < lo + 0.25)
        assert abs(v[sel].mean() - (lo + 0.125)) < 0.006


# ---- multinomial ---------------------------------------------------------------------------------

def test_multinomial_with_replacement_frequencies():
    w = np.array([0.0, 1.0, 0.5, 0.0, 3.0, 2.5, 0.0, 1.0, 2.0, 0.0])
    wc = ember.tensor(w, dtype=ember.float32).cuda()
    with device_only():
        s = wc.multinomial(400000, replacement=True)
    assert s.dtype is ember.int64 and s.shape == (400000,)
    freq = np.bincount(h(s), minlength=10) / 400000
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.003)
    assert (freq[w == 0] == 0).all()
    rows = ember.tensor(np.stack([w, w[::-1], np.ones(10)]), dtype=ember.float16).cuda()
    with device_only():
        s2 = h(rows.multinomial(100000, True))
    for r, ww in zip(s2, (w, w[::-1], np.ones(10))):
        np.testing.assert_allclose(np.bincount(r, minlength=10) / 100000, ww / ww.sum(), atol=0.006)


def test_multinomial_many_rows_and_a_large_vocabulary():
    rng = np.random.default_rng(0)
    C = 50000
    logits = rng.standard_normal(C) * 3
    p = np.exp(logits - logits.max())
    probs = ember.tensor(np.tile(p, (200, 1)), dtype=ember.float32).cuda()          # 200 identical rows
    with device_only():
        s = h(ember.multinomial(probs, 50, replacement=True)).ravel()
    top = np.argsort(p)[::-1][:5]
    want = p[top] / p.sum()
    got = np.array([(s == t).mean() for t in top])
    assert (np.abs(got - want) <= 0.004 + 0.1 * want).all(), (got, want)
    one = h(ember.multinomial(probs, 1))
    assert one.shape == (200, 1) and (one >= 0).all() and (one < C).all()


def test_multinomial_without_replacement():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    rows = ember.tensor(np.tile(w, (200000, 1)), dtype=ember.float32).cuda()
    with device_only():
        s = h(rows.multinomial(2))
    assert (s[:, 0] != s[:, 1]).all()
    W = w.sum()
    pairs = np.zeros((4, 4))
    np.add.at(pairs, (s[:, 0], s[:, 1]), 1)
    want = np.array([[0 if i == j else w[i] / W * w[j] / (W - w[i]) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(pairs / len(s), want, atol=0.004)       # successive draws, as sampling does
    full = h(ember.rand(64, 300, device="cuda").multinomial(300))
    assert all(sorted(r) == list(range(300)) for r in full)
    sparse = ember.tensor([0.0, 1.0, 0.0, 5.0, 0.0, 2.0]).cuda()
    with device_only():
        for _ in range(20):
            r = h(sparse.multinomial(3)).tolist()
            assert sorted(r) == [1, 3, 5]
    with pytest.raises(RuntimeError, match="without replacement"):
        sparse.multinomial(7)
    with pytest.raises(RuntimeError, match="n_sample <= 0"):   # as torch
        sparse.multinomial(0)


# ---- randperm ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 100, 16384, 16385, 100000, (1 << 20) + 7])
def test_randperm_is_a_permutation(n, no_h2d):
    p = ember.randperm(n, device="cuda")
    assert p.dtype is ember.int64 and p.shape == (n,)
    v = h(p)
    assert (np.sort(v) == np.arange(n)).all()
    if n > 1000:
        assert not (v == h(ember.randperm(n, device="cuda"))).all()
        assert abs(np.corrcoef(np.arange(n), v)[0, 1]) < 5 / math.sqrt(n)
        assert abs(np.corrcoef(v[:-1], v[1:])[0, 1]) < 5 / math.sqrt(n)
        assert abs(np.mean(v[: n // 10]) / n - 0.5) < 5 * 0.29 / math.sqrt(n // 10)


def test_randperm_small_n_is_uniform_and_dtypes(no_h2d):
    seen = {}
    for _ in range(2400):
        k = tuple(h(ember.randperm(4, device="cuda")).tolist())
        seen[k] = seen.get(k, 0) + 1
    assert len(seen) == 24 and max(seen.values()) < 160 and min(seen.values()) > 50     # 100 expected
    assert h(ember.randperm(50, device="cuda", dtype=ember.int32)).dtype == np.int32
    assert sorted(h(ember.randperm(200, device="cuda", dtype=ember.float32)).tolist()) == list(range(200))
    assert ember.randperm(0, device="cuda").shape == (0,)


def test_randperm_large_n_fixed_points_look_random(no_h2d):
    """A uniform permutation has Poisson(1) fixed points; the Feistel path (n > 16384) should too."""
    fixed = [int((h(ember.randperm(50000, device="cuda")) == np.arange(50000)).sum()) for _ in range(300)]
    assert abs(np.mean(fixed) - 1) < 0.25 and abs(np.var(fixed) - 1) < 0.4


# ---- seeds, generators, state --------------------------------------------------------------------

def _draws():
    return (h(ember.randn(1000, device="cuda")), h(ember.rand(77, device="cuda", dtype=ember.float16)),
            h(ember.randint(0, 100, (50,), device="cuda")), h(ember.randperm(30, device="cuda")),
            h(ember.ones(3, 40, device="cuda").multinomial(5)), h(ember.empty(99, device="cuda").bernoulli_(0.5)))


def test_manual_seed_reproduces_and_calls_differ(no_h2d):
    ember.manual_seed(123)
    a = _draws()
    ember.manual_seed(123)
    b = _draws()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    ember.cuda.manual_seed(123)                      # the CUDA generator alone
    np.testing.assert_array_equal(_draws()[0], a[0])
    ember.cuda.manual_seed_all(123)
    np.testing.assert_array_equal(_draws()[0], a[0])
    c = _draws()                                     # consecutive calls differ
    assert not np.array_equal(c[0], a[0]) and not np.array_equal(c[3], a[3])
    ember.manual_seed(124)
    assert not np.array_equal(_draws()[0], a[0])
    assert ember.cuda.initial_seed() == 124


def test_rng_state_save_restore_and_fork(no_h2d):
    ember.manual_seed(5)
    ember.randn(10, device="cuda")
    st = ember.cuda.get_rng_state()
    assert st.dtype is ember.uint8 and st.shape == (16,) and st.device.type == "cpu"
    a = h(ember.randn(5000, device="cuda"))
    b = h(ember.randn(5000, device="cuda"))
    ember.cuda.set_rng_state(st)
    np.testing.assert_array_equal(h(ember.randn(5000, device="cuda")), a)
    np.testing.assert_array_equal(h(ember.randn(5000, device="cuda")), b)
    states = ember.cuda.get_rng_state_all()
    with ember.random.fork_rng():
        ember.randn(100, device="cuda")
    assert [s.tolist() for s in ember.cuda.get_rng_state_all()] == [s.tolist() for s in states]
    ember.cuda.set_rng_state_all(states)


def test_generator_argument(no_h2d):
    g1 = ember.Generator(device="cuda").manual_seed(42)
    g2 = ember.Generator(device="cuda").manual_seed(42)
    before = ember.cuda.get_rng_state().tolist()
    x = h(ember.randn(1000, device="cuda", generator=g1))
    y = h(ember.randn(1000, device="cuda", generator=g2))
    np.testing.assert_array_equal(x, y)
    assert ember.cuda.get_rng_state().tolist() == before         # the default generator was not used
    e1 = ember.empty(500, device="cuda").normal_(generator=g1)
    e2 = ember.empty(500, device="cuda").normal_(generator=g2)
    np.testing.assert_array_equal(h(e1), h(e2))
    m1 = ember.ones(4, 9, device="cuda").multinomial(3, generator=g1)
    m2 = ember.ones(4, 9, device="cuda").multinomial(3, generator=g2)
    np.testing.assert_array_equal(h(m1), h(m2))
    np.testing.assert_array_equal(h(ember.randperm(40000, device="cuda", generator=g1)),
                                  h(ember.randperm(40000, device="cuda", generator=g2)))
    s = g1.get_state()
    p = h(ember.rand(10, device="cuda", generator=g1))
    g1.set_state(s)
    np.testing.assert_array_equal(h(ember.rand(10, device="cuda", generator=g1)), p)
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        ember.rand(3, device="cuda", generator=ember.Generator())


def test_init_functions_and_normal_on_cuda():
    lin = ember.nn.Linear(512, 256).to("cuda")
    with device_only():
        ember.nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5))
        ember.nn.init.normal_(lin.bias, 0.0, 0.02)
        z = ember.normal(2.0, 3.0, (N,), device="cuda")
        zt = ember.normal(ember.full((1000, 1000), -1.0, device="cuda"), 0.5)
    bound = 1 / math.sqrt(512)
    w = h(lin.weight)
    assert abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(h(lin.bias).std() - 0.02) < 0.004
    m, s, _, _ = stats(h(z))
    assert abs(m - 2) < 0.02 and abs(s - 3) < 0.02
    m, s, _, _ = stats(h(zt))
    assert zt.device.type == "cuda" and abs(m + 1) < 0.005 and abs(s - 0.5) < 0.005


# ---- dropout -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_dropout_forward_backward_share_the_mask(dtype, no_h2d):
    dt = getattr(ember, dtype)
    x = ember.randn(1000, 1000, device="cuda", dtype=dt).requires_grad_()
    y = F.dropout(x, 0.3)
    assert y.dtype is dt and y.device.type == "cuda"
    xv, yv = h(x), h(y)
    kept = yv != 0
    assert abs(kept.mean() - 0.7) < 0.003
    tol = {"float16": 1e-3, "bfloat16": 8e-3}.get(dtype, 1e-6)
    atol = 1e-7 if dtype == "float16" else 0          # float16 subnormals
    np.testing.assert_allclose(yv[kept], xv[kept] / 0.7, rtol=tol, atol=atol)
    g = ember.randn(1000, 1000, device="cuda", dtype=dt)
    y.backward(g)
    nz = xv != 0                                                  # (randn may give an exact 0: kept or not)
    np.testing.assert_allclose(h(x.grad)[nz], np.where(kept, h(g) / 0.7, 0)[nz], rtol=tol, atol=atol)
    x.grad = None
    F.dropout(x, 0.3).sum().backward()                            # a broadcast (expanded) gradient
    gk = h(x.grad) != 0
    assert abs(gk.mean() - 0.7) < 0.003 and not (gk == kept).all()   # a new mask for the new call


def test_dropout_module_inplace_and_edge_cases(no_h2d):
    x = ember.randn(64, 128, device="cuda")
    m = ember.nn.Dropout(0.5).to("cuda")
    a, b = h(m(x)), h(m(x))
    assert not np.array_equal(a, b)
    m.eval()
    assert m(x) is x
    z = x * 1.0
    out = F.dropout(z, 0.25, inplace=True)
    assert out is z and abs((h(z) == 0).mean() - 0.25) < 0.02
    assert (h(F.dropout(x, 1.0)) == 0).all()
    assert F.dropout(x, 0.0) is x
    assert F.dropout(ember.empty(0, 3, device="cuda"), 0.5).shape == (0, 3)
    t = ember.randn(128, 64, device="cuda").t()                     # a non-contiguous input
    v, tv = h(F.dropout(t, 0.5)), h(t)
    kept = v != 0
    np.testing.assert_allclose(v[kept], tv[kept] * 2, rtol=1e-6)
    ember.manual_seed(3)
    d1 = h(F.dropout(x, 0.5))
    ember.manual_seed(3)
    np.testing.assert_array_equal(h(F.dropout(x, 0.5)), d1)


def test_dropout_double_backward():
    x = ember.randn(3000, device="cuda", requires_grad=True)
    y = F.dropout(x, 0.4)
    g, = ember.autograd.grad((y * y).sum(), x, create_graph=True)       # 2 x mask / 0.6^2
    kept = h(y.detach()) != 0
    np.testing.assert_allclose(h(g.detach()), 2 * h(x.detach()) * kept / 0.36, rtol=1e-5)
    gg, = ember.autograd.grad(g.sum(), x)                                # through native_dropout_backward
    np.testing.assert_allclose(h(gg), 2 * kept / 0.36, rtol=1e-5)


# ---- CUDA graphs ---------------------------------------------------------------------------------

def test_random_ops_in_a_cuda_graph_draw_new_numbers_each_replay():
    x = ember.randn(5000, device="cuda")
    gen = ember.Generator(device="cuda").manual_seed(9)

    def step():
        return (ember.rand(4096, device="cuda"), F.dropout(x, 0.5), ember.randn(3000, device="cuda", generator=gen),
                ember.ones(8, 20, device="cuda").multinomial(4), ember.randperm(50, device="cuda"))
    step()                                                     # compile and load every kernel before capture
    ember.cuda.synchronize()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        outs = step()
    ember.manual_seed(7)
    gen.manual_seed(9)
    g.replay()
    r1 = [h(t) for t in outs]
    g.replay()
    r2 = [h(t) for t in outs]
    for a, b in zip(r1, r2):
        assert not np.array_equal(a, b)
    # replays draw what the eager sequence draws from the same generator states
    ember.manual_seed(7)
    gen.manual_seed(9)
    for a, t in zip(r1, step()):
        np.testing.assert_array_equal(a, h(t))
    for a, t in zip(r2, step()):
        np.testing.assert_array_equal(a, h(t))
    ember.manual_seed(7)
    gen.manual_seed(9)
    g.replay()
    for a, t in zip(r1, outs):
        np.testing.assert_array_equal(a, h(t))
    g.reset()
