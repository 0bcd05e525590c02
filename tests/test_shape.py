"""Shape and data-movement ops (cat, stack, repeat, flip, roll, tril, sort, topk, ...) against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from helpers import DTYPES, LAYOUTS, assert_same, from_torch, make_pair

# The reference only: torch's intra-op thread pool costs milliseconds per tiny op on a busy machine.
torch.set_num_threads(1)

ALL = tuple(DTYPES)
SOME = ("float32", "float64", "bfloat16", "int64", "uint8", "bool")
nan = float("nan")


def _pair(shape, dtype="float32", layout="contiguous", seed=0):
    if shape == ():  # make_pair's np.ascontiguousarray turns 0-d data into shape (1,)
        e, t = make_pair((1,), dtype, seed=seed)
        return e.reshape(()), t.reshape(())
    return make_pair(shape, dtype, layout=layout, seed=seed)


# ---- cat / stack -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_cat(dtype, layout):
    (ea, ta), (eb, tb) = _pair((2, 3), dtype, layout, 1), _pair((2, 3), dtype, "contiguous", 2)
    for dim in (0, 1, -1, -2):
        assert_same(ember.cat([ea, eb], dim), torch.cat([ta, tb], dim))
        assert_same(ember.cat((ea, eb, ea), dim=dim), torch.cat((ta, tb, ta), dim=dim))
        assert_same(ember.concat([ea, eb], dim), torch.concat([ta, tb], dim))
        assert_same(ember.concatenate([ea, eb], axis=dim), torch.concatenate([ta, tb], axis=dim))


def test_cat_sizes_and_empty():
    (ea, ta), (eb, tb) = _pair((2, 3), seed=1), _pair((2, 5), seed=2)
    assert_same(ember.cat([ea, eb], 1), torch.cat([ta, tb], 1))
    assert_same(ember.cat([ea], 0), torch.cat([ta], 0))
    assert_same(ember.cat([ea, ember.zeros(2, 0)], 1), torch.cat([ta, torch.zeros(2, 0)], 1))
    assert_same(ember.cat([ea, ember.zeros(0, 3)], 0), torch.cat([ta, torch.zeros(0, 3)], 0))
    # legacy behaviour: 1-D empty tensors are skipped whatever the other shapes and the dim
    assert_same(ember.cat([ea, ember.zeros(0)], 0), torch.cat([ta, torch.zeros(0)], 0))
    assert_same(ember.cat([ember.zeros(0), ea], -1), torch.cat([torch.zeros(0), ta], -1))
    assert_same(ember.cat([ember.zeros(0), ember.zeros(0)], 2), torch.cat([torch.zeros(0), torch.zeros(0)], 2))
    # ... but they still take part in type promotion
    assert_same(ember.cat([ea, ember.zeros(0, dtype=ember.float64)]),
                torch.cat([ta, torch.zeros(0, dtype=torch.float64)]))
    assert_same(ember.cat([ember.zeros(0, dtype=ember.int64), ember.zeros(0)]),
                torch.cat([torch.zeros(0, dtype=torch.int64), torch.zeros(0)]))


def test_cat_result_is_a_copy():
    e, t = _pair((2, 3))
    r = ember.cat([e])
    r.zero_()
    assert_same(e, t)


@pytest.mark.parametrize("da,db", [("int64", "bool"), ("uint8", "int8"), ("float16", "bfloat16"), ("int32", "float16"),
                                   ("bool", "bool"), ("float32", "float64"), ("int8", "int64")])
def test_cat_stack_promotion(da, db):
    (ea, ta), (eb, tb) = _pair((2, 3), da, seed=1), _pair((2, 3), db, "transposed", seed=2)
    assert_same(ember.cat([ea, eb]), torch.cat([ta, tb]))
    assert_same(ember.cat([ea, eb, ea], 1), torch.cat([ta, tb, ta], 1))
    assert_same(ember.stack([ea, eb]), torch.stack([ta, tb]))


def test_cat_errors():
    a = ember.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"Sizes of tensors must match except in dimension 0. Expected size 3 but "
                                           r"got size 4 for tensor number 1 in the list"):
        ember.cat([a, ember.zeros(2, 4)])
    with pytest.raises(RuntimeError, match=r"Expected size 2 but got size 4 for tensor number 1"):
        ember.cat([a, ember.zeros(4, 4), ember.zeros(2, 5)], 1)
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 2 and 1"):
        ember.cat([a, ember.zeros(3)])
    with pytest.raises(RuntimeError, match=r"zero-dimensional tensor \(at position 1\) cannot be concatenated"):
        ember.cat([ember.zeros(2), ember.zeros(())])
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got 2"):
        ember.cat([a, a], 2)
    with pytest.raises(ValueError, match="non-empty"):
        ember.cat([])
    with pytest.raises(TypeError, match="must be Tensor"):
        ember.cat([ember.zeros(2), 3])
    with pytest.raises(TypeError, match="sequence of Tensors"):
        ember.cat(a)


@pytest.mark.parametrize("dtype", SOME)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_stack(dtype, layout):
    (ea, ta), (eb, tb) = _pair((2, 3), dtype, layout, 1), _pair((2, 3), dtype, seed=2)
    for dim in (0, 1, 2, -1, -3):
        assert_same(ember.stack([ea, eb], dim), torch.stack([ta, tb], dim))
    (ea, ta), (eb, tb) = _pair((), dtype, seed=1), _pair((), dtype, seed=2)
    assert_same(ember.stack([ea, eb]), torch.stack([ta, tb]))
    assert_same(ember.stack([ember.zeros(0, 2)] * 3, 1), torch.stack([torch.zeros(0, 2)] * 3, 1))


def test_stack_errors():
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got \[2, 3\] at entry 0 "
                                           r"and \[2, 4\] at entry 1"):
        ember.stack([ember.zeros(2, 3), ember.zeros(2, 4)])
    with pytest.raises(IndexError, match=r"range of \[-3, 2\], but got 3"):
        ember.stack([ember.zeros(2, 3)] * 2, 3)


@pytest.mark.parametrize("shapes", [[(), (2,)], [(2, 3), (2, 1)], [(3,), (3,)], [(), (1,)], [(2, 3), (3,)],
                                    [(2, 3, 2), (2, 3, 1)], [(2, 3), (2, 3)]], ids=str)
def test_hstack_vstack_dstack(shapes):
    pairs = [_pair(s, "float32", seed=i) for i, s in enumerate(shapes)]
    es, ts = [p[0] for p in pairs], [p[1] for p in pairs]
    for name in ("hstack", "vstack", "dstack"):
        try:
            t = getattr(torch, name)(ts)
        except RuntimeError:
            with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions|Sizes of tensors must"):
                getattr(ember, name)(es)
            continue
        assert_same(getattr(ember, name)(es), t)


# ---- repeat / tile / flip / roll ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", SOME)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_repeat_tile(dtype, layout):
    e, t = _pair((2, 3), dtype, layout)
    for reps in ((2, 1), (1, 3), (2, 2, 2), (0, 2), (1, 1)):
        assert_same(e.repeat(*reps), t.repeat(*reps))
        assert_same(e.repeat(reps), t.repeat(reps))
    for dims in ((2,), (2, 1, 1), (), (3, 2), (0,)):
        assert_same(ember.tile(e, dims), torch.tile(t, dims))
        assert_same(e.tile(dims), t.tile(dims))
        assert_same(ember.tile(e, dims=dims), torch.tile(t, dims=dims))
    assert_same(e.tile(2), t.tile(2))
    e0, t0 = _pair((), dtype)
    assert_same(e0.repeat(3), t0.repeat(3))
    assert_same(e0.tile(()), t0.tile(()))


def test_repeat_errors():
    e = ember.zeros(2, 3)
    with pytest.raises(RuntimeError, match="Number of dimensions of repeat dims can not be smaller than number of "
                                           "dimensions of tensor"):
        e.repeat(2)
    with pytest.raises(RuntimeError, match="negative dimension"):
        e.repeat(-1, 2)
    with pytest.raises(RuntimeError, match="negative dimension"):
        e.tile((-1,))
    with pytest.raises(TypeError, match="missing"):
        e.repeat()


@pytest.mark.parametrize("dtype", SOME)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_flip(dtype, layout):
    e, t = _pair((2, 3, 4), dtype, layout)
    for dims in ((0,), (1, 2), (-1,), (0, 1, 2), ()):
        assert_same(ember.flip(e, dims), torch.flip(t, dims))
        assert_same(ember.flip(e, dims=dims), torch.flip(t, dims=dims))
        if dims:
            assert_same(e.flip(*dims), t.flip(*dims))
    assert_same(ember.fliplr(e), torch.fliplr(t))
    assert_same(ember.flipud(e), torch.flipud(t))
    assert_same(e.fliplr(), t.fliplr())
    e0, t0 = _pair((), dtype)
    assert_same(ember.flip(e0, [0]), torch.flip(t0, [0]))
    e1, t1 = _pair((3,), dtype, layout)
    assert_same(ember.flipud(e1), torch.flipud(t1))


def test_flip_returns_a_copy():
    for dims in ((), (0,)):
        e, t = _pair((1, 3))
        r = ember.flip(e, dims)
        r.zero_()
        assert_same(e, t)


def test_flip_errors():
    e = ember.zeros(2, 3)
    with pytest.raises(RuntimeError, match="appears multiple times"):
        ember.flip(e, [0, 0])
    with pytest.raises(IndexError, match="out of range"):
        ember.flip(e, [2])
    with pytest.raises(RuntimeError, match="Input must be >= 2-d"):
        ember.fliplr(ember.zeros(3))
    with pytest.raises(RuntimeError, match="Input must be >= 1-d"):
        ember.flipud(ember.zeros(()))


@pytest.mark.parametrize("dtype", SOME)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_roll(dtype, layout):
    e, t = _pair((3, 4), dtype, layout)
    for shifts, dims in ((1, None), (-5, None), (1, 0), (2, -1), ((1, 2), (0, 1)), ((1, -7), (1, 0)), ((1, 1), (0, 0)),
                         ([3], [1])):
        assert_same(ember.roll(e, shifts, dims), torch.roll(t, shifts, dims))
        assert_same(e.roll(shifts, dims), t.roll(shifts, dims))
    assert_same(ember.roll(e, shifts=1, dims=1), torch.roll(t, shifts=1, dims=1))
    e0, t0 = _pair((), dtype)
    assert_same(ember.roll(e0, 1), torch.roll(t0, 1))
    assert_same(ember.roll(ember.zeros(0, 3), 1, 0), torch.roll(torch.zeros(0, 3), 1, 0))


def test_roll_errors():
    e = ember.zeros(2, 3)
    with pytest.raises(RuntimeError, match="shifts and dimensions must align. shifts: 2, dims:1"):
        ember.roll(e, (1, 2), 0)
    with pytest.raises(RuntimeError, match="shifts and dimensions must align. shifts: 2, dims:0"):
        ember.roll(e, (1, 2))
    with pytest.raises(IndexError, match="out of range"):
        ember.roll(e, 1, 2)
    with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
        ember.roll(ember.zeros(()), 1, 0)
    with pytest.raises(RuntimeError, match="`shifts` required"):
        ember.roll(e, (), ())


# ---- tril / triu -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", SOME)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_tril_triu(dtype, layout):
    for diagonal in (0, 1, -1, 5, -5):
        _check_tril_triu(dtype, layout, diagonal)


def _check_tril_triu(dtype, layout, diagonal):
    e, t = _pair((2, 3, 4), dtype, layout)
    assert_same(ember.tril(e, diagonal), torch.tril(t, diagonal))
    assert_same(ember.triu(e, diagonal), torch.triu(t, diagonal))
    assert_same(e.tril(diagonal=diagonal), t.tril(diagonal=diagonal))
    for name in ("tril_", "triu_"):
        e2, t2 = _pair((3, 4), dtype, "transposed" if layout == "transposed" else "contiguous")
        v = e2._version
        assert getattr(e2, name)(diagonal) is e2
        getattr(t2, name)(diagonal)
        assert e2._version == v + 1
        assert_same(e2, t2)


def test_tril_errors_and_empty():
    assert_same(ember.tril(ember.zeros(0, 3)), torch.tril(torch.zeros(0, 3)))
    with pytest.raises(RuntimeError, match="tril: input tensor must have at least 2 dimensions"):
        ember.tril(ember.zeros(3))
    with pytest.raises(RuntimeError, match="triu: input tensor must have at least 2 dimensions"):
        ember.triu(ember.zeros(()))


# ---- sort / argsort / topk / kthvalue ----------------------------------------------------------

SORT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool")


@pytest.mark.parametrize("dtype", SORT_DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_sort_stable(dtype, layout):
    e, t = _pair((3, 10), dtype, layout)  # integer data has many ties: stable order matters
    for dim, descending in ((-1, False), (0, False), (-1, True), (0, True)):
        r = ember.sort(e, dim, descending, stable=True)
        tr = torch.sort(t, dim=dim, descending=descending, stable=True)
        assert_same(r, tr)
        assert_same(r.values, tr.values)
        assert_same(r.indices, tr.indices)
        assert_same(e.sort(dim=dim, descending=descending, stable=True), tr)
        t_idx = torch.argsort(t, dim=dim, descending=descending, stable=True)
        assert_same(ember.argsort(e, dim, descending, stable=True), t_idx)
        assert_same(ember.sort(e, dim, descending), tr)  # ember's sort is always stable
        assert_same(e.argsort(dim=dim, descending=descending), t_idx)


@pytest.mark.parametrize("dtype", ("float32", "float64", "float16", "bfloat16"))
def test_sort_nan(dtype):
    t = torch.tensor([3., nan, 1., -0., 0., nan, 1., -float("inf"), float("inf")], dtype=DTYPES[dtype][1])
    e = from_torch(t)
    for desc in (False, True):
        assert_same(ember.sort(e, descending=desc, stable=True), torch.sort(t, descending=desc, stable=True))
        assert_same(ember.argsort(e, descending=desc), torch.argsort(t, descending=desc, stable=True))


def test_sort_shapes():
    for shape, dim in (((), 0), ((), -1), ((0, 3), 0), ((0, 3), 1), ((4,), 0), ((2, 1, 3), 1)):
        e, t = _pair(shape)
        assert_same(ember.sort(e, dim), torch.sort(t, dim))
        assert_same(ember.argsort(e, dim), torch.argsort(t, dim))
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1"):
        ember.sort(ember.zeros(()), 1)
    with pytest.raises(IndexError, match="out of range"):
        ember.sort(ember.zeros(3), dim=1)


def test_return_types():
    r = ember.sort(ember.tensor([2.0, 1.0]))
    values, indices = r
    assert r.values is values and r.indices is indices and r[0] is values
    assert isinstance(r, tuple)
    t = ember.topk(ember.tensor([2.0, 1.0]), 1)
    assert t.values.tolist() == [2.0] and t.indices.tolist() == [0]
    k = ember.kthvalue(ember.tensor([2.0, 1.0]), 1)
    assert k.values.item() == 1.0 and k.indices.item() == 1


@pytest.mark.parametrize("dtype", ("float32", "float64", "bfloat16", "int64", "int8"))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("largest", (True, False))
def test_topk(dtype, layout, largest):
    # distinct values so that the indices are well defined
    n = 12 if dtype == "int8" else 200
    base = torch.randperm(n, generator=torch.Generator().manual_seed(0)).reshape(2, n // 2) - n // 4
    base = base.to(DTYPES[dtype][1])
    if layout == "transposed":
        store = base.T.contiguous()
        e, t = from_torch(store).T, store.T
    elif layout == "sliced":
        store = torch.stack([base, base], -1).reshape(2, -1)
        e, t = from_torch(store)[:, ::2], store[:, ::2]
    elif layout == "expanded":
        e, t = from_torch(base[:1]).expand(3, -1), base[:1].expand(3, -1)
    else:
        e, t = from_torch(base), base
    for k in (0, 1, 3, n // 2):
        for dim in (-1, 1):
            assert_same(ember.topk(e, k, dim, largest), torch.topk(t, k, dim, largest))
            assert_same(e.topk(k, dim=dim, largest=largest, sorted=True), t.topk(k, dim=dim, largest=largest))
    assert_same(ember.topk(e, 2, 0, largest), torch.topk(t, 2, 0, largest))


def test_topk_ties_nan_and_shapes():
    t = torch.tensor([3., nan, 1., 2., nan, -float("inf")] * 20)
    e = from_torch(t)
    for k in (1, 2, 3, 5, 40):
        for largest in (True, False):
            r, tr = ember.topk(e, k, largest=largest), torch.topk(t, k, largest=largest)
            assert_same(r.values, tr.values)
            picked = np.take_along_axis(e.numpy(), r.indices.numpy(), 0)
            np.testing.assert_array_equal(picked, tr.values.numpy())
    for shape, k, dim in (((), 1, 0), ((2, 0), 0, 1), ((0, 3), 2, 1)):
        e, t = _pair(shape)
        assert_same(ember.topk(e, k, dim), torch.topk(t, k, dim))
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        ember.topk(ember.zeros(3), 4)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        ember.topk(ember.zeros(3), -1)
    with pytest.raises(RuntimeError, match="bool"):
        ember.topk(ember.zeros(3, dtype=ember.bool), 1)


@pytest.mark.parametrize("dtype", ("float32", "float64", "float16", "int64", "uint8"))
@pytest.mark.parametrize("keepdim", (False, True))
def test_kthvalue(dtype, keepdim):
    base = torch.randperm(24, generator=torch.Generator().manual_seed(1)).reshape(4, 6).to(DTYPES[dtype][1])
    e = from_torch(base)
    for k, dim in ((1, -1), (3, 1), (6, 1), (2, 0), (4, 0)):
        assert_same(ember.kthvalue(e, k, dim, keepdim), torch.kthvalue(base, k, dim, keepdim))
        assert_same(e.kthvalue(k, dim=dim, keepdim=keepdim), base.kthvalue(k, dim=dim, keepdim=keepdim))
    et, tt = from_torch(base).T, base.T
    assert_same(ember.kthvalue(et, 2, 1, keepdim), torch.kthvalue(tt, 2, 1, keepdim))


def test_kthvalue_nan_and_errors():
    t = torch.tensor([3., nan, 1., -0.5, 7., nan, 2., -float("inf")])
    e = from_torch(t)
    for k in (1, 2, 5, 6):
        assert_same(ember.kthvalue(e, k), torch.kthvalue(t, k))
    for k in (7, 8):  # NaN sorts as the largest
        assert np.isnan(ember.kthvalue(e, k).values.item())
    assert_same(ember.kthvalue(ember.zeros(()), 1), torch.kthvalue(torch.zeros(()), 1))
    assert_same(ember.kthvalue(ember.zeros(3, 0), 1, 0), torch.kthvalue(torch.zeros(3, 0), 1, 0))
    with pytest.raises(RuntimeError, match="kthvalue\\(\\): selected number k out of range for dimension 0"):
        ember.kthvalue(e, 9)
    with pytest.raises(RuntimeError, match="selected number k out of range"):
        ember.kthvalue(e, 0)
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        ember.kthvalue(ember.zeros(0, 3), 1, 0)


# ---- unique / diag / diag_embed / meshgrid -----------------------------------------------------

@pytest.mark.parametrize("dtype", ("float32", "bfloat16", "int64", "uint8", "bool"))
def test_unique(dtype):
    e, t = _pair((4, 5), dtype, "transposed")
    for inv in (False, True):
        for cnt in (False, True):
            assert_same(ember.unique(e, return_inverse=inv, return_counts=cnt),
                        torch.unique(t, return_inverse=inv, return_counts=cnt))
            assert_same(e.unique(sorted=True, return_inverse=inv, return_counts=cnt),
                        t.unique(sorted=True, return_inverse=inv, return_counts=cnt))
    rows = torch.tensor([[1, 2], [1, 2], [0, 1], [0, 1], [3, 0]]).to(DTYPES[dtype][1])
    er = from_torch(rows)
    assert_same(ember.unique(er, dim=0, return_inverse=True, return_counts=True),
                torch.unique(rows, dim=0, return_inverse=True, return_counts=True))
    assert_same(ember.unique(er, dim=1), torch.unique(rows, dim=1))


def test_unique_nan_and_empty():
    t = torch.tensor([nan, 2., nan, 1., 2.])
    assert_same(ember.unique(from_torch(t)), torch.unique(t))
    assert_same(ember.unique(ember.zeros(0)), torch.unique(torch.zeros(0)))
    e0, t0 = _pair(())
    assert_same(ember.unique(e0, return_inverse=True), torch.unique(t0, return_inverse=True))


@pytest.mark.parametrize("dtype", SOME)
@pytest.mark.parametrize("diagonal", (0, 1, -2, 4))
def test_diag(dtype, diagonal):
    e, t = _pair((3,), dtype, "sliced")
    assert_same(ember.diag(e, diagonal), torch.diag(t, diagonal))
    e, t = _pair((3, 4), dtype, "transposed")
    assert_same(ember.diag(e, diagonal), torch.diag(t, diagonal))
    assert_same(e.diag(diagonal), t.diag(diagonal))
    r = ember.diag(e, diagonal)
    r.zero_()  # a copy, not a view
    assert_same(e, t)


def test_diag_errors():
    for shape in ((), (2, 2, 2)):
        with pytest.raises(RuntimeError, match=f"diag\\(\\): Supports 1D or 2D tensors. Got {len(shape)}D"):
            ember.diag(ember.zeros(shape))


@pytest.mark.parametrize("dtype", SOME)
def test_diag_embed(dtype):
    for args in [(0, -2, -1), (1, -2, -1), (-1, -2, -1), (0, 0, 2), (2, 2, 0), (-2, 1, 0), (0, 0, 1)]:
        _check_diag_embed(dtype, args)


def _check_diag_embed(dtype, args):
    e, t = _pair((2, 3), dtype, "sliced")
    assert_same(ember.diag_embed(e, *args), torch.diag_embed(t, *args))
    assert_same(e.diag_embed(*args), t.diag_embed(*args))
    e, t = _pair((4,), dtype)
    if max(args[1:]) <= 1 and min(args[1:]) >= -2:
        assert_same(ember.diag_embed(e, *args), torch.diag_embed(t, *args))


def test_diag_embed_errors():
    with pytest.raises(RuntimeError, match="diagonal dimensions cannot be identical 0, 0"):
        ember.diag_embed(ember.zeros(2, 3), 0, 0, 0)
    with pytest.raises(IndexError, match="out of range"):
        ember.diag_embed(ember.zeros(()))


@pytest.mark.parametrize("indexing", ("ij", "xy"))
def test_meshgrid(indexing):
    (ea, ta), (eb, tb) = _pair((2,), "int64", seed=1), _pair((3,), "int64", seed=2)
    ec, tc = _pair((), "int64", seed=3)
    for es, ts in (([ea, eb], [ta, tb]), ([ea, eb, ec], [ta, tb, tc]), ([ea], [ta]), ([ec, eb], [tc, tb])):
        assert_same(ember.meshgrid(*es, indexing=indexing), torch.meshgrid(*ts, indexing=indexing))
        assert_same(ember.meshgrid(es, indexing=indexing), torch.meshgrid(ts, indexing=indexing))
    assert_same(ember.meshgrid(ea, eb), torch.meshgrid(ta, tb, indexing="ij"))


def test_meshgrid_errors():
    with pytest.raises(RuntimeError, match="same dtype"):
        ember.meshgrid(ember.zeros(2), ember.zeros(3, dtype=ember.float64))
    with pytest.raises(RuntimeError, match="Expected 0D or 1D tensor"):
        ember.meshgrid(ember.zeros(2, 2), ember.zeros(3))
    with pytest.raises(RuntimeError, match="non-empty"):
        ember.meshgrid()
    with pytest.raises(RuntimeError, match="indexing"):   # torch: RuntimeError
        ember.meshgrid(ember.zeros(2), indexing="yx")


def test_is_dense_against_torch():
    """core.shape.is_dense: a geometry that lays out a block of numel elements once each, in any dim order (what
    torch calls non-overlapping and dense), against torch's own test on torch's views."""
    import torch
    from torch._prims_common import is_non_overlapping_and_dense_or_false as is_non_overlapping_and_dense
    from ember.core.shape import is_dense
    base = torch.zeros(3, 4, 5)
    views = [base, base.permute(2, 0, 1), base.transpose(0, 1), base[:, ::2], base[:, :2], base.unsqueeze(1),
             base[:1], base.expand(2, 3, 4, 5), base.reshape(12, 5).t(), torch.zeros(4, 1).expand(4, 3),
             base.view(3, 4, 5, 1).permute(3, 2, 0, 1)]
    got = [is_dense(tuple(v.shape), v.stride()) for v in views]
    assert got == [is_non_overlapping_and_dense(v) for v in views]
    assert got == [True, True, True, False, False, True, True, False, True, False, True]


def test_stacked_spacing():
    """The unbind of a permuted fused qkv is a stacked block (spacing H * D); slices that leave gaps, or overlap,
    or differ in layout, are not."""
    import ember
    from ember.core.shape import stacked_spacing
    B, T, H, D = 2, 5, 3, 4
    qkv = ember.zeros(B, T, 3 * H * D)
    assert stacked_spacing(qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4).unbind(0)) == H * D
    assert stacked_spacing(qkv.view(B, T, 3, H * D).unbind(2)) == H * D
    assert stacked_spacing(qkv.view(B, T, 6, 6)[:, :, ::2].unbind(2)) == 0            # gaps between them
    assert stacked_spacing([qkv[:, :, :4], qkv[:, :, 2:6]]) == 0                      # overlapping
    assert stacked_spacing([qkv[:, :, :4], qkv[:, :, 4:8].contiguous()]) == 0         # another storage
    assert stacked_spacing([qkv[0]]) == 0
