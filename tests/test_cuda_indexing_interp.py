"""The CUDA indexing kernels (`backends/cuda/indexing.py`) run on CPU tensors through Triton's
interpreter (`TRITON_INTERPRET=1`), compared with ember's CPU backend. The launch block is shrunk
to 32 (4 in one test) so that small inputs span several blocks (and the scan recurses). Index checks
on the device write the CPU error word of `checks.py`, read here by `checks.raise_pending()` (after
every test too: a valid call must report nothing). On a machine with a GPU these tests are left to
`tests/test_cuda_indexing.py`."""
import os

import numpy as np
import pytest

import ember

if ember.cuda.is_available():
    pytest.skip("a GPU is present: the compiled kernels are tested by tests/test_cuda_indexing.py",
                allow_module_level=True)
triton = pytest.importorskip("triton")
os.environ["TRITON_INTERPRET"] = "1"

from helpers import make_pair  # noqa: E402

from ember.backends.cuda import checks  # noqa: E402
from ember.backends.cuda import indexing as IX  # noqa: E402

T = ember.tensor
TOL = {"float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1e-2), "float32": (2e-6, 1e-6), "float64": (1e-12, 1e-12)}


@pytest.fixture(autouse=True)
def small_block(monkeypatch):
    monkeypatch.setattr(IX, "BLOCK", 32)
    yield
    checks.raise_pending()      # nothing out of range was left unreported


def same(got, expected):
    assert got.dtype is expected.dtype, (got.dtype, expected.dtype)
    assert tuple(got.shape) == tuple(expected.shape), (got.shape, expected.shape)
    if got.dtype.is_floating_point:
        r, a = TOL[got.dtype.name]
        np.testing.assert_allclose(got.double().numpy(), expected.double().numpy(), rtol=r, atol=a, equal_nan=True)
    else:
        assert got.tolist() == expected.tolist()


def data(shape, dtype="float32", layout="contiguous", seed=0, low=-3.0, high=3.0):
    return make_pair(shape, dtype, layout=layout, seed=seed, low=low, high=high)[0]


def sparse(shape, dtype, layout, seed=0):
    """Random data with zeros in it, laid out as make_pair's `layout` (transposed or sliced)."""
    base = list(shape[:-2]) + [shape[-1], shape[-2]] if layout == "transposed" else list(shape)
    if layout == "sliced":
        base[-1] *= 2
    x = data(tuple(base), dtype, seed=seed)
    x = x * data(tuple(base), "bool", seed=seed + 1).to(x.dtype)
    return x.transpose(-1, -2) if layout == "transposed" else (x[..., ::2] if layout == "sliced" else x)


# ---- index (advanced __getitem__) ------------------------------------------------------------------

I0 = T([1, 0, -1, 1])
CASES = [
    [I0],                                   # one index, first dim
    [None, T([2, -3, 1])],                  # one index after a full dim
    [T([[0], [1]]), T([1, 2, 0])],          # two broadcast indices, adjacent
    [T([1, 0]), None, T([3, -1])],          # separated by a full dim: batch dims go first
    [None, T([0, 2], dtype=ember.int32), T([[1], [3]])],
    [T([[True, False, True], [False, True, True]])],           # a mask over two dims
    [None, None, T([True, False, False, True])],               # a mask over the last dim
    [T([1, 0, 1], dtype=ember.uint8)],                         # a uint8 mask (only 2 rows: dim 0 is 2)
    [T([True, False]), T([2, 0])],                             # a mask and an index
    [T([], dtype=ember.int64)],                                # an empty index
    [None, T([False, False, False])],                          # a mask selecting nothing
]


@pytest.mark.parametrize("k", range(len(CASES)))
@pytest.mark.parametrize("dtype,layout", [("float32", "transposed"), ("bool", "sliced")])
def test_index_matches_cpu(k, dtype, layout):
    x = data((2, 3, 4), dtype, layout)
    idx = CASES[k]
    if k == 7:
        x = data((3, 3, 4), dtype, layout)
    same(IX.index(x, idx), ember.index(x, idx))


def test_index_full_mask_all_none_and_errors():
    x = data((3, 5), "float16", "transposed")
    m = x > 0
    same(IX.index(x, [m]), x[m])
    same(IX.index(x, [None]), ember.index(x, [None]))
    # argument errors are the meta's (tests/samples/indexing.py); this one only CUDA's host code raises
    with pytest.raises(IndexError, match="out of bounds for dimension 1 with size 0"):
        IX.index(ember.zeros(2, 0), [None, T([0])])


# ---- index_put -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "int8", "bfloat16", "bool"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_matches_cpu(dtype, accumulate):
    x = data((4, 3, 5), dtype, "transposed")
    dup = T([3, 0, 3, -1]) if accumulate else T([3, 0, -2])
    for idx, vshape in (([dup], (dup.shape[0], 3, 5)), ([None, T([2, 0]), T([[4], [1]])], (4, 2, 2)),
                        ([T([1, 0]), None, T([4, -1])], (2, 3)), ([None, T([True, False, True])], (5,))):
        v = data(vshape, dtype, seed=1)
        same(IX.index_put(x, idx, v, accumulate), ember.index_put(x, idx, v, accumulate))
    t = x.clone()
    assert IX.index_put_(t, idx, v, accumulate) is t
    same(t, ember.index_put(x, idx, v, accumulate))


def test_index_put_masks_strided_self_and_errors():
    base = data((4, 6), "float32")
    x = base[:, ::2]                         # in place through a strided view
    m = x > 0
    IX.index_put_(x, [m], T(7.0), False)     # one value under a mask: a masked fill
    ref = base.clone()
    ref[:, ::2] = ember.index_put(base[:, ::2], [m], T(7.0), False)
    same(base, ref)
    y = data((4, 3), "float32", seed=2)
    v = data((int(m.sum().item()),), "float32", seed=3)
    same(IX.index_put(y, [m], v, False), ember.index_put(y, [m], v, False))
    same(IX.index_put(y, [m], v, True), ember.index_put(y, [m], v, True))
    same(IX.index_put(y, [None], T(1.5), True), ember.index_put(y, [None], T(1.5), True))
    with pytest.raises(RuntimeError, match="shape mismatch: value tensor of shape"):   # a mask's count (data)
        IX.index_put(y, [m], ember.ones(int(m.sum().item()) + 1), False)


# ---- take / put ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "int8", "bool"])
def test_take_put_match_cpu(dtype):
    x = data((3, 4), dtype, "transposed")
    idx = T([[0, 11, -1], [5, 5, 2]])
    same(IX.take(x, idx), x.take(idx))
    same(IX.take(x, T(3)), x.take(T(3)))
    src = data((2, 3), dtype, seed=1)
    for acc in (False, True):
        i = T([[0, 10, -1], [5, 4, 2]]) if not acc else idx
        same(IX.put(x, i, src, acc), x.put(i, src, acc))
        t = x.clone()
        IX.put_(t, i.reshape(-1), src, acc)   # index and source shapes differ: both read flat
        same(t, x.put(i.reshape(-1), src, acc))


# ---- index_copy / index_fill / index_add ----------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "int64", "bool", "bfloat16"])
def test_index_copy_fill_match_cpu(dtype):
    x = data((4, 5), dtype, "transposed")
    src = data((4, 3), dtype, seed=1)
    idx = T([4, 0, 2])
    same(IX.index_copy(x, 1, idx, src), x.index_copy(1, idx, src))
    t = x.clone()
    IX.index_copy_(t, 1, idx, src)
    same(t, x.index_copy(1, idx, src))
    for value in (1, T(0, dtype=x.dtype), T(2.5)):
        same(IX.index_fill(x, 0, T([3, -1, 0]), value), x.index_fill(0, T([3, -1, 0]), value))
    t = x.clone()
    IX.index_fill_(t, -1, T(2), 0)
    same(t, x.index_fill(-1, T(2), 0))
    s0 = T(3.0).to(x.dtype)
    same(IX.index_copy(s0, 0, T([0]), T(1.0).to(x.dtype)), s0.index_copy(0, T([0]), T(1.0).to(x.dtype)))


@pytest.mark.parametrize("dtype", ["bfloat16", "int16", "float16", "float32"])
def test_index_add_scatter_add_widened_types(dtype):
    x = data((5, 3), dtype)
    src = data((4, 3), dtype, seed=1)
    idx = T([1, 4, 1, 1])
    same(IX.index_add(x, 0, idx, src, alpha=2), x.index_add(0, idx, src, alpha=2))
    sidx = T([[0, 1, 4], [0, 0, 4]])
    same(IX.scatter_add(x, 0, sidx, src), x.scatter_add(0, sidx, src))


# ---- scatter / scatter_reduce ---------------------------------------------------------------------

SIDX = T([[0, 2, 0, 1], [2, 2, 0, 0], [1, 0, 0, 3]])


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
@pytest.mark.parametrize("reduce", [None, "add", "multiply"])
def test_scatter_matches_cpu(dtype, reduce):
    x = data((3, 5), dtype, "transposed")
    src = data((3, 4), dtype, seed=1, low=-2, high=2) if dtype != "bool" else data((3, 4), dtype, seed=1)
    idx = SIDX if reduce else T([[0, 2, 1, 3], [4, 1, 0, 2], [1, 0, 3, 4]])
    same(IX.scatter(x, 1, idx, src, reduce=reduce), x.scatter(1, idx, src, reduce=reduce))
    same(IX.scatter(x, 1, idx, value=1, reduce=reduce), x.scatter(1, idx, value=1, reduce=reduce))
    t = x.clone()
    IX.scatter_(t, 1, idx, src, reduce=reduce)
    same(t, x.scatter(1, idx, src, reduce=reduce))


@pytest.mark.parametrize("dtype,include_self", [("float32", True), ("float32", False), ("int64", False),
                                                ("float16", True), ("float64", False)])
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce_matches_cpu(dtype, reduce, include_self):
    x = data((3, 5), dtype, "transposed", seed=2)
    src = data((3, 4), dtype, seed=3)
    same(IX.scatter_reduce(x, 1, SIDX, src, reduce, include_self=include_self),
         x.scatter_reduce(1, SIDX, src, reduce, include_self=include_self))
    t = x.clone()
    IX.scatter_reduce_(t, 0, SIDX[:2].remainder(3), src[:2], reduce, include_self=include_self)
    same(t, x.scatter_reduce(0, SIDX[:2].remainder(3), src[:2], reduce, include_self=include_self))


def test_scatter_many_duplicates_and_nan():
    x = ember.ones(2, dtype=ember.float32)
    src = ember.full((40,), 1.0625)
    idx = T([0, 1] * 20)
    same(IX.scatter_reduce(x, 0, idx, src, "prod"), x.scatter_reduce(0, idx, src, "prod"))
    srcn = T([1.0, float("nan"), -3.0, 2.0])
    idn = T([0, 0, 1, 1])
    for r in ("amax", "amin"):
        same(IX.scatter_reduce(x, 0, idn, srcn, r), x.scatter_reduce(0, idn, srcn, r))
    same(IX.scatter(x, 0, T([], dtype=ember.int64), value=3.0), x)


# ---- nonzero / masked_select / masked_scatter ----------------------------------------------------

@pytest.mark.parametrize("shape,dtype,layout", [((300,), "bool", "contiguous"), ((5, 7, 3), "float16", "transposed"),
                                                ((4, 9), "int32", "sliced"), ((3, 0), "bool", "contiguous"),
                                                ((2, 1, 3, 1, 2, 2), "bool", "expanded")])
def test_nonzero_matches_cpu(shape, dtype, layout):
    x = data(shape, dtype, layout) if dtype == "bool" else sparse(shape, dtype, layout)
    assert tuple(x.shape) == shape
    same(IX.nonzero(x), ember.nonzero(x))
    same(IX.nonzero(x), ember.argwhere(x))


def test_scan_recurses_over_levels(monkeypatch):
    monkeypatch.setattr(IX, "BLOCK", 4)
    m = data((150,), "bool", seed=5)   # 38 blocks of 4: three scan levels
    same(IX.nonzero(m), ember.nonzero(m))
    for v in (0, 2.0):
        same(IX.nonzero(T(v)), ember.nonzero(T(v)))


@pytest.mark.parametrize("dtype", ["float32", "int64", "bfloat16", "bool"])
def test_masked_select_scatter_match_cpu(dtype):
    x = data((4, 6), dtype, "transposed")
    m = data((6,), "bool", seed=1)             # broadcast over rows
    same(IX.masked_select(x, m), x.masked_select(m))
    same(IX.masked_select(x[0], data((4, 6), "bool", seed=2)), x[0].masked_select(data((4, 6), "bool", seed=2)))
    src = data((5, 6), dtype, seed=3)
    same(IX.masked_scatter(x, m, src), x.masked_scatter(m, src))
    t = x.clone()
    IX.masked_scatter_(t, m, src.transpose(0, 1))
    same(t, x.masked_scatter(m, src.transpose(0, 1)))
    same(IX.masked_scatter(x[0], data((3, 6), "bool", seed=4), src), x[0].masked_scatter(data((3, 6), "bool", seed=4),
                                                                                          src))
    flat = data((60,), dtype, seed=5)[::2]      # a strided 1-d source: reshape(-1) keeps it a view
    same(IX.masked_scatter(x, m, flat), x.masked_scatter(m, flat))


# ---- device-side index checks (checks.py) ----------------------------------------------------------

X = ember.arange(20.0).reshape(4, 5)
ONES = ember.ones(4, 5)


def _bad(k):
    return T([[0, k]]), T([0, k])


# (op name, call with a bad index k, size of the indexed dim, too-large and too-negative values)
BAD = [
    ("gather", lambda k: IX.gather(X, 1, _bad(k)[0]), 5, (5, -1)),
    ("index_select", lambda k: IX.index_select(X, 0, _bad(k)[1]), 4, (4, -1)),
    ("embedding", lambda k: IX.embedding(X, T([[1, k]])), 4, (4, -1)),
    ("take", lambda k: IX.take(X, _bad(k)[1]), 20, (20, -21)),
    ("index", lambda k: IX.index(X, [_bad(k)[1]]), 4, (4, -5)),
    ("index", lambda k: IX.index(X, [T([1, 2]), _bad(k)[1]]), 5, (5, -6)),          # linearised
    ("index_put", lambda k: IX.index_put(X, [_bad(k)[1]], T(1.0), False), 4, (7, -5)),
    ("index_put_", lambda k: IX.index_put_(X.clone(), [T([1, 2]), _bad(k)[1]], T(1.0), True), 5, (5, -6)),
    ("scatter", lambda k: IX.scatter(X, 1, _bad(k)[0], X), 5, (5, -1)),
    ("scatter", lambda k: IX.scatter(X, 1, _bad(k)[0], value=2.0, reduce="multiply"), 5, (9, -1)),
    ("scatter_add_", lambda k: IX.scatter_add_(X.clone(), 1, _bad(k)[0], X), 5, (5, -1)),
    ("scatter_reduce", lambda k: IX.scatter_reduce(X, 1, _bad(k)[0], X, "mean", include_self=False), 5, (5, -1)),
    ("index_add", lambda k: IX.index_add(X, 0, _bad(k)[1], ONES[:2]), 4, (4, -1)),
    ("index_copy", lambda k: IX.index_copy(X, 0, _bad(k)[1], ONES[:2]), 4, (4, -1)),
    ("index_fill", lambda k: IX.index_fill(X, 1, _bad(k)[1], 0.5), 5, (5, -6)),
    ("put_", lambda k: IX.put_(X.clone(), _bad(k)[1], T([1.0, 2.0]), True), 20, (20, -21)),
]


def _message(op, k, n):
    what = f"a tensor of {n} elements" if op in ("take", "put_") else f"a dimension of size {n}"
    return rf"CUDA error: index out of range in {op}: got index {k} for {what} \(found on the device"


@pytest.mark.parametrize("case", range(len(BAD)))
def test_out_of_range_index_is_reported_at_the_next_check(case):
    op, call, n, ks = BAD[case]
    for k in ks:
        call(k)                                   # no error at the launch: the kernel only records it
        with pytest.raises(RuntimeError, match=_message(op, k, n)):
            checks.raise_pending()
        assert checks._words["cpu"].tolist() == [0, 0, 0, 0] and not checks._pending   # reset
    call(0)                                       # a valid call afterwards reports nothing
    checks.raise_pending()


def test_valid_negative_indices_still_match_cpu_and_the_first_error_wins():
    i = T([-4, 3, -1])
    same(IX.take(X, T([-20, 19])), X.take(T([-20, 19])))
    same(IX.index(X, [i]), ember.index(X, [i]))
    same(IX.index(X, [i, T([-5, 0, 4])]), ember.index(X, [i, T([-5, 0, 4])]))
    same(IX.index_fill(X, 1, T([-5, 2]), 0.5), X.index_fill(1, T([-5, 2]), 0.5))
    same(IX.index_put(X, [i], T(2.0), True), ember.index_put(X, [i], T(2.0), True))
    checks.raise_pending()
    IX.gather(X, 0, T([[9]]))                     # the first failing op is reported, not the later ones
    IX.take(X, T([-30]))
    with pytest.raises(RuntimeError, match="in gather: got index 9 for a dimension of size 4"):
        checks.raise_pending()
    checks.raise_pending()


def test_an_index_out_of_range_never_touches_memory():
    base = ember.zeros(6)
    view = base[1:4]                              # its neighbours in the storage stay untouched
    IX.index_put_(view, [T([0, 3, -4, 2])], T([1.0, 2.0, 3.0, 4.0]), False)
    IX.put_(view, T([5]), T([9.0]), True)
    IX.scatter_(view, 0, T([-1, 7]), T([5.0, 6.0]))
    with pytest.raises(RuntimeError, match=r"in index_put_: got index (3|-4) for a dimension of size 3"):
        checks.raise_pending()
    assert base.tolist() == [0.0, 1.0, 0.0, 4.0, 0.0, 0.0]
    assert IX.gather(view, 0, T([1, 3, -1])).tolist() == [0.0, 0.0, 0.0]   # out of range reads give 0
    with pytest.raises(RuntimeError, match=r"in gather: got index (3|-1) for a dimension of size 3"):
        checks.raise_pending()
