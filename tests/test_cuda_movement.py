"""The CUDA ops on the two kernels of `backends/cuda/kernels/movement.py` (data movement in
`backends/cuda/shape.py`, one_hot in `indexing.py`, device-side factories in `creation.py`) against
torch CUDA (`pytest -m cuda`): flip, roll, repeat, triu/tril (+ in place), one_hot, diag, diag_embed,
arange, linspace, eye, full, ones, scalar_tensor; strided, empty and 0-d inputs; gradients; a
CUDA graph capture proving that none of them copies from the host; and one_hot's device-side
class check (`checks.py`)."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

torch = pytest.importorskip("torch")
from helpers import DTYPES, E2T  # noqa: E402

import ember.backends.cuda.creation  # noqa: E402,F401  (registers the kernels)
import ember.backends.cuda.indexing  # noqa: E402,F401
import ember.backends.cuda.shape  # noqa: E402,F401

DTS = ["float32", "float16", "bfloat16", "int64", "bool"]
LAYOUTS = ["contiguous", "transposed", "sliced", "expanded"]


def pair(shape, dtype, layout="contiguous", seed=0):
    """The same data on the GPU as an ember and a torch tensor; float values are multiples of 1/8
    (exact in every float dtype), so that movement results compare exactly."""
    rng = np.random.default_rng(seed)
    e_dt, t_dt = DTYPES[dtype]
    shape = tuple(shape)
    base = shape
    if layout == "transposed" and len(shape) >= 2:
        base = shape[:-2] + (shape[-1], shape[-2])
    elif layout == "sliced" and shape:
        base = shape[:-1] + (shape[-1] * 2,)
    elif layout == "expanded" and shape:
        base = (1,) + shape[1:]
    if dtype == "bool":
        a = rng.random(base) > 0.5
    elif e_dt.category == 1:
        a = rng.integers(-50, 50, size=base)
    else:
        a = np.round(rng.uniform(-3, 3, size=base) * 8) / 8
    e = ember.tensor(a, dtype=e_dt).cuda()
    t = torch.tensor(a).to(t_dt).cuda()
    if layout == "transposed" and len(shape) >= 2:
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
    elif layout == "sliced" and shape:
        e, t = e[..., ::2], t[..., ::2]
    elif layout == "expanded" and shape:
        e, t = e.expand(*shape), t.expand(*shape)
    assert tuple(e.shape) == tuple(t.shape) == shape
    return e, t


def check(e, t, tol=None):
    """Same device type, shape, dtype and layout (flip keeps a transposed input's; a transposed leaf's grad is laid
    out as the leaf; torch's empty results carry odd strides); values equal (within tol for floats when given)."""
    assert e.device.type == "cuda"
    assert tuple(e.shape) == tuple(t.shape), (e.shape, t.shape)
    assert E2T[e.dtype] == t.dtype, (e.dtype, t.dtype)
    assert e.stride() == t.stride() or not e.numel(), (e.stride(), t.stride())
    ea = e.cpu()
    if t.dtype.is_floating_point:
        got, want = ea.double().numpy(), t.double().cpu().numpy()
        if tol is None:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=tol[0], atol=tol[1])
    else:
        np.testing.assert_array_equal(ea.numpy(), t.cpu().numpy())


# ---- flip / roll / repeat ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_flip(dtype, layout):
    e, t = pair((5, 6, 7), dtype, layout)
    for dims in [(0,), (-1,), (1, 2), (0, 2), (0, 1, 2), ()]:
        check(e.flip(dims), t.flip(dims))


@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_roll(dtype, layout):
    e, t = pair((5, 6, 7), dtype, layout)
    for shifts, dims in [(1, 0), (-3, -1), ((7, 2), (1, 2)), ((1, 2), (0, 0)), ((0, 5, -9), (0, 1, 2)),
                         (11, None), (-1000, None), (0, None)]:
        check(e.roll(shifts, dims), t.roll(shifts, dims))


@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_repeat(dtype, layout):
    e, t = pair((3, 4), dtype, layout)
    for reps in [(1, 1), (2, 1), (1, 3), (2, 3), (2, 1, 1), (3, 2, 2), (0, 2), (1, 2, 1, 2)]:
        check(e.repeat(*reps), t.repeat(*reps))


def test_flip_roll_repeat_large_and_bool_repeat_of_one():
    e, t = pair((33, 257, 19), "float32", "transposed")
    check(e.flip(0, 2), t.flip(0, 2))
    check(e.roll((5, -7), (1, 2)), t.roll((5, -7), (1, 2)))
    check(e.roll(100003), t.roll(100003))
    check(e.repeat(2, 1, 3), t.repeat(2, 1, 3))
    e, t = pair((1, 5, 1), "bool")
    check(e.repeat(4, 2, 3), t.repeat(4, 2, 3))


# ---- triu / tril ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["triu", "tril"])
@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_tri(name, dtype, layout):
    for shape in [(6, 9), (3, 7, 4), (1, 1)]:
        e, t = pair(shape, dtype, layout)
        for d in (-10, -2, -1, 0, 1, 3, 12):
            check(getattr(e, name)(d), getattr(t, name)(d))


@pytest.mark.parametrize("name", ["triu_", "tril_"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int64", "bool"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_tri_inplace(name, dtype, layout):
    for d in (-1, 0, 2):
        e, t = pair((2, 5, 6), dtype, layout)
        assert getattr(e, name)(d) is e
        getattr(t, name)(d)
        assert tuple(e.stride()) == tuple(t.stride())
        np.testing.assert_array_equal(e.cpu().float().numpy(), t.float().cpu().numpy())


def test_tri_on_a_large_batch():
    e, t = pair((4, 300, 200), "float16", "transposed")
    check(e.triu(1), t.triu(1))
    check(e.tril(-3), t.tril(-3))


# ---- one_hot -------------------------------------------------------------------------------------

def test_one_hot():
    F = torch.nn.functional
    a = np.random.default_rng(0).integers(0, 7, size=(4, 9))
    e, t = ember.tensor(a).cuda(), torch.tensor(a).cuda()
    for c in (-1, 7, 12):
        check(ember.nn.functional.one_hot(e, c), F.one_hot(t, c))
    check(ember.nn.functional.one_hot(e.t()), F.one_hot(t.t()))
    check(ember.nn.functional.one_hot(e[:, ::3], 8), F.one_hot(t[:, ::3], 8))
    s, ts = ember.tensor(3).cuda(), torch.tensor(3).cuda()
    check(ember.nn.functional.one_hot(s, 5), F.one_hot(ts, 5))
    z, tz = ember.zeros(0, 3, dtype=ember.int64, device="cuda"), torch.zeros(0, 3, dtype=torch.int64, device="cuda")
    check(ember.nn.functional.one_hot(z, 4), F.one_hot(tz, 4))
    with pytest.raises(RuntimeError, match="non-negative"):
        ember.nn.functional.one_hot(ember.tensor([1, -2]).cuda())
    with pytest.raises(RuntimeError, match="empty tensor"):
        ember.nn.functional.one_hot(z)


# ---- diag / diag_embed ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTS)
def test_diag(dtype):
    v, tv = pair((7,), dtype, "sliced")
    m, tm = pair((5, 8), dtype, "transposed")
    for d in (-3, 0, 2, 9):
        check(v.diag(d), tv.diag(d))
        check(m.diag(d), tm.diag(d))


@pytest.mark.parametrize("dtype", DTS)
def test_diag_embed(dtype):
    e, t = pair((3, 4, 5), dtype, "transposed")
    for off, d1, d2 in [(0, -2, -1), (1, 0, 2), (-2, 3, 1), (2, 1, 0)]:
        check(ember.diag_embed(e, off, d1, d2), torch.diag_embed(t, off, d1, d2))


# ---- empty and 0-d -------------------------------------------------------------------------------

def test_empty_and_zero_dim():
    e, t = pair((), "float32")
    check(e.flip(0), t.flip(0))
    check(e.roll(3), t.roll(3))
    check(e.repeat(2, 3), t.repeat(2, 3))
    e, t = pair((0, 4), "float32")
    check(e.flip(0, 1), t.flip(0, 1))
    check(e.roll(2, 1), t.roll(2, 1))
    check(e.roll(2), t.roll(2))
    check(e.repeat(3, 2), t.repeat(3, 2))
    check(e.triu(), t.triu())
    check(e.tril_(1), t.tril_(1))
    check(e.diag(), t.diag())
    check(ember.diag_embed(e), torch.diag_embed(t))
    v, tv = pair((0,), "int64")
    check(v.diag(2), tv.diag(2))


# ---- gradients -----------------------------------------------------------------------------------

GRADS = [
    ("flip", lambda x: x.flip(0, 2)),
    ("roll", lambda x: x.roll((2, -1), (1, 2))),
    ("roll_flat", lambda x: x.roll(5)),
    ("repeat", lambda x: x.repeat(2, 1, 3)),
    ("repeat_lead", lambda x: x.repeat(2, 1, 2, 1)),
    ("triu", lambda x: x.triu(1)),
    ("tril", lambda x: x.tril(-1)),
    ("diag_embed", lambda x: x.diag_embed(1, 0, 2)),
    ("diag_of_matrix", lambda x: x[0].diag(1)),
    ("diag_of_vector", lambda x: x[0, 0].diag(-2)),
]


@pytest.mark.parametrize("name,f", GRADS, ids=[g[0] for g in GRADS])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gradients(name, f, dtype):
    e, t = pair((3, 4, 5), dtype, "transposed")
    e = e.detach().requires_grad_()
    t = t.detach().requires_grad_()
    ye, yt = f(e), f(t)
    ge, gt = pair(tuple(yt.shape), dtype, seed=1)
    ye.backward(ge)
    yt.backward(gt)
    tol = (1e-6, 1e-6) if dtype == "float32" else (1e-2, 1e-2)    # repeat sums grads
    check(ye.detach(), yt.detach())
    check(e.grad, t.grad, tol)


# ---- factories -----------------------------------------------------------------------------------

FTOL = {"float32": (2e-6, 1e-6), "float64": (1e-12, 1e-12), "float16": (1e-3, 1e-3), "bfloat16": (8e-3, 8e-3)}


def _tol(dt):
    return FTOL.get(str(dt).split(".")[-1])


@pytest.mark.parametrize("args,dtype", [((10,), None), ((3, 40, 7), None), ((20, -5, -3), None),
                                        ((0.5, 9.0, 0.25), None), ((0, 1, 0.1), "float64"), ((-1.5, 2, 0.3), None),
                                        ((0, 2000), "float16"), ((1, 100, 3), "bfloat16"), ((0, 50), "int32"),
                                        ((7, 7), None), ((-3, 260, 7), "int64")])
def test_arange(args, dtype):
    e_dt, t_dt = DTYPES[dtype] if dtype else (None, None)
    got = ember.arange(*args, dtype=e_dt, device="cuda")
    want = torch.arange(*args, dtype=t_dt, device="cuda")
    check(got, want, _tol(want.dtype))


@pytest.mark.parametrize("args,dtype", [((0, 1, 5), None), ((-2.5, 7.0, 101), "float64"), ((1, 2, 1), None),
                                        ((1, 2, 0), None), ((0, 9, 4), "int64"), ((3, -3, 7), "bfloat16"),
                                        ((-1, 1, 1000), "float16"), ((0, 1, 100001), None)])
def test_linspace(args, dtype):
    e_dt, t_dt = DTYPES[dtype] if dtype else (None, None)
    got = ember.linspace(*args, dtype=e_dt, device="cuda")
    want = torch.linspace(*args, dtype=t_dt, device="cuda")
    check(got, want, _tol(want.dtype))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "bool"])
def test_eye(dtype):
    e_dt, t_dt = DTYPES[dtype]
    check(ember.eye(5, dtype=e_dt, device="cuda"), torch.eye(5, dtype=t_dt, device="cuda"))
    for n, m in [(3, 7), (6, 2), (0, 4), (1, 1)]:
        check(ember.eye(n, m, dtype=e_dt, device="cuda"), torch.eye(n, m, dtype=t_dt, device="cuda"))


@pytest.mark.parametrize("value,dtype", [(2.5, "float64"), (7, "int64"), (-(2 ** 40) - 3, "int64"), (0.1, "float16"),
                                         (0.1, "bfloat16"), (True, "bool"), (-1.5, "float32"), (3, "int32"),
                                         (float("inf"), "float64"), (-0.0, "float64")])
def test_full_ones_scalar_tensor(value, dtype):
    e_dt, t_dt = DTYPES[dtype]
    got = ember.full((3, 5), value, dtype=e_dt, device="cuda")
    want = torch.full((3, 5), value, dtype=t_dt, device="cuda")
    check(got, want)
    assert np.array_equal(np.signbit(got.cpu().double().numpy()), np.signbit(want.cpu().double().numpy()))
    check(ember.scalar_tensor(value, dtype=e_dt, device="cuda"), torch.scalar_tensor(value, dtype=t_dt, device="cuda"))
    check(ember.ones(2, 3, dtype=e_dt, device="cuda"), torch.ones(2, 3, dtype=t_dt, device="cuda"))


def test_device_side_in_a_cuda_graph():
    """Every op here runs inside a capture, where a host->device copy would raise."""
    x = ember.arange(24.0, device="cuda").reshape(4, 6)
    idx = ember.tensor([[0, 2], [1, 3]]).cuda()

    def work():
        return [ember.arange(5, device="cuda"), ember.arange(0.5, 3.0, 0.5, device="cuda"),
                ember.linspace(0, 1, 6, device="cuda"), ember.eye(3, 4, device="cuda"),
                ember.full((3,), 9, dtype=ember.int64, device="cuda"),
                ember.ones(2, dtype=ember.float64, device="cuda"),
                ember.scalar_tensor(4.25, dtype=ember.float64, device="cuda"),
                x.flip(1), x.roll(1, 0), x.roll(-5), x.repeat(2, 1), x.triu(1), x.tril(), x.t().diag(1),
                x[0].diag(), ember.diag_embed(x), ember.nn.functional.one_hot(idx, 5)]
    expected = [t.cpu() for t in work()]     # compiles and loads every kernel first
    ember.cuda.synchronize()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        outs = work()
    g.replay()
    ember.cuda.synchronize()
    for o, w in zip(outs, expected):
        assert o.dtype is w.dtype and o.shape == w.shape
        np.testing.assert_array_equal(o.cpu().double().numpy(), w.double().numpy())
    g.reset()


@pytest.mark.parametrize("bad", [3, 8, -1])
def test_one_hot_class_out_of_range_raises_at_the_next_sync(bad):
    from ember.backends.cuda import checks
    out = ember.nn.functional.one_hot(ember.tensor([[0, 2], [bad, 1]]).cuda(), 3)
    with pytest.raises(RuntimeError, match=rf"CUDA error: index out of range in one_hot: got index {bad} for "
                                           r"num_classes = 3 \(found on the device"):
        out.cpu()
    assert not checks._pending and checks.err_tensor(out.device).cpu().tolist() == [0, 0, 0, 0]
    e, t = ember.tensor([2, 0, 1]).cuda(), torch.tensor([2, 0, 1]).cuda()
    np.testing.assert_array_equal(ember.nn.functional.one_hot(e, 3).cpu().numpy(),
                                  torch.nn.functional.one_hot(t, 3).cpu().numpy())
    ember.cuda.synchronize()
    ember.tensor([5, bad]).cuda().flip([0]).roll(1)       # kernels that check nothing ask for no read
    assert not checks._pending
