"""CUDA indexing ops (`backends/cuda/indexing.py`) against torch CUDA (`pytest -m cuda`): advanced
indexing (`index`, `__getitem__`/`__setitem__`), index_put(_) with and without accumulation, take/put,
index_copy/index_fill/index_add, scatter/scatter_reduce, nonzero/argwhere, masked_select and
masked_scatter; strided, broadcast, empty and 0-d inputs, negative and duplicate indices; gradients;
large inputs (multi-level scans, contended atomics); a CUDA graph capture proving that the ops
whose output size does not depend on the data neither synchronise nor copy from the host; and the
device-side index checks (`checks.py`): an index out of range raises at the next synchronisation."""
import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

torch = pytest.importorskip("torch")
from helpers import DTYPES, E2T  # noqa: E402

import ember.backends.cuda.indexing  # noqa: E402,F401  (registers the kernels)
from ember.backends.cuda import checks  # noqa: E402

DTS = ["float32", "float16", "bfloat16", "int64", "bool"]
LAYOUTS = ["contiguous", "transposed", "sliced", "expanded"]


def pair(shape, dtype, layout="contiguous", seed=0):
    """The same data on the GPU as an ember and a torch tensor; float values are multiples of 1/8
    in [-3, 3], so that results and small sums of them are exact in every float dtype."""
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
        a = rng.integers(-5, 6, size=base)
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


def idx(values, dtype=torch.int64):
    """An index (or mask) as an ember and a torch CUDA tensor."""
    t = torch.tensor(values, dtype=dtype).cuda()
    return ember.tensor(values, dtype={torch.int64: ember.int64, torch.int32: ember.int32,
                                       torch.bool: ember.bool, torch.uint8: ember.uint8}[dtype]).cuda(), t


def check(e, t, tol=None):
    """Same device type, shape, dtype; values equal (within tol for floats when given)."""
    assert e.device.type == "cuda"
    assert tuple(e.shape) == tuple(t.shape), (e.shape, t.shape)
    assert E2T[e.dtype] == t.dtype, (e.dtype, t.dtype)
    ea = e.detach().cpu()
    if t.dtype.is_floating_point:
        got, want = ea.double().numpy(), t.detach().double().cpu().numpy()
        if tol is None:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=tol[0], atol=tol[1], equal_nan=True)
    else:
        np.testing.assert_array_equal(ea.numpy(), t.cpu().numpy())


def keys(entries):
    """An aten index list (None = whole dim) as an ember list, a torch list and a torch __getitem__ key."""
    e, t = [], []
    for x in entries:
        if x is None:
            e.append(None)
            t.append(None)
        else:
            ex, tx = idx(*x) if isinstance(x, tuple) else idx(x)
            e.append(ex)
            t.append(tx)
    return e, t, tuple(slice(None) if x is None else x for x in t)


INDEXINGS = [
    [[1, 0, -1, 1, 3]],                                       # one index, negative and repeated values
    [None, [2, -3, 1]],                                       # after a full dim
    [[[0], [3]], [1, 2, 0]],                                  # two broadcast indices, adjacent
    [[1, 0], None, [3, -1]],                                  # separated: the batch dims go first
    [None, ([0, 2], torch.int32), [[1], [3]]],                # int32 index
    [([[True, False, True], [False, True, True], [True, True, False], [False, False, True]], torch.bool)],
    [None, None, ([True, False, False, True, True], torch.bool)],
    [([True, False, True, True], torch.bool), [2, 0, 1]],     # a mask and an index
    [[]],                                                     # an empty index
    [None, ([False, False, False], torch.bool)],              # a mask selecting nothing
]


# ---- index / __getitem__ ---------------------------------------------------------------------------

@pytest.mark.parametrize("k", range(len(INDEXINGS)))
@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "expanded"])
def test_index(k, dtype, layout):
    e, t = pair((4, 3, 5), dtype, layout)
    el, tl, key = keys(INDEXINGS[k])
    want = torch.ops.aten.index.Tensor(t, tl)
    check(ember.index(e, el), want)
    check(e[tuple(slice(None) if x is None else x for x in el)], t[key])


def test_getitem_mixed_with_slices_ints_and_uint8():
    e, t = pair((6, 5, 4), "float32", "transposed")
    ei, ti = idx([4, -1, 0])
    check(e[1:5, ei], t[1:5, ti])
    check(e[ei, 2, 1:3], t[ti, 2, 1:3])
    ek, tk = idx([3, -1])
    check(e[..., ek], t[..., tk])
    em, tm = idx([1, 0, 1, 1, 0, 1], torch.uint8)
    check(e[em], t[tm.bool()])
    check(e[e > 0], t[t > 0])
    check(e[:, None, ei[:1]], t[:, None, ti[:1]])


# ---- index_put / __setitem__ ---------------------------------------------------------------------

PUTS = [
    ([[3, 0, -3]], (3, 3, 5)),
    ([None, [2, 0], [[4], [1]]], (4, 2, 2)),
    ([[1, 0], None, [4, -1]], (2, 3)),
    ([None, ([True, False, True], torch.bool)], (5,)),        # values broadcast over the result
    ([[]], (0, 3, 5)),
]


@pytest.mark.parametrize("k", range(len(PUTS)))
@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_index_put(k, dtype, layout):
    entries, vshape = PUTS[k]
    e, t = pair((4, 3, 5), dtype, layout)
    v, tv = pair(vshape, dtype, seed=1)
    el, tl, _ = keys(entries)
    check(ember.index_put(e, el, v, False), torch.ops.aten.index_put(t, tl, tv, False))
    e2, t2 = e.clone(), t.clone()
    ember.index_put_(e2, el, v, False)
    torch.ops.aten.index_put_(t2, tl, tv, False)
    check(e2, t2)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "int32", "int8", "float64"])
def test_index_put_accumulate_with_duplicates(dtype):
    e, t = pair((6, 4), dtype, "transposed")
    el, tl, _ = keys([[5, 0, 5, -1, 0, 5, 2]])
    v, tv = pair((7, 4), dtype, seed=1)
    check(ember.index_put(e, el, v, True), torch.ops.aten.index_put(t, tl, tv, True))
    vb, tvb = pair((4,), dtype, seed=2)                        # broadcast values
    e2, t2 = e.clone(), t.clone()
    ember.index_put_(e2, el, vb.expand(7, 4), True)
    torch.ops.aten.index_put_(t2, tl, tvb.expand(7, 4), True)
    check(e2, t2)
    el, tl, _ = keys([None, [[3, 3], [0, -1]]])
    v, tv = pair((6, 2, 2), dtype, seed=3)
    check(ember.index_put(e, el, v, True), torch.ops.aten.index_put(t, tl, tv, True))


def test_setitem_forms():
    e, t = pair((5, 6), "float32")
    em, tm = e > 1, t > 1
    e[em] = 0.5                               # one value under a mask: a masked fill
    t[tm] = 0.5
    check(e, t)
    v, tv = pair((int((t < 0).sum().item()),), "float32", seed=1)
    e[e < 0] = v                              # as many values as the mask selects
    t[t < 0] = tv
    check(e, t)
    ei, ti = idx([4, -2])
    e[:, ei] = ember.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]).cuda()
    t[:, ti] = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]).cuda()
    check(e, t)
    e[ei, 1:3] = -1.0
    t[ti, 1:3] = -1.0
    check(e, t)


# ---- take / put ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_take_put(dtype, layout):
    e, t = pair((3, 4), dtype, layout)
    ei, ti = idx([[0, 11, -1], [5, 5, -12]])
    check(ember.take(e, ei), torch.take(t, ti))
    check(ember.take(e, ei[0, 1]), torch.take(t, ti[0, 1]))
    check(ember.take(e, ei[:0]), torch.take(t, ti[:0]))
    src, tsrc = pair((2, 3), dtype, seed=1)
    eu, tu = idx([[0, 10, -1], [5, 4, 2]])
    base, tbase = e.contiguous(), t.contiguous()
    check(base.put(eu, src), tbase.put(tu, tsrc))
    if dtype != "bool":
        check(base.put(ei, src, True), tbase.put(ti, tsrc, True))
    e2, t2 = base.t(), tbase.t()                      # in place through a transposed view
    e2.put_(eu.reshape(-1), src)
    t2.put_(tu.reshape(-1), tsrc)
    check(base, tbase)


# ---- index_copy / index_fill / index_add ----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_index_copy_fill_add(dtype, layout):
    e, t = pair((4, 5), dtype, layout)
    src, tsrc = pair((4, 3), dtype, seed=1)
    ei, ti = idx([4, 0, 2])
    check(e.index_copy(1, ei, src), t.index_copy(1, ti, tsrc))
    e2, t2 = e.clone(), t.clone()
    e2.index_copy_(1, ei, src)
    t2.index_copy_(1, ti, tsrc)
    check(e2, t2)
    ef, tf = idx([3, -1, 0])
    value = True if dtype == "bool" else 2
    check(e.index_fill(0, ef, value), t.index_fill(0, tf, value))
    ev, tv = pair((), dtype, seed=2)                  # a 0-d CUDA value tensor
    check(e.index_fill(1, ef, ev), t.index_fill(1, tf, tv))
    if dtype != "bool":
        rows, trows = pair((3, 5), dtype, seed=3)
        ea, ta = idx([1, 1, 3])
        check(e.index_add(0, ea, rows, alpha=2), t.index_add(0, ta, trows, alpha=2))
        check(e.index_add(0, ea, rows), t.index_add(0, ta, trows))
    check(e.index_copy(1, ei[:0], src[:, :0]), t.index_copy(1, ti[:0], tsrc[:, :0]))


def test_index_ops_on_0d():
    e, t = pair((), "float32")
    e0, t0 = idx([0])
    v, tv = pair((), "float32", seed=1)
    check(e.index_copy(0, e0, v), t.index_copy(0, t0, tv))
    check(e.index_fill(0, e0, 5.0), t.index_fill(0, t0, 5.0))
    check(e.scatter(0, e0.reshape(()), v), t.scatter(0, t0.reshape(()), tv))
    check(ember.take(e, e0), torch.take(t, t0))


# ---- scatter / scatter_reduce ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_scatter(dtype, layout):
    e, t = pair((3, 5), dtype, layout)
    src, tsrc = pair((3, 4), dtype, seed=1)
    ei, ti = idx([[0, 2, 1, 3], [4, 1, 0, 2], [1, 0, 3, 4]])
    check(e.scatter(1, ei, src), t.scatter(1, ti, tsrc))
    check(e.scatter(1, ei, True if dtype == "bool" else 3), t.scatter(1, ti, True if dtype == "bool" else 3))
    check(e.scatter(1, ei[:, :0], src), t.scatter(1, ti[:, :0], tsrc))
    e2, t2 = e.clone(), t.clone()
    e0, t0 = idx([[0, 2, 1], [2, 1, 0]])                      # along dim 0: unique per column
    e2.scatter_(0, e0, src[1:])
    t2.scatter_(0, t0, tsrc[1:])
    check(e2, t2)
    if dtype != "bool":
        tol = (1e-2, 1e-2) if dtype in ("float16", "bfloat16") else None   # products round in float16
        ed, td = idx([[0, 2, 0, 0], [2, 2, 0, 1], [1, 0, 0, 3]])           # duplicates
        for reduce in ("add", "multiply"):
            check(e.scatter(1, ed, src, reduce=reduce), t.scatter(1, td, tsrc, reduce=reduce), tol)
            check(e.scatter(1, ed, 2, reduce=reduce), t.scatter(1, td, 2, reduce=reduce), tol)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int64", "int32", "int8"])
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(dtype, reduce, include_self):
    e, t = pair((4, 6), dtype, "transposed")
    src, tsrc = pair((5, 6), dtype, seed=1)
    ei, ti = idx([[0, 2, 0, 3, 1, 5], [2, 2, 0, 1, 1, 5], [1, 0, 0, 3, 4, 4], [0, 0, 0, 0, 0, 0]])
    tol = None
    if reduce in ("prod", "mean") and "float" in dtype:   # rounded products and quotients
        tol = {"float32": (1e-6, 1e-6), "float64": (1e-12, 1e-12)}.get(dtype, (1e-2, 1e-2))
    check(e.scatter_reduce(1, ei, src, reduce, include_self=include_self),
          t.scatter_reduce(1, ti, tsrc, reduce, include_self=include_self), tol)
    e2, t2 = e.clone(), t.clone()
    e0, t0 = idx([[0, 2, 0, 3], [2, 2, 0, 1], [1, 0, 0, 3], [0, 0, 0, 0]])
    e2.scatter_reduce_(0, e0, src[:4, :4], reduce, include_self=include_self)
    t2.scatter_reduce_(0, t0, tsrc[:4, :4], reduce, include_self=include_self)
    check(e2, t2, tol)


def test_scatter_reduce_nan_and_contention():
    vals = [1.0, float("nan"), -3.0, 2.0]
    e, t = ember.tensor(vals).cuda(), torch.tensor(vals).cuda()
    ei, ti = idx([0, 0, 1, 1])
    base, tbase = ember.zeros(2).cuda(), torch.zeros(2).cuda()
    for reduce in ("amax", "amin", "sum", "prod"):
        check(base.scatter_reduce(0, ei, e, reduce), tbase.scatter_reduce(0, ti, t, reduce))
    n = 200_000                                # every thread contends for 3 targets
    rng = np.random.default_rng(0)
    vals = rng.uniform(0.999, 1.001, n).astype(np.float32)
    where = rng.integers(0, 3, n)
    ev, tv = ember.tensor(vals).cuda(), torch.tensor(vals).cuda()
    ew, tw = ember.tensor(where).cuda(), torch.tensor(where).cuda()
    b3, tb3 = ember.ones(3).cuda(), torch.ones(3).cuda()
    for reduce in ("amax", "amin"):
        check(b3.scatter_reduce(0, ew, ev, reduce), tb3.scatter_reduce(0, tw, tv, reduce))
    for reduce in ("prod", "sum", "mean"):
        check(b3.scatter_reduce(0, ew, ev, reduce), tb3.scatter_reduce(0, tw, tv, reduce), (1e-3, 1e-3))


# ---- nonzero / argwhere / masked_select / masked_scatter ------------------------------------------

@pytest.mark.parametrize("dtype", DTS + ["int8"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_nonzero(dtype, layout):
    e, t = pair((4, 6, 5), dtype, layout)
    check(ember.nonzero(e), torch.nonzero(t))
    check(ember.argwhere(e), torch.argwhere(t))
    check(ember.nonzero(e[0, 0]), torch.nonzero(t[0, 0]))
    ez, tz = ember.zeros(3, 4).cuda(), torch.zeros(3, 4).cuda()
    check(ember.nonzero(ez), torch.nonzero(tz))
    check(ember.nonzero(e[:, :0]), torch.nonzero(t[:, :0]))
    for v in (0.0, 2.5):
        check(ember.nonzero(ember.tensor(v).cuda()), torch.nonzero(torch.tensor(v).cuda()))
    for a, b in zip(ember.nonzero(e, as_tuple=True), torch.nonzero(t, as_tuple=True)):
        check(a, b)


def test_nonzero_large_multilevel_scan():
    rng = np.random.default_rng(1)
    a = rng.random(3_000_017) < 0.3            # ~2930 blocks of 1024: a three-level scan
    e, t = ember.tensor(a).cuda(), torch.tensor(a).cuda()
    check(ember.nonzero(e), torch.nonzero(t))
    x, tx = ember.tensor(np.arange(a.size, dtype=np.float32)).cuda(), torch.arange(a.size, dtype=torch.float32).cuda()
    check(x.masked_select(e), tx.masked_select(t))


@pytest.mark.parametrize("dtype", DTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_select_scatter(dtype, layout):
    e, t = pair((4, 6), dtype, layout)
    m, tm = pair((6,), "bool", seed=1)                # broadcast over rows
    check(e.masked_select(m), t.masked_select(tm))
    m2, tm2 = pair((3, 4, 6), "bool", seed=2)         # self broadcast over the mask
    check(e.masked_select(m2), t.masked_select(tm2))
    src, tsrc = pair((5, 6), dtype, seed=3)
    check(e.masked_scatter(m, src), t.masked_scatter(tm, tsrc))
    check(e.masked_scatter(m2, src.repeat(3, 1)), t.masked_scatter(tm2, tsrc.repeat(3, 1)))
    e2, t2 = e.contiguous().t(), t.contiguous().t()
    mt, tmt = pair((6, 4), "bool", seed=4)
    e2.masked_scatter_(mt, src.t())
    t2.masked_scatter_(tmt, tsrc.t())
    check(e2, t2)
    check(e.masked_select(ember.zeros(6, dtype=ember.bool).cuda()), t.masked_select(torch.zeros(6).bool().cuda()))


# ---- gradients --------------------------------------------------------------------------------------

GTOL = {"float32": (1e-6, 1e-6), "float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1e-2)}


def leaves(shape, dtype, layout="contiguous", seed=0):
    e, t = pair(shape, dtype, layout, seed)
    return e.detach().requires_grad_(), t.detach().requires_grad_()


def backward_both(ye, yt, dtype, seed=9):
    g, tg = pair(tuple(yt.shape), dtype, seed=seed)
    ye.backward(g)
    yt.backward(tg)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_gradients_index_and_index_put(dtype):
    tol = GTOL[dtype]
    e, t = leaves((4, 3, 5), dtype, "transposed")
    ei, ti = idx([1, 0, -1, 1, 3])                   # repeats: the backward accumulates
    ej, tj = idx([[2], [0]])
    ye, yt = e[ei, :, ej], t[ti, :, tj]
    backward_both(ye, yt, dtype)
    check(ye, yt)
    check(e.grad, t.grad, tol)
    e, t = leaves((4, 3, 5), dtype)
    m, tm = pair((4, 3), "bool", seed=5)
    ye, yt = e[m], t[tm]
    backward_both(ye, yt, dtype)
    check(e.grad, t.grad, tol)
    for acc in (False, True):
        e, t = leaves((4, 3, 5), dtype)
        v, tv = leaves((3, 3, 5), dtype, seed=1)
        el, tl, _ = keys([[3, 0, 2] if not acc else [3, 0, 3]])
        ye, yt = ember.index_put(e, el, v, acc), torch.ops.aten.index_put(t, tl, tv, acc)
        backward_both(ye, yt, dtype)
        check(ye, yt, tol)
        check(e.grad, t.grad, tol)
        check(v.grad, tv.grad, tol)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_gradients_masked_select_scatter_take_index_copy(dtype):
    tol = GTOL[dtype]
    e, t = leaves((4, 6), dtype, "transposed")
    m, tm = pair((6,), "bool", seed=1)
    ye, yt = e.masked_select(m), t.masked_select(tm)
    backward_both(ye, yt, dtype)
    check(e.grad, t.grad, tol)

    e, t = leaves((3, 5), dtype)
    s, ts = leaves((3, 4), dtype, seed=1)
    ei, ti = idx([[0, 2, 1, 3], [4, 1, 0, 2], [1, 0, 3, 4]])
    ye, yt = e.scatter(1, ei, s), t.scatter(1, ti, ts)
    backward_both(ye, yt, dtype)
    check(e.grad, t.grad, tol)
    check(s.grad, ts.grad, tol)

    e, t = leaves((3, 4), dtype, "transposed")
    ek, tk = idx([[0, 11, -1], [5, 5, 0]])
    ye, yt = ember.take(e, ek), torch.take(t, tk)
    backward_both(ye, yt, dtype)
    check(e.grad, t.grad, tol)

    e, t = leaves((4, 5), dtype)
    s, ts = leaves((4, 3), dtype, seed=2)
    ec, tc = idx([4, 0, 2])
    ye, yt = e.index_copy(1, ec, s), t.index_copy(1, tc, ts)
    backward_both(ye, yt, dtype)
    check(e.grad, t.grad, tol)
    check(s.grad, ts.grad, tol)


# ---- no host synchronisation / copies ---------------------------------------------------------

def test_device_side_in_a_cuda_graph():
    """Every op here runs inside a capture, where a host<->device copy or a sync would fail."""
    x = ember.arange(24.0, device="cuda").reshape(4, 6)
    i = ember.tensor([3, 0, -1, 3]).cuda()
    k = ember.tensor([3, 0, 5, 3]).cuda()     # index_copy/index_add take no negative index
    j = ember.tensor([[1], [2]]).cuda()
    s = ember.tensor([[0, 2, 4], [1, 0, 3]]).cuda()
    src = ember.arange(6.0, device="cuda").reshape(2, 3) - 2.5
    m = x > 11
    v = ember.ones(4, 6, device="cuda") * 0.5

    def work():
        return [ember.index(x, [i]), ember.index(x, [j, i]), ember.index_put(x, [None, i], v[:, :4], True),
                ember.index_put(x, [j, i], src[:1, :1], False), ember.index_put(x, [m], src[0, 0], False),
                ember.take(x, s), x.put(s, src, True), x.index_copy(1, k[1:], x[:, :3]),
                x.index_fill(0, i, -1.0), x.index_add(1, k, v[:, :4], alpha=3.0),
                x.scatter(1, s, src), x.scatter(1, s, 7.0, reduce="multiply"),
                x.scatter_reduce(1, s, src, "mean", include_self=False), x.scatter_reduce(1, s, src, "amax"),
                x.scatter_reduce(1, s, src, "prod"), x.masked_scatter(m, v * 3), x.gather(1, s),
                x.to(ember.bfloat16).index_put([i], v.to(ember.bfloat16), True)]
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


# ---- device-side index checks (checks.py) ---------------------------------------------------------

F = ember.nn.functional
DEV = ember.cuda.current_device()     # the key of this device's error word in checks.py


def _cuda(v, dtype=ember.int64):
    return ember.tensor(v, dtype=dtype).cuda()


def _message(op, k, n, what="a dimension of size {}"):
    return (rf"CUDA error: index out of range in {op}: got index {k} for {what.format(n)} \(found on the device; "
            r"reported at the next synchronization")


def test_embedding_out_of_range_raises_at_the_next_sync_and_the_device_stays_usable():
    w = ember.arange(30.0).reshape(10, 3)
    tw = torch.arange(30.0).reshape(10, 3).cuda()
    out = F.embedding(_cuda([0, 10]), w.cuda())       # no error at the launch: the kernel records it
    assert DEV in checks._pending
    with pytest.raises(RuntimeError, match=_message("embedding", 10, 10)):
        out.cpu()
    assert not checks._pending
    F.embedding(_cuda([[3, -1]], ember.int32), w.cuda())
    with pytest.raises(RuntimeError, match=_message("embedding", -1, 10)):
        ember.cuda.synchronize()
    # the word is zeroed again and the context is not poisoned: later work runs and reports nothing
    check(F.embedding(_cuda([9, 0, 9]), w.cuda()), torch.nn.functional.embedding(torch.tensor([9, 0, 9]).cuda(), tw))
    check(ember.arange(5.0, device="cuda") * 2, torch.arange(5.0).cuda() * 2)
    ember.cuda.synchronize()


def test_no_read_when_nothing_checked_ran():
    ember.cuda.synchronize()
    assert not checks._pending
    x = ember.arange(6.0, device="cuda").reshape(2, 3)
    y = (x * 2).flip([1]).sum(0)
    assert not checks._pending                         # no checked kernel: the sync reads nothing
    assert y.tolist() == [14.0, 10.0, 6.0]
    x.gather(1, _cuda([[2, 0], [1, 1]]))
    assert DEV in checks._pending                      # a checked kernel asks for one read ...
    ember.cuda.synchronize()
    assert not checks._pending                         # ... done at the next synchronisation


def test_stream_and_event_synchronize_report():
    w = ember.ones(4, 2, device="cuda")
    s = ember.cuda.Stream()
    with ember.cuda.stream(s):
        w.index_select(0, _cuda([1, 4]))
    with pytest.raises(RuntimeError, match=_message("index_select", 4, 4)):
        s.synchronize()
    e = ember.cuda.Event()
    ember.take(w, _cuda([-9]))
    e.record()
    with pytest.raises(RuntimeError, match=_message("take", -9, 8, "a tensor of {} elements")):
        e.synchronize()
    w.index_select(0, _cuda([3, 0]))
    s.synchronize()
    e.record()
    e.synchronize()


X4 = [[0.0, 1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0, 9.0], [1.5, 2.5, 3.5, 4.5, 5.5], [9.0, 8.0, 7.0, 6.0, 5.0]]
BAD = [   # (op name, call with a bad index k, size, too-large and too-negative values)
    ("gather", lambda x, k: x.gather(1, _cuda([[0, k]])), 5, (5, -1)),
    ("index_select", lambda x, k: x.index_select(0, _cuda([0, k])), 4, (4, -1)),
    ("take", lambda x, k: ember.take(x, _cuda([k])), 20, (20, -21)),
    ("index", lambda x, k: x[_cuda([0, k])], 4, (4, -5)),
    ("index", lambda x, k: x[_cuda([0, 1]), _cuda([1, k])], 5, (5, -6)),
    ("index_put_", lambda x, k: x.clone().index_put_([_cuda([k])], _cuda(1.0, ember.float32)), 4, (4, -5)),
    ("index_put", lambda x, k: ember.index_put(x, [_cuda([k]), _cuda([1])], _cuda(1.0, ember.float32), True),
     4, (6, -5)),
    ("scatter", lambda x, k: x.scatter(1, _cuda([[k]]), 2.0), 5, (5, -1)),
    ("scatter_add", lambda x, k: x.scatter_add(1, _cuda([[1, k]]), x), 5, (5, -1)),
    ("scatter_reduce", lambda x, k: x.scatter_reduce(1, _cuda([[k]]), x, "amax"), 5, (5, -1)),
    ("index_add", lambda x, k: x.index_add(0, _cuda([k]), x[:1]), 4, (4, -1)),
    ("index_copy", lambda x, k: x.index_copy(0, _cuda([k]), x[:1]), 4, (4, -1)),
    ("index_fill", lambda x, k: x.index_fill(1, _cuda([k]), 0.5), 5, (5, -6)),
    ("put", lambda x, k: x.put(_cuda([k]), x[0, :1]), 20, (20, -21)),
]


@pytest.mark.parametrize("case", range(len(BAD)), ids=[f"{b[0]}-{n}" for n, b in enumerate(BAD)])
def test_out_of_range_index_raises_at_the_next_sync(case):
    op, call, n, ks = BAD[case]
    x = ember.tensor(X4).cuda()
    what = "a tensor of {} elements" if op in ("take", "put") else "a dimension of size {}"
    for k in ks:
        call(x, k)
        with pytest.raises(RuntimeError, match=_message(op, k, n, what)):
            ember.cuda.synchronize()
    assert not checks._pending
    assert checks.err_tensor(DEV).cpu().tolist() == [0, 0, 0, 0]       # reset on the device
    call(x, 0).cpu()                                                    # a valid call afterwards reports nothing


def test_out_of_range_write_touches_no_neighbour():
    base = ember.zeros(8, device="cuda")
    view = base[2:5]
    view.index_put_([_cuda([0, 3, -4, 2])], _cuda([1.0, 2.0, 3.0, 4.0], ember.float32))
    view.put_(_cuda([7]), _cuda([9.0], ember.float32), accumulate=True)
    with pytest.raises(RuntimeError, match=_message("index_put_", "(3|-4)", 3)):   # either offending lane
        base.tolist()
    assert base.tolist() == [0.0, 0.0, 1.0, 0.0, 4.0, 0.0, 0.0, 0.0]


def test_embedding_in_a_cuda_graph_replays_and_reports_at_replay():
    w = ember.arange(30.0, device="cuda").reshape(10, 3)
    ids = _cuda([1, 9, 0])
    F.embedding(ids, w)                       # compiled before the capture
    ember.cuda.synchronize()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        out = F.embedding(ids, w)
    assert g._checked
    g.replay()
    assert DEV in checks._pending
    assert out.tolist() == [[3.0, 4.0, 5.0], [27.0, 28.0, 29.0], [0.0, 1.0, 2.0]]
    ids.copy_(_cuda([2, 10, 0]))              # the same graph, now with an index out of range
    g.replay()
    with pytest.raises(RuntimeError, match=_message("embedding", 10, 10)):
        ember.cuda.synchronize()
    ids.copy_(_cuda([2, 3, 0]))
    g.replay()
    assert out.tolist() == [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0], [0.0, 1.0, 2.0]]
    g.reset()
