"""CUDA sorting and selection (`backends/cuda/sort.py`) against torch CUDA (`pytest -m cuda`): sort,
argsort, topk, kthvalue and unique over float32/float16/bfloat16/float64/int32/int64/uint8/bool;
ties (indices compared with torch's stable sort, which keeps equal elements in input order as
ember's sort always does), NaN, descending, strided inputs, non-last dims, empty and 0-d tensors,
rows up to one tile (4096) and past it (the merge path), and gradients through the values."""
from math import prod

import numpy as np
import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

torch = pytest.importorskip("torch")
from helpers import DTYPES, E2T, from_torch, to_torch  # noqa: E402

import ember.backends.cuda.sort  # noqa: E402,F401  (registers the kernels)

NAN = float("nan")
ALL = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool"]
SIZES = [1, 5, 33, 1000]
LONG = [4096, 5000, 20000]          # one program a row; 5 and 20 runs of 1024, merged in 3 and 5 passes
LONG_DTYPES = ["float32", "bfloat16", "int64", "bool"]


def tied(shape, dtype, seed=0):
    """Small integers (many ties) as a torch CPU tensor of `dtype`."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return torch.from_numpy(rng.random(shape) > 0.5)
    a = rng.integers(0 if dtype == "uint8" else -3, 4, size=shape)
    return torch.from_numpy(a).to(DTYPES[dtype][1])


def distinct(shape, dtype, seed=0):
    """All-different values (no ties) as a torch CPU tensor of `dtype`."""
    rng = np.random.default_rng(seed)
    n = prod(shape)
    if dtype in ("float16", "bfloat16"):      # distinct finite nonzero bit patterns of either sign
        top = 0x7C00 if dtype == "float16" else 0x7F80
        bits = rng.choice(np.arange(1, top), size=n, replace=False)
        bits = np.where(rng.random(n) < 0.5, bits, bits | 0x8000).astype(np.uint16).view(np.int16)
        return torch.from_numpy(bits.reshape(shape)).view(DTYPES[dtype][1])
    v = rng.permutation(n) - n // 2
    if dtype in ("float32", "float64"):
        return torch.from_numpy(v.reshape(shape) * 0.5 + 0.25).to(DTYPES[dtype][1])
    return torch.from_numpy(v.reshape(shape)).to(DTYPES[dtype][1])


def gpu(t):
    """(ember CUDA tensor, torch CUDA tensor) holding the torch CPU tensor t."""
    return from_torch(t).cuda(), t.cuda()


def view(e, t, layout):
    """The same view of both: 'transposed' (last two dims swapped), 'sliced' (every other element of
    the last dim) or 'contiguous'."""
    if layout == "transposed":
        return e.transpose(-1, -2), t.transpose(-1, -2)
    if layout == "sliced":
        return e[..., ::2], t[..., ::2]
    return e, t


def check(e, t):
    """Same device kind, shape, dtype and exactly the same values (NaN equal to NaN)."""
    assert isinstance(e, ember.Tensor) and e.device.type == "cuda"
    assert tuple(e.shape) == tuple(t.shape), (tuple(e.shape), tuple(t.shape))
    assert E2T[e.dtype] == t.dtype, (e.dtype, t.dtype)
    torch.testing.assert_close(to_torch(e.cpu()), t.cpu(), rtol=0, atol=0, equal_nan=True)


def check_selected(e, t, x_e, dim):
    """topk/kthvalue results where ties may pick other indices: values equal torch's, and the
    indices hold those values in x."""
    check(e.values, t.values)
    assert e.indices.dtype is ember.int64 and tuple(e.indices.shape) == tuple(t.indices.shape)
    got = ember.gather(x_e, dim, e.indices if e.indices.ndim == x_e.ndim else e.indices.unsqueeze(dim))
    check(got if e.indices.ndim == x_e.ndim else got.squeeze(dim), t.values)


# ---- sort / argsort ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_ties_stable(dtype, n, descending):
    e, t = gpu(tied((6, n), dtype, seed=n))
    ev, ei = ember.sort(e, -1, descending, stable=True)
    tv, ti = torch.sort(t, dim=-1, descending=descending, stable=True)
    check(ev, tv)
    check(ei, ti)
    check(ember.argsort(e, 0, descending, stable=True), torch.argsort(t, dim=0, descending=descending, stable=True))


@pytest.mark.parametrize("dtype", LONG_DTYPES)
@pytest.mark.parametrize("n", LONG)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_long_rows(dtype, n, descending):
    e, t = gpu(tied((3, n), dtype, seed=n))
    for dim, (ee, tt) in ((1, (e, t)), (0, (e.t(), t.t()))):     # rows contiguous, then rows strided
        ev, ei = ember.sort(ee, dim, descending)
        tv, ti = torch.sort(tt, dim=dim, descending=descending, stable=True)
        check(ev, tv)
        check(ei, ti)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("n", [7, 300, 5000])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_nan_first_or_last(dtype, n, descending):
    x = distinct((4, n), dtype, seed=1)
    rng = np.random.default_rng(2)
    x[torch.from_numpy(rng.random((4, n)) < 0.2)] = NAN
    x[0, 0], x[1, -1] = float("inf"), float("-inf")
    e, t = gpu(x)
    ev, ei = ember.sort(e, 1, descending)
    tv, ti = torch.sort(t, dim=1, descending=descending, stable=True)
    check(ev, tv)                                   # NaNs last ascending, first descending
    ok = ~torch.isnan(tv.cpu())
    np.testing.assert_array_equal(to_torch(ei.cpu())[ok].numpy(), ti.cpu()[ok].numpy())
    for r in range(4):                              # the NaNs: the same positions, whatever their order
        assert sorted(to_torch(ei.cpu())[r][~ok[r]].tolist()) == sorted(ti.cpu()[r][~ok[r]].tolist())


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_sort_layouts_and_dims(layout, dim):
    e, t = view(*gpu(distinct((5, 6, 70), "float32")), layout)
    ev, ei = ember.sort(e, dim, dim % 2 == 1)
    tv, ti = torch.sort(t, dim, dim % 2 == 1)
    check(ev, tv)
    check(ei, ti)
    check(ember.argsort(e, dim), torch.argsort(t, dim))


def test_sort_broadcast_and_permuted_inputs():
    e, t = gpu(distinct((1, 7, 9), "float32"))
    e, t = e.expand(4, 7, 9), t.expand(4, 7, 9)
    for dim in (0, 1, 2):
        check(ember.sort(e, dim).values, torch.sort(t, dim).values)
        check(ember.sort(e, dim).indices, torch.sort(t, dim=dim, stable=True).indices)
    e, t = gpu(distinct((2, 3, 4, 5), "int32"))
    e, t = e.permute(2, 0, 3, 1), t.permute(2, 0, 3, 1)   # dims around the sorted one don't collapse
    for dim in (1, 2):
        ev, ei = ember.sort(e, dim, True)
        tv, ti = torch.sort(t, dim, True)
        check(ev, tv)
        check(ei, ti)


def test_sort_empty_and_zero_dim():
    e, t = gpu(torch.tensor(2.5))
    for desc in (False, True):
        ev, ei = ember.sort(e, 0, desc)
        tv, ti = torch.sort(t, 0, desc)
        check(ev, tv)
        check(ei, ti)
    check(ember.argsort(e), torch.argsort(t))
    for shape in [(0,), (3, 0), (0, 5)]:
        e, t = gpu(torch.zeros(shape))
        for dim in range(len(shape)):
            ev, ei = ember.sort(e, dim)
            tv, ti = torch.sort(t, dim)
            check(ev, tv)
            check(ei, ti)
            check(ember.argsort(e, dim), torch.argsort(t, dim))


# ---- topk / kthvalue --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32", "int64"])
@pytest.mark.parametrize("n", [1, 40, 1000, 5000])
@pytest.mark.parametrize("largest", [True, False])
def test_topk(dtype, n, largest):
    e, t = gpu(distinct((3, n), dtype, seed=n))
    for k in sorted({0, 1, min(5, n), n}):
        ev, ei = ember.topk(e, k, 1, largest)
        tv, ti = torch.topk(t, k, 1, largest)
        check(ev, tv)
        check(ei, ti)
    et, tt = e.t(), t.t()                              # along a non-last dim
    k = min(3, n)
    ev, ei = ember.topk(et, k, 0, largest)
    tv, ti = torch.topk(tt, k, 0, largest)
    check(ev, tv)
    check(ei, ti)
    e2, t2 = gpu(tied((3, n), dtype, seed=n))          # ties: same values, indices holding them
    check_selected(ember.topk(e2, k, 1, largest), torch.topk(t2, k, 1, largest), e2, 1)
    su_e = ember.topk(e2, k, 1, largest, sorted=False).values
    su_t = torch.topk(t2, k, 1, largest, sorted=False).values
    check(ember.sort(su_e, 1).values, torch.sort(su_t, 1).values)


def test_topk_nan_and_errors():
    e, t = gpu(torch.tensor([[1.0, NAN, 3.0, -2.0, NAN], [0.5, 2.0, NAN, 1.0, -1.0]]))
    for largest in (True, False):
        ev, ei = ember.topk(e, 3, 1, largest)
        tv, ti = torch.topk(t, 3, 1, largest)
        check(ev, tv)
    b, _ = gpu(torch.tensor([True, False]))
    with pytest.raises(RuntimeError):
        ember.topk(b, 1)
    with pytest.raises(RuntimeError):
        ember.topk(e, 6)
    with pytest.raises(NotImplementedError):
        ember.kthvalue(b, 1)
    with pytest.raises(RuntimeError):
        ember.kthvalue(e, 0)
    with pytest.raises(IndexError):
        ember.sort(e, 2)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int32", "int64"])
@pytest.mark.parametrize("n", [1, 9, 700, 6000])
@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue(dtype, n, keepdim):
    e, t = gpu(distinct((4, n), dtype, seed=n))
    for k in sorted({1, (n + 1) // 2, n}):
        ev, ei = ember.kthvalue(e, k, 1, keepdim)
        tv, ti = torch.kthvalue(t, k, 1, keepdim)
        check(ev, tv)
        check(ei, ti)
    ev, ei = ember.kthvalue(e.t(), 2, 1, keepdim)      # along dim 1 of the transpose: 4 columns
    tv, ti = torch.kthvalue(t.t(), 2, 1, keepdim)
    check(ev, tv)
    check(ei, ti)
    e2, t2 = gpu(tied((4, n), dtype, seed=n))
    check_selected(ember.kthvalue(e2, (n + 1) // 2, 1, keepdim), torch.kthvalue(t2, (n + 1) // 2, 1, keepdim),
                   e2, 1)


def test_kthvalue_nan_zero_dim_and_empty():
    e, t = gpu(torch.tensor([[3.0, NAN, 1.0, 2.0], [NAN, NAN, 0.0, -1.0]]))
    for k in (1, 3, 4):
        check(ember.kthvalue(e, k).values, torch.kthvalue(t, k).values)
    e, t = gpu(torch.tensor(4.0))
    ev, ei = ember.kthvalue(e, 1)
    tv, ti = torch.kthvalue(t, 1)
    check(ev, tv)
    check(ei, ti)
    ev, ei = ember.topk(e, 1)
    tv, ti = torch.topk(t, 1)
    check(ev, tv)
    check(ei, ti)
    e, t = gpu(torch.zeros(0, 5))
    ev, ei = ember.kthvalue(e, 2, 1, True)
    tv, ti = torch.kthvalue(t, 2, 1, True)
    check(ev, tv)
    check(ei, ti)
    ev, ei = ember.topk(e, 0, 1)
    tv, ti = torch.topk(t, 0, 1)
    check(ev, tv)
    check(ei, ti)


# ---- unique -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("shape", [(7,), (5, 8), (3, 40000)])
@pytest.mark.parametrize("flags", [(False, False), (True, False), (False, True), (True, True)])
def test_unique(dtype, shape, flags):
    e, t = gpu(tied(shape, dtype, seed=len(shape)))
    inv, cnt = flags
    got = ember.unique(e, sorted=True, return_inverse=inv, return_counts=cnt)
    want = torch.unique(t, sorted=True, return_inverse=inv, return_counts=cnt)
    if not (inv or cnt):
        check(got, want)
        return
    assert len(got) == len(want)
    for g, w in zip(got, want):
        check(g, w)
    if len(shape) == 2:                                 # a strided input flattens in logical order
        got = ember.unique(e.t(), return_inverse=True, return_counts=True)
        want = torch.unique(t.t(), return_inverse=True, return_counts=True)
        for g, w in zip(got, want):
            check(g, w)


def test_unique_nan_like_the_cpu_kernel():
    """NaNs are all different (each its own group, after every number), as ember's CPU unique."""
    x = ember.tensor([NAN, 1.0, NAN, 2.0, 1.0, float("inf"), NAN, -3.0])
    got = ember.unique(x.cuda(), return_inverse=True, return_counts=True)
    want = ember.unique(x, return_inverse=True, return_counts=True)
    for g, w in zip(got, want):
        assert g.device.type == "cuda" and g.dtype is w.dtype and tuple(g.shape) == tuple(w.shape)
        np.testing.assert_array_equal(g.cpu().numpy(), w.numpy())


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_unique_dim(dtype, dim):
    rng = np.random.default_rng(dim + 5)
    base = tied((4, 3, 2), dtype, seed=dim + 1)
    x = base[torch.from_numpy(rng.integers(0, 4, size=9))]                  # (9, 3, 2): repeated slices
    x = x[:, torch.from_numpy(rng.integers(0, 3, size=5))]                  # (9, 5, 2)
    e, t = gpu(x)
    got = ember.unique(e, sorted=True, return_inverse=True, return_counts=True, dim=dim)
    want = torch.unique(t, sorted=True, return_inverse=True, return_counts=True, dim=dim)
    for g, w in zip(got, want):
        check(g, w)
    check(ember.unique(e, dim=dim), torch.unique(t, dim=dim))
    et, tt = e.transpose(0, 2), t.transpose(0, 2)                           # strided input
    for g, w in zip(ember.unique(et, return_inverse=True, dim=dim), torch.unique(tt, return_inverse=True, dim=dim)):
        check(g, w)


def test_unique_dim_many_slices():
    """5000 slices: their lexicographic sort takes the merge path."""
    e, t = gpu(tied((5000, 3), "int32", seed=7))
    got = ember.unique(e, return_inverse=True, return_counts=True, dim=0)
    want = torch.unique(t, return_inverse=True, return_counts=True, dim=0)
    for g, w in zip(got, want):
        check(g, w)


def test_unique_empty_and_zero_dim():
    for x in (torch.tensor(3), torch.zeros(0), torch.zeros(2, 0)):
        e, t = gpu(x)
        got = ember.unique(e, return_inverse=True, return_counts=True)
        want = torch.unique(t, return_inverse=True, return_counts=True)
        for g, w in zip(got, want):
            check(g, w)
    e, t = gpu(torch.zeros(0, 3))
    for g, w in zip(ember.unique(e, return_inverse=True, return_counts=True, dim=0),
                    torch.unique(t, return_inverse=True, return_counts=True, dim=0)):
        check(g, w)


# ---- gradients -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("n", [6, 5000])
def test_value_gradients(dtype, n):
    x = distinct((3, n), dtype, seed=3)
    g = torch.from_numpy(np.random.default_rng(4).standard_normal((3, n))).to(x.dtype)
    k = min(4, n)
    cases = [(lambda f, v: f.sort(v, 1, True).values, g),
             (lambda f, v: f.topk(v, k, 1).values, g[:, :k]),
             (lambda f, v: f.kthvalue(v, k, 1, True).values, g[:, :1]),
             (lambda f, v: f.sort(v.t(), 0).values, g.t())]
    for fn, grad in cases:
        te = from_torch(x).cuda().requires_grad_()
        tt = x.cuda().detach().clone().requires_grad_()
        fn(ember, te).backward(from_torch(grad.contiguous()).cuda())
        fn(torch, tt).backward(grad.cuda())
        check(te.grad, tt.grad)
